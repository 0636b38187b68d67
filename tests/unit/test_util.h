#pragma once
// Helpers shared by the unit tests that touch files: a private temporary
// directory removed with everything in it, and whole-file reads and writes.

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

namespace tob::test_util {

/// A fresh directory under the system's temp dir (mkdtemp: mode 0700, a unique
/// name starting with `prefix`), removed recursively on destruction.
class TempDir {
  public:
    explicit TempDir(std::string_view prefix = "tobd-test") {
        std::string pattern =
            (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
        const char* made = ::mkdtemp(pattern.data());
        if (made == nullptr) std::abort();
        path_ = made;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

/// The file's bytes ("" when it cannot be read).
inline std::string read_all(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

/// Creates or truncates the file and writes `text` (mode from the umask when new).
inline void write_all(const std::filesystem::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

}  // namespace tob::test_util
