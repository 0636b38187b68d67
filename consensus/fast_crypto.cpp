#include "consensus/fast_crypto.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <utility>

#include "crypto/hash.h"

namespace tob::consensus {

namespace {

constexpr std::size_t kShareBytes = 96;

using Key = std::array<std::uint8_t, 32>;

// H(world_secret, purpose, index): the per-member / per-client key material.
Key derive(const FastWorld& world, std::string_view purpose, std::uint64_t index) {
    return crypto::Hasher().raw(world.secret).field(purpose).u64(index).finish();
}

Key client_key(const FastWorld& world, const PublicKey& client) {
    return crypto::Hasher().raw(world.secret).field("client").raw(client).finish();
}

// Keyed BLAKE2b-256 over tag ‖ 0 ‖ payload (prefix keying is sound for BLAKE2,
// which has no length extension), stretched to 64 bytes as d ‖ d.
Signature keyed_sig(const Key& key, std::string_view tag, ByteView payload) {
    const std::uint8_t zero = 0;
    crypto::Digest d = crypto::Hasher()
                           .raw(key)
                           .raw(crypto::view(tag))
                           .raw(ByteView(&zero, 1))
                           .raw(payload)
                           .finish();
    Signature sig{};
    std::memcpy(sig.data(), d.data(), d.size());
    std::memcpy(sig.data() + d.size(), d.data(), d.size());
    return sig;
}

}  // namespace

std::shared_ptr<const FastWorld> FastWorld::make(std::uint32_t n, std::uint32_t t,
                                                 std::uint64_t seed) {
    crypto::init();
    auto world = std::make_shared<FastWorld>();
    world->n = n;
    world->t = t;
    world->secret = crypto::Hasher().field("tobd-fast-world-v1").u64(seed).u64(n).u64(t).finish();
    return world;
}

FastCryptoSuite::FastCryptoSuite(std::shared_ptr<const FastWorld> world, NodeId self)
    : world_(std::move(world)), self_(self) {
    assert(world_ != nullptr);
    crypto::init();
}

Signature FastCryptoSuite::sign(std::string_view tag, ByteView payload) const {
    return keyed_sig(derive(*world_, "node", self_), tag, payload);
}

bool FastCryptoSuite::verify(NodeId signer, std::string_view tag, ByteView payload,
                             const Signature& sig) const {
    if (signer >= world_->n) return false;
    return keyed_sig(derive(*world_, "node", signer), tag, payload) == sig;
}

bool FastCryptoSuite::verify_client(const PublicKey& client, std::string_view tag, ByteView payload,
                                    const Signature& sig) const {
    return keyed_sig(client_key(*world_, client), tag, payload) == sig;
}

Signature FastCryptoSuite::sign_client(const FastWorld& world, const PublicKey& client,
                                       std::string_view tag, ByteView payload) {
    return keyed_sig(client_key(world, client), tag, payload);
}

Bytes FastCryptoSuite::share_of(const FastWorld& world, NodeId node, ByteView name) {
    // H(world_secret, "share", i, name), stretched to 96 bytes with a counter.
    Bytes out;
    out.reserve(kShareBytes);
    for (std::uint64_t block = 0; block < kShareBytes / 32; ++block) {
        crypto::Digest d = crypto::Hasher()
                               .raw(world.secret)
                               .field("share")
                               .u64(node)
                               .field(name)
                               .u64(block)
                               .finish();
        out.insert(out.end(), d.begin(), d.end());
    }
    return out;
}

Bytes FastCryptoSuite::coin_share(ByteView name) const { return share_of(*world_, self_, name); }

bool FastCryptoSuite::verify_coin_share(NodeId from, ByteView name, ByteView share) const {
    if (from >= world_->n || share.size() != kShareBytes) return false;
    Bytes expected = share_of(*world_, from, name);
    return std::equal(expected.begin(), expected.end(), share.begin(), share.end());
}

std::optional<bool> FastCryptoSuite::combine_coin(ByteView name,
                                                  const std::map<NodeId, Bytes>& shares) const {
    std::uint32_t valid = 0;
    for (const auto& [from, share] : shares) {
        // The suite's own check, not a virtual call: a caller counting verifications
        // sees only the ones the protocol asked for.
        if (FastCryptoSuite::verify_coin_share(from, name, share)) ++valid;
    }
    if (valid < world_->t + 1) return std::nullopt;
    crypto::Digest d = crypto::Hasher().raw(world_->secret).field("coin").field(name).finish();
    return (d[0] & 1) != 0;
}

}  // namespace tob::consensus
