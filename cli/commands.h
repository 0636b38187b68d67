#pragma once
// tobctl subcommands. Each add_* registers one subcommand (or a family) on the
// app; when it runs, its process exit code is stored in `exit_code`:
//   0 success, 1 failure (the reason is printed), 2 not implemented yet,
//   3 `tobctl cas` ran but the comparison failed (nothing was written).

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/config.h"

namespace tob::cli {

void add_testnet(CLI::App& app, int& exit_code);
void add_keygen(CLI::App& app, int& exit_code);
void add_client_commands(CLI::App& app, int& exit_code);  // put, get, del, cas
void add_status(CLI::App& app, int& exit_code);
void add_bench(CLI::App& app, int& exit_code);
void add_workload(CLI::App& app, int& exit_code);  // history-recording KV workload

/// Exit code of a subcommand whose shape exists but whose body does not yet.
inline constexpr int kExitNotImplemented = 2;
/// Exit code of `tobctl cas` when the request committed but the value differed.
inline constexpr int kExitCasFailed = 3;

/// Prints "tobctl <command>: not implemented yet" to stderr; returns kExitNotImplemented.
int not_implemented(std::string_view command);

/// Loads a cluster file; on failure prints "tobctl <command>: <error>" per error
/// to stderr and returns nullopt.
std::optional<daemon::ClusterConfig> load_cluster_for(std::string_view command,
                                                      const std::string& path);

}  // namespace tob::cli
