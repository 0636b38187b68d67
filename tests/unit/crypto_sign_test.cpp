// Ed25519 signatures with domain tags, BLAKE2b digests, Hasher and hex helpers.

#include <gtest/gtest.h>
#include <sodium.h>

#include <string>

#include "crypto/hash.h"
#include "crypto/sign.h"

namespace tob::crypto {
namespace {

class CryptoTest : public ::testing::Test {
  protected:
    void SetUp() override { init(); }
};

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes unhex(std::string_view hex) {
    Bytes out;
    EXPECT_TRUE(from_hex(hex, out)) << hex;
    return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> unhex_array(std::string_view hex) {
    const Bytes b = unhex(hex);
    std::array<std::uint8_t, N> out{};
    EXPECT_EQ(b.size(), N);
    std::copy(b.begin(), b.end(), out.begin());
    return out;
}

// ---- signatures ---------------------------------------------------------------

TEST_F(CryptoTest, sign_then_verify_accepts) {
    const SigningKey key = SigningKey::generate();
    const Bytes payload = bytes_of("block e=7 i=2");
    const Signature sig = key.sign("tobd-block-v1", payload);
    EXPECT_TRUE(verify(key.public_key(), "tobd-block-v1", payload, sig));
}

TEST_F(CryptoTest, signature_covers_tag_zero_payload_exactly) {
    // The signed bytes are tag ‖ 0x00 ‖ payload: a raw libsodium verification of
    // that concatenation must accept the signature.
    const SigningKey key = SigningKey::generate();
    const Bytes payload = bytes_of("payload");
    const Signature sig = key.sign("tag", payload);
    Bytes message = bytes_of("tag");
    message.push_back(0);
    message.insert(message.end(), payload.begin(), payload.end());
    EXPECT_EQ(crypto_sign_verify_detached(sig.data(), message.data(), message.size(),
                                          key.public_key().data()),
              0);
}

TEST_F(CryptoTest, wrong_tag_rejected) {
    const SigningKey key = SigningKey::generate();
    const Bytes payload = bytes_of("seen");
    const Signature sig = key.sign("tobd-seen-v1", payload);
    EXPECT_FALSE(verify(key.public_key(), "tobd-commit-v1", payload, sig));
    EXPECT_FALSE(verify(key.public_key(), "", payload, sig));
}

TEST_F(CryptoTest, tag_payload_boundary_cannot_shift) {
    // ("ab", "x") and ("a", "b" ‖ 0 ‖ "x")-style splits must not share signatures.
    const SigningKey key = SigningKey::generate();
    const Signature sig = key.sign("ab", bytes_of("x"));
    Bytes shifted = bytes_of("b");
    shifted.push_back(0);
    shifted.push_back('x');
    EXPECT_FALSE(verify(key.public_key(), "a", shifted, sig));
    EXPECT_FALSE(verify(key.public_key(), "abx", {}, sig));
    // A tag containing 0x00 is never accepted.
    EXPECT_FALSE(verify(key.public_key(), std::string_view("ab\0", 3), bytes_of("x"), sig));
}

TEST_F(CryptoTest, wrong_key_rejected) {
    const SigningKey key = SigningKey::generate();
    const SigningKey other = SigningKey::generate();
    const Bytes payload = bytes_of("p");
    const Signature sig = key.sign("t", payload);
    EXPECT_FALSE(verify(other.public_key(), "t", payload, sig));
}

TEST_F(CryptoTest, flipped_bit_rejected) {
    const SigningKey key = SigningKey::generate();
    const Bytes payload = bytes_of("some payload bytes");
    const Signature sig = key.sign("t", payload);
    for (std::size_t bit = 0; bit < payload.size() * 8; bit += 7) {
        Bytes tampered = payload;
        tampered[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(verify(key.public_key(), "t", tampered, sig)) << "payload bit " << bit;
    }
    for (std::size_t bit = 0; bit < sig.size() * 8; bit += 5) {
        Signature tampered = sig;
        tampered[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(verify(key.public_key(), "t", payload, tampered)) << "signature bit " << bit;
    }
}

TEST_F(CryptoTest, seed_round_trip_and_rfc8032_public_key) {
    // RFC 8032 §7.1, test 1.
    const Seed seed =
        unhex_array<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    const SigningKey key = SigningKey::from_seed(seed);
    EXPECT_EQ(to_hex(key.public_key()),
              "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    EXPECT_EQ(key.seed(), seed);
    // Ed25519 is deterministic: same key, same message, same signature.
    const SigningKey copy = key;
    EXPECT_EQ(copy.sign("t", bytes_of("m")), key.sign("t", bytes_of("m")));
    SigningKey assigned = SigningKey::generate();
    assigned = key;
    EXPECT_EQ(assigned.public_key(), key.public_key());
    EXPECT_EQ(assigned.seed(), seed);
}

TEST_F(CryptoTest, generated_keys_differ) {
    EXPECT_NE(SigningKey::generate().public_key(), SigningKey::generate().public_key());
}

// ---- hashing ------------------------------------------------------------------

TEST_F(CryptoTest, blake2b_known_answers) {
    EXPECT_EQ(to_hex(blake2b256({})),
              "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    // RFC 7693 appendix A.
    EXPECT_EQ(to_hex(blake2b512(view("abc"))),
              "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
              "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

TEST_F(CryptoTest, blake2b_matches_crypto_generichash) {
    Bytes data(1000);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 31 + 7);
    Digest d256{};
    Digest512 d512{};
    crypto_generichash(d256.data(), d256.size(), data.data(), data.size(), nullptr, 0);
    crypto_generichash(d512.data(), d512.size(), data.data(), data.size(), nullptr, 0);
    EXPECT_EQ(blake2b256(data), d256);
    EXPECT_EQ(blake2b512(data), d512);

    // Incremental raw() in pieces equals one-shot.
    Hasher h256;
    h256.raw(ByteView(data).first(1))
        .raw(ByteView(data).subspan(1, 500))
        .raw(ByteView(data).subspan(501));
    EXPECT_EQ(h256.finish(), d256);
    Hasher h512(64);
    h512.raw(data);
    EXPECT_EQ(h512.finish512(), d512);
}

TEST_F(CryptoTest, hasher_field_is_u64_big_endian_length_prefixed) {
    // Known answer computed independently (Python hashlib):
    // blake2b(pack('>Q',2)+b'ab'+pack('>Q',1)+b'c', digest_size=32).
    Hasher h;
    h.field(std::string_view("ab")).field(view("c"));
    EXPECT_EQ(to_hex(h.finish()),
              "9b29c83bca563845c8445a09a80da00b8193336d231891003eb004de0b9b1b5e");

    Hasher by_u64;
    by_u64.u64(2).raw(view("ab")).u64(1).raw(view("c"));
    Hasher by_field;
    by_field.field(std::string_view("ab")).field(std::string_view("c"));
    EXPECT_EQ(by_u64.finish(), by_field.finish());
}

TEST_F(CryptoTest, hasher_fields_never_collide_across_boundaries) {
    Hasher a;
    a.field(std::string_view("ab")).field(std::string_view("c"));
    Hasher b;
    b.field(std::string_view("a")).field(std::string_view("bc"));
    EXPECT_NE(a.finish(), b.finish());
    // The same split with raw() does collide: this is what field() prevents.
    Hasher c;
    c.raw(view("ab")).raw(view("c"));
    Hasher d;
    d.raw(view("a")).raw(view("bc"));
    EXPECT_EQ(c.finish(), d.finish());
    // Empty fields count.
    Hasher e;
    e.field(std::string_view("")).field(std::string_view("x"));
    Hasher f;
    f.field(std::string_view("x")).field(std::string_view(""));
    EXPECT_NE(e.finish(), f.finish());
}

TEST_F(CryptoTest, hex_round_trip_and_rejects_bad_input) {
    const Bytes data{0x00, 0x01, 0xab, 0xff, 0x7f};
    EXPECT_EQ(to_hex(data), "0001abff7f");
    Bytes back;
    EXPECT_TRUE(from_hex("0001abff7f", back));
    EXPECT_EQ(back, data);
    EXPECT_TRUE(from_hex("0001ABFF7F", back));
    EXPECT_EQ(back, data);
    EXPECT_TRUE(from_hex("", back));
    EXPECT_TRUE(back.empty());

    Bytes untouched{1, 2, 3};
    EXPECT_FALSE(from_hex("abc", untouched));  // odd length
    EXPECT_FALSE(from_hex("0g", untouched));   // bad digit
    EXPECT_FALSE(from_hex("0 ", untouched));
    EXPECT_FALSE(from_hex("-1", untouched));
    EXPECT_EQ(untouched, (Bytes{1, 2, 3}));
}

}  // namespace
}  // namespace tob::crypto
