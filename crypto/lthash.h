#pragma once
// LtHash16: a homomorphic multiset hash (Bellare–Micciancio's "LtHash", with the
// parameters Lewi et al. chose for Facebook's update propagation: 1024 lanes of
// 16 bits). The hash of a multiset is the lane-wise sum, modulo 2^16, of the
// expansions of its elements; adding or removing one element is one lane-wise
// addition or subtraction, whatever the size of the set. Finding two different
// multisets with the same sum is a short-vector (SIS) problem in dimension 1024,
// estimated at well over 128 bits of work. An additive hash over one big integer
// (mod 2^256) or XOR would not do: generalized-birthday (Wagner) and linear
// algebra break those in seconds when the attacker picks the elements.
//
// An element (key, value) is expanded as follows: s = BLAKE2b-256("tobd-lthash-v1",
// field(key), field(value)), then 2048 bytes of ChaCha20 keystream under key s and
// an all-zero nonce, read as 1024 little-endian u16 lanes. The 2048-byte state
// itself is what gets stored and summarised (digest()).

#include <array>
#include <cstdint>

#include "crypto/hash.h"

namespace tob::crypto {

class LtHash16 {
  public:
    static constexpr std::size_t kLanes = 1024;
    static constexpr std::size_t kBytes = kLanes * 2;

    /// The hash of the empty multiset (all lanes zero).
    LtHash16() = default;

    /// Adds / removes the element (key, value).
    void add(ByteView key, ByteView value);
    void remove(ByteView key, ByteView value);
    /// Lane-wise sum / difference with another hash (union / difference of multisets).
    void add(const LtHash16& other);
    void remove(const LtHash16& other);

    /// The expansion of one element (the hash of the multiset {(key, value)}).
    static LtHash16 of(ByteView key, ByteView value);

    /// The 2048 bytes of lanes, little endian (what is stored and hashed).
    std::array<std::uint8_t, kBytes> bytes() const;
    /// Loads the state from bytes(); false if `in` is not kBytes long.
    bool load(ByteView in);
    /// BLAKE2b-256("tobd-lthash-digest-v1", bytes()).
    Digest digest() const;
    bool empty() const;

    bool operator==(const LtHash16&) const = default;

  private:
    // Four lanes per word, lane i in bits 16*(i%4) of word i/4 (little endian),
    // so that the sums are SWAR additions without a carry across lanes.
    std::array<std::uint64_t, kLanes / 4> words_{};
};

}  // namespace tob::crypto
