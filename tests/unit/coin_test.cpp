// The threshold coin: agreement of every (t+1)-subset, soundness of the DLEQ
// check (each tampering is caught), threshold secrecy (t shares are not enough,
// node 0's share is f(1), not f(0)), determinism and balance.

#include "crypto/coin.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

namespace tob::crypto {
namespace {

class CoinTest : public ::testing::Test {
  protected:
    void SetUp() override { init(); }
};

Bytes name_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

// ℓ = 2^252 + 27742317777372353535851937790883648493, little endian.
constexpr Scalar kOrder{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                        0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

// a + b as 256-bit integers (no reduction), for building non-canonical scalars.
Scalar add_integers(const Scalar& a, const Scalar& b) {
    Scalar r{};
    unsigned carry = 0;
    for (std::size_t i = 0; i < 32; ++i) {
        const unsigned sum = unsigned{a[i]} + unsigned{b[i]} + carry;
        r[i] = static_cast<std::uint8_t>(sum & 0xff);
        carry = sum >> 8;
    }
    return r;
}

Scalar scalar_of(std::uint64_t v) {
    Scalar s{};
    for (std::size_t i = 0; i < 8; ++i) s[i] = static_cast<std::uint8_t>(v >> (8 * i));
    return s;
}

Scalar random_scalar() {
    Scalar s{};
    crypto_core_ristretto255_scalar_random(s.data());
    return s;
}

Point power(const Point& p, const Scalar& s) {
    Point r{};
    EXPECT_EQ(crypto_scalarmult_ristretto255(r.data(), s.data(), p.data()), 0);
    return r;
}

Point power_of_g(const Scalar& s) {
    Point r{};
    EXPECT_EQ(crypto_scalarmult_ristretto255_base(r.data(), s.data()), 0);
    return r;
}

Point random_point() {
    Point p{};
    crypto_core_ristretto255_random(p.data());
    return p;
}

// Every k-subset of {0..n-1}, in lexicographic order.
void for_each_subset(std::uint32_t n, std::uint32_t k,
                     const std::function<void(const std::vector<std::uint32_t>&)>& visit) {
    std::vector<std::uint32_t> chosen;
    std::function<void(std::uint32_t)> rec = [&](std::uint32_t next) {
        if (chosen.size() == k) {
            visit(chosen);
            return;
        }
        for (std::uint32_t i = next; i < n; ++i) {
            chosen.push_back(i);
            rec(i + 1);
            chosen.pop_back();
        }
    };
    rec(0);
}

std::vector<CoinShare> all_shares(const DealtCoin& dealt, ByteView name) {
    std::vector<CoinShare> shares;
    for (const CoinSecretShare& secret : dealt.shares)
        shares.push_back(make_coin_share(secret, name));
    return shares;
}

std::map<std::uint32_t, CoinShare> pick(const std::vector<CoinShare>& shares,
                                        const std::vector<std::uint32_t>& indices) {
    std::map<std::uint32_t, CoinShare> out;
    for (std::uint32_t i : indices) out[i] = shares[i];
    return out;
}

// ---- agreement ----------------------------------------------------------------

void check_every_subset_agrees(std::uint32_t n, std::uint32_t t) {
    const DealtCoin dealt = deal_coin(n, t);
    ASSERT_EQ(dealt.public_key.n, n);
    ASSERT_EQ(dealt.public_key.t, t);
    ASSERT_EQ(dealt.public_key.verification_keys.size(), n);
    ASSERT_EQ(dealt.shares.size(), n);
    for (int round = 0; round < 3; ++round) {
        const Bytes name = name_of("tobd-coin-v1/agree/" + std::to_string(round));
        const std::vector<CoinShare> shares = all_shares(dealt, name);
        for (std::uint32_t i = 0; i < n; ++i) {
            EXPECT_TRUE(verify_coin_share(dealt.public_key, i, name, shares[i])) << "node " << i;
        }
        std::optional<Point> reference;
        std::size_t subsets = 0;
        // Exactly t+1 shares, and larger sets too (combine uses the first t+1).
        for (std::uint32_t k = t + 1; k <= n; ++k) {
            for_each_subset(n, k, [&](const std::vector<std::uint32_t>& subset) {
                const std::optional<Point> hx =
                    combine_coin_shares(dealt.public_key, pick(shares, subset));
                ASSERT_TRUE(hx.has_value());
                if (!reference) reference = hx;
                EXPECT_EQ(*hx, *reference);
                ++subsets;
            });
        }
        EXPECT_GT(subsets, 0u);
    }
}

TEST_F(CoinTest, every_t_plus_1_subset_yields_the_same_coin_n4_t1) {
    check_every_subset_agrees(4, 1);
}

TEST_F(CoinTest, every_t_plus_1_subset_yields_the_same_coin_n7_t2) {
    check_every_subset_agrees(7, 2);
}

TEST_F(CoinTest, combine_interpolates_to_h_to_the_secret) {
    // Known polynomial f(z) = a0 + a1 z + a2 z^2: the combined value must be
    // h^{f(0)} = h^{a0}, computed here independently with libsodium.
    const std::vector<Scalar> coefficients{random_scalar(), random_scalar(), random_scalar()};
    const std::optional<DealtCoin> dealt = deal_coin_from_polynomial(7, coefficients);
    ASSERT_TRUE(dealt.has_value());
    const Bytes name = name_of("known secret");
    const Point h = coin_base(name);
    const std::vector<CoinShare> shares = all_shares(*dealt, name);
    const std::optional<Point> hx = combine_coin_shares(dealt->public_key, pick(shares, {1, 3, 6}));
    ASSERT_TRUE(hx.has_value());
    EXPECT_EQ(*hx, power(h, coefficients[0]));
}

// ---- node i's share is f(i+1), never f(0) --------------------------------------

TEST_F(CoinTest, node_0_holds_f_of_1_not_the_secret) {
    const Scalar a0 = random_scalar();
    const Scalar a1 = random_scalar();
    const std::vector<Scalar> coefficients{a0, a1};
    const std::optional<DealtCoin> dealt = deal_coin_from_polynomial(4, coefficients);
    ASSERT_TRUE(dealt.has_value());
    Scalar f1{};
    crypto_core_ristretto255_scalar_add(f1.data(), a0.data(), a1.data());  // f(1) = a0 + a1
    EXPECT_EQ(dealt->shares[0].index, 0u);
    EXPECT_EQ(dealt->shares[0].x, f1);
    EXPECT_NE(dealt->shares[0].x, a0);
    for (const CoinSecretShare& share : dealt->shares) {
        EXPECT_NE(share.x, a0) << "node " << share.index << " holds the secret";
        EXPECT_EQ(dealt->public_key.verification_keys[share.index], power_of_g(share.x));
        EXPECT_EQ(coin_verification_key(share), power_of_g(share.x));
    }
    const Bytes name = name_of("node zero");
    const Point h = coin_base(name);
    const CoinShare share0 = make_coin_share(dealt->shares[0], name);
    EXPECT_EQ(share0.sigma, power(h, f1));
    EXPECT_NE(share0.sigma, power(h, a0));
}

TEST_F(CoinTest, no_single_share_equals_the_coin_value) {
    for (const auto& [n, t] : {std::pair<std::uint32_t, std::uint32_t>{4, 1}, {7, 2}}) {
        const DealtCoin dealt = deal_coin(n, t);
        const Bytes name = name_of("single share");
        const std::vector<CoinShare> shares = all_shares(dealt, name);
        std::vector<std::uint32_t> first(t + 1);
        for (std::uint32_t i = 0; i <= t; ++i) first[i] = i;
        const std::optional<Point> hx = combine_coin_shares(dealt.public_key, pick(shares, first));
        ASSERT_TRUE(hx.has_value());
        for (std::uint32_t i = 0; i < n; ++i) {
            EXPECT_NE(shares[i].sigma, *hx) << "share of node " << i << " is h^x";
        }
    }
}

TEST_F(CoinTest, t_shares_cannot_produce_the_coin) {
    for (const auto& [n, t] : {std::pair<std::uint32_t, std::uint32_t>{4, 1}, {7, 2}}) {
        const DealtCoin dealt = deal_coin(n, t);
        const Bytes name = name_of("t shares");
        const std::vector<CoinShare> shares = all_shares(dealt, name);
        std::vector<std::uint32_t> all(n);
        for (std::uint32_t i = 0; i < n; ++i) all[i] = i;
        const std::optional<Point> hx = combine_coin_shares(dealt.public_key, pick(shares, all));
        ASSERT_TRUE(hx.has_value());

        for_each_subset(n, t, [&](const std::vector<std::uint32_t>& subset) {
            // t shares: refused.
            EXPECT_FALSE(combine_coin_shares(dealt.public_key, pick(shares, subset)).has_value());
            // t shares plus a made-up share for a missing node: a different value,
            // and the made-up share does not verify.
            std::uint32_t missing = 0;
            while (std::find(subset.begin(), subset.end(), missing) != subset.end()) ++missing;
            std::map<std::uint32_t, CoinShare> forged = pick(shares, subset);
            CoinShare fake = shares[missing];
            fake.sigma = random_point();
            forged[missing] = fake;
            EXPECT_FALSE(verify_coin_share(dealt.public_key, missing, name, fake));
            const std::optional<Point> wrong = combine_coin_shares(dealt.public_key, forged);
            ASSERT_TRUE(wrong.has_value());  // combine trusts its caller to verify
            EXPECT_NE(*wrong, *hx);
        });
    }
}

// ---- the proof check can fail --------------------------------------------------

TEST_F(CoinTest, tampered_proofs_are_rejected) {
    const DealtCoin dealt = deal_coin(4, 1);
    const Bytes name = name_of("tamper");
    const CoinShare good = make_coin_share(dealt.shares[2], name);
    ASSERT_TRUE(verify_coin_share(dealt.public_key, 2, name, good));

    for (std::size_t byte = 0; byte < 32; ++byte) {
        for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
            CoinShare bad_c = good;
            bad_c.c[byte] ^= mask;
            EXPECT_FALSE(verify_coin_share(dealt.public_key, 2, name, bad_c)) << "c byte " << byte;
            CoinShare bad_z = good;
            bad_z.z[byte] ^= mask;
            EXPECT_FALSE(verify_coin_share(dealt.public_key, 2, name, bad_z)) << "z byte " << byte;
            CoinShare bad_sigma = good;
            bad_sigma.sigma[byte] ^= mask;
            EXPECT_FALSE(verify_coin_share(dealt.public_key, 2, name, bad_sigma))
                << "sigma byte " << byte;
        }
    }

    // σ replaced by a different valid point (σ·g), proof unchanged.
    CoinShare shifted = good;
    ASSERT_EQ(crypto_core_ristretto255_add(shifted.sigma.data(), good.sigma.data(),
                                           power_of_g(scalar_of(1)).data()),
              0);
    ASSERT_EQ(crypto_core_ristretto255_is_valid_point(shifted.sigma.data()), 1);
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 2, name, shifted));

    // Another node's σ with this node's proof, and vice versa.
    const CoinShare other = make_coin_share(dealt.shares[1], name);
    CoinShare mixed = good;
    mixed.sigma = other.sigma;
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 2, name, mixed));
    mixed = other;
    mixed.c = good.c;
    mixed.z = good.z;
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 1, name, mixed));
}

TEST_F(CoinTest, non_canonical_response_is_rejected) {
    // z + ℓ denotes the same exponent; accepting it would make shares malleable.
    const DealtCoin dealt = deal_coin(4, 1);
    const Bytes name = name_of("malleable");
    CoinShare share = make_coin_share(dealt.shares[0], name);
    share.z = add_integers(share.z, kOrder);
    EXPECT_FALSE(is_canonical_scalar(share.z));
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 0, name, share));
}

TEST_F(CoinTest, share_for_another_name_is_rejected) {
    const DealtCoin dealt = deal_coin(4, 1);
    const Bytes name = name_of("epoch 5 proposer 2 round 0");
    const Bytes other = name_of("epoch 5 proposer 2 round 1");
    const CoinShare share = make_coin_share(dealt.shares[3], name);
    EXPECT_TRUE(verify_coin_share(dealt.public_key, 3, name, share));
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 3, other, share));
}

TEST_F(CoinTest, share_under_the_wrong_index_is_rejected) {
    const DealtCoin dealt = deal_coin(4, 1);
    const Bytes name = name_of("who");
    const CoinShare share = make_coin_share(dealt.shares[1], name);
    EXPECT_TRUE(verify_coin_share(dealt.public_key, 1, name, share));
    for (std::uint32_t index : {0u, 2u, 3u}) {
        EXPECT_FALSE(verify_coin_share(dealt.public_key, index, name, share)) << index;
    }
    for (std::uint32_t index : {4u, 5u, 1000u, 0xffffffffu}) {
        EXPECT_FALSE(verify_coin_share(dealt.public_key, index, name, share)) << index;
    }
    // A public key whose key list does not match n is refused, not indexed past.
    CoinPublicKey broken = dealt.public_key;
    broken.verification_keys.pop_back();
    EXPECT_FALSE(verify_coin_share(broken, 1, name, share));
}

TEST_F(CoinTest, identity_and_zero_values_are_rejected_without_crashing) {
    const DealtCoin dealt = deal_coin(4, 1);
    const Bytes name = name_of("zeros");
    const CoinShare good = make_coin_share(dealt.shares[0], name);

    CoinShare identity_sigma = good;
    identity_sigma.sigma = Point{};  // the identity's encoding
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 0, name, identity_sigma));

    CoinShare zero_scalars = good;
    zero_scalars.c = Scalar{};
    zero_scalars.z = Scalar{};
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 0, name, zero_scalars));
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 0, name, CoinShare{}));

    CoinShare junk = good;
    junk.sigma.fill(0xff);  // not a valid encoding
    EXPECT_FALSE(verify_coin_share(dealt.public_key, 0, name, junk));

    // A public key listing the identity as y_i.
    CoinPublicKey identity_key = dealt.public_key;
    identity_key.verification_keys[0] = Point{};
    EXPECT_FALSE(verify_coin_share(identity_key, 0, name, good));

    // combine (which trusts its caller) survives identity and junk points.
    std::map<std::uint32_t, CoinShare> with_identity{{0, identity_sigma}, {1, CoinShare{}}};
    const std::optional<Point> hx = combine_coin_shares(dealt.public_key, with_identity);
    ASSERT_TRUE(hx.has_value());
    EXPECT_EQ(*hx, Point{});
    (void)coin_bit(*hx);
    std::map<std::uint32_t, CoinShare> with_junk{{0, junk}, {1, good}};
    EXPECT_FALSE(combine_coin_shares(dealt.public_key, with_junk).has_value());
}

TEST_F(CoinTest, combine_refuses_too_few_or_out_of_range) {
    const DealtCoin dealt = deal_coin(4, 1);
    const Bytes name = name_of("range");
    const std::vector<CoinShare> shares = all_shares(dealt, name);
    EXPECT_FALSE(combine_coin_shares(dealt.public_key, {}).has_value());
    EXPECT_FALSE(combine_coin_shares(dealt.public_key, pick(shares, {2})).has_value());
    std::map<std::uint32_t, CoinShare> out_of_range = pick(shares, {0, 1});
    out_of_range[4] = shares[3];
    EXPECT_FALSE(combine_coin_shares(dealt.public_key, out_of_range).has_value());
}

// ---- determinism and balance ---------------------------------------------------

TEST_F(CoinTest, shares_and_coins_are_deterministic) {
    const DealtCoin dealt = deal_coin(4, 1);
    const Bytes name = name_of("same name");
    for (const CoinSecretShare& secret : dealt.shares) {
        EXPECT_EQ(make_coin_share(secret, name), make_coin_share(secret, name));
    }
    const std::vector<CoinShare> a = all_shares(dealt, name);
    const std::vector<CoinShare> b = all_shares(dealt, name);
    const std::optional<Point> first = combine_coin_shares(dealt.public_key, pick(a, {0, 1}));
    const std::optional<Point> second = combine_coin_shares(dealt.public_key, pick(b, {2, 3}));
    ASSERT_TRUE(first && second);
    EXPECT_EQ(*first, *second);
    EXPECT_EQ(coin_bit(*first), coin_bit(*second));
    EXPECT_EQ(coin_base(name), coin_base(name));
    EXPECT_NE(coin_base(name), coin_base(name_of("other name")));
}

TEST_F(CoinTest, coins_over_1000_names_are_roughly_balanced) {
    const DealtCoin dealt = deal_coin(4, 1);
    constexpr int kNames = 1000;
    int ones = 0;
    for (int i = 0; i < kNames; ++i) {
        const Bytes name = name_of("tobd-coin-v1/balance/" + std::to_string(i));
        std::map<std::uint32_t, CoinShare> shares;
        shares[1] = make_coin_share(dealt.shares[1], name);
        shares[3] = make_coin_share(dealt.shares[3], name);
        const std::optional<Point> hx = combine_coin_shares(dealt.public_key, shares);
        ASSERT_TRUE(hx.has_value());
        ones += coin_bit(*hx) ? 1 : 0;
    }
    // Binomial(1000, 1/2): mean 500, sd ≈ 15.8; 5 sd ≈ 80 (failure odds ≈ 6e-7).
    const double bound = 5.0 * std::sqrt(kNames * 0.25);
    EXPECT_NEAR(ones, kNames / 2, bound) << "ones = " << ones;
}

// ---- dealing edge cases and encoding -------------------------------------------

TEST_F(CoinTest, dealing_refuses_zero_secret_or_zero_share) {
    const std::vector<Scalar> zero_secret{Scalar{}, random_scalar()};
    EXPECT_FALSE(deal_coin_from_polynomial(4, zero_secret).has_value());
    // f(z) = a − a·z has f(1) = 0: node 0 would hold a zero share.
    const Scalar a = random_scalar();
    Scalar minus_a{};
    crypto_core_ristretto255_scalar_negate(minus_a.data(), a.data());
    const std::vector<Scalar> zero_at_one{a, minus_a};
    EXPECT_FALSE(deal_coin_from_polynomial(4, zero_at_one).has_value());
}

TEST_F(CoinTest, single_node_threshold_one) {
    const DealtCoin dealt = deal_coin(1, 0);
    const Bytes name = name_of("solo");
    const CoinShare share = make_coin_share(dealt.shares[0], name);
    EXPECT_TRUE(verify_coin_share(dealt.public_key, 0, name, share));
    const std::optional<Point> hx = combine_coin_shares(dealt.public_key, {{0, share}});
    ASSERT_TRUE(hx.has_value());
    EXPECT_EQ(*hx, share.sigma);  // degree 0: f is constant, one share is the coin
}

TEST_F(CoinTest, canonical_scalar_boundaries) {
    EXPECT_TRUE(is_canonical_scalar(Scalar{}));
    EXPECT_TRUE(is_canonical_scalar(scalar_of(1)));
    Scalar order_minus_1 = kOrder;
    order_minus_1[0] -= 1;
    EXPECT_TRUE(is_canonical_scalar(order_minus_1));
    EXPECT_FALSE(is_canonical_scalar(kOrder));
    Scalar all_ones{};
    all_ones.fill(0xff);
    EXPECT_FALSE(is_canonical_scalar(all_ones));
}

TEST_F(CoinTest, share_encoding_round_trip) {
    const DealtCoin dealt = deal_coin(4, 1);
    const CoinShare share = make_coin_share(dealt.shares[0], name_of("wire"));
    const auto bytes = encode_coin_share(share);
    EXPECT_TRUE(std::equal(share.sigma.begin(), share.sigma.end(), bytes.begin()));
    CoinShare back;
    EXPECT_TRUE(decode_coin_share(bytes, back));
    EXPECT_EQ(back, share);
    EXPECT_FALSE(decode_coin_share(ByteView(bytes).first(95), back));
    Bytes longer(bytes.begin(), bytes.end());
    longer.push_back(0);
    EXPECT_FALSE(decode_coin_share(longer, back));
}

}  // namespace
}  // namespace tob::crypto
