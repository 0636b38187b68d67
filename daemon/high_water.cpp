#include "daemon/high_water.h"

#include <charconv>
#include <string_view>

#include "crypto/durable_file.h"
#include "crypto/hash.h"

namespace tob::daemon {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMagic = "tobd-high-water-v1";

std::string check_hex(std::string_view covered) {
    return crypto::to_hex(crypto::blake2b256(crypto::view(covered)));
}

MarkRead corrupt(const fs::path& path, const std::string& problem) {
    MarkRead out;
    out.state = MarkState::Corrupt;
    out.error = path.string() + ": " + problem;
    return out;
}

// Parses "<epoch>" strictly: digits only, no leading zero unless "0", fits in u64.
bool parse_epoch(std::string_view text, consensus::Epoch& out) {
    if (text.empty() || text.size() > 20) return false;
    if (text.size() > 1 && text[0] == '0') return false;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
    }
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string format_high_water(consensus::Epoch epoch) {
    std::string covered = std::string(kMagic) + " " + std::to_string(epoch);
    return covered + " " + check_hex(covered) + "\n";
}

fs::path default_high_water_path(const fs::path& key_file) {
    return key_file.parent_path() / "sign-high-water";
}

MarkRead read_high_water(const fs::path& path) {
    std::string text;
    if (auto problem = crypto::read_small_file(path, kHighWaterFileBytesMax, text)) {
        if (problem->kind == crypto::SmallFileError::Kind::Missing) {
            MarkRead out;
            out.state = MarkState::Missing;
            out.error = path.string() + ": no signing high-water mark file";
            return out;
        }
        if (problem->kind == crypto::SmallFileError::Kind::TooLarge) {
            return corrupt(path, problem->problem + "; not a high-water mark file");
        }
        return corrupt(path, problem->problem);
    }
    if (text.empty()) return corrupt(path, "empty (truncated?)");
    if (text.back() != '\n') return corrupt(path, "truncated: does not end in a newline");
    const std::string_view line(text.data(), text.size() - 1);
    if (line.find('\n') != std::string_view::npos)
        return corrupt(path, "more than one line; not a high-water mark file");
    if (line.substr(0, kMagic.size()) != kMagic || line.size() <= kMagic.size() ||
        line[kMagic.size()] != ' ') {
        return corrupt(path, "does not start with \"" + std::string(kMagic) + " \"");
    }
    const std::size_t last_space = line.rfind(' ');
    if (last_space == kMagic.size()) return corrupt(path, "truncated: no checksum field");
    const std::string_view covered = line.substr(0, last_space);
    const std::string_view check = line.substr(last_space + 1);
    const std::string_view epoch_text = covered.substr(kMagic.size() + 1);
    if (check.size() != 64)
        return corrupt(path, "checksum field is not 64 hex digits (truncated?)");
    if (check != check_hex(covered))
        return corrupt(path, "checksum mismatch: the file was modified or damaged");
    consensus::Epoch epoch = 0;
    if (!parse_epoch(epoch_text, epoch))
        return corrupt(path, "epoch \"" + std::string(epoch_text) + "\" is not a decimal u64");
    MarkRead out;
    out.state = MarkState::Ok;
    out.epoch = epoch;
    return out;
}

std::optional<std::string> write_high_water(const fs::path& path, consensus::Epoch epoch) {
    if (auto problem = crypto::write_file_durably(path, format_high_water(epoch))) {
        return problem->message + " (writing the signing high-water mark)";
    }
    return std::nullopt;
}

}  // namespace tob::daemon
