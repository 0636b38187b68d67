#include "tests/sim/real_crypto.h"

#include <sodium.h>

#include <cstdlib>

#include "crypto/hash.h"

namespace tob::sim {

std::shared_ptr<const RealWorld> RealWorld::make(std::uint32_t n, std::uint32_t t,
                                                 std::uint64_t seed) {
    crypto::init();
    auto world = std::make_shared<RealWorld>();
    for (std::uint32_t i = 0; i < n; ++i) {
        crypto::Seed s = crypto::Hasher().field("tobsim-member").u64(seed).u64(i).finish();
        world->members.push_back(crypto::SigningKey::from_seed(s));
        world->member_pks.push_back(world->members.back().public_key());
    }
    for (std::uint64_t attempt = 0;; ++attempt) {
        std::vector<crypto::Scalar> coeffs(t + 1);
        for (std::uint32_t k = 0; k <= t; ++k) {
            crypto::Digest512 wide =
                crypto::Hasher(64).field("tobsim-coin").u64(seed).u64(attempt).u64(k).finish512();
            crypto_core_ristretto255_scalar_reduce(coeffs[k].data(), wide.data());
        }
        auto dealt = crypto::deal_coin_from_polynomial(n, coeffs);
        if (dealt) {
            world->coin = std::move(*dealt);
            break;
        }
        if (attempt > 16) std::abort();
    }
    return world;
}

crypto::SigningKey RealWorld::client_key(std::uint64_t seed, std::uint32_t index) {
    crypto::Seed s = crypto::Hasher().field("tobsim-client").u64(seed).u64(index).finish();
    return crypto::SigningKey::from_seed(s);
}

std::unique_ptr<consensus::CryptoSuite> RealWorld::suite(consensus::NodeId self) const {
    return std::make_unique<consensus::RealCryptoSuite>(member_pks, coin.public_key,
                                                        members.at(self), coin.shares.at(self));
}

}  // namespace tob::sim
