#include "crypto/keyfile.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "crypto/durable_file.h"

namespace tob::crypto {

namespace {

constexpr std::string_view kMagic = "tobd-key-v1";
constexpr std::string_view kTypeEd25519 = "ed25519";
constexpr std::string_view kTypeCoinShare = "coin-share";
constexpr std::string_view kTypeCurve = "curve25519";
// A key file is a few hundred bytes; anything much larger is not one (and is not
// read into memory).
constexpr std::size_t kKeyFileBytesMax = 4096;

// A std::string that holds secret material: wiped on destruction. Reserve enough
// up front so that appending never reallocates (which would leave a copy behind).
struct SecretText {
    std::string text;
    explicit SecretText(std::size_t reserve_bytes) { text.reserve(reserve_bytes); }
    SecretText(const SecretText&) = delete;
    SecretText& operator=(const SecretText&) = delete;
    ~SecretText() { sodium_memzero(text.data(), text.size()); }
};

// Same for parsed bytes.
struct SecretBytes {
    Bytes bytes;
    SecretBytes() = default;
    // Moving steals the buffer (the source is left empty), so no copy remains.
    SecretBytes(SecretBytes&& other) noexcept : bytes(std::move(other.bytes)) {}
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    ~SecretBytes() { sodium_memzero(bytes.data(), bytes.size()); }
};

KeyFileError error(const std::filesystem::path& path, const std::string& problem) {
    return KeyFileError{path.string() + ": " + problem};
}

std::string mode_text(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// One "name hex\n" line.
void append_field(std::string& out, std::string_view name, ByteView value) {
    out.append(name);
    out.push_back(' ');
    for (std::uint8_t b : value) {
        static constexpr char kDigits[] = "0123456789abcdef";
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0x0f]);
    }
    out.push_back('\n');
}

// Appends "check <hex BLAKE2b-256 of everything so far>\n".
void append_check(std::string& out) {
    const Digest digest = blake2b256(view(out));
    append_field(out, "check", digest);
}

std::optional<KeyFileError> write_key_file(const std::filesystem::path& path,
                                           std::string_view contents, bool overwrite) {
    // CreateNew uses O_EXCL: never replace an existing key (nor follow a symlink
    // planted there). Replace goes through a temp file and a rename.
    DurableWriteOptions options;
    options.mode =
        overwrite ? DurableWriteOptions::Mode::Replace : DurableWriteOptions::Mode::CreateNew;
    options.permissions = 0600;
    auto problem = write_file_durably(path, contents, options);
    if (!problem) return std::nullopt;
    if (!overwrite && problem->err == EEXIST) {
        return error(path, "already exists; refusing to overwrite an existing key file");
    }
    return KeyFileError{problem->message};
}

// A parsed, checksum-verified key file: its type and its "name hex" fields.
struct ParsedKeyFile {
    std::string type;
    std::vector<std::pair<std::string, SecretBytes>> fields;
};

// Reads the file into `file` (wiped by its owner): refuses a missing file, one
// that group or others may read or write, one that is not regular, and one
// larger than any key file, before reading it.
std::optional<KeyFileError> read_key_bytes(const std::filesystem::path& path, SecretText& file) {
    const auto private_only = [&path](const struct stat& st) -> std::optional<std::string> {
        if ((st.st_mode & 077) == 0) return std::nullopt;
        return "mode " + mode_text(st.st_mode) +
               " is readable or writable by group or others; a secret key must be private: "
               "chmod 600 " +
               path.string();
    };
    auto problem = read_small_file(path, kKeyFileBytesMax, file.text, private_only);
    if (!problem) return std::nullopt;
    switch (problem->kind) {
        case SmallFileError::Kind::Missing:
            return error(path, "no such key file");
        case SmallFileError::Kind::TooLarge:
            return error(path, "too large to be a tobd key file (" + problem->problem + ")");
        default:
            return error(path, problem->problem);
    }
}

// Checks what guards the contents: the magic first line, the final newline, the
// check line and its checksum. On success `lines` holds every line (without its
// newline), the check line last.
std::optional<KeyFileError> check_key_text(const std::filesystem::path& path, std::string_view text,
                                           std::vector<std::string_view>& lines) {
    if (text.empty()) return error(path, "empty file; the key file is corrupt or truncated");
    const std::string_view first = text.substr(0, text.find('\n'));
    if (first != kMagic) {
        if (text.size() < kMagic.size() && kMagic.substr(0, text.size()) == text) {
            return error(path, "the key file is corrupt or truncated");
        }
        return error(path, "not a tobd key file (the first line is not \"tobd-key-v1\")");
    }
    if (text.back() != '\n') {
        return error(path, "no final newline; the key file is corrupt or truncated");
    }
    for (std::size_t start = 0; start < text.size();) {
        const std::size_t end = text.find('\n', start);
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    constexpr std::string_view kCheckPrefix = "check ";
    const std::string_view last = lines.back();
    if (lines.size() < 3 || last.substr(0, kCheckPrefix.size()) != kCheckPrefix) {
        return error(path, "no check line; the key file is corrupt or truncated");
    }
    Bytes stored;
    if (!from_hex(last.substr(kCheckPrefix.size()), stored) || stored.size() != 32) {
        return error(path, "malformed check line; the key file is corrupt or truncated");
    }
    const std::size_t body_bytes = text.size() - last.size() - 1;
    const Digest computed = blake2b256(view(text.substr(0, body_bytes)));
    if (sodium_memcmp(computed.data(), stored.data(), computed.size()) != 0) {
        return error(path, "checksum mismatch; the key file is corrupt or truncated");
    }
    return std::nullopt;
}

// The structure under a good checksum: lines[0] magic, lines[1] "type <t>", then
// "name hex" fields, the check line last.
std::optional<KeyFileError> parse_key_fields(const std::filesystem::path& path,
                                             const std::vector<std::string_view>& lines,
                                             ParsedKeyFile& out) {
    constexpr std::string_view kTypePrefix = "type ";
    if (lines[1].substr(0, kTypePrefix.size()) != kTypePrefix) {
        return error(path, "second line is not \"type <key type>\"");
    }
    out.type = std::string(lines[1].substr(kTypePrefix.size()));
    for (std::size_t i = 2; i + 1 < lines.size(); ++i) {
        const std::string_view line = lines[i];
        const std::size_t space = line.find(' ');
        if (space == std::string_view::npos) {
            return error(path, "line " + std::to_string(i + 1) + " is not \"name hex\"");
        }
        auto& field = out.fields.emplace_back();
        field.first = std::string(line.substr(0, space));
        if (!from_hex(line.substr(space + 1), field.second.bytes)) {
            return error(path, "field \"" + field.first + "\" is not valid hex");
        }
    }
    return std::nullopt;
}

// Reads and checks everything that does not depend on the key type.
std::optional<KeyFileError> read_key_file(const std::filesystem::path& path, ParsedKeyFile& out) {
    SecretText file(static_cast<std::size_t>(kKeyFileBytesMax) + 1);
    if (auto problem = read_key_bytes(path, file)) return problem;
    std::vector<std::string_view> lines;
    if (auto problem = check_key_text(path, file.text, lines)) return problem;
    return parse_key_fields(path, lines, out);
}

// Checks the type and that the fields are exactly `names` (in order) with the
// given byte lengths.
std::optional<KeyFileError> expect_layout(
    const std::filesystem::path& path, const ParsedKeyFile& parsed, std::string_view type,
    std::initializer_list<std::pair<std::string_view, std::size_t>> layout) {
    if (parsed.type != type) {
        if (parsed.type == kTypeEd25519 || parsed.type == kTypeCoinShare ||
            parsed.type == kTypeCurve) {
            return error(path, "holds a key of type " + parsed.type + ", expected type " +
                                   std::string(type));
        }
        return error(path,
                     "unknown key type \"" + parsed.type + "\", expected " + std::string(type));
    }
    if (parsed.fields.size() != layout.size()) {
        return error(path, "wrong number of fields for a " + std::string(type) + " key");
    }
    std::size_t i = 0;
    for (const auto& [name, bytes] : layout) {
        const auto& field = parsed.fields[i++];
        if (field.first != name) {
            return error(path, "expected field \"" + std::string(name) + "\", found \"" +
                                   field.first + "\"");
        }
        if (field.second.bytes.size() != bytes) {
            return error(path, "field \"" + std::string(name) + "\" has " +
                                   std::to_string(field.second.bytes.size()) + " bytes, expected " +
                                   std::to_string(bytes));
        }
    }
    return std::nullopt;
}

}  // namespace

std::optional<KeyFileError> write_signing_key(const std::filesystem::path& path,
                                              const SigningKey& key, bool overwrite) {
    SecretText contents(512);
    contents.text.append(kMagic).append("\n");
    contents.text.append("type ").append(kTypeEd25519).append("\n");
    Seed seed = key.seed();
    append_field(contents.text, "seed", seed);
    sodium_memzero(seed.data(), seed.size());
    append_field(contents.text, "public", key.public_key());
    append_check(contents.text);
    return write_key_file(path, contents.text, overwrite);
}

KeyResult<SigningKey> load_signing_key(const std::filesystem::path& path) {
    ParsedKeyFile parsed;
    if (auto problem = read_key_file(path, parsed)) return *problem;
    if (auto problem = expect_layout(path, parsed, kTypeEd25519, {{"seed", 32}, {"public", 32}})) {
        return *problem;
    }
    Seed seed{};
    std::copy(parsed.fields[0].second.bytes.begin(), parsed.fields[0].second.bytes.end(),
              seed.begin());
    SigningKey key = SigningKey::from_seed(seed);
    sodium_memzero(seed.data(), seed.size());
    const Bytes& stored_public = parsed.fields[1].second.bytes;
    if (!std::equal(stored_public.begin(), stored_public.end(), key.public_key().begin())) {
        return error(path, "the public key does not match the seed; the key file is corrupt");
    }
    return key;
}

std::optional<KeyFileError> write_coin_share(const std::filesystem::path& path,
                                             const CoinSecretShare& share, bool overwrite) {
    SecretText contents(512);
    contents.text.append(kMagic).append("\n");
    contents.text.append("type ").append(kTypeCoinShare).append("\n");
    const std::array<std::uint8_t, 4> index_be{
        static_cast<std::uint8_t>(share.index >> 24), static_cast<std::uint8_t>(share.index >> 16),
        static_cast<std::uint8_t>(share.index >> 8), static_cast<std::uint8_t>(share.index)};
    append_field(contents.text, "index", index_be);
    append_field(contents.text, "x", share.x);
    append_check(contents.text);
    return write_key_file(path, contents.text, overwrite);
}

KeyResult<CoinSecretShare> load_coin_share(const std::filesystem::path& path) {
    ParsedKeyFile parsed;
    if (auto problem = read_key_file(path, parsed)) return *problem;
    if (auto problem = expect_layout(path, parsed, kTypeCoinShare, {{"index", 4}, {"x", 32}})) {
        return *problem;
    }
    const Bytes& index_be = parsed.fields[0].second.bytes;
    CoinSecretShare share;
    share.index = (std::uint32_t{index_be[0]} << 24) | (std::uint32_t{index_be[1]} << 16) |
                  (std::uint32_t{index_be[2]} << 8) | std::uint32_t{index_be[3]};
    std::copy(parsed.fields[1].second.bytes.begin(), parsed.fields[1].second.bytes.end(),
              share.x.begin());
    if (!is_canonical_scalar(share.x)) {
        return error(path,
                     "x is not a canonical scalar (>= the group order); the key file is "
                     "corrupt");
    }
    if (sodium_is_zero(share.x.data(), share.x.size()) == 1) {
        return error(path, "x is zero, which no dealer produces; the key file is corrupt");
    }
    return share;
}

std::optional<KeyFileError> write_curve_key(const std::filesystem::path& path,
                                            const CurveKeyPair& key, bool overwrite) {
    SecretText contents(512);
    contents.text.append(kMagic).append("\n");
    contents.text.append("type ").append(kTypeCurve).append("\n");
    append_field(contents.text, "secret", key.secret_key());
    append_field(contents.text, "public", key.public_key());
    append_check(contents.text);
    return write_key_file(path, contents.text, overwrite);
}

KeyResult<CurveKeyPair> load_curve_key(const std::filesystem::path& path) {
    ParsedKeyFile parsed;
    if (auto problem = read_key_file(path, parsed)) return *problem;
    if (auto problem = expect_layout(path, parsed, kTypeCurve, {{"secret", 32}, {"public", 32}})) {
        return *problem;
    }
    CurveSecretKey secret{};
    std::copy(parsed.fields[0].second.bytes.begin(), parsed.fields[0].second.bytes.end(),
              secret.begin());
    CurveKeyPair key = CurveKeyPair::from_secret(secret);
    sodium_memzero(secret.data(), secret.size());
    const Bytes& stored_public = parsed.fields[1].second.bytes;
    if (!std::equal(stored_public.begin(), stored_public.end(), key.public_key().begin())) {
        return error(path, "the public key does not match the secret; the key file is corrupt");
    }
    return key;
}

}  // namespace tob::crypto
