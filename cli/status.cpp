// tobctl status — per node: epoch, applied epoch, peers, pool, faults seen,
// voting, state digest (docs/client.md).
//
// Every node (or only --node I) is asked at once with a StatusQuery on the client
// plane; a node that does not answer within --timeout is shown as down. Exit code
// 0 when at least one node answered, 1 otherwise.

#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/client/client.h"
#include "cli/client/format.h"
#include "cli/commands.h"
#include "crypto/hash.h"

namespace tob::cli {

using namespace tob::client;

namespace {

struct StatusArgs {
    std::string cluster;
    std::string key_file;               // client key (only read, never created)
    std::optional<std::uint32_t> node;  // default: every node
    bool json = false;
    double timeout_s = 1.0;
};

std::string short_digest(const Digest& d) { return crypto::to_hex(d).substr(0, 16); }

std::string state_of(const StatusMsg& s) {
    return s.halted ? "halted" : s.snapshot_active ? "snapshot" : "up";
}

std::uint64_t snapshot_percent(const StatusMsg& s) {
    if (s.snapshot_bytes_total == 0) return s.snapshot_epoch ? 100 : 0;
    return s.snapshot_bytes_done * 100 / s.snapshot_bytes_total;
}

std::string mb(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / 1e6);
    return buf;
}

void print_json(const std::vector<NodeId>& nodes, const std::vector<Result<StatusMsg>>& results) {
    std::ostringstream j;
    j << "[";
    for (std::size_t k = 0; k < nodes.size(); ++k) {
        j << (k ? ",\n " : "") << "{\"node\": " << nodes[k];
        const auto& r = results[k];
        if (!r.ok()) {
            j << ", \"up\": false, \"error\": " << json_string(r.error) << "}";
            continue;
        }
        const StatusMsg& s = *r.value;
        j << ", \"up\": true, \"reported_node\": " << s.node
          << ", \"version\": " << json_string(s.version) << ", \"epoch\": " << s.epoch
          << ", \"applied\": " << s.applied << ", \"peers\": " << s.peers_connected
          << ", \"pool\": " << s.pool << ", \"faults\": " << s.faults
          << ", \"voting\": " << (s.voting ? "true" : "false")
          << ", \"halted\": " << (s.halted ? "true" : "false") << ", \"uptime_s\": " << s.uptime_s
          << ", \"checkpoint\": " << s.checkpoint << ", \"pruned_below\": " << s.pruned_below
          << ", \"snapshot\": {\"active\": " << (s.snapshot_active ? "true" : "false")
          << ", \"epoch\": " << s.snapshot_epoch << ", \"bytes_total\": " << s.snapshot_bytes_total
          << ", \"bytes_done\": " << s.snapshot_bytes_done
          << ", \"percent\": " << snapshot_percent(s) << ", \"eta_s\": " << s.snapshot_eta_s
          << ", \"chunks_rejected\": " << s.snapshot_chunks_rejected << "}"
          << ", \"state_digest\": \"" << crypto::to_hex(s.state_digest) << "\"}";
    }
    j << "]";
    std::cout << j.str() << "\n";
}

void print_table(const std::vector<NodeId>& nodes, const std::vector<Result<StatusMsg>>& results) {
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"node", "state", "epoch", "applied", "checkpoint", "peers", "pool", "faults",
                    "voting", "state digest"});
    std::vector<std::string> notes;
    for (std::size_t k = 0; k < nodes.size(); ++k) {
        const auto& r = results[k];
        if (!r.ok()) {
            rows.push_back(
                {std::to_string(nodes[k]), "down", "-", "-", "-", "-", "-", "-", "-", "-"});
            notes.push_back("node " + std::to_string(nodes[k]) + ": " + r.error);
            continue;
        }
        const StatusMsg& s = *r.value;
        rows.push_back({std::to_string(nodes[k]), state_of(s), std::to_string(s.epoch),
                        std::to_string(s.applied), std::to_string(s.checkpoint),
                        std::to_string(s.peers_connected), std::to_string(s.pool),
                        std::to_string(s.faults), s.voting ? "yes" : "no",
                        short_digest(s.state_digest)});
        if (s.snapshot_active) {
            notes.push_back("node " + std::to_string(nodes[k]) + ": installing a snapshot" +
                            (s.snapshot_epoch
                                 ? " of checkpoint " + std::to_string(s.snapshot_epoch) + ": " +
                                       std::to_string(snapshot_percent(s)) + "% (" +
                                       mb(s.snapshot_bytes_done) + " of " +
                                       mb(s.snapshot_bytes_total) + " MB), ETA " +
                                       (s.snapshot_eta_s ? std::to_string(s.snapshot_eta_s) + " s"
                                                         : std::string("unknown"))
                                 : std::string(": asking peers for a checkpoint")));
        }
        if (s.node != nodes[k]) {
            notes.push_back("node " + std::to_string(nodes[k]) + ": reports itself as node " +
                            std::to_string(s.node) + " (configuration mismatch?)");
        }
    }
    std::vector<std::size_t> width(rows.front().size(), 0);
    for (const auto& row : rows) {
        for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t c = 0; c < row.size(); ++c) {
            std::string cell = row[c];
            if (c + 1 < row.size()) cell.resize(width[c] + 2, ' ');
            line += cell;
        }
        std::cout << line << "\n";
    }
    for (const std::string& note : notes) std::cerr << "tobctl status: " << note << "\n";
}

int run_status(StatusArgs args, const CommonOptions& common) {
    args.json = args.json || common.json;  // --json before the command name
    auto cluster = load_cluster_for("status", args.cluster, common);
    if (!cluster) return 1;
    std::vector<NodeId> nodes;
    if (args.node) {
        if (*args.node >= cluster->n) {
            std::cerr << "tobctl status: --node " << *args.node
                      << " is not a member (n = " << cluster->n << ")\n";
            return 1;
        }
        nodes.push_back(static_cast<NodeId>(*args.node));
    } else {
        for (std::uint32_t i = 0; i < cluster->n; ++i) nodes.push_back(static_cast<NodeId>(i));
    }
    // Status queries are not signed, but the client endpoint admits only the keys the
    // cluster's permissions allow (any key when they are open): use the client key
    // when there is one (--key-file, else the default path), never creating it.
    const Chosen key_file = choose("--key-file", args.key_file, common.key_file);
    if (!key_file.ok()) {
        std::cerr << "tobctl status: " << key_file.error << "\n";
        return 1;
    }
    std::optional<std::filesystem::path> path;
    if (!key_file.value.empty()) {
        path = key_file.value;
    } else {
        path = default_client_key_path();
    }
    std::optional<crypto::SigningKey> key;
    if (path) {
        auto loaded = load_client_key_if_present(*path);
        if (!loaded.ok()) {
            std::cerr << "tobctl status: " << loaded.error << "\n";
            return 1;
        }
        key = *loaded.value;
    }
    Client client(*cluster, key ? *key : crypto::SigningKey::generate());
    const auto results =
        client.status_all(nodes, Millis(static_cast<std::int64_t>(args.timeout_s * 1000 + 0.5)));
    if (args.json) {
        print_json(nodes, results);
    } else {
        print_table(nodes, results);
    }
    for (const auto& r : results) {
        if (r.ok()) return 0;
    }
    return 1;
}

}  // namespace

void add_status(CLI::App& app, const CommonOptions& common, int& exit_code) {
    auto args = std::make_shared<StatusArgs>();
    CLI::App* cmd = app.add_subcommand(
        "status", "Epoch, applied epoch, peers, pool, faults, voting and state digest, per node");
    add_cluster_option(cmd, args->cluster);
    add_key_file_option(cmd, args->key_file);
    cmd->add_option("--node", args->node, "Ask only node I (default: every node)");
    add_json_flag(cmd, args->json, "Print JSON (an array with one object per node)");
    cmd->add_option("--timeout", args->timeout_s, "Seconds to wait for answers")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->callback([args, &common, &exit_code] { exit_code = run_status(*args, common); });
}

}  // namespace tob::cli
