// tobctl bench — load generator (docs/client.md, "Bench").
//
// C clients run in C threads, each with its own freshly generated in-memory key,
// its own DEALER sockets (one per node, over a shared ZeroMQ context) and its own
// share of the --txs requests. Client c sends to node c % n (or to --node I);
// each request carries M PUT operations of --size-byte values on keys
// bench-<client>-<counter> (or on --keys K shared keys bench-<k>). A client keeps
// up to K requests in flight; a request with no verified reply after
// --attempt-timeout goes to the next node (same bytes), and one refused with
// Overloaded/Halted goes there after a short pause.
//
// Latency is client-observed: from the first send of a request to the first
// verified reply for it (signature checked against the node's key). Throughput
// is counted over the time from the first send to the last reply of the run.
//
// With --key-dir DIR, client c uses the persistent key DIR/bench-<c>.key instead
// (created on first use, like a client key) and reserves its nonces from that
// key's counter file: for clusters whose [permissions] are closed, whose client
// endpoint admits only the keys they list (docs/security.md).
//
// Nonces of a client start at 1 (or at its reserved block) and stay within 512 of its oldest
// unanswered request, because a node skips a nonce more than 1024 below the client's highest
// committed one (docs/protocol.md, "Replicated database").

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/client/client.h"
#include "cli/commands.h"
#include "consensus/codec.h"

namespace tob::cli {

using namespace tob::client;

namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
    std::string cluster;
    std::uint32_t clients = 4;              // concurrent clients, each with its own key
    std::uint64_t txs = 10000;              // requests in total
    std::uint32_t size = 100;               // bytes per value
    std::uint32_t ops_per_request = 1;      // operations batched under one signature
    std::optional<std::uint32_t> node;      // send everything to node I (default: spread)
    std::optional<std::uint32_t> inflight;  // per client (default: ~1024 in total, <= 512)
    std::optional<std::uint64_t> keys;      // key space (default: a fresh key per op)
    std::string key_dir;                    // persistent client keys (default: fresh ones)
    bool json = false;
    double attempt_timeout_s = 3;
    double deadline_s = 600;
};

/// A client never has more than this many nonces between its oldest unanswered
/// request and its newest one (half the dedup window of 1024).
constexpr std::uint64_t kNonceSpread = 512;
constexpr std::uint32_t kInflightMax = 512;
constexpr auto kRefusedPause = std::chrono::milliseconds(50);

struct ClientResult {
    std::uint64_t committed = 0;
    std::uint64_t ops = 0;
    std::uint64_t errors = 0;
    std::uint64_t retries = 0;
    std::uint64_t timeouts = 0;  // still unanswered at the deadline
    std::vector<double> latency_ms;
    std::optional<Clock::time_point> first_send;
    std::optional<Clock::time_point> last_reply;
    std::string fatal;  // setup failure
};

struct Pending {
    Nonce nonce = 0;
    Bytes body;
    NodeId node = 0;
    Clock::time_point first_send;
    Clock::time_point retry_at;
};

struct Shared {
    const daemon::ClusterConfig* cluster = nullptr;
    const BenchArgs* args = nullptr;
    std::uint32_t inflight = 1;
    zmq::context_t* context = nullptr;
    std::latch* ready = nullptr;
    std::latch* go = nullptr;
    Clock::time_point deadline;
};

/// The requests one client has in flight, by request digest, and their nonces.
struct Window {
    std::map<Digest, Pending> pending;
    std::set<Nonce> open_nonces;

    void finish(std::map<Digest, Pending>::iterator it) {
        open_nonces.erase(it->second.nonce);
        pending.erase(it);
    }
};

/// The PUTs of the next request of client `c`; `counter` numbers the ops and
/// goes into the first bytes of each value, so values differ.
std::vector<consensus::Op> make_ops(const BenchArgs& args, std::uint32_t c, std::mt19937_64& rng,
                                    Bytes& value, std::uint64_t& counter) {
    std::vector<consensus::Op> ops;
    ops.reserve(args.ops_per_request);
    for (std::uint32_t m = 0; m < args.ops_per_request; ++m, ++counter) {
        std::string key = args.keys ? "bench-" + std::to_string(rng() % *args.keys)
                                    : "bench-" + std::to_string(c) + "-" + std::to_string(counter);
        for (std::size_t k = 0; k < std::min<std::size_t>(8, value.size()); ++k) {
            value[k] = static_cast<std::uint8_t>(counter >> (8 * k));
        }
        ops.push_back(consensus::Op{consensus::OpType::Put, Bytes(key.begin(), key.end()), value,
                                    std::nullopt});
    }
    return ops;
}

/// Applies what arrived at `arrived` to the window: a verified reply finishes its
/// request (committed or malformed); a refusal finishes it (BadRequest,
/// ReplyTooLarge: every honest node says the same) or hastens its retry.
void take_incoming(std::vector<Incoming>& incoming, Window& window, const PublicKey& me,
                   std::uint32_t ops_per_request, Clock::time_point arrived, ClientResult& res) {
    for (Incoming& in : incoming) {
        if (auto* reply = std::get_if<ReplyMsg>(&in.message)) {
            auto it = window.pending.find(reply->request_digest);
            if (it == window.pending.end() || reply->client != me ||
                reply->nonce != it->second.nonce) {
                continue;  // a late answer to a request already answered
            }
            if (reply->status == ReplyStatus::Malformed) {
                ++res.errors;
            } else {
                ++res.committed;
                res.ops += ops_per_request;
                res.latency_ms.push_back(
                    std::chrono::duration<double, std::milli>(arrived - it->second.first_send)
                        .count());
                res.last_reply = arrived;
            }
            window.finish(it);
        } else if (auto* error = std::get_if<ErrorMsg>(&in.message)) {
            ++res.errors;
            if (!error->request_digest) continue;
            auto it = window.pending.find(*error->request_digest);
            if (it == window.pending.end()) continue;
            if (error->code == ErrorCode::BadRequest || error->code == ErrorCode::ReplyTooLarge) {
                window.finish(it);
            } else if (error->code != ErrorCode::NotVoting && in.from == it->second.node) {
                it->second.retry_at = std::min(it->second.retry_at, arrived + kRefusedPause);
            }
        }
    }
}

void run_client(std::uint32_t c, std::uint64_t budget, const Shared& sh, ClientResult& res) {
    const BenchArgs& args = *sh.args;
    const daemon::ClusterConfig& cluster = *sh.cluster;
    const auto n = static_cast<NodeId>(cluster.n);
    std::optional<Client> client;
    Nonce next_nonce = 1;
    try {
        if (args.key_dir.empty()) {
            client.emplace(cluster, crypto::SigningKey::generate(), sh.context);
        } else {
            const auto path =
                std::filesystem::path(args.key_dir) / ("bench-" + std::to_string(c) + ".key");
            auto key = load_or_create_client_key(path);
            auto first =
                key.ok() ? reserve_nonces(nonce_file_for(path), std::max<std::uint64_t>(budget, 1))
                         : Result<Nonce>::failure(key.error);
            if (!first.ok()) {
                res.fatal = "client " + std::to_string(c) + ": " + first.error;
            } else {
                next_nonce = *first.value;
                client.emplace(cluster, *key.value, sh.context);
            }
        }
    } catch (const std::exception& e) {
        res.fatal = std::string("client ") + std::to_string(c) + ": " + e.what();
    }
    sh.ready->count_down();
    sh.go->wait();
    if (!client) return;

    const NodeId home = static_cast<NodeId>(args.node ? *args.node : c % n);
    const auto attempt_timeout =
        std::chrono::milliseconds(static_cast<std::int64_t>(args.attempt_timeout_s * 1000 + 0.5));
    std::mt19937_64 rng(std::random_device{}() ^ (std::uint64_t{c} << 32));
    Bytes value(args.size);
    for (auto& b : value) b = static_cast<std::uint8_t>(rng());

    Window window;
    std::uint64_t issued = 0;
    std::uint64_t counter = 0;
    std::vector<Incoming> incoming;
    while (issued < budget || !window.pending.empty()) {
        auto now = Clock::now();
        if (now >= sh.deadline) break;
        // Fill the window.
        while (issued < budget && window.pending.size() < sh.inflight &&
               (window.open_nonces.empty() ||
                next_nonce < *window.open_nonces.begin() + kNonceSpread)) {
            const consensus::Request request =
                client->build_request(make_ops(args, c, rng, value, counter), next_nonce);
            Client::Prepared prepared = Client::prepare(request);
            now = Clock::now();
            if (!res.first_send) res.first_send = now;
            client->send(home, prepared.body);  // on a full queue the retry timer resends
            window.open_nonces.insert(next_nonce);
            window.pending.emplace(
                prepared.request_digest,
                Pending{next_nonce, std::move(prepared.body), home, now, now + attempt_timeout});
            ++next_nonce;
            ++issued;
        }
        // Retries.
        Clock::time_point next_event = now + std::chrono::milliseconds(100);
        for (auto& [digest, p] : window.pending) {
            if (p.retry_at <= now) {
                p.node = static_cast<NodeId>((p.node + 1) % n);
                client->send(p.node, p.body);
                p.retry_at = now + attempt_timeout;
                ++res.retries;
            }
            next_event = std::min(next_event, p.retry_at);
        }
        next_event = std::min(next_event, sh.deadline);
        incoming.clear();
        client->poll(std::chrono::ceil<std::chrono::milliseconds>(next_event - Clock::now()),
                     incoming);
        take_incoming(incoming, window, client->public_key(), args.ops_per_request, Clock::now(),
                      res);
    }
    res.timeouts = window.pending.size() + (budget - issued);
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

std::string fixed(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

/// Why the arguments cannot run against `cluster`, or nullopt.
std::optional<std::string> check_args(const BenchArgs& args, const daemon::ClusterConfig& cluster) {
    if (cluster.n == 0) return "the cluster has no members";
    if (args.node && *args.node >= cluster.n) {
        return "--node " + std::to_string(*args.node) +
               " is not a member (n = " + std::to_string(cluster.n) + ")";
    }
    const consensus::Limits& lim = cluster.limits;
    if (args.size > lim.value_bytes_max) {
        return "--size " + std::to_string(args.size) + " exceeds value_bytes_max " +
               std::to_string(lim.value_bytes_max);
    }
    if (args.ops_per_request > lim.request_ops_max) {
        return "--ops-per-request " + std::to_string(args.ops_per_request) +
               " exceeds request_ops_max " + std::to_string(lim.request_ops_max);
    }
    if (args.keys && *args.keys == 0) return "--keys must be positive";
    // The largest request this run builds must fit request_bytes_max.
    consensus::Request probe;
    probe.nonce = ~Nonce{0};
    probe.ops.assign(args.ops_per_request, consensus::Op{consensus::OpType::Put, Bytes(40, 'k'),
                                                         Bytes(args.size), std::nullopt});
    const std::size_t bytes = consensus::encode(probe).size();
    if (bytes > lim.request_bytes_max) {
        return "a request of " + std::to_string(args.ops_per_request) + " ops of " +
               std::to_string(args.size) + " bytes encodes to about " + std::to_string(bytes) +
               " bytes, over request_bytes_max " + std::to_string(lim.request_bytes_max);
    }
    return std::nullopt;
}

/// Adds up the clients' results; false (with the reason printed) when a client
/// could not start.
bool add_up(const std::vector<ClientResult>& results, ClientResult& total,
            std::vector<double>& latency) {
    for (const ClientResult& r : results) {
        if (!r.fatal.empty()) {
            std::cerr << "tobctl bench: " << r.fatal << "\n";
            return false;
        }
        total.committed += r.committed;
        total.ops += r.ops;
        total.errors += r.errors;
        total.retries += r.retries;
        total.timeouts += r.timeouts;
        latency.insert(latency.end(), r.latency_ms.begin(), r.latency_ms.end());
        if (r.first_send && (!total.first_send || *r.first_send < *total.first_send)) {
            total.first_send = r.first_send;
        }
        if (r.last_reply && (!total.last_reply || *r.last_reply > *total.last_reply)) {
            total.last_reply = r.last_reply;
        }
    }
    std::sort(latency.begin(), latency.end());
    return true;
}

void print_report(const BenchArgs& args, std::uint32_t inflight, const ClientResult& total,
                  const std::vector<double>& latency) {
    double seconds = 0;
    if (total.first_send && total.last_reply) {
        seconds = std::chrono::duration<double>(*total.last_reply - *total.first_send).count();
    }
    const double ops_per_s = seconds > 0 ? static_cast<double>(total.ops) / seconds : 0;
    const double requests_per_s = seconds > 0 ? static_cast<double>(total.committed) / seconds : 0;
    const double p50 = percentile(latency, 0.50);
    const double p99 = percentile(latency, 0.99);
    const double max = latency.empty() ? 0 : latency.back();
    if (args.json) {
        std::cout << "{\"clients\": " << args.clients << ", \"txs\": " << args.txs
                  << ", \"size\": " << args.size
                  << ", \"ops_per_request\": " << args.ops_per_request
                  << ", \"inflight\": " << inflight
                  << ", \"requests_committed\": " << total.committed
                  << ", \"ops_committed\": " << total.ops << ", \"seconds\": " << fixed(seconds, 3)
                  << ", \"ops_per_s\": " << fixed(ops_per_s, 1)
                  << ", \"requests_per_s\": " << fixed(requests_per_s, 1)
                  << ", \"latency_ms\": {\"p50\": " << fixed(p50, 3)
                  << ", \"p99\": " << fixed(p99, 3) << ", \"max\": " << fixed(max, 3)
                  << "}, \"errors\": " << total.errors << ", \"retries\": " << total.retries
                  << ", \"timeouts\": " << total.timeouts << "}\n";
        return;
    }
    std::cout << "bench: " << args.clients << " clients, " << args.txs << " requests of "
              << args.ops_per_request << " PUT op(s) with " << args.size << "-byte values, up to "
              << inflight << " in flight per client\n"
              << "committed: " << total.committed << " requests (" << total.ops << " ops) in "
              << fixed(seconds, 3) << " s\n"
              << "throughput: " << fixed(requests_per_s, 1) << " requests/s, "
              << fixed(ops_per_s, 1) << " ops/s\n"
              << "latency ms: p50 " << fixed(p50, 2) << "  p99 " << fixed(p99, 2) << "  max "
              << fixed(max, 2) << "\n"
              << "errors: " << total.errors << "  retries: " << total.retries
              << "  timeouts: " << total.timeouts << "\n";
}

int run_bench(BenchArgs args, const CommonOptions& common) {
    args.json = args.json || common.json;  // --json before the command name
    auto cluster = load_cluster_for("bench", args.cluster, common);
    if (!cluster) return 1;
    if (auto problem = check_args(args, *cluster)) {
        std::cerr << "tobctl bench: " << *problem << "\n";
        return 1;
    }
    std::uint32_t inflight = args.inflight.value_or(
        std::clamp<std::uint32_t>((1024 + args.clients - 1) / args.clients, 1, kInflightMax));
    if (inflight == 0) inflight = 1;
    if (inflight > kInflightMax) {
        std::cerr << "tobctl bench: --inflight capped at " << kInflightMax
                  << " (half the dedup window of 1024 nonces)\n";
        inflight = kInflightMax;
    }

    zmq::context_t context(1);
    std::latch ready(args.clients);
    std::latch go(1);
    Shared sh;
    sh.cluster = &*cluster;
    sh.args = &args;
    sh.inflight = inflight;
    sh.context = &context;
    sh.ready = &ready;
    sh.go = &go;

    std::vector<ClientResult> results(args.clients);
    std::vector<std::thread> threads;
    threads.reserve(args.clients);
    for (std::uint32_t c = 0; c < args.clients; ++c) {
        const std::uint64_t budget = args.txs / args.clients + (c < args.txs % args.clients);
        threads.emplace_back([c, budget, &sh, &results] { run_client(c, budget, sh, results[c]); });
    }
    ready.wait();
    // Give the DEALER sockets a moment to finish their TCP connects, so the first
    // latencies do not include connection setup.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    sh.deadline =
        Clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(args.deadline_s * 1000));
    go.count_down();
    for (auto& t : threads) t.join();

    ClientResult total;
    std::vector<double> latency;
    if (!add_up(results, total, latency)) return 1;
    print_report(args, inflight, total, latency);
    return total.committed == args.txs ? 0 : 1;
}

}  // namespace

void add_bench(CLI::App& app, const CommonOptions& common, int& exit_code) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "Load generator: committed requests/s and ops/s, latency p50/p99/max (--json for JSON)");
    add_cluster_option(cmd, args->cluster);
    cmd->add_option("--clients", args->clients, "Concurrent clients (one thread and key each)")
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
                    "Send every request to node I (default: client c uses node c % n)");
    cmd->add_option("--inflight", args->inflight,
                    "Requests in flight per client (default: about 1024 in total; at most 512)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--keys", args->keys,
                    "Draw keys from K shared keys bench-<k> (default: a new key per op)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--key-dir", args->key_dir,
                    "Client c uses the key DIR/bench-<c>.key (created if missing) and its nonce "
                    "counter, instead of a fresh key (for closed [permissions])");
    add_json_flag(cmd, args->json, "Print one JSON object");
    cmd->add_option("--attempt-timeout", args->attempt_timeout_s,
                    "Seconds without a reply before a request goes to the next node")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--deadline", args->deadline_s,
                    "Stop after this many seconds; unanswered requests count as timeouts")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->callback([args, &common, &exit_code] { exit_code = run_bench(*args, common); });
}

}  // namespace tob::cli
