#include "consensus/real_crypto.h"

#include <cstdlib>

namespace tob::consensus {

RealCryptoSuite::RealCryptoSuite(std::vector<PublicKey> members, crypto::CoinPublicKey coin,
                                 std::optional<crypto::SigningKey> key,
                                 std::optional<crypto::CoinSecretShare> share)
    : members_(std::move(members)),
      coin_(std::move(coin)),
      key_(std::move(key)),
      share_(std::move(share)) {}

Signature RealCryptoSuite::sign(std::string_view tag, ByteView payload) const {
    if (!key_) std::abort();  // a verify-only suite never signs: programming error
    return key_->sign(tag, payload);
}

bool RealCryptoSuite::verify(NodeId signer, std::string_view tag, ByteView payload,
                             const Signature& sig) const {
    if (signer >= members_.size()) return false;
    return crypto::verify(members_[signer], tag, payload, sig);
}

bool RealCryptoSuite::verify_client(const PublicKey& client, std::string_view tag, ByteView payload,
                                    const Signature& sig) const {
    return crypto::verify(client, tag, payload, sig);
}

Bytes RealCryptoSuite::coin_share(ByteView name) const {
    if (!share_) std::abort();
    auto s = crypto::encode_coin_share(crypto::make_coin_share(*share_, name));
    return Bytes(s.begin(), s.end());
}

bool RealCryptoSuite::verify_coin_share(NodeId from, ByteView name, ByteView share) const {
    crypto::CoinShare s;
    if (!crypto::decode_coin_share(share, s)) return false;
    return crypto::verify_coin_share(coin_, from, name, s);
}

std::optional<bool> RealCryptoSuite::combine_coin(ByteView /*name*/,
                                                  const std::map<NodeId, Bytes>& shares) const {
    std::map<std::uint32_t, crypto::CoinShare> decoded;
    for (const auto& [id, bytes] : shares) {
        crypto::CoinShare s;
        if (!crypto::decode_coin_share(bytes, s)) continue;
        decoded[id] = s;
        if (decoded.size() == coin_.t + 1) break;
    }
    auto hx = crypto::combine_coin_shares(coin_, decoded);
    if (!hx) return std::nullopt;
    return crypto::coin_bit(*hx);
}

}  // namespace tob::consensus
