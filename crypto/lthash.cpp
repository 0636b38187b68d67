// LtHash16: see crypto/lthash.h.

#include "crypto/lthash.h"

#include <sodium.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace tob::crypto {

namespace {

constexpr std::uint64_t kHigh = 0x8000800080008000ull;  // the top bit of every lane
constexpr std::uint64_t kLow = ~kHigh;

// Four independent 16-bit additions in one 64-bit word: add the low 15 bits of
// each lane (no carry can leave a lane), then put the top bits back with XOR.
inline std::uint64_t lanes_add(std::uint64_t a, std::uint64_t b) {
    return ((a & kLow) + (b & kLow)) ^ ((a ^ b) & kHigh);
}
// a - b lane-wise: a + (~b + 1) per lane, i.e. a + two's complement of each lane.
inline std::uint64_t lanes_neg(std::uint64_t b) { return lanes_add(~b, 0x0001000100010001ull); }

std::uint64_t load_le64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace

LtHash16 LtHash16::of(ByteView key, ByteView value) {
    init();
    const Digest seed =
        Hasher().field(std::string_view("tobd-lthash-v1")).field(key).field(value).finish();
    const std::array<std::uint8_t, crypto_stream_chacha20_NONCEBYTES> nonce{};
    LtHash16 h;
    // The lanes are the ChaCha20 stream read as little-endian 64-bit words. On a
    // little-endian host that is the stream itself, written in place: this runs
    // for every key an epoch writes, and the byte-wise copy of 2 KiB through a
    // zeroed buffer cost more than the stream (docs/performance.md).
    auto* out = reinterpret_cast<unsigned char*>(h.words_.data());
    if (crypto_stream_chacha20(out, kBytes, nonce.data(), seed.data()) != 0) {
        std::fputs("tob::crypto: crypto_stream_chacha20 failed\n", stderr);
        std::abort();
    }
    if constexpr (std::endian::native != std::endian::little) {
        for (auto& w : h.words_) w = load_le64(reinterpret_cast<const std::uint8_t*>(&w));
    }
    return h;
}

void LtHash16::add(const LtHash16& other) {
    for (std::size_t w = 0; w < words_.size(); ++w)
        words_[w] = lanes_add(words_[w], other.words_[w]);
}

void LtHash16::remove(const LtHash16& other) {
    for (std::size_t w = 0; w < words_.size(); ++w) {
        words_[w] = lanes_add(words_[w], lanes_neg(other.words_[w]));
    }
}

void LtHash16::add(ByteView key, ByteView value) { add(of(key, value)); }
void LtHash16::remove(ByteView key, ByteView value) { remove(of(key, value)); }

std::array<std::uint8_t, LtHash16::kBytes> LtHash16::bytes() const {
    std::array<std::uint8_t, kBytes> out{};
    for (std::size_t w = 0; w < words_.size(); ++w) {
        for (std::size_t b = 0; b < 8; ++b)
            out[w * 8 + b] = static_cast<std::uint8_t>(words_[w] >> (8 * b));
    }
    return out;
}

bool LtHash16::load(ByteView in) {
    if (in.size() != kBytes) return false;
    for (std::size_t w = 0; w < words_.size(); ++w) words_[w] = load_le64(&in[w * 8]);
    return true;
}

Digest LtHash16::digest() const {
    const auto b = bytes();
    return Hasher().field(std::string_view("tobd-lthash-digest-v1")).raw(b).finish();
}

bool LtHash16::empty() const {
    for (auto w : words_)
        if (w != 0) return false;
    return true;
}

}  // namespace tob::crypto
