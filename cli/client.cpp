// tobctl put | get | del | cas — client requests (DESIGN.md §3, §4).
//
// STUB: the option shape is final enough to script against, but the bodies are
// not implemented yet (they need the daemon's client service). Each returns exit
// code 2 with "not implemented yet".
//
// Intended behaviour: build one request {chain_id, client_pk, nonce, ops, sig}
// signed with the client key (a 0600 file, created on first use), send it to a
// node's ROUTER endpoint from the cluster file, wait for the committed output
// (epoch, position, outputs) signed by the node; with --quorum, wait for t+1
// matching signed replies from different nodes. `get --local` reads one node's
// committed state instead of going through the log.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"

namespace tob::cli {

namespace {

struct ClientArgs {
    std::string cluster;                // cluster file (endpoints, keys, chain id)
    std::string key_file;               // client key; created (0600) on first use
    std::optional<std::uint32_t> node;  // node to contact; default: any
    bool quorum = false;
    bool local = false;  // get only
    bool json = false;
    std::string key;
    std::string value;
    std::string expected;
    std::string new_value;
};

void add_common_options(CLI::App* cmd, ClientArgs& args) {
    cmd->add_option("--cluster", args.cluster, "Cluster file (cluster.toml)")->required();
    cmd->add_option("--key-file", args.key_file,
                    "Client key file (mode 0600; created on first use)");
    cmd->add_option("--node", args.node, "Send to node I (default: any node, retrying at others)");
    cmd->add_flag("--quorum", args.quorum,
                  "Wait for t+1 matching signed replies from different nodes");
    cmd->add_flag("--json", args.json, "Print the result as JSON");
}

}  // namespace

void add_client_commands(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<ClientArgs>();

    CLI::App* put = app.add_subcommand("put", "Set KEY to VALUE (not implemented yet)");
    add_common_options(put, *args);
    put->add_option("key", args->key, "Key")->required();
    put->add_option("value", args->value, "Value")->required();
    put->callback([&exit_code] { exit_code = not_implemented("put"); });

    CLI::App* get = app.add_subcommand("get", "Read KEY (not implemented yet)");
    add_common_options(get, *args);
    get->add_flag("--local", args->local,
                  "Read one node's committed state instead of ordering the read");
    get->add_option("key", args->key, "Key")->required();
    get->callback([&exit_code] { exit_code = not_implemented("get"); });

    CLI::App* del = app.add_subcommand("del", "Delete KEY (not implemented yet)");
    add_common_options(del, *args);
    del->add_option("key", args->key, "Key")->required();
    del->callback([&exit_code] { exit_code = not_implemented("del"); });

    CLI::App* cas =
        app.add_subcommand("cas", "Set KEY to NEW if its value is EXPECTED (not implemented yet)");
    add_common_options(cas, *args);
    cas->add_option("key", args->key, "Key")->required();
    cas->add_option("expected", args->expected, "Expected current value")->required();
    cas->add_option("new", args->new_value, "New value")->required();
    cas->callback([&exit_code] { exit_code = not_implemented("cas"); });
}

}  // namespace tob::cli
