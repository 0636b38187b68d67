#pragma once
// tobctl subcommands. Each add_* registers one subcommand (or a family) on the
// app; when it runs, its process exit code is stored in `exit_code`:
//   0 success, 1 failure (the reason is printed), 2 not implemented yet.

#include <CLI/CLI.hpp>
#include <string_view>

namespace tob::cli {

void add_testnet(CLI::App& app, int& exit_code);
void add_keygen(CLI::App& app, int& exit_code);
void add_client_commands(CLI::App& app, int& exit_code);  // put, get, del, cas
void add_status(CLI::App& app, int& exit_code);
void add_bench(CLI::App& app, int& exit_code);

/// Exit code of a subcommand whose shape exists but whose body does not yet.
inline constexpr int kExitNotImplemented = 2;

/// Prints "tobctl <command>: not implemented yet" to stderr; returns kExitNotImplemented.
int not_implemented(std::string_view command);

}  // namespace tob::cli
