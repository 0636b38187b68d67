// tobctl testnet: the dealer for a local cluster (daemon/testnet.h does the work).

#include "daemon/testnet.h"

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "crypto/hash.h"

namespace tob::cli {

namespace {

struct TestnetArgs {
    std::uint32_t nodes = 4;
    std::string dir;
    std::uint32_t base_port = 7100;
    bool allow_unsafe = false;
    bool force = false;
    std::string hosts;        // "IP0,IP1,..." (default: 127.0.0.1 for every node)
    std::string permissions;  // a permissions file (default: open)
};

int run_testnet(const TestnetArgs& args) {
    daemon::TestnetOptions options;
    options.dir = args.dir;
    options.nodes = args.nodes;
    options.base_port = args.base_port;
    options.allow_unsafe = args.allow_unsafe;
    options.force = args.force;
    if (!args.hosts.empty()) {
        std::string item;
        for (char ch : args.hosts + ",") {
            if (ch == ',') {
                if (!item.empty()) options.hosts.push_back(item);
                item.clear();
            } else {
                item += ch;
            }
        }
    }
    if (!args.permissions.empty()) {
        auto permissions = daemon::load_permissions_file(args.permissions);
        if (!permissions.ok()) {
            for (const auto& error : permissions.errors)
                std::cerr << "tobctl testnet: " << error << "\n";
            return 1;
        }
        options.permissions = std::move(*permissions.value);
    }
    auto written = daemon::write_testnet(options);
    if (!written.ok()) {
        for (const auto& error : written.errors) std::cerr << "tobctl testnet: " << error << "\n";
        return 1;
    }
    const daemon::Testnet& net = *written.value;
    std::cout << "testnet written to " << net.dir.string() << "\n"
              << "  chain id  " << crypto::to_hex(net.chain_id) << "\n"
              << "  n = " << net.n << ", t = " << net.t << ", q = " << net.q << "\n"
              << "  cluster   " << net.cluster_file.string() << "\n";
    if (net.permissions.open) {
        std::cout << "  permissions: OPEN: any client key may read and write every key (a test "
                     "network; --permissions FILE writes a closed table)\n";
    } else {
        std::cout << "  permissions: closed: " << net.permissions.clients.size()
                  << " client key(s) from " << args.permissions << ", each on its key prefixes\n";
    }
    for (const auto& node : net.nodes) {
        std::cout << "  node " << node.id << "    " << node.dir.string() << "  pub "
                  << node.pub_endpoint << "  router " << node.router_endpoint << "  client "
                  << node.client_endpoint << "\n";
    }
    if (net.n < 4) std::cout << "  WARNING: n < 4 tolerates no faulty node (allow_unsafe)\n";
    std::cout << "start node i with: tobd --config "
              << (net.dir / "node<i>" / "config.toml").string() << "\n";
    return 0;
}

}  // namespace

void add_testnet(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<TestnetArgs>();
    CLI::App* cmd = app.add_subcommand(
        "testnet", "Deal keys and write a local cluster: DIR/cluster.toml and DIR/node<i>/");
    cmd->add_option("--nodes,-n", args->nodes, "Number of nodes N (>= 4 unless --allow-unsafe)")
        ->required()
        ->check(CLI::Range(1, 1024));
    cmd->add_option("--dir,-d", args->dir, "Output directory (created if missing)")->required();
    cmd->add_option("--base-port", args->base_port,
                    "Node i uses ports P+2i (PUB), P+2i+1 (member ROUTER) and P+2N+i (client "
                    "ROUTER) on 127.0.0.1")
        ->capture_default_str()
        ->check(CLI::Range(1, 65535));
    cmd->add_option("--hosts", args->hosts,
                    "Comma-separated address of each node (one per node) instead of 127.0.0.1, "
                    "e.g. for one network namespace per node");
    cmd->add_option("--permissions", args->permissions,
                    "A TOML file with a [permissions] table (open = false and "
                    "[[permissions.client]] grants) for the cluster file; default: open")
        ->check(CLI::ExistingFile);
    cmd->add_flag(
        "--allow-unsafe", args->allow_unsafe,
        "Allow N < 4 (t = 0: no fault tolerated); the cluster file records allow_unsafe = true");
    cmd->add_flag(
        "--force", args->force,
        "Replace a testnet already in DIR (removes DIR/cluster.toml and DIR/node<i>/ only)");
    cmd->callback([args, &exit_code] { exit_code = run_testnet(*args); });
}

}  // namespace tob::cli
