#pragma once
// Hand-written msgpack pieces shared by the codec tests (consensus/codec.h and
// cli/client/protocol.h): tests build exact byte strings with them, including
// non-canonical ones, without going through the encoder under test.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tob::test_util {

using RawBytes = std::vector<std::uint8_t>;

/// Concatenation of two byte strings.
inline RawBytes operator+(RawBytes a, const RawBytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

namespace raw {

/// The shortest msgpack unsigned integer for v (the canonical form).
inline RawBytes uint(std::uint64_t v) {
    if (v < 0x80) return {static_cast<std::uint8_t>(v)};
    if (v <= 0xff) return {0xcc, static_cast<std::uint8_t>(v)};
    if (v <= 0xffff) return {0xcd, static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    if (v <= 0xffffffffu) {
        return {0xce, static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    }
    RawBytes out{0xcf};
    for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<std::uint8_t>(v >> shift));
    return out;
}

/// A msgpack bin with the shortest length header.
inline RawBytes bin(std::span<const std::uint8_t> b) {
    RawBytes out;
    if (b.size() <= 0xff) {
        out = {0xc4, static_cast<std::uint8_t>(b.size())};
    } else if (b.size() <= 0xffff) {
        out = {0xc5, static_cast<std::uint8_t>(b.size() >> 8), static_cast<std::uint8_t>(b.size())};
    } else {
        out = {0xc6, static_cast<std::uint8_t>(b.size() >> 24),
               static_cast<std::uint8_t>(b.size() >> 16), static_cast<std::uint8_t>(b.size() >> 8),
               static_cast<std::uint8_t>(b.size())};
    }
    out.insert(out.end(), b.begin(), b.end());
    return out;
}
inline RawBytes bin(std::size_t size, std::uint8_t fill) { return bin(RawBytes(size, fill)); }

/// A str8 header (not the shortest for short strings: a non-canonical form).
inline RawBytes str8(std::span<const std::uint8_t> b) {
    RawBytes out{0xd9, static_cast<std::uint8_t>(b.size())};
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

/// A msgpack array of already encoded items (fixarray or array16).
inline RawBytes array(const std::vector<RawBytes>& items) {
    RawBytes out;
    if (items.size() < 16) {
        out = {static_cast<std::uint8_t>(0x90 | items.size())};
    } else {
        out = {0xdc, static_cast<std::uint8_t>(items.size() >> 8),
               static_cast<std::uint8_t>(items.size())};
    }
    for (const RawBytes& i : items) out = out + i;
    return out;
}

inline const RawBytes nil{0xc0};

}  // namespace raw
}  // namespace tob::test_util
