// tobctl bench — load generator (docs/client.md, "Bench").
//
// C clients run in C threads, each with its own freshly generated in-memory key,
// its own DEALER sockets (one per node, over a shared ZeroMQ context). Client c
// sends to node c % n (or to --node I); each request carries M PUT operations of
// --size-byte values on keys bench-<client>-<counter> (or on --keys K shared keys
// bench-<k>). A request with no verified reply after --attempt-timeout goes to
// the next node (same bytes), and one refused with Overloaded/Halted goes there
// after a short pause.
//
// How much load:
//  - closed loop (default): a client keeps up to K requests in flight (--inflight)
//    and sends the next one when one is answered;
//  - open loop (--rate R): the clients together send R requests per second on a
//    fixed schedule whatever the replies do (cli/bench_stats.h), up to K in
//    flight each (default 512); a request that is due while the window is full
//    leaves as soon as it opens.
// How long: --txs requests in total, or (--duration S) sending for S seconds, then
// waiting up to --drain seconds for the answers.
//
// Latency is client-observed, up to the first verified reply for a request
// (signature checked against the node's key), from the request's first send in a
// closed loop, from the time it was due in an open loop (so a backlog shows as
// latency, not as a lower send rate). Throughput is counted from the start to
// the last reply; with --duration, the figures reported first count the commits
// inside a measuring window (the sending time minus a ramp-up of 10 %, at most
// 5 s). Long runs print a progress line on stderr every --progress seconds.
// --verify-rate measures this machine's Ed25519 verification rate
// instead (no cluster needed).
//
// With --key-dir DIR, client c uses the persistent key DIR/bench-<c>.key instead
// (created on first use, like a client key) and reserves its nonces from that
// key's counter file: for clusters whose [permissions] are closed, whose client
// endpoint admits only the keys they list (docs/security.md).
//
// Nonces of a client start at 1 (or at its reserved block) and stay within 512 of
// its oldest unanswered request, because a node skips a nonce more than 1024
// below the client's highest committed one (docs/protocol.md, "Replicated
// database").

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <latch>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/bench_stats.h"
#include "cli/bench_verify.h"
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
    std::uint64_t txs = 10000;              // requests in total (without --duration)
    std::uint32_t size = 100;               // bytes per value
    std::uint32_t ops_per_request = 1;      // operations batched under one signature
    std::optional<std::uint32_t> node;      // send everything to node I (default: spread)
    std::optional<std::uint32_t> inflight;  // per client
    std::optional<std::uint64_t> keys;      // key space (default: a fresh key per op)
    std::string key_dir;                    // persistent client keys (default: fresh ones)
    std::optional<double> rate;             // open loop: requests per second, all clients
    std::optional<double> duration_s;       // send for this long instead of --txs
    double drain_s = 10;                    // after --duration: wait this long for answers
    double progress_s = 5;                  // progress line period on stderr (0: none)
    bool json = false;
    double attempt_timeout_s = 3;
    double deadline_s = 600;
    bool verify_rate = false;  // measure Ed25519 verifications per second and exit
    double verify_seconds = 2;
    std::uint64_t expiry_horizon = kDefaultExpiryHorizon;  // epochs a request may wait
};

/// A client never has more than this many nonces between its oldest unanswered
/// request and its newest one (half the dedup window of 1024).
constexpr std::uint64_t kNonceSpread = 512;
constexpr std::uint32_t kInflightMax = 512;
constexpr auto kRefusedPause = std::chrono::milliseconds(50);
/// An open-loop request that leaves later than this after its due time is "late".
constexpr auto kLate = std::chrono::milliseconds(10);
constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();

struct ClientResult {
    std::uint64_t committed = 0;
    std::uint64_t ops = 0;
    std::uint64_t errors = 0;
    std::uint64_t retries = 0;
    std::uint64_t timeouts = 0;  // sent but unanswered at the end
    std::uint64_t unsent = 0;    // --txs: never sent; --rate: due but never sent
    std::uint64_t late = 0;      // open loop: left more than kLate after due
    std::vector<double> latency_ms;
    std::optional<Clock::time_point> last_reply;
    std::uint64_t window_requests = 0;  // --duration: committed inside the measuring window
    std::uint64_t window_ops = 0;
    std::string fatal;  // setup failure
};

/// What the progress line reads while the clients run.
struct Progress {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> ops{0};
    std::atomic<std::int64_t> in_flight{0};
    bench::LatencyHistogram latency;
};

struct Pending {
    Nonce nonce = 0;
    Bytes body;
    NodeId node = 0;
    Clock::time_point since;  // latency base: first send, or due time (open loop)
    Clock::time_point retry_at;
};

struct Shared {
    const daemon::ClusterConfig* cluster = nullptr;
    const BenchArgs* args = nullptr;
    std::uint32_t inflight = 1;
    zmq::context_t* context = nullptr;
    std::latch* ready = nullptr;
    std::latch* go = nullptr;
    Progress* progress = nullptr;
    std::atomic<std::uint32_t>* finished = nullptr;
    Clock::time_point start;
    Clock::time_point stop_sending;  // --duration: no new request from here
    Clock::time_point measure_from;  // --duration: the measuring window is [from, stop)
    Clock::time_point deadline;      // unanswered requests count as timeouts
};

/// One client's run: its window of requests in flight, by request digest, and
/// their nonces.
class BenchClient {
  public:
    BenchClient(std::uint32_t c, std::uint64_t budget, const Shared& sh, Client& client,
                ClientResult& res, Nonce first_nonce)
        : c_(c),
          budget_(budget),
          sh_(sh),
          args_(*sh.args),
          client_(client),
          res_(res),
          next_nonce_(first_nonce) {
        home_ = static_cast<NodeId>(args_.node ? *args_.node : c % client.n());
        attempt_timeout_ = std::chrono::milliseconds(
            static_cast<std::int64_t>(args_.attempt_timeout_s * 1000 + 0.5));
        rng_.seed(std::random_device{}() ^ (std::uint64_t{c} << 32));
        value_.resize(args_.size);
        for (auto& b : value_) b = static_cast<std::uint8_t>(rng_());
    }

    void run() {
        std::vector<Incoming> incoming;
        for (;;) {
            auto now = Clock::now();
            if (now >= sh_.deadline) break;
            const bool sending = more_to_send(now);
            if (!sending && pending_.empty()) break;
            Clock::time_point next_event = now + std::chrono::milliseconds(100);
            if (sending) next_event = std::min(next_event, fill(now));
            next_event = std::min({next_event, retry(Clock::now()), sh_.deadline});
            incoming.clear();
            client_.poll(std::chrono::ceil<std::chrono::milliseconds>(next_event - Clock::now()),
                         incoming);
            receive(incoming, Clock::now());
        }
        res_.timeouts = pending_.size();
        sh_.progress->in_flight -= static_cast<std::int64_t>(pending_.size());
        const std::uint64_t planned = args_.rate ? open_loop_total() : budget_;
        res_.unsent = planned == kUnlimited || planned < issued_ ? 0 : planned - issued_;
    }

  private:
    /// Open loop: the requests due before sending stops (at most the budget).
    std::uint64_t open_loop_total() const {
        if (sh_.stop_sending == Clock::time_point::max()) return budget_;
        const double window_s = std::chrono::duration<double>(sh_.stop_sending - sh_.start).count();
        // Requests due at exactly the end are not sent.
        const std::uint64_t due =
            bench::due_count(c_, args_.clients, *args_.rate, std::nextafter(window_s, 0.0));
        return std::min(budget_, due);
    }

    /// Closed loop: until the budget is spent or sending stops. Open loop: until
    /// every request due before sending stops has left.
    bool more_to_send(Clock::time_point now) const {
        if (args_.rate) return issued_ < open_loop_total();
        return issued_ < budget_ && now < sh_.stop_sending;
    }

    bool window_open() const {
        return pending_.size() < sh_.inflight &&
               (open_nonces_.empty() || next_nonce_ < *open_nonces_.begin() + kNonceSpread);
    }

    /// The PUTs of the next request; `counter_` numbers the ops and goes into the
    /// first bytes of each value, so values differ.
    std::vector<consensus::Op> make_ops() {
        std::vector<consensus::Op> ops;
        ops.reserve(args_.ops_per_request);
        for (std::uint32_t m = 0; m < args_.ops_per_request; ++m, ++counter_) {
            std::string key = args_.keys
                                  ? "bench-" + std::to_string(rng_() % *args_.keys)
                                  : "bench-" + std::to_string(c_) + "-" + std::to_string(counter_);
            for (std::size_t k = 0; k < std::min<std::size_t>(8, value_.size()); ++k) {
                value_[k] = static_cast<std::uint8_t>(counter_ >> (8 * k));
            }
            ops.push_back(consensus::Op{consensus::OpType::Put, Bytes(key.begin(), key.end()),
                                        value_, std::nullopt});
        }
        return ops;
    }

    void send_new(std::optional<Clock::time_point> due) {
        const consensus::Request request = client_.build_request(make_ops(), next_nonce_);
        Client::Prepared prepared = Client::prepare(request);
        const auto now = Clock::now();
        if (due && now - *due > kLate) ++res_.late;
        client_.send(home_, prepared.body);  // on a full queue the retry timer resends
        open_nonces_.insert(next_nonce_);
        pending_.emplace(prepared.request_digest,
                         Pending{next_nonce_, std::move(prepared.body), home_, due.value_or(now),
                                 now + attempt_timeout_});
        ++next_nonce_;
        ++issued_;
        ++sh_.progress->in_flight;
    }

    /// Sends what the loop allows now; returns when to look again.
    Clock::time_point fill(Clock::time_point now) {
        const auto never = Clock::time_point::max();
        if (!args_.rate) {
            while (issued_ < budget_ && window_open()) send_new(std::nullopt);
            return never;  // a reply opens the window
        }
        const double rate = *args_.rate;
        const double elapsed =
            std::chrono::duration<double>(std::min(now, sh_.stop_sending) - sh_.start).count();
        const std::uint64_t total = open_loop_total();
        const std::uint64_t due =
            std::min(total, bench::due_count(c_, args_.clients, rate, elapsed));
        while (issued_ < due && window_open()) send_new(due_time(issued_));
        if (issued_ < due || issued_ >= total) return never;  // window full, or done
        return due_time(issued_);
    }

    Clock::time_point due_time(std::uint64_t k) const {
        return sh_.start +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                   bench::due_seconds(c_, args_.clients, *args_.rate, k)));
    }

    /// Resends what waited too long to the next node; returns the next retry time.
    Clock::time_point retry(Clock::time_point now) {
        Clock::time_point next = Clock::time_point::max();
        const auto n = client_.n();
        for (auto& [digest, p] : pending_) {
            if (p.retry_at <= now) {
                p.node = static_cast<NodeId>((p.node + 1) % n);
                client_.send(p.node, p.body);
                p.retry_at = now + attempt_timeout_;
                ++res_.retries;
            }
            next = std::min(next, p.retry_at);
        }
        return next;
    }

    void finish(std::map<Digest, Pending>::iterator it) {
        open_nonces_.erase(it->second.nonce);
        pending_.erase(it);
        --sh_.progress->in_flight;
    }

    /// A verified reply finishes its request (committed or malformed); a refusal
    /// finishes it (BadRequest, ReplyTooLarge: every honest node says the same) or
    /// hastens its retry.
    void receive(std::vector<Incoming>& incoming, Clock::time_point arrived) {
        for (Incoming& in : incoming) {
            if (auto* reply = std::get_if<ReplyMsg>(&in.message)) {
                auto it = pending_.find(reply->request_digest);
                if (it == pending_.end() || reply->client != client_.public_key() ||
                    reply->nonce != it->second.nonce) {
                    continue;  // a late answer to a request already answered
                }
                if (skipped(reply->status)) {
                    ++res_.errors;
                } else {
                    const double ms =
                        std::chrono::duration<double, std::milli>(arrived - it->second.since)
                            .count();
                    ++res_.committed;
                    res_.ops += args_.ops_per_request;
                    res_.latency_ms.push_back(ms);
                    res_.last_reply = arrived;
                    if (arrived >= sh_.measure_from && arrived < sh_.stop_sending) {
                        ++res_.window_requests;
                        res_.window_ops += args_.ops_per_request;
                    }
                    ++sh_.progress->requests;
                    sh_.progress->ops += args_.ops_per_request;
                    sh_.progress->latency.record(ms);
                }
                finish(it);
            } else if (auto* error = std::get_if<ErrorMsg>(&in.message)) {
                ++res_.errors;
                if (!error->request_digest) continue;
                auto it = pending_.find(*error->request_digest);
                if (it == pending_.end()) continue;
                if (error->code == ErrorCode::BadRequest ||
                    error->code == ErrorCode::ReplyTooLarge) {
                    finish(it);
                } else if (error->code != ErrorCode::NotVoting && in.from == it->second.node) {
                    it->second.retry_at = std::min(it->second.retry_at, arrived + kRefusedPause);
                }
            }
        }
    }

    std::uint32_t c_;
    std::uint64_t budget_;
    const Shared& sh_;
    const BenchArgs& args_;
    Client& client_;
    ClientResult& res_;
    NodeId home_ = 0;
    std::chrono::milliseconds attempt_timeout_{};
    std::mt19937_64 rng_;
    Bytes value_;
    std::map<Digest, Pending> pending_;
    std::set<Nonce> open_nonces_;
    Nonce next_nonce_ = 1;
    std::uint64_t issued_ = 0;
    std::uint64_t counter_ = 0;
};

void run_client(std::uint32_t c, std::uint64_t budget, const Shared& sh, ClientResult& res) {
    std::optional<Client> client;
    Nonce next_nonce = 1;
    try {
        if (sh.args->key_dir.empty()) {
            client.emplace(*sh.cluster, crypto::SigningKey::generate(), sh.context);
        } else {
            const auto path =
                std::filesystem::path(sh.args->key_dir) / ("bench-" + std::to_string(c) + ".key");
            auto key = load_or_create_client_key(path);
            // With --duration the budget is unlimited: reserve 2^32 nonces then.
            const std::uint64_t reserve = std::clamp<std::uint64_t>(budget, 1, 1ULL << 32);
            auto first = key.ok() ? reserve_nonces(nonce_file_for(path), reserve)
                                  : Result<Nonce>::failure(key.error);
            if (!first.ok()) {
                res.fatal = "client " + std::to_string(c) + ": " + first.error;
            } else {
                next_nonce = *first.value;
                client.emplace(*sh.cluster, *key.value, sh.context);
            }
        }
    } catch (const std::exception& e) {
        res.fatal = std::string("client ") + std::to_string(c) + ": " + e.what();
    }
    if (client) client->set_expiry_horizon(sh.args->expiry_horizon);
    if (client) client->refresh_epoch();  // requests expire from it: learn it before the clock
    sh.ready->count_down();
    sh.go->wait();
    if (client) BenchClient(c, budget, sh, *client, res, next_nonce).run();
    ++*sh.finished;
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
    probe.expires = ~consensus::Epoch{0};
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
        total.unsent += r.unsent;
        total.late += r.late;
        total.window_requests += r.window_requests;
        total.window_ops += r.window_ops;
        latency.insert(latency.end(), r.latency_ms.begin(), r.latency_ms.end());
        if (r.last_reply && (!total.last_reply || *r.last_reply > *total.last_reply)) {
            total.last_reply = r.last_reply;
        }
    }
    return true;
}

std::string json_number_or_null(const std::optional<double>& v, int digits) {
    return v ? fixed(*v, digits) : "null";
}

/// Throughput over the whole run (start to last reply) and, with --duration,
/// over the measuring window (commits that arrived in it, per second of it).
struct Rates {
    double seconds = 0, ops_per_s = 0, requests_per_s = 0;
    double window_s = 0, window_ops_per_s = 0, window_requests_per_s = 0;
    /// The figures a run reports first: the window's with --duration.
    double ops() const { return window_s > 0 ? window_ops_per_s : ops_per_s; }
    double requests() const { return window_s > 0 ? window_requests_per_s : requests_per_s; }
};

Rates rates_of(const Shared& sh, const ClientResult& total) {
    Rates r;
    if (total.last_reply)
        r.seconds = std::chrono::duration<double>(*total.last_reply - sh.start).count();
    if (r.seconds > 0) {
        r.ops_per_s = static_cast<double>(total.ops) / r.seconds;
        r.requests_per_s = static_cast<double>(total.committed) / r.seconds;
    }
    if (sh.stop_sending != Clock::time_point::max()) {
        r.window_s = std::chrono::duration<double>(sh.stop_sending - sh.measure_from).count();
        r.window_ops_per_s = static_cast<double>(total.window_ops) / r.window_s;
        r.window_requests_per_s = static_cast<double>(total.window_requests) / r.window_s;
    }
    return r;
}

void print_report(const BenchArgs& args, std::uint32_t inflight, const Rates& rate,
                  const ClientResult& total, std::vector<double>& latency) {
    const double seconds = rate.seconds;
    const double ops_per_s = rate.ops();
    const double requests_per_s = rate.requests();
    const bench::LatencySummary lat = bench::summarize(latency);
    std::optional<double> offered_ops;
    if (args.rate) offered_ops = *args.rate * args.ops_per_request;
    if (args.json) {
        std::cout << "{\"mode\": \"" << (args.rate ? "open" : "closed") << "\""
                  << ", \"clients\": " << args.clients
                  << ", \"txs\": " << (args.duration_s ? "null" : std::to_string(args.txs))
                  << ", \"duration_s\": " << json_number_or_null(args.duration_s, 3)
                  << ", \"size\": " << args.size
                  << ", \"ops_per_request\": " << args.ops_per_request
                  << ", \"inflight\": " << inflight
                  << ", \"keys\": " << (args.keys ? std::to_string(*args.keys) : "null")
                  << ", \"offered_requests_per_s\": " << json_number_or_null(args.rate, 1)
                  << ", \"offered_ops_per_s\": " << json_number_or_null(offered_ops, 1)
                  << ", \"requests_committed\": " << total.committed
                  << ", \"ops_committed\": " << total.ops << ", \"seconds\": " << fixed(seconds, 3)
                  << ", \"ops_per_s\": " << fixed(ops_per_s, 1)
                  << ", \"requests_per_s\": " << fixed(requests_per_s, 1)
                  << ", \"window_s\": " << fixed(rate.window_s, 3)
                  << ", \"overall\": {\"ops_per_s\": " << fixed(rate.ops_per_s, 1)
                  << ", \"requests_per_s\": " << fixed(rate.requests_per_s, 1) << "}"
                  << ", \"latency_ms\": {\"p50\": " << fixed(lat.p50, 3)
                  << ", \"p90\": " << fixed(lat.p90, 3) << ", \"p99\": " << fixed(lat.p99, 3)
                  << ", \"max\": " << fixed(lat.max, 3) << ", \"mean\": " << fixed(lat.mean, 3)
                  << "}, \"errors\": " << total.errors << ", \"retries\": " << total.retries
                  << ", \"timeouts\": " << total.timeouts << ", \"unsent\": " << total.unsent
                  << ", \"late_sends\": " << total.late << "}\n";
        return;
    }
    std::cout << "bench: " << args.clients << " clients, "
              << (args.duration_s ? fixed(*args.duration_s, 1) + " s of" : std::to_string(args.txs))
              << " requests of " << args.ops_per_request << " PUT op(s) with " << args.size
              << "-byte values, up to " << inflight << " in flight per client";
    if (args.rate) std::cout << ", open loop at " << fixed(*args.rate, 1) << " requests/s";
    std::cout << "\ncommitted: " << total.committed << " requests (" << total.ops << " ops) in "
              << fixed(seconds, 3) << " s\n"
              << "throughput: " << fixed(requests_per_s, 1) << " requests/s, "
              << fixed(ops_per_s, 1) << " ops/s"
              << (rate.window_s > 0
                      ? " (over the last " + fixed(rate.window_s, 1) + " s of sending)"
                      : std::string())
              << "\n"
              << "latency ms: p50 " << fixed(lat.p50, 2) << "  p90 " << fixed(lat.p90, 2)
              << "  p99 " << fixed(lat.p99, 2) << "  max " << fixed(lat.max, 2) << "\n"
              << "errors: " << total.errors << "  retries: " << total.retries
              << "  timeouts: " << total.timeouts << "  unsent: " << total.unsent
              << "  late sends: " << total.late << "\n";
}

/// Prints a progress line on stderr every --progress seconds until every client
/// finished.
void watch_progress(const BenchArgs& args, const Shared& sh, std::uint32_t clients) {
    const auto period =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args.progress_s));
    auto next = sh.start + period;
    while (sh.finished->load() < clients) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const auto now = Clock::now();
        if (args.progress_s <= 0 || now < next) continue;
        next += period;
        const double s = std::chrono::duration<double>(now - sh.start).count();
        const Progress& p = *sh.progress;
        std::cerr << "bench: " << fixed(s, 0)
                  << " s: " << fixed(static_cast<double>(p.ops.load()) / s, 0) << " ops/s, "
                  << fixed(static_cast<double>(p.requests.load()) / s, 0) << " requests/s, p50 "
                  << fixed(p.latency.percentile(0.5), 1) << " ms, " << p.in_flight.load()
                  << " in flight";
        if (args.rate) std::cerr << " (offered " << fixed(*args.rate, 0) << " requests/s)";
        std::cerr << std::endl;
    }
}

int run_bench(BenchArgs args, const CommonOptions& common) {
    args.json = args.json || common.json;  // --json before the command name
    if (args.verify_rate) return run_verify_rate(args.size, args.verify_seconds, args.json);
    auto cluster = load_cluster_for("bench", args.cluster, common);
    if (!cluster) return 1;
    if (auto problem = check_args(args, *cluster)) {
        std::cerr << "tobctl bench: " << *problem << "\n";
        return 1;
    }
    const std::uint32_t default_inflight =
        args.rate
            ? kInflightMax
            : std::clamp<std::uint32_t>((1024 + args.clients - 1) / args.clients, 1, kInflightMax);
    std::uint32_t inflight = std::max<std::uint32_t>(1, args.inflight.value_or(default_inflight));
    if (inflight > kInflightMax) {
        std::cerr << "tobctl bench: --inflight capped at " << kInflightMax
                  << " (half the dedup window of 1024 nonces)\n";
        inflight = kInflightMax;
    }

    zmq::context_t context(1);
    std::latch ready(args.clients);
    std::latch go(1);
    Progress progress;
    std::atomic<std::uint32_t> finished{0};
    Shared sh;
    sh.cluster = &*cluster;
    sh.args = &args;
    sh.inflight = inflight;
    sh.context = &context;
    sh.ready = &ready;
    sh.go = &go;
    sh.progress = &progress;
    sh.finished = &finished;

    std::vector<ClientResult> results(args.clients);
    std::vector<std::thread> threads;
    threads.reserve(args.clients);
    for (std::uint32_t c = 0; c < args.clients; ++c) {
        const std::uint64_t budget =
            args.duration_s ? kUnlimited : args.txs / args.clients + (c < args.txs % args.clients);
        threads.emplace_back([c, budget, &sh, &results] { run_client(c, budget, sh, results[c]); });
    }
    ready.wait();
    // Give the DEALER sockets a moment to finish their TCP connects, so the first
    // latencies do not include connection setup.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto seconds = [](double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    };
    sh.start = Clock::now();
    sh.deadline = sh.start + seconds(args.deadline_s);
    sh.stop_sending = Clock::time_point::max();
    if (args.duration_s) {
        sh.stop_sending = sh.start + seconds(*args.duration_s);
        sh.deadline = std::min(sh.deadline, sh.stop_sending + seconds(args.drain_s));
        // The measuring window leaves out the ramp-up: 10 % of the run, at most 5 s.
        sh.measure_from = sh.start + seconds(std::min(5.0, *args.duration_s / 10));
    }
    go.count_down();
    watch_progress(args, sh, args.clients);
    for (auto& t : threads) t.join();

    ClientResult total;
    std::vector<double> latency;
    if (!add_up(results, total, latency)) return 1;
    print_report(args, inflight, rates_of(sh, total), total, latency);
    if (args.duration_s) return total.timeouts == 0 && total.committed > 0 ? 0 : 1;
    return total.committed == args.txs ? 0 : 1;
}

}  // namespace

void add_bench(CLI::App& app, const CommonOptions& common, int& exit_code) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "Load generator: committed requests/s and ops/s, latency p50/p90/p99/max (--json for "
        "JSON); closed loop, or open loop with --rate");
    add_cluster_option(cmd, args->cluster);
    cmd->add_option("--clients", args->clients, "Concurrent clients (one thread and key each)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--txs", args->txs, "Requests to commit in total (unless --duration)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--duration", args->duration_s,
                    "Send for this many seconds (instead of --txs), then wait up to --drain "
                    "seconds for the answers")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--drain", args->drain_s,
                    "With --duration: seconds to wait for answers after the last send")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--rate", args->rate,
                    "Open loop: send R requests per second in total on a fixed schedule, "
                    "whatever the replies do; latency counts from each request's due time")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--size", args->size, "Value size in bytes")->capture_default_str();
    cmd->add_option("--ops-per-request", args->ops_per_request, "Operations per signed request")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--node", args->node,
                    "Send every request to node I (default: client c uses node c % n)");
    cmd->add_option("--inflight", args->inflight,
                    "Requests in flight per client (default: about 1024 in total, or 512 per "
                    "client with --rate; at most 512)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--keys", args->keys,
                    "Working set: draw keys from K shared keys bench-<k> (default: a new key "
                    "per op)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--key-dir", args->key_dir,
                    "Client c uses the key DIR/bench-<c>.key (created if missing) and its nonce "
                    "counter, instead of a fresh key (for closed [permissions])");
    add_json_flag(cmd, args->json, "Print one JSON object");
    cmd->add_option("--attempt-timeout", args->attempt_timeout_s,
                    "Seconds without a reply before a request goes to the next node")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--expiry-horizon", args->expiry_horizon, "Epochs a request may wait")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--deadline", args->deadline_s,
                    "Stop after this many seconds; unanswered requests count as timeouts")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--progress", args->progress_s,
                    "Print ops/s, p50 and requests in flight on stderr every S seconds (0: never)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_flag("--verify-rate", args->verify_rate,
                  "Measure this machine's Ed25519 verifications per second (one thread) over a "
                  "request's sign payload, and exit; no cluster needed");
    cmd->add_option("--verify-seconds", args->verify_seconds, "How long --verify-rate measures")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->callback([args, &common, &exit_code] { exit_code = run_bench(*args, common); });
}

}  // namespace tob::cli
