#pragma once
// Threshold common coin, Cachin–Kursawe–Shoup style, on ristretto255.
//
// A dealer picks a random polynomial f of degree t over the scalar field; node i
// (0-based) holds x_i = f(i+1) — evaluation points 1..n, never 0, because f(0) = x
// is the secret — and everyone knows y_i = g^{x_i}. For a coin name C,
// h = ristretto255_from_hash(BLAKE2b-512(C)) (never g^{H(C)}, which would make
// h^x computable from public data). Node i's share is σ_i = h^{x_i} with a
// Chaum–Pedersen proof that log_g y_i = log_h σ_i:
//   k = reduce(BLAKE2b-512(x_i ‖ h))       (deterministic, keyed by the secret)
//   c = reduce(BLAKE2b-512(g, h, y_i, σ_i, g^k, h^k))
//   z = k + c·x_i
// Verification recomputes g^k = g^z · y_i^{-c}, h^k = h^z · σ_i^{-c} and the challenge.
// Any t+1 valid shares interpolate (Lagrange at 0, in the exponent) to h^x, and
// the coin is the lowest bit of BLAKE2b-256(h^x)[0]. With at most t shares an
// adversary learns nothing about h^x (threshold t+1).
//
// Exact bytes (all points are 32-byte ristretto255 encodings, scalars 32 bytes
// little endian, reduce = crypto_core_ristretto255_scalar_reduce; "field(s)" is
// Hasher::field, an 8-byte big-endian length then the bytes):
//   h  = from_hash(BLAKE2b-512(name))
//   k  = reduce(BLAKE2b-512(x_i ‖ h))
//   c  = reduce(BLAKE2b-512(field("tobd-coin-dleq-v1") ‖ g ‖ h ‖ y_i ‖ σ_i ‖ g^k ‖ h^k))
//   coin bit = BLAKE2b-256(field("tobd-coin-bit-v1") ‖ h^x)[0] & 1
// The identity element (encoded as 32 zero bytes) is never part of a valid share:
// the dealer re-deals until the secret and every x_i are non-zero, and a share
// whose σ_i is the identity, or whose c or z is not a canonical scalar, is
// rejected. Arithmetic never aborts on the identity (libsodium reports it as -1).

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/hash.h"

namespace tob::crypto {

using Scalar = std::array<std::uint8_t, 32>;  // ristretto255 scalar, little endian
using Point = std::array<std::uint8_t, 32>;   // ristretto255 group element (encoded)

/// Public coin parameters, identical on every node (listed in the cluster file).
struct CoinPublicKey {
    std::uint32_t n = 0;
    std::uint32_t t = 0;                   // threshold is t+1 shares
    std::vector<Point> verification_keys;  // y_i = g^{x_i}, index i = node id
};

/// Node i's secret share x_i = f(i+1). Wiped on destruction.
struct CoinSecretShare {
    std::uint32_t index = 0;  // node id i (0-based); the evaluation point is i+1
    Scalar x{};
    ~CoinSecretShare();
};

struct CoinShare {
    Point sigma{};  // h^{x_i}
    Scalar c{};     // challenge
    Scalar z{};     // response
    bool operator==(const CoinShare&) const = default;
};
inline constexpr std::size_t kCoinShareBytes = 96;  // sigma ‖ c ‖ z

struct DealtCoin {
    CoinPublicKey public_key;
    std::vector<CoinSecretShare> shares;  // shares[i] for node i
};

/// Dealer: random secret and polynomial of degree t; shares at points 1..n.
/// Requires 1 <= t+1 <= n. The secret and coefficients are wiped before return.
DealtCoin deal_coin(std::uint32_t n, std::uint32_t t);

/// Deterministic dealing from given polynomial coefficients (coefficients[0] is
/// the secret f(0), the degree t is coefficients.size() − 1), for tests and key
/// ceremonies; deal_coin uses it with random coefficients. Requires
/// 1 <= coefficients.size() <= n. nullopt if the secret or some share x_i is zero
/// (such a polynomial is unusable). The caller owns and wipes the coefficients.
std::optional<DealtCoin> deal_coin_from_polynomial(std::uint32_t n,
                                                   std::span<const Scalar> coefficients);

/// True iff s < ℓ (the group order), i.e. s is the canonical encoding of a scalar.
bool is_canonical_scalar(const Scalar& s);

/// y_i = g^{x_i} for a secret share (what the cluster file lists for node i).
Point coin_verification_key(const CoinSecretShare& secret);

/// h for a coin name (arbitrary bytes; callers bind chain id, epoch, instance, round).
Point coin_base(ByteView name);

/// σ_i with its DLEQ proof. Deterministic for a given (share, name).
CoinShare make_coin_share(const CoinSecretShare& secret, ByteView name);

/// Checks the DLEQ proof of node `index`'s share for `name`. False for a
/// non-member index, a malformed point, or a proof that does not verify.
bool verify_coin_share(const CoinPublicKey& pk, std::uint32_t index, ByteView name,
                       const CoinShare& share);

/// Combines shares (assumed verified) from distinct nodes: uses the first t+1
/// entries of the map (ordered by index). nullopt if fewer than t+1 or an index
/// is out of range. Returns h^x.
std::optional<Point> combine_coin_shares(const CoinPublicKey& pk,
                                         const std::map<std::uint32_t, CoinShare>& shares);

/// The coin bit derived from h^x.
bool coin_bit(const Point& hx);

/// Serialisation of a share (96 bytes) — false if the length is wrong.
std::array<std::uint8_t, kCoinShareBytes> encode_coin_share(const CoinShare& share);
bool decode_coin_share(ByteView bytes, CoinShare& out);

}  // namespace tob::crypto
