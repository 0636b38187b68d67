#pragma once
// The production CryptoSuite: Ed25519 signatures (crypto/sign.h) and the
// threshold coin on ristretto255 (crypto/coin.h).

#include <optional>
#include <vector>

#include "consensus/crypto_suite.h"
#include "crypto/coin.h"
#include "crypto/sign.h"

namespace tob::consensus {

class RealCryptoSuite final : public CryptoSuite {
  public:
    /// `members[i]` is node i's public key; `coin` the cluster's coin parameters.
    /// `key`/`share` are this node's secrets (absent: a verify-only suite whose
    /// sign/coin_share must not be called).
    RealCryptoSuite(std::vector<PublicKey> members, crypto::CoinPublicKey coin,
                    std::optional<crypto::SigningKey> key,
                    std::optional<crypto::CoinSecretShare> share);

    Signature sign(std::string_view tag, ByteView payload) const override;
    bool verify(NodeId signer, std::string_view tag, ByteView payload,
                const Signature& sig) const override;
    bool verify_client(const PublicKey& client, std::string_view tag, ByteView payload,
                       const Signature& sig) const override;
    Bytes coin_share(ByteView name) const override;
    bool verify_coin_share(NodeId from, ByteView name, ByteView share) const override;
    std::optional<bool> combine_coin(ByteView name,
                                     const std::map<NodeId, Bytes>& shares) const override;

  private:
    std::vector<PublicKey> members_;
    crypto::CoinPublicKey coin_;
    std::optional<crypto::SigningKey> key_;
    std::optional<crypto::CoinSecretShare> share_;
};

}  // namespace tob::consensus
