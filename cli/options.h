#pragma once
// The options shared by tobctl's cluster commands, accepted where people type
// them: before the command name (`tobctl --cluster F put k v`) and after it
// (`tobctl put --cluster F k v`). The cluster file also has a default from the
// environment, $TOBCTL_CLUSTER, so a shell session can name it once.
//
// Mechanics: the top-level app and each command register their own --cluster
// (--key-file, --json); CLI11 fills whichever the user typed, and the command,
// which runs after the whole command line is parsed, merges the two with the
// choose_* functions below. Giving an option in both places with different
// values is an error rather than a silent precedence rule.

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

namespace tob::cli {

/// The environment variable naming the default cluster file.
inline constexpr const char* kClusterEnv = "TOBCTL_CLUSTER";

/// The values given before the command name.
struct CommonOptions {
    std::string cluster;   // --cluster FILE
    std::string key_file;  // --key-file FILE
    bool json = false;     // --json
};

/// Registers --cluster, --key-file and --json on the top-level app, and the
/// help footer that names the environment variables.
void add_common_options(CLI::App& app, CommonOptions& before);

/// Registers the command's own --cluster / --key-file / --json (after its name).
CLI::Option* add_cluster_option(CLI::App* cmd, std::string& after);
CLI::Option* add_key_file_option(CLI::App* cmd, std::string& after);
CLI::Option* add_json_flag(CLI::App* cmd, bool& after, const std::string& what);

/// An option's effective value, or why there is none (error non-empty).
struct Chosen {
    std::string value;
    std::string error;
    bool ok() const { return error.empty(); }
};

/// `after` (given after the command name) or `before`; an error when both are
/// given and differ. Empty value when neither is given.
Chosen choose(std::string_view option, const std::string& after, const std::string& before);

/// The cluster file: --cluster after or before the command name, else
/// `env_value` (the value of $TOBCTL_CLUSTER, nullptr when unset); an error
/// when there is none.
Chosen choose_cluster_file(const std::string& after, const std::string& before,
                           const char* env_value);

}  // namespace tob::cli
