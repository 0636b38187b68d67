#include "crypto/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tob::crypto {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

FileWriteError write_error(const std::string& shown, const std::string& problem, int err) {
    return FileWriteError{err, shown + ": " + problem + ": " + errno_text(err)};
}

// Writes, forces the mode, fsyncs and closes fd (always closed). `shown` names
// the file in errors.
std::optional<FileWriteError> finish_file(int fd, const std::string& shown,
                                          std::string_view contents, mode_t permissions) {
    std::optional<FileWriteError> problem;
    if (!write_all(fd, contents)) {
        problem = write_error(shown, "write failed", errno);
    } else if (::fchmod(fd, permissions) != 0) {
        problem = write_error(shown, "chmod failed", errno);
    } else if (::fsync(fd) != 0) {
        problem = write_error(shown, "fsync failed", errno);
    }
    if (::close(fd) != 0 && !problem) problem = write_error(shown, "close failed", errno);
    return problem;
}

std::optional<FileWriteError> dir_error(std::optional<std::string> problem) {
    if (!problem) return std::nullopt;
    return FileWriteError{EIO, std::move(*problem)};
}

// Writes a synced temp file "<path>.tmp-XXXXXX" beside path with the given
// mode; its name goes to temp_name. On failure nothing is left behind.
std::optional<FileWriteError> write_temp_beside(const fs::path& path, std::string_view contents,
                                                mode_t permissions, std::string& temp_name) {
    temp_name = path.string() + ".tmp-XXXXXX";
    const int fd = ::mkostemp(temp_name.data(), O_CLOEXEC);  // created with mode 0600
    if (fd < 0) return write_error(path.string(), "cannot create a temporary file", errno);
    if (auto problem = finish_file(fd, temp_name, contents, permissions)) {
        ::unlink(temp_name.c_str());
        return problem;
    }
    return std::nullopt;
}

// Writes a temporary file beside `path`, then links it to `path`: link() fails
// with EEXIST if anything (a file, a planted symlink) is there and never follows
// it, like O_EXCL, but the name appears only with its whole, synced contents. (An
// O_EXCL create followed by the write let a concurrent reader, such as a second
// tobctl creating the same default client key, see an empty file, and a crash
// between the two left one.) A file system without hard links falls back to the
// O_EXCL create.
std::optional<FileWriteError> create_new_excl(const fs::path& path, std::string_view contents,
                                              mode_t permissions) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions);
    if (fd < 0) {
        const int err = errno;
        if (err == EEXIST) return FileWriteError{err, path.string() + ": already exists"};
        return write_error(path.string(), "cannot create", err);
    }
    if (auto problem = finish_file(fd, path.string(), contents, permissions)) {
        ::unlink(path.c_str());
        return problem;
    }
    return dir_error(fsync_dir(path.parent_path()));
}

std::optional<FileWriteError> create_new(const fs::path& path, std::string_view contents,
                                         mode_t permissions) {
    std::string temp_name;
    if (auto problem = write_temp_beside(path, contents, permissions, temp_name)) return problem;
    const int rc = ::link(temp_name.c_str(), path.c_str());
    const int err = errno;
    ::unlink(temp_name.c_str());
    if (rc != 0) {
        if (err == EEXIST) return FileWriteError{err, path.string() + ": already exists"};
        if (err == EPERM || err == EOPNOTSUPP || err == ENOSYS)
            return create_new_excl(path, contents, permissions);
        return write_error(path.string(), "cannot create (link from " + temp_name + ")", err);
    }
    return dir_error(fsync_dir(path.parent_path()));
}

std::optional<FileWriteError> replace(const fs::path& path, std::string_view contents,
                                      mode_t permissions) {
    std::string temp_name;
    if (auto problem = write_temp_beside(path, contents, permissions, temp_name)) return problem;
    if (::rename(temp_name.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp_name.c_str());
        return write_error(path.string(), "cannot replace (rename from " + temp_name + ")", err);
    }
    return dir_error(fsync_dir(path.parent_path()));
}

}  // namespace

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

std::optional<std::string> fsync_dir(const fs::path& dir_in) {
    const fs::path dir = dir_in.empty() ? fs::path(".") : dir_in;
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dir.string() + ": cannot open the directory to sync it: " + errno_text(errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return dir.string() + ": fsync of the directory failed: " + errno_text(err);
    return std::nullopt;
}

std::optional<FileWriteError> write_file_durably(const fs::path& path, std::string_view contents,
                                                 const DurableWriteOptions& options) {
    if (options.mode == DurableWriteOptions::Mode::CreateNew) {
        return create_new(path, contents, options.permissions);
    }
    return replace(path, contents, options.permissions);
}

std::optional<SmallFileError> read_small_file(const fs::path& path, std::size_t max_bytes,
                                              std::string& out, const StatCheck& check) {
    const auto fail = [](SmallFileError::Kind kind, std::string problem) {
        return SmallFileError{kind, 0, std::move(problem)};
    };
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) return fail(SmallFileError::Kind::Missing, "no such file");
        return fail(SmallFileError::Kind::Io, "cannot open: " + errno_text(err));
    }
    // Closes fd on every path out of this function.
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};

    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return fail(SmallFileError::Kind::Io, "cannot stat: " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) return fail(SmallFileError::Kind::NotRegular, "not a regular file");
    if (check) {
        if (auto refused = check(st)) return fail(SmallFileError::Kind::Refused, *refused);
    }
    const auto size = static_cast<std::uintmax_t>(st.st_size);
    if (size > max_bytes) {
        return SmallFileError{SmallFileError::Kind::TooLarge, size,
                              "too large (" + std::to_string(size) + " bytes, at most " +
                                  std::to_string(max_bytes) + ")"};
    }
    // Sized from fstat, plus one byte to see a file that grew since; it grows (never
    // past max_bytes + 1, which a caller may have reserved) while it fills up.
    const std::size_t cap = max_bytes + 1;
    out.assign(static_cast<std::size_t>(size) + 1, '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == out.size()) {
            if (out.size() == cap) break;
            out.resize(out.size() > cap / 2 ? cap : out.size() * 2);
        }
        const ssize_t n = ::read(fd, out.data() + used, out.size() - used);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(SmallFileError::Kind::Io, "read failed: " + errno_text(errno));
        }
        if (n == 0) break;
        used += static_cast<std::size_t>(n);
    }
    if (used > max_bytes) {
        return fail(SmallFileError::Kind::TooLarge,
                    "too large (grew past " + std::to_string(max_bytes) + " bytes while read)");
    }
    out.resize(used);
    return std::nullopt;
}

}  // namespace tob::crypto
