#include "daemon/high_water.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "crypto/durable_file.h"
#include "crypto/hash.h"

namespace tob::daemon {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMagic = "tobd-high-water-v1";      // the one-line file
constexpr std::string_view kSlotMagic = "tobd-high-water-v2";  // a slot of the two-slot file

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

fs::path default_high_water_path(const fs::path& key_file) {
    return key_file.parent_path() / "sign-high-water";
}

namespace {

// Checks one line "<magic> <epoch> <check>" (without its newline). Returns the
// problem, or nullopt with `epoch` set.
std::optional<std::string> parse_line(std::string_view line, std::string_view magic,
                                      consensus::Epoch& epoch) {
    if (line.find('\n') != std::string_view::npos)
        return "more than one line; not a high-water mark file";
    if (line.substr(0, magic.size()) != magic || line.size() <= magic.size() ||
        line[magic.size()] != ' ') {
        return "does not start with \"" + std::string(magic) + " \"";
    }
    const std::size_t last_space = line.rfind(' ');
    if (last_space == magic.size()) return "truncated: no checksum field";
    const std::string_view covered = line.substr(0, last_space);
    const std::string_view check = line.substr(last_space + 1);
    const std::string_view epoch_text = covered.substr(magic.size() + 1);
    if (check.size() != 64) return "checksum field is not 64 hex digits (truncated?)";
    if (check != check_hex(covered)) return "checksum mismatch: the file was modified or damaged";
    if (!parse_epoch(epoch_text, epoch))
        return "epoch \"" + std::string(epoch_text) + "\" is not a decimal u64";
    return std::nullopt;
}

// Slot i of a two-slot file: its line without the padding, or the problem.
std::optional<std::string> parse_slot(std::string_view text, std::size_t i,
                                      consensus::Epoch& epoch) {
    std::string_view slot = text.substr(i * kHighWaterSlotBytes, kHighWaterSlotBytes);
    if (slot.size() != kHighWaterSlotBytes || slot.back() != '\n') return "slot is torn";
    slot.remove_suffix(1);
    const std::size_t end = slot.find_last_not_of(' ');
    if (end == std::string_view::npos) return "slot is empty";
    return parse_line(slot.substr(0, end + 1), kSlotMagic, epoch);
}

std::string slot_text(consensus::Epoch epoch) {
    std::string covered = std::string(kSlotMagic) + " " + std::to_string(epoch);
    std::string line = covered + " " + check_hex(covered);
    line.resize(kHighWaterSlotBytes - 1, ' ');
    return line + "\n";
}

// The two-slot file's epochs; nullopt for a slot that does not check.
struct Slots {
    std::array<std::optional<consensus::Epoch>, 2> epochs;
    std::string problem;  // of the first bad slot
};

Slots parse_slots(std::string_view text) {
    Slots out;
    for (std::size_t i = 0; i < 2; ++i) {
        consensus::Epoch e = 0;
        if (auto problem = parse_slot(text, i, e)) {
            if (out.problem.empty()) out.problem = "slot " + std::to_string(i) + ": " + *problem;
        } else {
            out.epochs[i] = e;
        }
    }
    return out;
}

// Either slot may be the torn one.
bool is_two_slot(std::string_view text) {
    if (text.size() != kHighWaterFileBytes) return false;
    for (std::size_t i = 0; i < 2; ++i) {
        if (text.substr(i * kHighWaterSlotBytes, kSlotMagic.size()) == kSlotMagic) return true;
    }
    return false;
}

}  // namespace

std::string format_high_water(consensus::Epoch epoch) {
    return slot_text(epoch) + slot_text(epoch);
}

std::string format_high_water_v1(consensus::Epoch epoch) {
    std::string covered = std::string(kMagic) + " " + std::to_string(epoch);
    return covered + " " + check_hex(covered) + "\n";
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
    MarkRead out;
    if (is_two_slot(text)) {
        // The higher of the slots that check: a slot torn by a crash while it was
        // being raised leaves the other, whose mark covers every signature sent.
        const Slots slots = parse_slots(text);
        if (!slots.epochs[0] && !slots.epochs[1]) return corrupt(path, slots.problem);
        out.state = MarkState::Ok;
        out.epoch = std::max(slots.epochs[0].value_or(0), slots.epochs[1].value_or(0));
        return out;
    }
    if (text.empty()) return corrupt(path, "empty (truncated?)");
    if (text.back() != '\n') return corrupt(path, "truncated: does not end in a newline");
    consensus::Epoch epoch = 0;
    if (auto problem = parse_line(std::string_view(text.data(), text.size() - 1), kMagic, epoch))
        return corrupt(path, *problem);
    out.state = MarkState::Ok;
    out.epoch = epoch;
    return out;
}

namespace {

// Raises the mark in place: the slot that does not hold the higher mark is
// overwritten and the data synced. The file keeps its size, so fdatasync has no
// metadata to commit; the temp file, rename and directory sync of a replacement
// cost about five times as much, once per epoch on every node's critical path.
// Returns false (nothing written) when the file is not a two-slot file.
bool raise_in_place(const fs::path& path, consensus::Epoch epoch, std::string& error) {
    const int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size != static_cast<off_t>(kHighWaterFileBytes))
        return false;
    std::string text(kHighWaterFileBytes, '\0');
    if (::pread(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) return false;
    if (!is_two_slot(text)) return false;
    const Slots slots = parse_slots(text);
    if (!slots.epochs[0] && !slots.epochs[1]) return false;
    // Never the slot holding the higher mark: a slot torn by a crash must leave it.
    const auto& [e0, e1] = slots.epochs;
    const std::size_t target = !e1 || (e0 && *e0 > *e1) ? 1 : 0;
    const std::string slot = slot_text(epoch);
    const off_t at = static_cast<off_t>(target * kHighWaterSlotBytes);
    if (::pwrite(fd, slot.data(), slot.size(), at) != static_cast<ssize_t>(slot.size()) ||
        ::fdatasync(fd) != 0) {
        error = path.string() + ": " + std::strerror(errno) +
                " (writing the signing high-water mark in place)";
    }
    return true;
}

}  // namespace

std::optional<std::string> write_high_water(const fs::path& path, consensus::Epoch epoch) {
    std::string error;
    if (raise_in_place(path, epoch, error)) {
        if (!error.empty()) return error;
        return std::nullopt;
    }
    if (auto problem = crypto::write_file_durably(path, format_high_water(epoch))) {
        return problem->message + " (writing the signing high-water mark)";
    }
    return std::nullopt;
}

}  // namespace tob::daemon
