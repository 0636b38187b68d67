// tobctl: testnet and key generation, client commands, status, bench.
// One subcommand per file; cli/app.cpp assembles them, this file runs the app.

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "cli/commands.h"
#include "crypto/hash.h"

int main(int argc, char** argv) {
    tob::crypto::init();
    CLI::App app{"tobctl: create tobd testnets and keys, talk to a tobd cluster"};
    int exit_code = 0;
    tob::cli::CommonOptions common;
    tob::cli::build_app(app, common, exit_code);
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
