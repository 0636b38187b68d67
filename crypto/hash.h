#pragma once
// BLAKE2b digests (libsodium crypto_generichash). Every digest in tobd is
// BLAKE2b-256 of canonical bytes; the coin uses BLAKE2b-512 where it needs a
// uniformly random 64-byte string (hash-to-group, scalar reduction).

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tob::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using Digest = std::array<std::uint8_t, 32>;
using Digest512 = std::array<std::uint8_t, 64>;

/// Call once before any other crypto function (idempotent, thread safe).
/// Aborts the process if libsodium cannot initialise: nothing is safe without it.
void init();

Digest blake2b256(ByteView data);
Digest512 blake2b512(ByteView data);

/// Incremental BLAKE2b-256 with helpers that length-prefix variable fields, so
/// that concatenations of fields can never collide ("ab"+"c" != "a"+"bc").
class Hasher {
  public:
    explicit Hasher(std::size_t out_bytes = 32);
    Hasher& raw(ByteView data);            // bytes as they are (fixed-size fields)
    Hasher& field(ByteView data);          // u64 length prefix, then bytes
    Hasher& field(std::string_view text);  // same for text
    Hasher& u64(std::uint64_t value);      // 8 bytes big endian
    Digest finish();                       // 32-byte output (out_bytes must be 32)
    Digest512 finish512();                 // 64-byte output (out_bytes must be 64)

  private:
    alignas(64) std::array<std::uint8_t, 384> state_;  // crypto_generichash_state
    std::size_t out_bytes_;
};

std::string to_hex(ByteView data);
/// Parses lowercase or uppercase hex; returns false on odd length or bad digit.
bool from_hex(std::string_view hex, Bytes& out);

inline ByteView view(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace tob::crypto
