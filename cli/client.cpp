// tobctl put | get | del | cas — client requests (docs/client.md; the requests
// themselves: docs/protocol.md, "Client requests").
//
// Each command builds one request with one operation, signs it with the client
// key (a 0600 file, created on first use; see default_client_key_path), takes a
// nonce from the key's counter file, sends it to a node's ROUTER endpoint from
// the cluster file and waits for the committed outcome from the node (its Curve
// connection authenticates the reply), retrying at the next node after
// --attempt-timeout of silence. With --quorum it sends to every node and waits
// for t+1 matching replies from different nodes. `get --local` reads one node's committed state
// instead of ordering a GET.
//
// Output (one line; --json prints one JSON object instead):
//   put, del  ok epoch E position P; with --previous:
//             ok (previous: <value>|absent) epoch E position P
//   get       the value, or "(absent)" (exit code 0 in both cases)
//   cas       ok | failed (current: <value>|absent)     (exit code 3 when failed)
// A value that is not printable UTF-8 is shown as 0x<hex> ({"hex": ...} in JSON).
// Exit code 1 with a message on stderr for every error (timeout, refused,
// malformed, bad arguments).

#include "cli/client/client.h"

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/client/format.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "consensus/codec.h"
#include "crypto/hash.h"
#include "crypto/sign.h"

namespace tob::cli {

using namespace tob::client;

namespace {

struct ClientArgs {
    std::string cluster;                // cluster file (endpoints, keys, chain id)
    std::string key_file;               // client key; created (0600) on first use
    std::optional<std::uint32_t> node;  // node to contact; default: any
    bool quorum = false;
    bool local = false;  // get only
    bool json = false;
    double timeout_s = 60;         // overall deadline
    double attempt_timeout_s = 3;  // silence before trying the next node
    std::string key;
    std::string value;
    std::string expected;
    std::string new_value;
    bool expect_absent = false;  // cas only
    bool previous = false;       // put/del: ask for the previous value
    // Epochs past the newest applied epoch the request may commit (Request::expires).
    std::uint64_t expiry_horizon = kDefaultExpiryHorizon;
};

void add_request_options(CLI::App* cmd, ClientArgs& args) {
    add_cluster_option(cmd, args.cluster);
    add_key_file_option(cmd, args.key_file);
    cmd->add_option("--node", args.node, "Send to node I (default: any node, retrying at others)");
    cmd->add_flag("--quorum", args.quorum, "Wait for t+1 matching replies from different nodes");
    add_json_flag(cmd, args.json, "Print the result as JSON");
    cmd->add_option("--timeout", args.timeout_s, "Give up after this many seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--attempt-timeout", args.attempt_timeout_s,
                    "Seconds without a reply before the request goes to the next node")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--expiry-horizon", args.expiry_horizon,
                    "Epochs past the nodes' applied epoch the request may still commit "
                    "(capped at the cluster's request_expiry_max_epochs)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
}

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

Millis seconds(double s) { return Millis(static_cast<std::int64_t>(s * 1000.0 + 0.5)); }

std::string node_list(const std::vector<NodeId>& nodes) {
    std::string out;
    for (NodeId n : nodes) out += (out.empty() ? "" : ",") + std::to_string(n);
    return out;
}

std::string json_nodes(const std::vector<NodeId>& nodes) { return "[" + node_list(nodes) + "]"; }

std::string prev_text(const std::optional<Bytes>& v) { return v ? display_bytes(*v) : "absent"; }

/// The key file to use: --key-file or the default path.
std::optional<std::filesystem::path> key_path(std::string_view command, const ClientArgs& args) {
    if (!args.key_file.empty()) return std::filesystem::path(args.key_file);
    auto path = default_client_key_path();
    if (!path) {
        std::cerr << "tobctl " << command
                  << ": no key file: pass --key-file, or set TOBCTL_KEY_FILE or HOME\n";
    }
    return path;
}

/// Checks an op against the cluster limits before anything is sent: the nodes
/// would skip it as malformed, which costs a round through consensus.
std::optional<std::string> check_limits(const consensus::Op& op, const consensus::Limits& lim) {
    if (op.key.size() > lim.key_bytes_max) {
        return "key of " + std::to_string(op.key.size()) + " bytes exceeds key_bytes_max " +
               std::to_string(lim.key_bytes_max);
    }
    const std::size_t value = std::max(op.value.size(), op.expected ? op.expected->size() : 0);
    if (value > lim.value_bytes_max) {
        return "value of " + std::to_string(value) + " bytes exceeds value_bytes_max " +
               std::to_string(lim.value_bytes_max);
    }
    return std::nullopt;
}

int print_outcome(std::string_view command, const ClientArgs& args, const consensus::Op& op,
                  const consensus::Request& request, const Client::Submitted& done) {
    const ReplyMsg& reply = done.reply;
    if (reply.status == ReplyStatus::Forbidden) {
        if (args.json) {
            std::cout << "{\"command\": " << json_string(command)
                      << ", \"key\": " << json_value(op.key)
                      << ", \"status\": \"forbidden\", \"nonce\": " << request.nonce
                      << ", \"node\": " << reply.node << ", \"nodes\": " << json_nodes(done.nodes)
                      << "}\n";
        }
        std::cerr << "tobctl " << command
                  << ": forbidden: the cluster's permissions do not let client key "
                  << crypto::to_hex(request.client) << " " << command << " this key (nothing "
                  << "was applied; docs/security.md)\n";
        return 1;
    }
    if (reply.status == ReplyStatus::Malformed) {
        std::cerr << "tobctl " << command
                  << ": the cluster skipped the request as malformed (limits, chain id)\n";
        return 1;
    }
    if (skipped(reply.status)) {
        std::cerr << "tobctl " << command << ": the cluster " << to_string(reply.status) << "\n";
        return 1;
    }
    if (reply.outputs.size() != request.ops.size()) {
        if (reply.status == ReplyStatus::Duplicate && reply.outputs.empty()) {
            std::cerr << "tobctl " << command << ": nonce " << request.nonce
                      << " was already committed and its outputs are no longer kept (a "
                         "reused nonce? see docs/client.md)\n";
        } else {
            std::cerr << "tobctl " << command << ": reply has " << reply.outputs.size()
                      << " outputs for " << request.ops.size() << " operations\n";
        }
        return 1;
    }
    const consensus::OpOutput& out = reply.outputs.front();
    const bool duplicate = reply.status == ReplyStatus::Duplicate;
    int code = 0;
    if (op.type == consensus::OpType::Cas && !out.ok) code = kExitCasFailed;

    if (args.json) {
        std::ostringstream j;
        j << "{\"command\": " << json_string(command) << ", \"key\": " << json_value(op.key)
          << ", \"status\": " << json_string(to_string(reply.status))
          << ", \"nonce\": " << request.nonce << ", \"epoch\": " << reply.epoch
          << ", \"position\": " << reply.position << ", \"node\": " << reply.node
          << ", \"nodes\": " << json_nodes(done.nodes);
        switch (op.type) {
            case consensus::OpType::Get:
                j << ", \"found\": " << (out.value ? "true" : "false")
                  << ", \"value\": " << json_value(out.value);
                break;
            case consensus::OpType::Cas:
                j << ", \"ok\": " << (out.ok ? "true" : "false")
                  << ", \"previous\": " << json_value(out.value);
                break;
            default:
                if (op.previous) j << ", \"previous\": " << json_value(out.value);
        }
        j << "}";
        std::cout << j.str() << "\n";
        return code;
    }

    std::string line;
    switch (op.type) {
        case consensus::OpType::Get:
            line = out.value ? display_bytes(*out.value) : "(absent)";
            break;
        case consensus::OpType::Cas:
            line = out.ok ? "ok" : "failed (current: " + prev_text(out.value) + ")";
            break;
        default:
            line = (op.previous ? "ok (previous: " + prev_text(out.value) + ") epoch "
                                : std::string("ok epoch ")) +
                   std::to_string(reply.epoch) + " position " + std::to_string(reply.position);
    }
    std::cout << line << "\n";
    if (duplicate) {
        std::cerr << "tobctl " << command << ": note: answered from the dedup table (nonce "
                  << request.nonce << " had already committed)\n";
    }
    if (args.quorum) {
        std::cerr << "tobctl " << command << ": confirmed by nodes " << node_list(done.nodes)
                  << "\n";
    }
    return code;
}

/// Takes over the options given before the command name (--key-file, --json; the
/// cluster file is chosen when it is loaded). False, with a message, on a conflict.
bool merge_common(std::string_view command, ClientArgs& args, const CommonOptions& common) {
    const Chosen key_file = choose("--key-file", args.key_file, common.key_file);
    if (!key_file.ok()) {
        std::cerr << "tobctl " << command << ": " << key_file.error << "\n";
        return false;
    }
    args.key_file = key_file.value;
    args.json = args.json || common.json;
    return true;
}

int run_request(std::string_view command, const ClientArgs& args, const CommonOptions& common,
                consensus::Op op) {
    if (args.quorum && args.local) {
        std::cerr << "tobctl " << command << ": --quorum and --local exclude each other\n";
        return 1;
    }
    auto cluster = load_cluster_for(command, args.cluster, common);
    if (!cluster) return 1;
    if (auto problem = check_limits(op, cluster->limits)) {
        std::cerr << "tobctl " << command << ": " << *problem << "\n";
        return 1;
    }
    if (args.node && *args.node >= cluster->n) {
        std::cerr << "tobctl " << command << ": --node " << *args.node
                  << " is not a member (n = " << cluster->n << ")\n";
        return 1;
    }
    auto path = key_path(command, args);
    if (!path) return 1;
    auto key = load_or_create_client_key(*path);
    if (!key.ok()) {
        std::cerr << "tobctl " << command << ": " << key.error << "\n";
        return 1;
    }
    auto nonce = reserve_nonces(nonce_file_for(*path));
    if (!nonce.ok()) {
        std::cerr << "tobctl " << command << ": " << nonce.error << "\n";
        return 1;
    }
    Client client(*cluster, *key.value);
    client.set_expiry_horizon(args.expiry_horizon);
    const consensus::Request request = client.build_request({op}, *nonce.value);
    SubmitOptions options;
    if (args.node) options.node = static_cast<NodeId>(*args.node);
    options.quorum = args.quorum;
    options.attempt_timeout = seconds(args.attempt_timeout_s);
    options.deadline = seconds(args.timeout_s);
    auto result = client.submit(request, options);
    if (!result.ok()) {
        std::cerr << "tobctl " << command << ": " << result.error << "\n";
        return 1;
    }
    return print_outcome(command, args, op, request, *result.value);
}

int run_local_get(const ClientArgs& args, const CommonOptions& common) {
    auto cluster = load_cluster_for("get", args.cluster, common);
    if (!cluster) return 1;
    if (cluster->n == 0) {
        std::cerr << "tobctl get: the cluster has no members\n";
        return 1;
    }
    std::vector<NodeId> order;
    if (args.node) {
        if (*args.node >= cluster->n) {
            std::cerr << "tobctl get: --node " << *args.node
                      << " is not a member (n = " << cluster->n << ")\n";
            return 1;
        }
        order.push_back(static_cast<NodeId>(*args.node));
    } else {
        const auto first = static_cast<NodeId>(std::random_device{}() % cluster->n);
        for (std::uint32_t k = 0; k < cluster->n; ++k) {
            order.push_back(static_cast<NodeId>((first + k) % cluster->n));
        }
    }
    // A local read is signed with the client key: a node answers only a client that
    // may read the key.
    auto path = key_path("get", args);
    if (!path) return 1;
    auto client_key = load_or_create_client_key(*path);
    if (!client_key.ok()) {
        std::cerr << "tobctl get: " << client_key.error << "\n";
        return 1;
    }
    Client client(*cluster, *client_key.value);
    const Bytes key = to_bytes(args.key);
    std::string errors;
    for (NodeId node : order) {
        auto got = client.local_get(node, key, seconds(args.attempt_timeout_s));
        if (!got.ok()) {
            std::cerr << "tobctl get: " << got.error << "\n";
            continue;
        }
        const LocalValueMsg& v = *got.value;
        if (args.json) {
            std::cout << "{\"command\": \"get\", \"local\": true, \"key\": " << json_value(key)
                      << ", \"node\": " << node << ", \"applied\": " << v.applied
                      << ", \"found\": " << (v.value ? "true" : "false")
                      << ", \"value\": " << json_value(v.value) << "}\n";
        } else {
            std::cout << (v.value ? display_bytes(*v.value) : "(absent)") << "\n";
        }
        return 0;
    }
    std::cerr << "tobctl get: no node answered the local read\n";
    return 1;
}

}  // namespace

void add_client_commands(CLI::App& app, const CommonOptions& common, int& exit_code) {
    auto args = std::make_shared<ClientArgs>();

    CLI::App* put = app.add_subcommand("put", "Set KEY to VALUE");
    add_request_options(put, *args);
    put->add_option("key", args->key, "Key")->required();
    put->add_option("value", args->value, "Value")->required();
    put->add_flag("--previous", args->previous, "Also print the value KEY held before");
    put->callback([args, &common, &exit_code] {
        if (!merge_common("put", *args, common)) {
            exit_code = 1;
            return;
        }
        consensus::Op op{consensus::OpType::Put, to_bytes(args->key), to_bytes(args->value),
                         std::nullopt, args->previous};
        exit_code = run_request("put", *args, common, std::move(op));
    });

    CLI::App* get = app.add_subcommand(
        "get", "Read KEY through the log (linearizable); prints the value or (absent)");
    add_request_options(get, *args);
    get->add_flag("--local", args->local,
                  "Read one node's committed state instead of ordering the read");
    get->add_option("key", args->key, "Key")->required();
    get->callback([args, &common, &exit_code] {
        if (!merge_common("get", *args, common)) {
            exit_code = 1;
            return;
        }
        if (args->local) {
            if (args->quorum) {
                std::cerr << "tobctl get: --quorum and --local exclude each other\n";
                exit_code = 1;
                return;
            }
            exit_code = run_local_get(*args, common);
            return;
        }
        consensus::Op op{consensus::OpType::Get, to_bytes(args->key), {}, std::nullopt};
        exit_code = run_request("get", *args, common, std::move(op));
    });

    CLI::App* del = app.add_subcommand("del", "Delete KEY");
    add_request_options(del, *args);
    del->add_option("key", args->key, "Key")->required();
    del->add_flag("--previous", args->previous, "Also print the value KEY held before");
    del->callback([args, &common, &exit_code] {
        if (!merge_common("del", *args, common)) {
            exit_code = 1;
            return;
        }
        consensus::Op op{
            consensus::OpType::Del, to_bytes(args->key), {}, std::nullopt, args->previous};
        exit_code = run_request("del", *args, common, std::move(op));
    });

    CLI::App* cas = app.add_subcommand(
        "cas",
        "Set KEY to NEW if its value is EXPECTED (with --absent: if KEY is absent; then "
        "give only KEY NEW). Exit code 3 when the comparison failed");
    add_request_options(cas, *args);
    cas->add_flag("--absent", args->expect_absent, "Expect KEY to be absent (arguments: KEY NEW)");
    cas->add_option("key", args->key, "Key")->required();
    cas->add_option("expected", args->expected, "Expected current value (omitted with --absent)");
    cas->add_option("new", args->new_value, "New value");
    cas->callback([cas, args, &common, &exit_code] {
        if (!merge_common("cas", *args, common)) {
            exit_code = 1;
            return;
        }
        std::optional<Bytes> expected;
        std::string new_value;
        const std::size_t given = cas->count("expected") + cas->count("new");
        if (args->expect_absent) {
            if (given != 1) {
                std::cerr << "tobctl cas: with --absent give KEY NEW\n";
                exit_code = 1;
                return;
            }
            new_value = args->expected;  // the second positional is NEW here
        } else {
            if (given != 2) {
                std::cerr << "tobctl cas: give KEY EXPECTED NEW (or --absent KEY NEW)\n";
                exit_code = 1;
                return;
            }
            expected = to_bytes(args->expected);
            new_value = args->new_value;
        }
        consensus::Op op{consensus::OpType::Cas, to_bytes(args->key), to_bytes(new_value),
                         std::move(expected)};
        exit_code = run_request("cas", *args, common, std::move(op));
    });
}

}  // namespace tob::cli
