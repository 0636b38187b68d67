#include "crypto/sign.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

namespace tob::crypto {

namespace {

static_assert(crypto_sign_PUBLICKEYBYTES == 32);
static_assert(crypto_sign_SECRETKEYBYTES == 64);
static_assert(crypto_sign_SEEDBYTES == 32);
static_assert(crypto_sign_BYTES == 64);

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tob::crypto: %s\n", what);
    std::abort();
}

// tag ‖ 0x00 ‖ payload. The tag must not contain 0x00, otherwise two different
// (tag, payload) pairs could produce the same bytes.
Bytes signed_bytes(std::string_view tag, ByteView payload) {
    Bytes out;
    out.reserve(tag.size() + 1 + payload.size());
    out.insert(out.end(), tag.begin(), tag.end());
    out.push_back(0x00);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

bool tag_ok(std::string_view tag) { return tag.find('\0') == std::string_view::npos; }

}  // namespace

SigningKey SigningKey::generate() {
    init();
    SigningKey key;
    if (crypto_sign_keypair(key.pk_.data(), key.sk_.data()) != 0) die("crypto_sign_keypair failed");
    return key;
}

SigningKey SigningKey::from_seed(const Seed& seed) {
    init();
    SigningKey key;
    if (crypto_sign_seed_keypair(key.pk_.data(), key.sk_.data(), seed.data()) != 0) {
        die("crypto_sign_seed_keypair failed");
    }
    return key;
}

SigningKey::SigningKey(const SigningKey& other) : sk_(other.sk_), pk_(other.pk_) {}

SigningKey& SigningKey::operator=(const SigningKey& other) {
    if (this != &other) {
        sk_ = other.sk_;
        pk_ = other.pk_;
    }
    return *this;
}

SigningKey::~SigningKey() { sodium_memzero(sk_.data(), sk_.size()); }

Seed SigningKey::seed() const {
    Seed out{};
    if (crypto_sign_ed25519_sk_to_seed(out.data(), sk_.data()) != 0) die("sk_to_seed failed");
    return out;
}

Signature SigningKey::sign(std::string_view tag, ByteView payload) const {
    if (!tag_ok(tag)) die("SigningKey::sign: domain tag contains a 0x00 byte");
    const Bytes message = signed_bytes(tag, payload);
    Signature sig{};
    if (crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), sk_.data()) !=
        0) {
        die("crypto_sign_detached failed");
    }
    return sig;
}

bool verify(const PublicKey& pk, std::string_view tag, ByteView payload, const Signature& sig) {
    if (!tag_ok(tag)) return false;  // no honest signer ever signs such a tag
    const Bytes message = signed_bytes(tag, payload);
    return crypto_sign_verify_detached(sig.data(), message.data(), message.size(), pk.data()) == 0;
}

}  // namespace tob::crypto
