#include "crypto/coin.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace tob::crypto {

namespace {

static_assert(crypto_core_ristretto255_BYTES == 32);
static_assert(crypto_core_ristretto255_SCALARBYTES == 32);
static_assert(crypto_core_ristretto255_HASHBYTES == 64);
static_assert(crypto_core_ristretto255_NONREDUCEDSCALARBYTES == 64);

constexpr std::string_view kDleqTag = "tobd-coin-dleq-v1";
constexpr std::string_view kBitTag = "tobd-coin-bit-v1";

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tob::crypto: %s\n", what);
    std::abort();
}

// The identity element's canonical encoding is 32 zero bytes.
constexpr Point kIdentity{};

bool is_identity(const Point& p) { return sodium_is_zero(p.data(), p.size()) == 1; }

bool is_zero(const Scalar& s) { return sodium_is_zero(s.data(), s.size()) == 1; }

bool valid_point(const Point& p) { return crypto_core_ristretto255_is_valid_point(p.data()) == 1; }

Scalar scalar_from_u64(std::uint64_t value) {
    Scalar s{};
    for (std::size_t i = 0; i < 8; ++i) {
        s[i] = static_cast<std::uint8_t>(value & 0xff);
        value >>= 8;
    }
    return s;  // < 2^64 < ℓ, so canonical
}

Scalar reduce(const Digest512& wide) {
    Scalar s{};
    crypto_core_ristretto255_scalar_reduce(s.data(), wide.data());
    return s;
}

Scalar scalar_add(const Scalar& a, const Scalar& b) {
    Scalar r{};
    crypto_core_ristretto255_scalar_add(r.data(), a.data(), b.data());
    return r;
}

Scalar scalar_sub(const Scalar& a, const Scalar& b) {
    Scalar r{};
    crypto_core_ristretto255_scalar_sub(r.data(), a.data(), b.data());
    return r;
}

Scalar scalar_mul(const Scalar& a, const Scalar& b) {
    Scalar r{};
    crypto_core_ristretto255_scalar_mul(r.data(), a.data(), b.data());
    return r;
}

Scalar scalar_negate(const Scalar& a) {
    Scalar r{};
    crypto_core_ristretto255_scalar_negate(r.data(), a.data());
    return r;
}

// g^s. libsodium returns -1 when the result is the identity (s ≡ 0 mod ℓ); we
// return the identity's encoding instead of failing.
Point mul_base(const Scalar& s) {
    Point r{};
    if (crypto_scalarmult_ristretto255_base(r.data(), s.data()) != 0) return kIdentity;
    return r;
}

// p^s for a point p (identity allowed). nullopt iff p is not a valid encoding;
// an identity result (s ≡ 0 or p the identity) is returned as the identity.
std::optional<Point> mul(const Point& p, const Scalar& s) {
    if (!valid_point(p)) return std::nullopt;
    Point r{};
    if (crypto_scalarmult_ristretto255(r.data(), s.data(), p.data()) != 0) {
        // p decoded above, so -1 can only mean "the result is the identity".
        return kIdentity;
    }
    return r;
}

// a·b in the group (written additively by libsodium). Both must be valid
// encodings (the identity is one); nullopt otherwise.
std::optional<Point> add(const Point& a, const Point& b) {
    Point r{};
    if (crypto_core_ristretto255_add(r.data(), a.data(), b.data()) != 0) return std::nullopt;
    return r;
}

const Point& generator() {
    static const Point g = mul_base(scalar_from_u64(1));
    return g;
}

Scalar challenge(const Point& h, const Point& y, const Point& sigma, const Point& gk,
                 const Point& hk) {
    Hasher hasher(64);
    hasher.field(kDleqTag).raw(generator()).raw(h).raw(y).raw(sigma).raw(gk).raw(hk);
    return reduce(hasher.finish512());
}

// f(point) by Horner's rule over the scalar field.
Scalar evaluate(std::span<const Scalar> coefficients, std::uint64_t point) {
    const Scalar p = scalar_from_u64(point);
    Scalar acc = coefficients.back();
    for (std::size_t k = coefficients.size() - 1; k-- > 0;) {
        Scalar product = scalar_mul(acc, p);
        acc = scalar_add(product, coefficients[k]);
        sodium_memzero(product.data(), product.size());
    }
    return acc;
}

}  // namespace

CoinSecretShare::~CoinSecretShare() { sodium_memzero(x.data(), x.size()); }

bool is_canonical_scalar(const Scalar& s) {
    // libsodium 1.0.18 has no public is_canonical for scalars: reduce a
    // zero-extended copy and compare. s < ℓ iff reduction leaves it unchanged.
    std::array<std::uint8_t, 64> wide{};
    std::copy(s.begin(), s.end(), wide.begin());
    Scalar reduced{};
    crypto_core_ristretto255_scalar_reduce(reduced.data(), wide.data());
    const bool canonical = sodium_memcmp(reduced.data(), s.data(), s.size()) == 0;
    sodium_memzero(wide.data(), wide.size());
    sodium_memzero(reduced.data(), reduced.size());
    return canonical;
}

Point coin_verification_key(const CoinSecretShare& secret) { return mul_base(secret.x); }

std::optional<DealtCoin> deal_coin_from_polynomial(std::uint32_t n,
                                                   std::span<const Scalar> coefficients) {
    if (coefficients.empty() || coefficients.size() > n) {
        die("deal_coin: requires 1 <= t+1 <= n");
    }
    if (is_zero(coefficients[0])) return std::nullopt;  // secret 0 ⇒ h^x is the identity

    DealtCoin dealt;
    dealt.public_key.n = n;
    dealt.public_key.t = static_cast<std::uint32_t>(coefficients.size() - 1);
    dealt.public_key.verification_keys.reserve(n);
    // CoinSecretShare has no move constructor (it wipes on destruction), so build
    // the shares in place: no stray copies of x_i are left behind.
    dealt.shares.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        CoinSecretShare& share = dealt.shares.emplace_back();
        share.index = i;
        share.x = evaluate(coefficients, static_cast<std::uint64_t>(i) + 1);  // point i+1, never 0
        if (is_zero(share.x)) return std::nullopt;  // `dealt` wipes the shares made so far
        Point y{};
        if (crypto_scalarmult_ristretto255_base(y.data(), share.x.data()) != 0) {
            die("deal_coin: g^{x_i} is the identity for a non-zero x_i");
        }
        dealt.public_key.verification_keys.push_back(y);
    }
    return dealt;
}

DealtCoin deal_coin(std::uint32_t n, std::uint32_t t) {
    init();
    if (static_cast<std::uint64_t>(t) + 1 > n) die("deal_coin: requires 1 <= t+1 <= n");
    std::vector<Scalar> coefficients(static_cast<std::size_t>(t) + 1);
    for (;;) {
        for (Scalar& a : coefficients) crypto_core_ristretto255_scalar_random(a.data());
        std::optional<DealtCoin> dealt = deal_coin_from_polynomial(n, coefficients);
        for (Scalar& a : coefficients) sodium_memzero(a.data(), a.size());
        // A zero secret or share has probability about n/ℓ ≈ n·2^-252: re-deal.
        if (dealt) return std::move(*dealt);
    }
}

Point coin_base(ByteView name) {
    const Digest512 digest = blake2b512(name);
    Point h{};
    if (crypto_core_ristretto255_from_hash(h.data(), digest.data()) != 0) {
        die("crypto_core_ristretto255_from_hash failed");
    }
    return h;
}

CoinShare make_coin_share(const CoinSecretShare& secret, ByteView name) {
    const Point h = coin_base(name);
    CoinShare share;
    // mul cannot fail: h is a valid encoding. σ is the identity only for x_i = 0,
    // which the dealer never produces; such a share simply fails verification.
    share.sigma = *mul(h, secret.x);
    const Point y = mul_base(secret.x);

    // k = reduce(BLAKE2b-512(x_i ‖ h)): deterministic, keyed by the secret.
    std::array<std::uint8_t, 64> nonce_input{};
    std::copy(secret.x.begin(), secret.x.end(), nonce_input.begin());
    std::copy(h.begin(), h.end(), nonce_input.begin() + 32);
    Digest512 nonce_digest = blake2b512(nonce_input);
    Scalar k = reduce(nonce_digest);
    sodium_memzero(nonce_input.data(), nonce_input.size());
    sodium_memzero(nonce_digest.data(), nonce_digest.size());

    const Point gk = mul_base(k);
    const Point hk = *mul(h, k);
    share.c = challenge(h, y, share.sigma, gk, hk);
    Scalar cx = scalar_mul(share.c, secret.x);
    share.z = scalar_add(k, cx);
    sodium_memzero(k.data(), k.size());
    sodium_memzero(cx.data(), cx.size());
    return share;
}

bool verify_coin_share(const CoinPublicKey& pk, std::uint32_t index, ByteView name,
                       const CoinShare& share) {
    if (pk.verification_keys.size() != pk.n) return false;  // malformed public key
    if (index >= pk.n) return false;                        // not a member
    const Point& y = pk.verification_keys[index];
    if (!valid_point(y) || is_identity(y)) return false;
    if (!valid_point(share.sigma) || is_identity(share.sigma)) return false;
    // Canonical scalars only, so that a valid share has exactly one encoding.
    if (!is_canonical_scalar(share.c) || !is_canonical_scalar(share.z)) return false;

    const Point h = coin_base(name);
    const Scalar minus_c = scalar_negate(share.c);

    // g^k = g^z · y^{-c}
    const std::optional<Point> y_minus_c = mul(y, minus_c);
    if (!y_minus_c) return false;
    const std::optional<Point> gk = add(mul_base(share.z), *y_minus_c);
    // h^k = h^z · σ^{-c}
    const std::optional<Point> hz = mul(h, share.z);
    const std::optional<Point> sigma_minus_c = mul(share.sigma, minus_c);
    if (!gk || !hz || !sigma_minus_c) return false;
    const std::optional<Point> hk = add(*hz, *sigma_minus_c);
    if (!hk) return false;

    const Scalar expected = challenge(h, y, share.sigma, *gk, *hk);
    return sodium_memcmp(expected.data(), share.c.data(), expected.size()) == 0;
}

std::optional<Point> combine_coin_shares(const CoinPublicKey& pk,
                                         const std::map<std::uint32_t, CoinShare>& shares) {
    const std::uint64_t needed = static_cast<std::uint64_t>(pk.t) + 1;
    if (needed > pk.n) return std::nullopt;  // malformed public key
    if (shares.size() < needed) return std::nullopt;
    for (const auto& [index, share] : shares) {
        if (index >= pk.n) return std::nullopt;
    }

    // The first t+1 entries (ascending index); evaluation points are index+1.
    std::vector<Scalar> points;
    std::vector<const Point*> sigmas;
    points.reserve(needed);
    sigmas.reserve(needed);
    for (const auto& [index, share] : shares) {
        if (points.size() == needed) break;
        points.push_back(scalar_from_u64(static_cast<std::uint64_t>(index) + 1));
        sigmas.push_back(&share.sigma);
    }

    // h^x = Π σ_j^{λ_j}, λ_j = Π_{m≠j} p_m / (p_m − p_j)  (Lagrange at 0).
    Point acc = kIdentity;
    for (std::size_t j = 0; j < points.size(); ++j) {
        Scalar numerator = scalar_from_u64(1);
        Scalar denominator = scalar_from_u64(1);
        for (std::size_t m = 0; m < points.size(); ++m) {
            if (m == j) continue;
            numerator = scalar_mul(numerator, points[m]);
            denominator = scalar_mul(denominator, scalar_sub(points[m], points[j]));
        }
        Scalar inverse{};
        // Distinct map keys give distinct points, so the denominator is non-zero.
        if (crypto_core_ristretto255_scalar_invert(inverse.data(), denominator.data()) != 0) {
            die("combine_coin_shares: zero Lagrange denominator");
        }
        const Scalar lambda = scalar_mul(numerator, inverse);
        const std::optional<Point> term = mul(*sigmas[j], lambda);
        if (!term) return std::nullopt;  // σ_j is not a valid encoding
        const std::optional<Point> sum = add(acc, *term);
        if (!sum) return std::nullopt;
        acc = *sum;
    }
    return acc;
}

bool coin_bit(const Point& hx) {
    Hasher hasher(32);
    hasher.field(kBitTag).raw(hx);
    return (hasher.finish()[0] & 1) != 0;
}

std::array<std::uint8_t, kCoinShareBytes> encode_coin_share(const CoinShare& share) {
    std::array<std::uint8_t, kCoinShareBytes> out{};
    std::copy(share.sigma.begin(), share.sigma.end(), out.begin());
    std::copy(share.c.begin(), share.c.end(), out.begin() + 32);
    std::copy(share.z.begin(), share.z.end(), out.begin() + 64);
    return out;
}

bool decode_coin_share(ByteView bytes, CoinShare& out) {
    if (bytes.size() != kCoinShareBytes) return false;
    std::copy(bytes.begin(), bytes.begin() + 32, out.sigma.begin());
    std::copy(bytes.begin() + 32, bytes.begin() + 64, out.c.begin());
    std::copy(bytes.begin() + 64, bytes.end(), out.z.begin());
    return true;
}

}  // namespace tob::crypto
