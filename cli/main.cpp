// tobctl: testnet and key generation, client commands, status, bench.
// One subcommand per file; this file only assembles the CLI11 app.

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "crypto/hash.h"
#include "daemon/version.h"

namespace tob::cli {

int not_implemented(std::string_view command) {
    std::cerr << "tobctl " << command << ": not implemented yet\n";
    return kExitNotImplemented;
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
