// tobctl bench — load generator; prints JSON: committed tx/s, latency p50/p99.
//
// STUB: not implemented yet (needs the client path); exits with 2.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"

namespace tob::cli {

namespace {

struct BenchArgs {
    std::string cluster;
    std::uint32_t clients = 4;          // concurrent clients, each with its own key
    std::uint64_t txs = 10000;          // requests in total
    std::uint32_t size = 100;           // bytes per value
    std::uint32_t ops_per_request = 1;  // operations batched under one signature
    std::optional<std::uint32_t> node;  // send everything to node I (default: spread)
};

}  // namespace

void add_bench(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand("bench",
                                       "Load generator; prints JSON with committed tx/s and "
                                       "latency p50/p99 (not implemented yet)");
    cmd->add_option("--cluster", args->cluster, "Cluster file (cluster.toml)")->required();
    cmd->add_option("--clients", args->clients, "Concurrent clients")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--txs", args->txs, "Requests to commit in total")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--size", args->size, "Value size in bytes")->capture_default_str();
    cmd->add_option("--ops-per-request", args->ops_per_request, "Operations per signed request")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--node", args->node,
                    "Send every request to node I (default: spread over nodes)");
    cmd->callback([&exit_code] { exit_code = not_implemented("bench"); });
}

}  // namespace tob::cli
