// tobctl's shared options (cli/options.h) on the real command line (cli/app.cpp):
// every command that talks to a cluster takes --cluster before or after its
// name, falls back to $TOBCTL_CLUSTER, refuses two different values, and says
// what to do when there is none. No cluster runs here: the cluster file given
// does not exist, and the command's error names the file it tried to load,
// which is exactly the choice under test (tests/cluster/tobctl_options.py runs
// the same forms against a live testnet).

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "crypto/hash.h"

namespace tob::cli {
namespace {

/// Sets or unsets an environment variable for one test, restoring it after.
class EnvVar {
  public:
    EnvVar(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) saved_ = std::string(old);
        if (value != nullptr) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~EnvVar() {
        if (saved_) {
            ::setenv(name_, saved_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }
    EnvVar(const EnvVar&) = delete;
    EnvVar& operator=(const EnvVar&) = delete;

  private:
    const char* name_;
    std::optional<std::string> saved_;
};

struct Outcome {
    int exit_code = 0;
    std::string err;  // what the command printed on stderr (or the parse error)
};

/// Runs tobctl's app on `args` (without the program name) in this process.
Outcome tobctl(std::vector<std::string> args) {
    crypto::init();
    CLI::App app{"tobctl"};
    CommonOptions common;
    Outcome run;
    build_app(app, common, run.exit_code);
    std::vector<const char*> argv{"tobctl"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    std::ostringstream captured;
    std::streambuf* old = std::cerr.rdbuf(captured.rdbuf());
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        captured << "parse error: " << e.what();
        run.exit_code = e.get_exit_code();
    }
    std::cerr.rdbuf(old);
    run.err = captured.str();
    return run;
}

// Every command that loads a cluster file, with the arguments it needs besides
// --cluster; the command name comes first.
const std::vector<std::vector<std::string>> kClusterCommands = {
    {"put", "k", "v"},          {"get", "k"},
    {"get", "--local", "k"},    {"del", "k"},
    {"cas", "k", "old", "new"}, {"status"},
    {"bench", "--txs", "1"},    {"workload", "--out", "/nonexistent-tobctl-test/history.jsonl"},
};

std::vector<std::string> with_cluster_before(const std::string& file,
                                             const std::vector<std::string>& command) {
    std::vector<std::string> args{"--cluster", file};
    args.insert(args.end(), command.begin(), command.end());
    return args;
}

std::vector<std::string> with_cluster_after(const std::string& file,
                                            const std::vector<std::string>& command) {
    std::vector<std::string> args{command.front(), "--cluster", file};
    args.insert(args.end(), command.begin() + 1, command.end());
    return args;
}

constexpr const char* kBefore = "/nonexistent-tobctl-test/before.toml";
constexpr const char* kAfter = "/nonexistent-tobctl-test/after.toml";
constexpr const char* kFromEnv = "/nonexistent-tobctl-test/env.toml";

TEST(TobctlOptions, ClusterBeforeTheCommandNameIsUsedByEveryCommand) {
    EnvVar env(kClusterEnv, nullptr);
    for (const auto& command : kClusterCommands) {
        const Outcome run = tobctl(with_cluster_before(kBefore, command));
        EXPECT_EQ(run.exit_code, 1) << command.front();
        EXPECT_NE(run.err.find(std::string("tobctl ") + command.front() + ": " + kBefore),
                  std::string::npos)
            << command.front() << ": " << run.err;
    }
}

TEST(TobctlOptions, ClusterAfterTheCommandNameStillWorks) {
    EnvVar env(kClusterEnv, nullptr);
    for (const auto& command : kClusterCommands) {
        const Outcome run = tobctl(with_cluster_after(kAfter, command));
        EXPECT_EQ(run.exit_code, 1) << command.front();
        EXPECT_NE(run.err.find(kAfter), std::string::npos) << command.front() << ": " << run.err;
    }
}

TEST(TobctlOptions, EnvironmentNamesTheDefaultClusterFile) {
    EnvVar env(kClusterEnv, kFromEnv);
    for (const auto& command : kClusterCommands) {
        const Outcome run = tobctl(command);
        EXPECT_EQ(run.exit_code, 1) << command.front();
        EXPECT_NE(run.err.find(kFromEnv), std::string::npos) << command.front() << ": " << run.err;
    }
}

TEST(TobctlOptions, CommandLineBeatsTheEnvironment) {
    EnvVar env(kClusterEnv, kFromEnv);
    for (const auto& command : kClusterCommands) {
        for (const Outcome& run : {tobctl(with_cluster_before(kBefore, command)),
                                   tobctl(with_cluster_after(kAfter, command))}) {
            EXPECT_EQ(run.err.find(kFromEnv), std::string::npos)
                << command.front() << ": " << run.err;
        }
    }
}

TEST(TobctlOptions, DifferentClusterFilesBeforeAndAfterAreRefused) {
    EnvVar env(kClusterEnv, nullptr);
    for (const auto& command : kClusterCommands) {
        auto args = with_cluster_before(kBefore, with_cluster_after(kAfter, command));
        const Outcome run = tobctl(args);
        EXPECT_EQ(run.exit_code, 1) << command.front();
        EXPECT_NE(run.err.find("give it once"), std::string::npos)
            << command.front() << ": " << run.err;
    }
    // The same file in both places is no conflict.
    const Outcome same =
        tobctl(with_cluster_before(kAfter, with_cluster_after(kAfter, {"status"})));
    EXPECT_EQ(same.err.find("give it once"), std::string::npos) << same.err;
    EXPECT_NE(same.err.find(kAfter), std::string::npos) << same.err;
}

TEST(TobctlOptions, NoClusterFileSaysHowToGiveOne) {
    EnvVar env(kClusterEnv, nullptr);
    for (const auto& command : kClusterCommands) {
        const Outcome run = tobctl(command);
        EXPECT_EQ(run.exit_code, 1) << command.front();
        EXPECT_NE(run.err.find("--cluster FILE"), std::string::npos) << run.err;
        EXPECT_NE(run.err.find(kClusterEnv), std::string::npos) << run.err;
    }
    // An empty variable counts as unset.
    EnvVar empty(kClusterEnv, "");
    EXPECT_NE(tobctl({"status"}).err.find("no cluster file"), std::string::npos);
}

TEST(TobctlOptions, KeyFileBeforeAndAfterMustAgree) {
    EnvVar env(kClusterEnv, nullptr);
    const Outcome run = tobctl({"--key-file", "/tmp/a.key", "put", "--key-file", "/tmp/b.key",
                                "--cluster", kAfter, "k", "v"});
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.err.find("--key-file is given before the command name"), std::string::npos)
        << run.err;
}

TEST(TobctlOptions, ChooseMergesTheTwoPlaces) {
    EXPECT_EQ(choose("--x", "", "").value, "");
    EXPECT_EQ(choose("--x", "a", "").value, "a");
    EXPECT_EQ(choose("--x", "", "b").value, "b");
    EXPECT_EQ(choose("--x", "a", "a").value, "a");
    EXPECT_FALSE(choose("--x", "a", "b").ok());
    EXPECT_EQ(choose_cluster_file("", "", "e").value, "e");
    EXPECT_EQ(choose_cluster_file("a", "", "e").value, "a");
    EXPECT_EQ(choose_cluster_file("", "b", "e").value, "b");
    EXPECT_FALSE(choose_cluster_file("", "", nullptr).ok());
    EXPECT_FALSE(choose_cluster_file("", "", "").ok());
    EXPECT_FALSE(choose_cluster_file("a", "b", "e").ok());
}

TEST(TobctlOptions, HelpNamesTheEnvironmentAndBothPlaces) {
    CLI::App app{"tobctl"};
    CommonOptions common;
    int exit_code = 0;
    build_app(app, common, exit_code);
    const std::string help = app.help();
    EXPECT_NE(help.find("TOBCTL_CLUSTER"), std::string::npos) << help;
    EXPECT_NE(help.find("TOBCTL_KEY_FILE"), std::string::npos) << help;
    EXPECT_NE(help.find("--cluster"), std::string::npos) << help;
    EXPECT_NE(help.find("may also follow the command name"), std::string::npos) << help;
}

}  // namespace
}  // namespace tob::cli
