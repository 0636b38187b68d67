#pragma once
// Small files that must survive a crash: key files, the signing high-water mark,
// the damage marker of a data dir, the files of a testnet. One implementation of
// the POSIX steps every one of them needs, so that none of them forgets one:
//
//   write_file_durably  Replace: write a temp file "<path>.tmp-XXXXXX" in the same
//                       directory, force its mode, fsync it, rename it over path,
//                       fsync the directory. A crash leaves the old file or the
//                       new one (and perhaps a stray temp file, which is harmless).
//                       CreateNew: write and fsync a temp file the same way, then
//                       link() it to path, which fails if anything is there (never
//                       replaces a file, never follows a symlink planted there,
//                       like O_EXCL), remove the temp name, fsync the directory.
//                       The name appears only with its whole contents: a
//                       concurrent reader or a crash never sees an empty or
//                       partial file. (Without hard links: O_EXCL create, write,
//                       fsync.)
//   read_small_file     reads a regular file of at most max_bytes, refusing a
//                       larger one unread (a file that grows while it is read is
//                       refused too), into a buffer the caller owns (so a caller
//                       holding secrets can wipe it).
//
// It lives in crypto/ because crypto is the lowest library (key files use it) and
// the daemon links it; it holds no cryptography. Errors are returned as text that
// names the file and the problem, never thrown.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace tob::crypto {

/// Writes all of `data` to `fd`, retrying after EINTR and short writes. On false,
/// errno says why.
bool write_all(int fd, std::string_view data);

/// fsyncs the directory `dir` ("." when empty), so that a file created, renamed
/// or removed in it stays so after a crash. Returns "<dir>: <problem>" on failure.
std::optional<std::string> fsync_dir(const std::filesystem::path& dir);

struct FileWriteError {
    int err = 0;          // the errno of the failed call (EEXIST: CreateNew found a file)
    std::string message;  // "<file>: <problem>: <strerror>"
};

struct DurableWriteOptions {
    enum class Mode { Replace, CreateNew };
    Mode mode = Mode::Replace;
    mode_t permissions = 0600;  // set with fchmod, whatever the umask
};

/// Writes `contents` to `path` as described at the top of this file. nullopt once
/// the file and its directory entry are on disk.
std::optional<FileWriteError> write_file_durably(const std::filesystem::path& path,
                                                 std::string_view contents,
                                                 const DurableWriteOptions& options = {});

struct SmallFileError {
    enum class Kind {
        Missing,     // no such file (ENOENT)
        Refused,     // the caller's check refused the file's stat (message is its reason)
        NotRegular,  // a directory, device, socket, ...
        TooLarge,    // more than max_bytes (size says how many when known, else 0)
        Io,          // open, fstat or read failed (message carries strerror)
    };
    Kind kind = Kind::Io;
    std::uintmax_t size = 0;
    std::string problem;  // without the path, e.g. "read failed: Permission denied"
};

/// Optional check of the opened file's stat before anything is read (e.g. "mode
/// must be 0600"): a returned text refuses the file (Kind::Refused).
using StatCheck = std::function<std::optional<std::string>(const struct stat&)>;

/// Reads the regular file `path` into `out`, which ends up holding exactly the
/// file's bytes. `out` is sized from the file's size and never grows past
/// max_bytes + 1: a caller that reserved that much beforehand (e.g. for secrets
/// it wipes) gets no reallocation, so no copy of the bytes is left behind. On an
/// error its contents are unspecified.
std::optional<SmallFileError> read_small_file(const std::filesystem::path& path,
                                              std::size_t max_bytes, std::string& out,
                                              const StatCheck& check = {});

}  // namespace tob::crypto
