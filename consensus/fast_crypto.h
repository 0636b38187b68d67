#pragma once
// FastCryptoSuite: a keyed-hash stand-in for Ed25519 and the threshold coin, for
// unit tests and large simulation sweeps. It is NOT secure against anyone who holds
// the world secret (every node's "key" derives from it); inside one process that
// is exactly what a simulator wants: cheap, deterministic, and still faithful to
// the properties the protocol relies on —
//  - a node's signature can only be produced with that node's key (the simulator's
//    Byzantine nodes use only their own suite),
//  - a coin share is checkable per sender, and
//  - the coin value of a name is unpredictable from the protocol's point of view
//    until t+1 valid shares exist: combine_coin refuses with fewer, and the value
//    H(world_secret, "coin", name) appears nowhere else.
//
// All values derive from one 32-byte world secret, itself derived from a uint64
// seed with BLAKE2b, so a seed reproduces a world exactly. No randomness.

#include <array>
#include <cstdint>
#include <memory>

#include "consensus/crypto_suite.h"

namespace tob::consensus {

/// The shared, immutable parameters of one simulated cluster.
struct FastWorld {
    std::uint32_t n = 0;
    std::uint32_t t = 0;
    std::array<std::uint8_t, 32> secret{};

    /// secret = BLAKE2b-256(field("tobd-fast-world-v1"), u64 seed, u64 n, u64 t).
    static std::shared_ptr<const FastWorld> make(std::uint32_t n, std::uint32_t t,
                                                 std::uint64_t seed);
};

class FastCryptoSuite : public CryptoSuite {
  public:
    /// The suite of member `self` (self < world->n). A suite with self >= n can
    /// still verify but its signatures and shares verify for nobody.
    FastCryptoSuite(std::shared_ptr<const FastWorld> world, NodeId self);

    Signature sign(std::string_view tag, ByteView payload) const override;
    bool verify(NodeId signer, std::string_view tag, ByteView payload,
                const Signature& sig) const override;
    bool verify_client(const PublicKey& client, std::string_view tag, ByteView payload,
                       const Signature& sig) const override;

    Bytes coin_share(ByteView name) const override;
    bool verify_coin_share(NodeId from, ByteView name, ByteView share) const override;
    std::optional<bool> combine_coin(ByteView name,
                                     const std::map<NodeId, Bytes>& shares) const override;

    NodeId self() const { return self_; }
    const FastWorld& world() const { return *world_; }

    /// A client's signature in this world (tests and the simulator play clients).
    static Signature sign_client(const FastWorld& world, const PublicKey& client,
                                 std::string_view tag, ByteView payload);
    /// Member `node`'s coin share for `name` (what that node's coin_share returns).
    static Bytes share_of(const FastWorld& world, NodeId node, ByteView name);

  private:
    std::shared_ptr<const FastWorld> world_;
    NodeId self_;
};

}  // namespace tob::consensus
