// tobctl keygen: one Ed25519 key in a 0600 key file.

#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "crypto/hash.h"
#include "crypto/keyfile.h"
#include "crypto/sign.h"

namespace tob::cli {

namespace {

struct KeygenArgs {
    std::string out;
    bool force = false;
};

int run_keygen(const KeygenArgs& args) {
    const crypto::SigningKey key = crypto::SigningKey::generate();
    if (auto error = crypto::write_signing_key(args.out, key, args.force)) {
        const bool exists = error->message.find("already exists") != std::string::npos;
        std::cerr << "tobctl keygen: " << error->message
                  << (exists ? " (use --force to replace it)" : "") << "\n";
        return 1;
    }
    std::cout << crypto::to_hex(key.public_key()) << "\n";
    return 0;
}

}  // namespace

void add_keygen(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<KeygenArgs>();
    CLI::App* cmd =
        app.add_subcommand("keygen", "Write a new Ed25519 key (mode 0600); print its public key");
    cmd->add_option("--out,-o", args->out, "Key file to create")->required();
    cmd->add_flag("--force", args->force, "Replace the file if it exists");
    cmd->callback([args, &exit_code] { exit_code = run_keygen(*args); });
}

}  // namespace tob::cli
