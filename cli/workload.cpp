// tobctl workload — a random KV workload that records a history for the
// checkers (tests/cluster/history.py format, docs/checkers.md; issue 5).
//
// C client threads, each with its own freshly generated client key (so its
// nonces start at 1) and its own DEALER sockets over one shared ZeroMQ
// context. Each client runs a closed loop: it invokes one op (put, get, cas or
// del on one of K keys k0..k<K-1>), each op its own signed request with the
// next nonce, and waits for its outcome before the next one. Write values are
// unique (v-<client>-<counter>). A request goes to a node of --node-set (the
// client's home node first) and, after --attempt-timeout without a verified
// reply, to the next node of the set (same bytes, same nonce). With no reply
// before --op-timeout the op is recorded as "timeout" (maybe applied).
// A Malformed reply or a BadRequest error is recorded as "fail" (not applied).
//
// Every op is written to --out as one JSON line when it completes (fields id,
// client, op, key, value, expected, invoke_s, complete_s, result, output, nonce,
// op_index, client_key); times are seconds on CLOCK_MONOTONIC (the clock of
// Python's time.monotonic()). At the end one summary line is printed:
//   workload: ops=N ok=N fail=N timeout=N seconds=S

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/client/client.h"
#include "cli/client/format.h"
#include "cli/commands.h"
#include "crypto/hash.h"

namespace tob::cli {

using namespace tob::client;

namespace {

using Clock = std::chrono::steady_clock;

struct WorkloadArgs {
    std::string cluster;
    std::uint32_t clients = 3;
    std::uint32_t keys = 4;
    double seconds = 10;
    std::optional<std::uint64_t> ops;  // stop after this many ops in total
    std::string out;
    std::string node_set;  // "0,1,2" (default: every node)
    double op_timeout_s = 10;
    double attempt_timeout_s = 2;
    std::string prefix = "c";  // client names <prefix><c>
    std::uint64_t seed = 0;    // 0: random
    // Mix in percent (rest = del).
    std::uint32_t put_pct = 35;
    std::uint32_t get_pct = 30;
    std::uint32_t cas_pct = 25;
    std::uint64_t expiry_horizon = kDefaultExpiryHorizon;  // epochs a request may wait
};

double mono_s(Clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::string jopt(const std::optional<std::string>& v) { return v ? json_string(*v) : "null"; }

std::string fixed6(double v) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(6) << v;
    return s.str();
}

struct Recorder {
    std::mutex mu;
    std::ofstream file;
    std::uint64_t next_id = 0;
    std::uint64_t ok = 0, fail = 0, timeout = 0;

    void write(const std::string& client, const std::string& client_key, Nonce nonce,
               const consensus::Op& op, double invoke_s, std::optional<double> complete_s,
               const std::string& result, const std::string& output_json) {
        std::lock_guard lock(mu);
        const char* name = op.type == consensus::OpType::Put   ? "put"
                           : op.type == consensus::OpType::Get ? "get"
                           : op.type == consensus::OpType::Cas ? "cas"
                                                               : "del";
        std::optional<std::string> value;
        if (op.type == consensus::OpType::Put || op.type == consensus::OpType::Cas)
            value = str(op.value);
        std::optional<std::string> expected;
        if (op.type == consensus::OpType::Cas && op.expected) expected = str(*op.expected);
        file << "{\"id\":" << next_id++ << ",\"client\":" << json_string(client) << ",\"op\":\""
             << name << "\",\"key\":" << json_string(str(op.key)) << ",\"value\":" << jopt(value)
             << ",\"expected\":" << jopt(expected) << ",\"invoke_s\":" << fixed6(invoke_s)
             << ",\"complete_s\":" << (complete_s ? fixed6(*complete_s) : "null")
             << ",\"result\":\"" << result << "\",\"output\":" << output_json
             << ",\"nonce\":" << nonce << ",\"op_index\":0,\"client_key\":\"" << client_key
             << "\"}\n";
        file.flush();
        if (result == "ok")
            ++ok;
        else if (result == "fail")
            ++fail;
        else
            ++timeout;
    }
};

struct Shared {
    const daemon::ClusterConfig* cluster = nullptr;
    const WorkloadArgs* args = nullptr;
    std::vector<NodeId> nodes;
    zmq::context_t* context = nullptr;
    Recorder* recorder = nullptr;
    std::atomic<std::uint64_t> issued{0};
    Clock::time_point end;
};

std::string output_json(const consensus::Op& op, const consensus::OpOutput& out) {
    std::optional<std::string> v;
    if (out.value) v = str(*out.value);
    switch (op.type) {
        case consensus::OpType::Get:
            return "{\"value\":" + jopt(v) + "}";
        case consensus::OpType::Cas:
            return std::string("{\"swapped\":") + (out.ok ? "true" : "false") +
                   ",\"previous\":" + jopt(v) + "}";
        default:
            return "{\"previous\":" + jopt(v) + "}";
    }
}

/// The last value each key was seen to hold (nullopt: absent), for the expected
/// value of the next CAS on it.
using Known = std::map<std::string, std::optional<std::string>>;

/// One op of the mix on a random key; `value` is what a PUT or CAS writes.
struct PlannedOp {
    std::string key;
    std::string value;
    consensus::Op op;
};

PlannedOp plan_op(std::mt19937_64& rng, const WorkloadArgs& args, const std::string& name,
                  std::uint64_t counter, const Known& known) {
    PlannedOp p;
    p.key = "k" + std::to_string(rng() % args.keys);
    p.op.key = bytes(p.key);
    const std::uint32_t roll = static_cast<std::uint32_t>(rng() % 100);
    p.value = "v-" + name + "-" + std::to_string(counter);
    if (roll < args.put_pct) {
        p.op.type = consensus::OpType::Put;
        p.op.value = bytes(p.value);
        p.op.previous = true;  // the history checkers use the previous value
    } else if (roll < args.put_pct + args.get_pct) {
        p.op.type = consensus::OpType::Get;
    } else if (roll < args.put_pct + args.get_pct + args.cas_pct) {
        p.op.type = consensus::OpType::Cas;
        p.op.value = bytes(p.value);
        auto it = known.find(p.key);
        if (it != known.end() && it->second) p.op.expected = bytes(*it->second);
    } else {
        p.op.type = consensus::OpType::Del;
        p.op.previous = true;
    }
    return p;
}

/// What the key holds after `planned` committed with output `o`.
void remember(Known& known, const PlannedOp& planned, const consensus::OpOutput& o) {
    std::optional<std::string> seen = o.value ? std::optional(str(*o.value)) : std::nullopt;
    switch (planned.op.type) {
        case consensus::OpType::Get:
            known[planned.key] = seen;
            break;
        case consensus::OpType::Put:
            known[planned.key] = planned.value;
            break;
        case consensus::OpType::Del:
            known[planned.key] = std::nullopt;
            break;
        default:  // CAS
            known[planned.key] = o.ok ? std::optional(planned.value) : seen;
    }
}

/// The end of one op: "ok" (with its output), "fail" or "timeout".
struct OpOutcome {
    std::string result;
    std::optional<double> completed;  // monotonic seconds
    std::optional<consensus::OpOutput> output;
};

/// Sends the request to node set entry `at`, moves on after each attempt
/// timeout, and waits for its outcome until `deadline`.
OpOutcome await_outcome(Client& client, const std::vector<NodeId>& nodes, std::size_t at,
                        const Client::Prepared& prepared, Nonce nonce, Millis attempt,
                        Clock::time_point deadline) {
    client.send(nodes[at], prepared.body);
    auto retry_at = Clock::now() + attempt;
    std::vector<Incoming> incoming;
    for (;;) {
        auto now = Clock::now();
        if (now >= deadline) return {"timeout", std::nullopt, std::nullopt};
        if (now >= retry_at) {
            at = (at + 1) % nodes.size();
            client.send(nodes[at], prepared.body);
            retry_at = now + attempt;
        }
        incoming.clear();
        client.poll(
            std::max(Millis(1), std::chrono::ceil<Millis>(std::min(retry_at, deadline) - now)),
            incoming);
        const auto arrived = Clock::now();
        for (Incoming& in : incoming) {
            if (auto* reply = std::get_if<ReplyMsg>(&in.message)) {
                if (reply->request_digest != prepared.request_digest || reply->nonce != nonce ||
                    reply->client != client.public_key())
                    continue;
                if (skipped(reply->status)) {
                    return {"fail", mono_s(arrived), std::nullopt};
                }
                if (reply->outputs.size() == 1) {
                    return {"ok", mono_s(arrived), reply->outputs[0]};
                }
                // A duplicate without outputs: keep waiting (it cannot happen with
                // one request in flight per client, nonces in sequence).
            } else if (auto* error = std::get_if<ErrorMsg>(&in.message)) {
                if (!error->request_digest || *error->request_digest != prepared.request_digest)
                    continue;
                if (error->code == ErrorCode::BadRequest) {
                    return {"fail", mono_s(arrived), std::nullopt};
                }
                if (error->code == ErrorCode::Overloaded || error->code == ErrorCode::Halted) {
                    retry_at = std::min(retry_at, arrived + Millis(100));
                }
            }
        }
    }
}

void run_client(std::uint32_t c, Shared& sh) {
    const WorkloadArgs& args = *sh.args;
    const crypto::SigningKey key = crypto::SigningKey::generate();
    Client client(*sh.cluster, key, sh.context);
    client.set_expiry_horizon(args.expiry_horizon);
    const std::string name = args.prefix + std::to_string(c);
    const std::string client_key = crypto::to_hex(key.public_key());
    std::mt19937_64 rng(args.seed ? args.seed * 1000003 + c
                                  : std::random_device{}() ^ (std::uint64_t{c} << 32));
    const auto attempt =
        std::chrono::milliseconds(static_cast<std::int64_t>(args.attempt_timeout_s * 1000 + 0.5));
    const auto op_timeout =
        std::chrono::milliseconds(static_cast<std::int64_t>(args.op_timeout_s * 1000 + 0.5));
    Known known;
    std::size_t home = c % sh.nodes.size();
    Nonce nonce = 0;
    std::uint64_t counter = 0;
    while (Clock::now() < sh.end) {
        if (args.ops && sh.issued.fetch_add(1) >= *args.ops) break;
        const PlannedOp planned = plan_op(rng, args, name, ++counter, known);
        ++nonce;
        const consensus::Request request = client.build_request({planned.op}, nonce);
        const Client::Prepared prepared = Client::prepare(request);
        const auto invoked = Clock::now();
        const OpOutcome outcome =
            await_outcome(client, sh.nodes, home, prepared, nonce, attempt, invoked + op_timeout);
        std::string out_json = "{}";
        if (outcome.output) {
            out_json = output_json(planned.op, *outcome.output);
            remember(known, planned, *outcome.output);
        }
        if (outcome.result == "timeout") home = (home + 1) % sh.nodes.size();
        sh.recorder->write(name, client_key, nonce, planned.op, mono_s(invoked), outcome.completed,
                           outcome.result, out_json);
    }
}

std::optional<std::vector<NodeId>> parse_nodes(const std::string& text, std::uint32_t n) {
    std::vector<NodeId> nodes;
    if (text.empty()) {
        for (std::uint32_t i = 0; i < n; ++i) nodes.push_back(static_cast<NodeId>(i));
        return nodes;
    }
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        try {
            const unsigned long v = std::stoul(item);
            if (v >= n) return std::nullopt;
            nodes.push_back(static_cast<NodeId>(v));
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    if (nodes.empty()) return std::nullopt;
    return nodes;
}

int run_workload(const WorkloadArgs& args, const CommonOptions& common) {
    auto cluster = load_cluster_for("workload", args.cluster, common);
    if (!cluster) return 1;
    auto nodes = parse_nodes(args.node_set, cluster->n);
    if (!nodes) {
        std::cerr << "tobctl workload: --node-set must list node ids below n = " << cluster->n
                  << "\n";
        return 1;
    }
    if (args.put_pct + args.get_pct + args.cas_pct > 100) {
        std::cerr << "tobctl workload: --put + --get + --cas exceed 100 percent\n";
        return 1;
    }
    Recorder recorder;
    recorder.file.open(args.out, std::ios::out | std::ios::trunc);
    if (!recorder.file) {
        std::cerr << "tobctl workload: " << args.out << ": cannot open for writing\n";
        return 1;
    }
    zmq::context_t context(1);
    Shared sh;
    sh.cluster = &*cluster;
    sh.args = &args;
    sh.nodes = *nodes;
    sh.context = &context;
    sh.recorder = &recorder;
    const auto start = Clock::now();
    sh.end = start + std::chrono::milliseconds(static_cast<std::int64_t>(args.seconds * 1000));
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (std::uint32_t c = 0; c < args.clients; ++c) {
        threads.emplace_back([c, &sh, &failures] {
            try {
                run_client(c, sh);
            } catch (const std::exception& e) {
                std::cerr << "tobctl workload: client " << c << ": " << e.what() << "\n";
                ++failures;
            }
        });
    }
    for (auto& t : threads) t.join();
    const double took = std::chrono::duration<double>(Clock::now() - start).count();
    std::cout << "workload: ops=" << (recorder.ok + recorder.fail + recorder.timeout)
              << " ok=" << recorder.ok << " fail=" << recorder.fail
              << " timeout=" << recorder.timeout << " seconds=" << fixed6(took) << "\n";
    return failures ? 1 : 0;
}

}  // namespace

void add_workload(CLI::App& app, const CommonOptions& common, int& exit_code) {
    auto args = std::make_shared<WorkloadArgs>();
    CLI::App* cmd = app.add_subcommand(
        "workload",
        "Random put/get/cas/del workload on K keys; writes a history (JSON lines) for the "
        "checkers");
    add_cluster_option(cmd, args->cluster);
    cmd->add_option("--out", args->out, "History file to write (JSON lines)")->required();
    cmd->add_option("--clients", args->clients, "Concurrent clients (one thread and key each)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--keys", args->keys, "Keys k0..k<K-1>")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--seconds", args->seconds, "Run for this many seconds")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--ops", args->ops, "Stop after this many ops in total (also --seconds)");
    cmd->add_option("--node-set", args->node_set,
                    "Send only to these nodes, e.g. 0,1,2 (default: every node)");
    cmd->add_option("--op-timeout", args->op_timeout_s,
                    "Seconds without an outcome after which an op is recorded as timeout")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--attempt-timeout", args->attempt_timeout_s,
                    "Seconds without a reply before the request goes to the next node of the set")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--expiry-horizon", args->expiry_horizon,
                    "Epochs past the applied epoch a request may still commit (capped at the "
                    "cluster's request_expiry_max_epochs)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--client-prefix", args->prefix, "Client names: <prefix><c>")
        ->capture_default_str();
    cmd->add_option("--seed", args->seed, "Random seed (0: random)")->capture_default_str();
    cmd->add_option("--put", args->put_pct, "Percent of puts")->capture_default_str();
    cmd->add_option("--get", args->get_pct, "Percent of gets")->capture_default_str();
    cmd->add_option("--cas", args->cas_pct, "Percent of cas (the rest are dels)")
        ->capture_default_str();
    cmd->callback([args, &common, &exit_code] { exit_code = run_workload(*args, common); });
}

}  // namespace tob::cli
