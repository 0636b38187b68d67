// tobctl keygen: one Ed25519 key (or, with --curve, one Curve key pair for a
// node's transport) in a 0600 key file.

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
    bool curve = false;
};

int report_error(const crypto::KeyFileError& error) {
    const bool exists = error.message.find("already exists") != std::string::npos;
    std::cerr << "tobctl keygen: " << error.message
              << (exists ? " (use --force to replace it)" : "") << "\n";
    return 1;
}

int run_keygen(const KeygenArgs& args) {
    if (args.curve) {
        const crypto::CurveKeyPair key = crypto::CurveKeyPair::generate();
        if (auto error = crypto::write_curve_key(args.out, key, args.force)) {
            return report_error(*error);
        }
        std::cout << crypto::to_hex(key.public_key()) << "\n";
        return 0;
    }
    const crypto::SigningKey key = crypto::SigningKey::generate();
    if (auto error = crypto::write_signing_key(args.out, key, args.force)) {
        return report_error(*error);
    }
    std::cout << crypto::to_hex(key.public_key()) << "\n";
    return 0;
}

}  // namespace

void add_keygen(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<KeygenArgs>();
    CLI::App* cmd =
        app.add_subcommand("keygen",
                           "Write a new Ed25519 key, or with --curve a Curve key pair (mode "
                           "0600); print its public key");
    cmd->add_option("--out,-o", args->out, "Key file to create")->required();
    cmd->add_flag("--force", args->force, "Replace the file if it exists");
    cmd->add_flag("--curve", args->curve,
                  "A node's Curve key pair (curve.key; its public key is the node's curve_key "
                  "in the cluster file)");
    cmd->callback([args, &exit_code] { exit_code = run_keygen(*args); });
}

}  // namespace tob::cli
