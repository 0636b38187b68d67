#include "crypto/hash.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

namespace tob::crypto {

namespace {

static_assert(sizeof(crypto_generichash_state) <= 384,
              "Hasher::state_ is too small for crypto_generichash_state");
static_assert(alignof(crypto_generichash_state) <= 64,
              "Hasher::state_ is under-aligned for crypto_generichash_state");

// A broken invariant in our own code: stop loudly (assertions stay on in release).
[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tob::crypto: %s\n", what);
    std::abort();
}

crypto_generichash_state* as_state(std::array<std::uint8_t, 384>& storage) {
    return reinterpret_cast<crypto_generichash_state*>(storage.data());
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

void init() {
    // A function-local static is initialised exactly once, thread safely.
    static const bool initialised = [] {
        if (sodium_init() < 0) {
            std::fprintf(stderr,
                         "tob::crypto: libsodium failed to initialise (sodium_init); "
                         "refusing to run without working cryptography\n");
            std::abort();
        }
        return true;
    }();
    (void)initialised;
}

Digest blake2b256(ByteView data) {
    Digest out{};
    if (crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0) != 0) {
        die("crypto_generichash (256) failed");
    }
    return out;
}

Digest512 blake2b512(ByteView data) {
    Digest512 out{};
    if (crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0) != 0) {
        die("crypto_generichash (512) failed");
    }
    return out;
}

Hasher::Hasher(std::size_t out_bytes) : state_{}, out_bytes_(out_bytes) {
    if (out_bytes != 32 && out_bytes != 64) die("Hasher: out_bytes must be 32 or 64");
    if (crypto_generichash_init(as_state(state_), nullptr, 0, out_bytes_) != 0) {
        die("crypto_generichash_init failed");
    }
}

Hasher& Hasher::raw(ByteView data) {
    if (crypto_generichash_update(as_state(state_), data.data(), data.size()) != 0) {
        die("crypto_generichash_update failed");
    }
    return *this;
}

Hasher& Hasher::field(ByteView data) {
    u64(static_cast<std::uint64_t>(data.size()));
    return raw(data);
}

Hasher& Hasher::field(std::string_view text) { return field(view(text)); }

Hasher& Hasher::u64(std::uint64_t value) {
    std::array<std::uint8_t, 8> be{};
    for (int i = 7; i >= 0; --i) {
        be[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value & 0xff);
        value >>= 8;
    }
    return raw(be);
}

Digest Hasher::finish() {
    if (out_bytes_ != 32) die("Hasher::finish called on a 64-byte hasher");
    Digest out{};
    // Fails if the state was already finalised: finishing twice is a caller bug.
    if (crypto_generichash_final(as_state(state_), out.data(), out.size()) != 0) {
        die("Hasher::finish: crypto_generichash_final failed (finished twice?)");
    }
    return out;
}

Digest512 Hasher::finish512() {
    if (out_bytes_ != 64) die("Hasher::finish512 called on a 32-byte hasher");
    Digest512 out{};
    if (crypto_generichash_final(as_state(state_), out.data(), out.size()) != 0) {
        die("Hasher::finish512: crypto_generichash_final failed (finished twice?)");
    }
    return out;
}

std::string to_hex(ByteView data) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (std::uint8_t b : data) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0x0f]);
    }
    return out;
}

bool from_hex(std::string_view hex, Bytes& out) {
    if (hex.size() % 2 != 0) return false;
    for (char c : hex) {
        if (hex_value(c) < 0) return false;
    }
    // Validated first, so `out` is only written on success and holds one copy
    // (key files parse secrets through here).
    out.resize(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] =
            static_cast<std::uint8_t>((hex_value(hex[2 * i]) << 4) | hex_value(hex[2 * i + 1]));
    }
    return true;
}

}  // namespace tob::crypto
