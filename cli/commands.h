#pragma once
// tobctl subcommands. Each add_* registers one subcommand (or a family) on the
// app; when it runs, its process exit code is stored in `exit_code`:
//   0 success, 1 failure (the reason is printed),
//   3 `tobctl cas` ran but the comparison failed (nothing was written).
// Commands that talk to a cluster also read the options given before their name
// (`common`, cli/options.h); it must outlive the parse.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cli/options.h"
#include "daemon/config.h"

namespace tob::cli {

/// Registers the options of cli/options.h and every command below on `app`, plus
/// --version. `common` and `exit_code` must outlive app.parse().
void build_app(CLI::App& app, CommonOptions& common, int& exit_code);

void add_testnet(CLI::App& app, int& exit_code);
void add_keygen(CLI::App& app, int& exit_code);
void add_client_commands(CLI::App& app, const CommonOptions& common,
                         int& exit_code);  // put, get, del, cas
void add_status(CLI::App& app, const CommonOptions& common, int& exit_code);
void add_bench(CLI::App& app, const CommonOptions& common, int& exit_code);
// History-recording KV workload.
void add_workload(CLI::App& app, const CommonOptions& common, int& exit_code);

/// Exit code of `tobctl cas` when the request committed but the value differed.
inline constexpr int kExitCasFailed = 3;

/// Loads the cluster file chosen by choose_cluster_file (--cluster after the
/// command name, before it, or $TOBCTL_CLUSTER); on failure prints
/// "tobctl <command>: <error>" per error to stderr and returns nullopt.
std::optional<daemon::ClusterConfig> load_cluster_for(std::string_view command,
                                                      const std::string& after,
                                                      const CommonOptions& common);

}  // namespace tob::cli
