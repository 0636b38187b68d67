// tobctl: testnet and key generation, client commands, status, bench.
// One subcommand per file; this file only assembles the CLI11 app.

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "cli/commands.h"
#include "crypto/hash.h"
#include "daemon/version.h"

namespace tob::cli {

int not_implemented(std::string_view command) {
    std::cerr << "tobctl " << command << ": not implemented yet\n";
    return kExitNotImplemented;
}

std::optional<daemon::ClusterConfig> load_cluster_for(std::string_view command,
                                                      const std::string& path) {
    auto loaded = daemon::load_cluster_config(path);
    if (loaded.ok()) return std::move(*loaded.value);
    for (const std::string& e : loaded.errors)
        std::cerr << "tobctl " << command << ": " << e << "\n";
    if (loaded.errors.empty()) {
        std::cerr << "tobctl " << command << ": " << path << ": cannot load the cluster file\n";
    }
    return std::nullopt;
}

}  // namespace tob::cli

int main(int argc, char** argv) {
    tob::crypto::init();
    CLI::App app{"tobctl: create tobd testnets and keys, talk to a tobd cluster"};
    app.set_version_flag("--version", std::string("tobctl ") + tob::daemon::version());
    app.require_subcommand(1);

    int exit_code = 0;
    tob::cli::add_testnet(app, exit_code);
    tob::cli::add_keygen(app, exit_code);
    tob::cli::add_client_commands(app, exit_code);
    tob::cli::add_status(app, exit_code);
    tob::cli::add_bench(app, exit_code);
    tob::cli::add_workload(app, exit_code);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::cerr << "tobctl: error: " << e.what() << "\n";
        return 1;
    }
    return exit_code;
}
