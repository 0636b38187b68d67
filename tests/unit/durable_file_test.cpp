// The durable-file helper (crypto/durable_file.h): what each write mode may and
// may not do to an existing file, the forced mode, no temp file left behind, and
// the refusals of the bounded read.

#include "crypto/durable_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/unit/test_util.h"

namespace tob::crypto {
namespace {

namespace fs = std::filesystem;
using test_util::read_all;

unsigned mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
}

std::size_t entries_in(const fs::path& dir) {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++count;
    return count;
}

DurableWriteOptions create_new(mode_t permissions) {
    DurableWriteOptions options;
    options.mode = DurableWriteOptions::Mode::CreateNew;
    options.permissions = permissions;
    return options;
}

TEST(DurableFile, replace_swaps_the_contents_and_leaves_no_temp_file) {
    test_util::TempDir tmp;
    const fs::path path = tmp.path() / "mark";
    ASSERT_FALSE(write_file_durably(path, "first\n"));
    ASSERT_FALSE(write_file_durably(path, "second\n"));
    EXPECT_EQ(read_all(path), "second\n");
    EXPECT_EQ(entries_in(tmp.path()), 1u);  // no "mark.tmp-XXXXXX" beside it
}

TEST(DurableFile, the_mode_is_forced_whatever_the_umask) {
    test_util::TempDir tmp;
    const mode_t old_umask = ::umask(0);  // would leave 0666 on a plain open()
    const auto replaced = write_file_durably(tmp.path() / "secret", "x");
    const auto created = write_file_durably(tmp.path() / "config", "y", create_new(0644));
    ::umask(077);  // would take the group and world bits off 0644
    const auto created_strict = write_file_durably(tmp.path() / "shared", "z", create_new(0644));
    ::umask(old_umask);
    ASSERT_FALSE(replaced);
    ASSERT_FALSE(created);
    ASSERT_FALSE(created_strict);
    EXPECT_EQ(mode_of(tmp.path() / "secret"), 0600u);
    EXPECT_EQ(mode_of(tmp.path() / "config"), 0644u);
    EXPECT_EQ(mode_of(tmp.path() / "shared"), 0644u);
}

TEST(DurableFile, create_new_never_replaces_nor_follows_a_symlink) {
    test_util::TempDir tmp;
    const fs::path path = tmp.path() / "node.key";
    test_util::write_all(path, "old key");
    auto refused = write_file_durably(path, "new key", create_new(0600));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->err, EEXIST);
    EXPECT_NE(refused->message.find(path.string()), std::string::npos) << refused->message;
    EXPECT_EQ(read_all(path), "old key");

    const fs::path target = tmp.path() / "elsewhere";
    const fs::path link = tmp.path() / "planted";
    fs::create_symlink(target, link);
    EXPECT_TRUE(write_file_durably(link, "secret", create_new(0600)));
    EXPECT_FALSE(fs::exists(target));
}

// A second tobctl creating the same default client key read it while the first
// had created the name but not yet written it, and failed with "empty file"
// (seen in a clean-clone run of cluster_kill_restart_under_load). The name must
// appear only with its whole contents. A reader spins on the name while the file
// is created; over many rounds it must never see it empty or partial.
TEST(DurableFile, create_new_never_shows_a_reader_an_empty_or_partial_file) {
    test_util::TempDir tmp;
    const std::string contents(600, 'k');
    int early = 0;
    for (int round = 0; round < 300; ++round) {
        const fs::path path = tmp.path() / ("key-" + std::to_string(round));
        std::atomic<bool> go{false};
        std::string seen;
        std::thread reader([&] {
            while (!go.load()) {
            }
            for (;;) {
                std::string out;
                auto problem = read_small_file(path, 4096, out, {});
                if (!problem) {
                    seen = out;
                    return;
                }
                if (problem->kind != SmallFileError::Kind::Missing) {
                    seen = "error: " + problem->problem;
                    return;
                }
            }
        });
        go.store(true);
        ASSERT_FALSE(write_file_durably(path, contents, create_new(0600)));
        reader.join();
        if (seen != contents) ++early;
    }
    EXPECT_EQ(early, 0) << "rounds in which the reader saw the file before its contents";
}

TEST(DurableFile, a_failed_write_names_the_file_and_leaves_nothing) {
    test_util::TempDir tmp;
    const fs::path path = tmp.path() / "missing-dir" / "file";
    auto replace_failed = write_file_durably(path, "x");
    ASSERT_TRUE(replace_failed);
    EXPECT_NE(replace_failed->message.find(path.string()), std::string::npos);
    auto create_failed = write_file_durably(path, "x", create_new(0600));
    ASSERT_TRUE(create_failed);
    EXPECT_EQ(create_failed->err, ENOENT);
    EXPECT_EQ(entries_in(tmp.path()), 0u);
}

TEST(DurableFile, fsync_dir_reports_a_missing_directory) {
    test_util::TempDir tmp;
    EXPECT_FALSE(fsync_dir(tmp.path()));
    auto problem = fsync_dir(tmp.path() / "absent");
    ASSERT_TRUE(problem);
    EXPECT_NE(problem->find("absent"), std::string::npos);
}

TEST(SmallFile, reads_a_file_up_to_the_limit_exactly) {
    test_util::TempDir tmp;
    const fs::path path = tmp.path() / "f";
    test_util::write_all(path, std::string(16, 'a'));
    std::string text;
    ASSERT_FALSE(read_small_file(path, 16, text));
    EXPECT_EQ(text, std::string(16, 'a'));
}

TEST(SmallFile, refuses_missing_oversized_and_non_regular_files) {
    test_util::TempDir tmp;
    std::string text;
    auto missing = read_small_file(tmp.path() / "absent", 16, text);
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->kind, SmallFileError::Kind::Missing);

    const fs::path big = tmp.path() / "big";
    test_util::write_all(big, std::string(17, 'a'));
    auto too_large = read_small_file(big, 16, text);
    ASSERT_TRUE(too_large);
    EXPECT_EQ(too_large->kind, SmallFileError::Kind::TooLarge);
    EXPECT_EQ(too_large->size, 17u);

    auto directory = read_small_file(tmp.path(), 16, text);
    ASSERT_TRUE(directory);
    EXPECT_EQ(directory->kind, SmallFileError::Kind::NotRegular);
}

TEST(SmallFile, the_stat_check_refuses_before_anything_is_read) {
    test_util::TempDir tmp;
    const fs::path path = tmp.path() / "key";
    test_util::write_all(path, "secret");
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    std::string text = "untouched";
    auto refused = read_small_file(path, 4096, text, [](const struct stat& st) {
        return (st.st_mode & 077) != 0 ? std::optional<std::string>("group-readable")
                                       : std::nullopt;
    });
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->kind, SmallFileError::Kind::Refused);
    EXPECT_EQ(refused->problem, "group-readable");
    EXPECT_EQ(text, "untouched");
}

}  // namespace
}  // namespace tob::crypto
