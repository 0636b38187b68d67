#pragma once
// Keys for `tobsim --crypto real`: Ed25519 member and client keys and a dealt
// threshold coin, all derived from the seed so that a seed replays exactly. The
// suite itself is the production consensus::RealCryptoSuite.

#include <memory>
#include <vector>

#include "consensus/real_crypto.h"
#include "crypto/coin.h"
#include "crypto/sign.h"

namespace tob::sim {

struct RealWorld {
    std::vector<crypto::SigningKey> members;
    std::vector<consensus::PublicKey> member_pks;
    crypto::DealtCoin coin;

    static std::shared_ptr<const RealWorld> make(std::uint32_t n, std::uint32_t t,
                                                 std::uint64_t seed);
    /// A client key derived from (seed, index).
    static crypto::SigningKey client_key(std::uint64_t seed, std::uint32_t index);
    /// Member `self`'s production suite.
    std::unique_ptr<consensus::CryptoSuite> suite(consensus::NodeId self) const;
};

}  // namespace tob::sim
