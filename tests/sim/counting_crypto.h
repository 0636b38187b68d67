#pragma once
// Counting the cryptography of a simulation (tobsim --scaling, docs/performance.md):
//
//  - CountingSuite wraps any CryptoSuite (the real or the fast one) and counts
//    every call by kind into a CryptoCounts it is given;
//  - CountedCryptoSuite does no cryptography at all, for cluster sizes where real
//    Ed25519 and threshold-coin work would make a run take hours (n = 31, 64,
//    100): a "signature" names its signer, a coin share names its sender (and has
//    the real share's 96 bytes, so message sizes stay those of a real run), and
//    the coin of a name is a cheap non-cryptographic hash bit. It is only sound
//    when every node is honest (nothing stops a forgery), which is what the
//    scaling runs use. Wrapped in a CountingSuite it yields the operation counts
//    a real run would do, without their CPU cost.

#include <cstdint>
#include <memory>

#include "consensus/crypto_suite.h"

namespace tob::sim {

/// Calls of each CryptoSuite method.
struct CryptoCounts {
    std::uint64_t sign = 0;
    std::uint64_t verify = 0;         // member signatures
    std::uint64_t verify_client = 0;  // client signatures
    std::uint64_t coin_share = 0;
    std::uint64_t verify_coin_share = 0;
    std::uint64_t combine_coin = 0;

    /// Signature operations: signs and verifications (member and client).
    std::uint64_t signature_ops() const { return sign + verify + verify_client; }
    /// Coin operations: shares made, shares verified, combinations.
    std::uint64_t coin_ops() const { return coin_share + verify_coin_share + combine_coin; }
    CryptoCounts& operator+=(const CryptoCounts& o);
};

class CountingSuite final : public consensus::CryptoSuite {
  public:
    /// Counts into `*counts`, which must outlive the suite.
    CountingSuite(std::unique_ptr<consensus::CryptoSuite> inner, CryptoCounts* counts);

    consensus::Signature sign(std::string_view tag, consensus::ByteView payload) const override;
    bool verify(consensus::NodeId signer, std::string_view tag, consensus::ByteView payload,
                const consensus::Signature& sig) const override;
    bool verify_client(const consensus::PublicKey& client, std::string_view tag,
                       consensus::ByteView payload, const consensus::Signature& sig) const override;
    consensus::Bytes coin_share(consensus::ByteView name) const override;
    bool verify_coin_share(consensus::NodeId from, consensus::ByteView name,
                           consensus::ByteView share) const override;
    std::optional<bool> combine_coin(
        consensus::ByteView name,
        const std::map<consensus::NodeId, consensus::Bytes>& shares) const override;

  private:
    std::unique_ptr<consensus::CryptoSuite> inner_;
    CryptoCounts* counts_;
};

class CountedCryptoSuite final : public consensus::CryptoSuite {
  public:
    CountedCryptoSuite(std::uint32_t n, std::uint32_t t, consensus::NodeId self);

    consensus::Signature sign(std::string_view tag, consensus::ByteView payload) const override;
    bool verify(consensus::NodeId signer, std::string_view tag, consensus::ByteView payload,
                const consensus::Signature& sig) const override;
    bool verify_client(const consensus::PublicKey& client, std::string_view tag,
                       consensus::ByteView payload, const consensus::Signature& sig) const override;
    consensus::Bytes coin_share(consensus::ByteView name) const override;
    bool verify_coin_share(consensus::NodeId from, consensus::ByteView name,
                           consensus::ByteView share) const override;
    std::optional<bool> combine_coin(
        consensus::ByteView name,
        const std::map<consensus::NodeId, consensus::Bytes>& shares) const override;

    /// What a client with public key `client` "signs" every request with.
    static consensus::Signature client_signature(const consensus::PublicKey& client);

  private:
    std::uint32_t n_, t_;
    consensus::NodeId self_;
};

}  // namespace tob::sim
