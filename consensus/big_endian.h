#pragma once
// Fixed-width big-endian integers in byte strings: the stored layouts of the state
// (keys, outputs, manifests, snapshot chunks) put numbers this way so that byte
// order is numeric order. The caller checks that `in` holds `at + width` bytes.

#include <cstddef>
#include <cstdint>

#include "consensus/types.h"

namespace tob::consensus::be {

inline void put_u64(Bytes& out, std::uint64_t v) {
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

inline void put_u32(Bytes& out, std::uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

/// The `width`-byte big-endian number at in[at..at+width) (width ≤ 8).
inline std::uint64_t get(ByteView in, std::size_t at, std::size_t width) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < width; ++i) v = (v << 8) | in[at + i];
    return v;
}

inline std::uint64_t get_u64(ByteView in, std::size_t at) { return get(in, at, 8); }

}  // namespace tob::consensus::be
