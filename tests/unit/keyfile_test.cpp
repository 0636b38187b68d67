// Key files: round trips, mode 0600 on write, and every refusal on load (loose
// mode, missing, truncated, corrupted, wrong type, wrong magic, inconsistent or
// non-canonical contents), each with a message that names the file.

#include "crypto/keyfile.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/unit/test_util.h"

namespace tob::crypto {
namespace {

namespace fs = std::filesystem;

class KeyFileTest : public ::testing::Test {
  protected:
    void SetUp() override { init(); }

    test_util::TempDir tmp_{"tobd-keyfile-test"};
    const fs::path dir_ = tmp_.path();
};

using test_util::read_all;

// Replaces the file's contents, keeping mode 0600.
void write_text(const fs::path& path, const std::string& text) {
    test_util::write_all(path, text);
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

// Builds a well-formed key file (with a correct check line) from its body lines,
// to test refusals that the checksum alone would not catch.
std::string with_check(const std::string& body) {
    return body + "check " + to_hex(blake2b256(view(body))) + "\n";
}

unsigned mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
}

template <class T>
std::string error_of(const KeyResult<T>& result) {
    if (const auto* e = std::get_if<KeyFileError>(&result)) return e->message;
    ADD_FAILURE() << "expected an error, the key loaded";
    return {};
}

::testing::AssertionResult mentions(const std::string& message, const std::string& needle) {
    if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "\"" << message << "\" does not mention \"" << needle << "\"";
}

TEST_F(KeyFileTest, signing_key_round_trip) {
    const fs::path path = dir_ / "node.key";
    const SigningKey key = SigningKey::generate();
    ASSERT_FALSE(write_signing_key(path, key).has_value());
    const KeyResult<SigningKey> loaded = load_signing_key(path);
    ASSERT_TRUE(std::holds_alternative<SigningKey>(loaded)) << error_of(loaded);
    EXPECT_EQ(std::get<SigningKey>(loaded).public_key(), key.public_key());
    EXPECT_EQ(std::get<SigningKey>(loaded).seed(), key.seed());

    // The format is the documented one.
    const std::string text = read_all(path);
    EXPECT_EQ(text.rfind("tobd-key-v1\ntype ed25519\nseed " + to_hex(key.seed()) + "\npublic " +
                             to_hex(key.public_key()) + "\ncheck ",
                         0),
              0u)
        << text;
    EXPECT_EQ(text, with_check(text.substr(0, text.find("check "))));
}

TEST_F(KeyFileTest, coin_share_round_trip) {
    const DealtCoin dealt = deal_coin(4, 1);
    const fs::path path = dir_ / "coin.key";
    ASSERT_FALSE(write_coin_share(path, dealt.shares[3]).has_value());
    const KeyResult<CoinSecretShare> loaded = load_coin_share(path);
    ASSERT_TRUE(std::holds_alternative<CoinSecretShare>(loaded)) << error_of(loaded);
    EXPECT_EQ(std::get<CoinSecretShare>(loaded).index, 3u);
    EXPECT_EQ(std::get<CoinSecretShare>(loaded).x, dealt.shares[3].x);
    EXPECT_EQ(coin_verification_key(std::get<CoinSecretShare>(loaded)),
              dealt.public_key.verification_keys[3]);
    EXPECT_NE(read_all(path).find("\nindex 00000003\n"), std::string::npos);
}

TEST_F(KeyFileTest, written_file_has_mode_0600) {
    const mode_t old_umask = ::umask(0);  // even with a permissive umask
    const fs::path path = dir_ / "node.key";
    const auto result = write_signing_key(path, SigningKey::generate());
    const fs::path coin_path = dir_ / "coin.key";
    const auto coin_result = write_coin_share(coin_path, deal_coin(4, 1).shares[0]);
    ::umask(old_umask);
    ASSERT_FALSE(result.has_value());
    ASSERT_FALSE(coin_result.has_value());
    EXPECT_EQ(mode_of(path), 0600u);
    EXPECT_EQ(mode_of(coin_path), 0600u);
}

TEST_F(KeyFileTest, loose_mode_is_refused_with_file_name_and_fix) {
    const fs::path path = dir_ / "node.key";
    ASSERT_FALSE(write_signing_key(path, SigningKey::generate()).has_value());
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    const std::string message = error_of(load_signing_key(path));
    EXPECT_TRUE(mentions(message, path.string()));
    EXPECT_TRUE(mentions(message, "0644"));
    EXPECT_TRUE(mentions(message, "chmod 600"));

    for (mode_t mode : {0640, 0604, 0620, 0602, 0660}) {
        ASSERT_EQ(::chmod(path.c_str(), mode), 0);
        EXPECT_TRUE(mentions(error_of(load_signing_key(path)), "chmod 600")) << std::oct << mode;
    }
    ASSERT_EQ(::chmod(path.c_str(), 0400), 0);  // owner-only read is fine
    EXPECT_TRUE(std::holds_alternative<SigningKey>(load_signing_key(path)));
}

TEST_F(KeyFileTest, missing_file_is_refused) {
    const fs::path path = dir_ / "absent.key";
    const std::string message = error_of(load_signing_key(path));
    EXPECT_TRUE(mentions(message, path.string()));
    EXPECT_TRUE(mentions(message, "no such"));
    EXPECT_TRUE(mentions(error_of(load_coin_share(path)), path.string()));
}

TEST_F(KeyFileTest, truncated_file_is_refused) {
    const fs::path path = dir_ / "node.key";
    ASSERT_FALSE(write_signing_key(path, SigningKey::generate()).has_value());
    const std::string full = read_all(path);
    // Every proper prefix is refused, and (past the empty file) as corrupt or truncated.
    for (std::size_t length = 0; length < full.size(); ++length) {
        write_text(path, full.substr(0, length));
        const std::string message = error_of(load_signing_key(path));
        EXPECT_TRUE(mentions(message, path.string())) << length;
        EXPECT_TRUE(mentions(message, "corrupt or truncated")) << "length " << length;
    }
    write_text(path, full);
    EXPECT_TRUE(std::holds_alternative<SigningKey>(load_signing_key(path)));
}

TEST_F(KeyFileTest, flipped_hex_digit_is_refused_by_the_checksum) {
    const fs::path path = dir_ / "coin.key";
    ASSERT_FALSE(write_coin_share(path, deal_coin(4, 1).shares[1]).has_value());
    const std::string good = read_all(path);
    const std::size_t x_at = good.find("\nx ") + 3;
    for (std::size_t at : {x_at, x_at + 17, x_at + 63, good.find("index ") + 13}) {
        std::string bad = good;
        bad[at] = bad[at] == '0' ? '1' : '0';
        write_text(path, bad);
        const std::string message = error_of(load_coin_share(path));
        EXPECT_TRUE(mentions(message, path.string()));
        EXPECT_TRUE(mentions(message, "checksum mismatch")) << at;
        EXPECT_TRUE(mentions(message, "corrupt or truncated")) << at;
    }
    // A flipped digit in the check line itself is caught too.
    std::string bad = good;
    const std::size_t check_at = good.find("check ") + 6;
    bad[check_at] = bad[check_at] == 'a' ? 'b' : 'a';
    write_text(path, bad);
    EXPECT_TRUE(mentions(error_of(load_coin_share(path)), "checksum mismatch"));
    // And a non-hex character.
    bad = good;
    bad[x_at] = 'g';
    write_text(path, bad);
    EXPECT_TRUE(mentions(error_of(load_coin_share(path)), "corrupt or truncated"));
}

TEST_F(KeyFileTest, wrong_key_type_is_refused) {
    const fs::path sign_path = dir_ / "node.key";
    const fs::path coin_path = dir_ / "coin.key";
    ASSERT_FALSE(write_signing_key(sign_path, SigningKey::generate()).has_value());
    ASSERT_FALSE(write_coin_share(coin_path, deal_coin(4, 1).shares[0]).has_value());

    const std::string as_coin = error_of(load_coin_share(sign_path));
    EXPECT_TRUE(mentions(as_coin, sign_path.string()));
    EXPECT_TRUE(mentions(as_coin, "holds a key of type ed25519, expected type coin-share"));
    const std::string as_sign = error_of(load_signing_key(coin_path));
    EXPECT_TRUE(mentions(as_sign, coin_path.string()));
    EXPECT_TRUE(mentions(as_sign, "holds a key of type coin-share, expected type ed25519"));

    write_text(sign_path, with_check("tobd-key-v1\ntype rsa\nseed 00\n"));
    EXPECT_TRUE(mentions(error_of(load_signing_key(sign_path)), "unknown key type"));
}

TEST_F(KeyFileTest, wrong_magic_is_refused) {
    const fs::path path = dir_ / "node.key";
    write_text(path, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n");
    const std::string message = error_of(load_signing_key(path));
    EXPECT_TRUE(mentions(message, path.string()));
    EXPECT_TRUE(mentions(message, "not a tobd key file"));
    write_text(path, with_check("tobd-key-v2\ntype ed25519\n"));
    EXPECT_TRUE(mentions(error_of(load_signing_key(path)), "not a tobd key file"));
}

TEST_F(KeyFileTest, existing_file_is_not_overwritten_unless_asked) {
    const fs::path path = dir_ / "node.key";
    const SigningKey first = SigningKey::generate();
    const SigningKey second = SigningKey::generate();
    ASSERT_FALSE(write_signing_key(path, first).has_value());
    const std::string before = read_all(path);

    const std::optional<KeyFileError> refused = write_signing_key(path, second);
    ASSERT_TRUE(refused.has_value());
    EXPECT_TRUE(mentions(refused->message, path.string()));
    EXPECT_TRUE(mentions(refused->message, "already exists"));
    EXPECT_EQ(read_all(path), before);
    const auto coin_refused = write_coin_share(path, deal_coin(4, 1).shares[0]);
    ASSERT_TRUE(coin_refused.has_value());
    EXPECT_EQ(read_all(path), before);

    ASSERT_FALSE(write_signing_key(path, second, /*overwrite=*/true).has_value());
    const KeyResult<SigningKey> loaded = load_signing_key(path);
    ASSERT_TRUE(std::holds_alternative<SigningKey>(loaded)) << error_of(loaded);
    EXPECT_EQ(std::get<SigningKey>(loaded).public_key(), second.public_key());
    EXPECT_EQ(mode_of(path), 0600u);
    // No temporary file is left behind.
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) ++entries;
    EXPECT_EQ(entries, 1u);
}

TEST_F(KeyFileTest, public_key_must_match_seed) {
    const fs::path path = dir_ / "node.key";
    const SigningKey key = SigningKey::generate();
    const SigningKey other = SigningKey::generate();
    write_text(path, with_check("tobd-key-v1\ntype ed25519\nseed " + to_hex(key.seed()) +
                                "\npublic " + to_hex(other.public_key()) + "\n"));
    const std::string message = error_of(load_signing_key(path));
    EXPECT_TRUE(mentions(message, path.string()));
    EXPECT_TRUE(mentions(message, "does not match"));
}

TEST_F(KeyFileTest, curve_key_round_trip_and_checks) {
    const fs::path path = dir_ / "curve.key";
    const CurveKeyPair key = CurveKeyPair::generate();
    ASSERT_FALSE(write_curve_key(path, key).has_value());
    EXPECT_EQ(mode_of(path), 0600u);
    auto loaded = load_curve_key(path);
    ASSERT_TRUE(std::holds_alternative<CurveKeyPair>(loaded)) << error_of(loaded);
    EXPECT_EQ(std::get<CurveKeyPair>(loaded).public_key(), key.public_key());
    EXPECT_EQ(std::get<CurveKeyPair>(loaded).secret_key(), key.secret_key());
    EXPECT_TRUE(write_curve_key(path, key).has_value());  // never replaced silently
    // A public key that is not the secret's, and another key type, are refused.
    const CurveKeyPair other = CurveKeyPair::generate();
    write_text(path, with_check("tobd-key-v1\ntype curve25519\nsecret " + to_hex(key.secret_key()) +
                                "\npublic " + to_hex(other.public_key()) + "\n"));
    EXPECT_TRUE(mentions(error_of(load_curve_key(path)), "does not match"));
    ASSERT_FALSE(write_signing_key(dir_ / "node.key", SigningKey::generate()).has_value());
    EXPECT_TRUE(mentions(error_of(load_curve_key(dir_ / "node.key")), "expected type curve25519"));
}

TEST(CurveKeys, client_key_derived_from_the_signing_key_matches_its_public_key) {
    const SigningKey key = SigningKey::generate();
    const CurveKeyPair derived = CurveKeyPair::from_signing_key(key);
    auto from_public = curve_public_from_ed25519(key.public_key());
    ASSERT_TRUE(from_public.has_value());
    EXPECT_EQ(*from_public, derived.public_key());
    EXPECT_EQ(curve_public_of(derived.secret_key()), derived.public_key());
    EXPECT_NE(derived.public_key(),
              CurveKeyPair::from_signing_key(SigningKey::generate()).public_key());
    PublicKey not_a_point{};
    not_a_point.fill(0xff);
    EXPECT_FALSE(curve_public_from_ed25519(not_a_point).has_value());
}

TEST_F(KeyFileTest, field_layout_is_strict) {
    const fs::path path = dir_ / "node.key";
    const SigningKey key = SigningKey::generate();
    const std::string seed = to_hex(key.seed());
    const std::string pub = to_hex(key.public_key());
    // Short seed, swapped fields, missing field, extra field.
    for (const std::string& body :
         {"tobd-key-v1\ntype ed25519\nseed " + seed.substr(2) + "\npublic " + pub + "\n",
          "tobd-key-v1\ntype ed25519\npublic " + pub + "\nseed " + seed + "\n",
          "tobd-key-v1\ntype ed25519\nseed " + seed + "\n",
          "tobd-key-v1\ntype ed25519\nseed " + seed + "\npublic " + pub + "\nnote 00\n"}) {
        write_text(path, with_check(body));
        EXPECT_TRUE(mentions(error_of(load_signing_key(path)), path.string())) << body;
    }
}

TEST_F(KeyFileTest, coin_share_scalar_must_be_canonical_and_non_zero) {
    const fs::path path = dir_ / "coin.key";
    // ℓ itself (little endian) is not canonical.
    const std::string order = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";
    write_text(path, with_check("tobd-key-v1\ntype coin-share\nindex 00000000\nx " + order + "\n"));
    EXPECT_TRUE(mentions(error_of(load_coin_share(path)), "canonical"));
    write_text(path, with_check("tobd-key-v1\ntype coin-share\nindex 00000000\nx " +
                                std::string(64, '0') + "\n"));
    EXPECT_TRUE(mentions(error_of(load_coin_share(path)), "zero"));
}

TEST_F(KeyFileTest, directory_and_oversized_files_are_refused) {
    const fs::path sub = dir_ / "sub";
    fs::create_directory(sub);
    fs::permissions(sub, fs::perms::owner_all);
    EXPECT_TRUE(mentions(error_of(load_signing_key(sub)), "not a regular file"));
    const fs::path big = dir_ / "big.key";
    write_text(big, "tobd-key-v1\n" + std::string(10000, 'a'));
    EXPECT_TRUE(mentions(error_of(load_signing_key(big)), "too large"));
}

}  // namespace
}  // namespace tob::crypto
