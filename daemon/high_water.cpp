#include "daemon/high_water.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "crypto/hash.h"

namespace tob::daemon {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMagic = "tobd-high-water-v1";

std::string errno_text(int err) { return std::strerror(err); }

std::string check_hex(std::string_view covered) {
    return crypto::to_hex(crypto::blake2b256(crypto::view(covered)));
}

MarkRead corrupt(const fs::path& path, const std::string& problem) {
    MarkRead out;
    out.state = MarkState::Corrupt;
    out.error = path.string() + ": " + problem;
    return out;
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
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
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) {
            MarkRead out;
            out.state = MarkState::Missing;
            out.error = path.string() + ": no signing high-water mark file";
            return out;
        }
        return corrupt(path, "cannot open: " + errno_text(err));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        return corrupt(path, "cannot stat: " + errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return corrupt(path, "not a regular file");
    }
    if (static_cast<std::uintmax_t>(st.st_size) > kHighWaterFileBytesMax) {
        ::close(fd);
        return corrupt(path, "too large (" + std::to_string(st.st_size) + " bytes, at most " +
                                 std::to_string(kHighWaterFileBytesMax) +
                                 "); not a high-water mark file");
    }
    // Read at most one byte past the limit, in case the file grew after fstat.
    std::string text(kHighWaterFileBytesMax + 1, '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            return corrupt(path, "read failed: " + errno_text(err));
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got > kHighWaterFileBytesMax) return corrupt(path, "too large; not a high-water mark file");
    text.resize(got);

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
    const std::string contents = format_high_water(epoch);
    fs::path dir = path.parent_path();
    if (dir.empty()) dir = ".";

    std::string temp_name = path.string() + ".tmp-XXXXXX";
    const int fd = ::mkostemp(temp_name.data(), O_CLOEXEC);  // mode 0600
    if (fd < 0) return path.string() + ": cannot create temporary file: " + errno_text(errno);
    std::optional<std::string> problem;
    if (!write_all(fd, contents)) {
        problem = temp_name + ": write failed: " + errno_text(errno);
    } else if (::fchmod(fd, 0600) != 0) {
        problem = temp_name + ": chmod 600 failed: " + errno_text(errno);
    } else if (::fsync(fd) != 0) {
        problem = temp_name + ": fsync failed: " + errno_text(errno);
    }
    if (::close(fd) != 0 && !problem) problem = temp_name + ": close failed: " + errno_text(errno);
    if (problem) {
        ::unlink(temp_name.c_str());
        return problem;
    }
    if (::rename(temp_name.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp_name.c_str());
        return path.string() + ": cannot replace (rename from " + temp_name +
               "): " + errno_text(err);
    }
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        return dir.string() +
               ": cannot open directory to sync the high-water mark: " + errno_text(errno);
    }
    const int rc = ::fsync(dir_fd);
    const int err = errno;
    ::close(dir_fd);
    if (rc != 0) {
        return dir.string() + ": fsync of directory failed after writing " + path.string() + ": " +
               errno_text(err);
    }
    return std::nullopt;
}

}  // namespace tob::daemon
