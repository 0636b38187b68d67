#include "crypto/curve.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

#include "crypto/hash.h"

namespace tob::crypto {

namespace {

static_assert(crypto_scalarmult_curve25519_BYTES == 32);
static_assert(crypto_scalarmult_curve25519_SCALARBYTES == 32);

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tob::crypto: %s\n", what);
    std::abort();
}

}  // namespace

CurvePublicKey curve_public_of(const CurveSecretKey& secret) {
    init();
    CurvePublicKey pk{};
    if (crypto_scalarmult_curve25519_base(pk.data(), secret.data()) != 0) {
        die("crypto_scalarmult_curve25519_base failed");
    }
    return pk;
}

CurveKeyPair CurveKeyPair::generate() {
    init();
    CurveKeyPair pair;
    randombytes_buf(pair.sk_.data(), pair.sk_.size());
    pair.pk_ = curve_public_of(pair.sk_);
    return pair;
}

CurveKeyPair CurveKeyPair::from_secret(const CurveSecretKey& secret) {
    CurveKeyPair pair;
    pair.sk_ = secret;
    pair.pk_ = curve_public_of(secret);
    return pair;
}

CurveKeyPair CurveKeyPair::from_signing_key(const SigningKey& key) {
    init();
    Seed seed = key.seed();
    std::array<std::uint8_t, 64> ed_sk{};
    PublicKey ed_pk{};
    const bool ok = crypto_sign_seed_keypair(ed_pk.data(), ed_sk.data(), seed.data()) == 0;
    sodium_memzero(seed.data(), seed.size());
    CurveKeyPair pair;
    const bool converted =
        ok && crypto_sign_ed25519_sk_to_curve25519(pair.sk_.data(), ed_sk.data()) == 0;
    sodium_memzero(ed_sk.data(), ed_sk.size());
    if (!converted) die("crypto_sign_ed25519_sk_to_curve25519 failed");
    pair.pk_ = curve_public_of(pair.sk_);
    return pair;
}

CurveKeyPair::CurveKeyPair(const CurveKeyPair& other) : sk_(other.sk_), pk_(other.pk_) {}

CurveKeyPair& CurveKeyPair::operator=(const CurveKeyPair& other) {
    if (this != &other) {
        sk_ = other.sk_;
        pk_ = other.pk_;
    }
    return *this;
}

CurveKeyPair::~CurveKeyPair() { sodium_memzero(sk_.data(), sk_.size()); }

std::optional<CurvePublicKey> curve_public_from_ed25519(const PublicKey& ed25519) {
    init();
    CurvePublicKey out{};
    if (crypto_sign_ed25519_pk_to_curve25519(out.data(), ed25519.data()) != 0) return std::nullopt;
    return out;
}

}  // namespace tob::crypto
