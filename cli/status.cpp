// tobctl status — per node: epoch, peers, pool, last commit, faults seen.
//
// STUB: not implemented yet (needs the daemon's admin service); exits with 2.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"

namespace tob::cli {

namespace {

struct StatusArgs {
    std::string cluster;
    std::optional<std::uint32_t> node;  // default: every node
    bool json = false;
};

}  // namespace

void add_status(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<StatusArgs>();
    CLI::App* cmd = app.add_subcommand(
        "status",
        "Epoch, peers, pool, last commit and faults seen, per node (not implemented yet)");
    cmd->add_option("--cluster", args->cluster, "Cluster file (cluster.toml)")->required();
    cmd->add_option("--node", args->node, "Ask only node I (default: every node)");
    cmd->add_flag("--json", args->json, "Print JSON");
    cmd->callback([&exit_code] { exit_code = not_implemented("status"); });
}

}  // namespace tob::cli
