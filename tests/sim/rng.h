#pragma once
// The simulator's only source of randomness: xoshiro256** seeded through
// SplitMix64. Every parameter and every scheduling choice of a seed comes from
// instances of this generator, so a seed replays exactly.

#include <cstdint>
#include <string_view>

namespace tob::sim {

class Rng {
  public:
    explicit Rng(std::uint64_t seed) {
        std::uint64_t x = seed;
        for (auto& s : s_) s = splitmix(x);
    }
    /// An independent stream for one purpose (e.g. "network", "node 3").
    Rng fork(std::string_view purpose) {
        std::uint64_t h = next();
        for (char c : purpose) h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001b3ull;
        return Rng(h);
    }
    std::uint64_t next() {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    /// Uniform in [0, bound) (bound > 0; tiny modulo bias is irrelevant here).
    std::uint64_t below(std::uint64_t bound) { return bound == 0 ? 0 : next() % bound; }
    /// Uniform in [lo, hi].
    std::uint64_t range(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    bool chance(double p) { return p > 0 && unit() < p; }

  private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix(std::uint64_t& x) {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    std::uint64_t s_[4];
};

}  // namespace tob::sim
