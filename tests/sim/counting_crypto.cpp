#include "tests/sim/counting_crypto.h"

#include <algorithm>

#include "crypto/coin.h"

namespace tob::sim {

using namespace tob::consensus;

CryptoCounts& CryptoCounts::operator+=(const CryptoCounts& o) {
    sign += o.sign;
    verify += o.verify;
    verify_client += o.verify_client;
    coin_share += o.coin_share;
    verify_coin_share += o.verify_coin_share;
    combine_coin += o.combine_coin;
    return *this;
}

// ---- CountingSuite ---------------------------------------------------------------------

CountingSuite::CountingSuite(std::unique_ptr<CryptoSuite> inner, CryptoCounts* counts)
    : inner_(std::move(inner)), counts_(counts) {}

Signature CountingSuite::sign(std::string_view tag, ByteView payload) const {
    ++counts_->sign;
    return inner_->sign(tag, payload);
}

bool CountingSuite::verify(NodeId signer, std::string_view tag, ByteView payload,
                           const Signature& sig) const {
    ++counts_->verify;
    return inner_->verify(signer, tag, payload, sig);
}

bool CountingSuite::verify_client(const PublicKey& client, std::string_view tag, ByteView payload,
                                  const Signature& sig) const {
    ++counts_->verify_client;
    return inner_->verify_client(client, tag, payload, sig);
}

Bytes CountingSuite::coin_share(ByteView name) const {
    ++counts_->coin_share;
    return inner_->coin_share(name);
}

bool CountingSuite::verify_coin_share(NodeId from, ByteView name, ByteView share) const {
    ++counts_->verify_coin_share;
    return inner_->verify_coin_share(from, name, share);
}

std::optional<bool> CountingSuite::combine_coin(ByteView name,
                                                const std::map<NodeId, Bytes>& shares) const {
    ++counts_->combine_coin;
    return inner_->combine_coin(name, shares);
}

// ---- CountedCryptoSuite ------------------------------------------------------------------

namespace {

constexpr std::uint8_t kMemberMark = 0xC5;
constexpr std::uint8_t kShareMark = 0xC0;

void put_id(std::uint8_t* out, NodeId id) {
    for (int k = 0; k < 4; ++k) out[k] = static_cast<std::uint8_t>(id >> (8 * k));
}

NodeId get_id(const std::uint8_t* in) {
    NodeId id = 0;
    for (int k = 0; k < 4; ++k) id |= static_cast<NodeId>(in[k]) << (8 * k);
    return id;
}

}  // namespace

CountedCryptoSuite::CountedCryptoSuite(std::uint32_t n, std::uint32_t t, NodeId self)
    : n_(n), t_(t), self_(self) {}

Signature CountedCryptoSuite::sign(std::string_view, ByteView) const {
    Signature sig{};
    put_id(sig.data(), self_);
    sig[4] = kMemberMark;
    return sig;
}

bool CountedCryptoSuite::verify(NodeId signer, std::string_view, ByteView,
                                const Signature& sig) const {
    return signer < n_ && get_id(sig.data()) == signer && sig[4] == kMemberMark;
}

Signature CountedCryptoSuite::client_signature(const PublicKey& client) {
    Signature sig{};
    std::copy(client.begin(), client.end(), sig.begin());
    sig[32] = kMemberMark ^ 0xFF;
    return sig;
}

bool CountedCryptoSuite::verify_client(const PublicKey& client, std::string_view, ByteView,
                                       const Signature& sig) const {
    return sig == client_signature(client);
}

Bytes CountedCryptoSuite::coin_share(ByteView) const {
    Bytes share(crypto::kCoinShareBytes, 0);
    put_id(share.data(), self_);
    share[4] = kShareMark;
    return share;
}

bool CountedCryptoSuite::verify_coin_share(NodeId from, ByteView, ByteView share) const {
    return from < n_ && share.size() == crypto::kCoinShareBytes && get_id(share.data()) == from &&
           share[4] == kShareMark;
}

std::optional<bool> CountedCryptoSuite::combine_coin(ByteView name,
                                                     const std::map<NodeId, Bytes>& shares) const {
    std::size_t valid = 0;
    for (const auto& [from, share] : shares)
        if (verify_coin_share(from, name, share)) ++valid;
    if (valid < t_ + 1) return std::nullopt;
    // FNV-1a over the name, then the splitmix64 finalizer so that every bit of
    // the name (the round number is its last byte) reaches the bit taken: common
    // to every node, fair enough across rounds, and no cryptography.
    std::uint64_t h = 1469598103934665603ull;
    for (std::uint8_t b : name) h = (h ^ b) * 1099511628211ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    return (h & 1) != 0;
}

}  // namespace tob::sim
