// tobd: one node of a tobd cluster.
//
//   tobd --config FILE                 run the node (logs to stderr, the journal under systemd)
//   tobd --config FILE --check-config  print every config problem (exit 1) or "config ok" (exit 0)
//   tobd --version                     "tobd <version>"
//   tobd --config FILE --export-snapshot OUT / --import-snapshot IN
//                                      back up / restore the state at a stable
//                                      checkpoint (the node must be stopped;
//                                      daemon/snapshot_tool.h, docs/operations.md)
//
// Test-only options (refused unless the node config says testing = true):
//   --test-byzantine BEHAVIOUR   one the catalogue (consensus/byzantine_catalogue.h)
//                                says tobd implements; `tobd --help` lists them
//   --test-drop P --test-duplicate P --test-delay P --test-delay-ms MS --test-seed S
//                                the fault layer (docs/fault-model.md rows 8-10)
//   --test-twin OFFSET, --test-crash-at N   a twin of this node; a fail-point
//   --test-snapshot-chunk-bytes N  smaller snapshot chunks (a transfer asks every peer)
//   --test-view-min-state-bytes N  checkpoint views from this state size (default 16 MiB)
//   --test-no-curve              plaintext sockets, no ZAP (docs/security.md; the whole
//                                cluster and its clients must then run without Curve)
//
// Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 bad config / keys / data dir /
// port in use (every problem is logged), 3 fail-stop on a failed durable write.
// SIGHUP re-reads log_level from the config file.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "consensus/byzantine_catalogue.h"
#include "consensus/codec.h"
#include "crypto/hash.h"
#include "daemon/config.h"
#include "daemon/http_server.h"
#include "daemon/log_dump.h"
#include "daemon/metrics.h"
#include "daemon/node.h"
#include "daemon/notify.h"
#include "daemon/snapshot_tool.h"
#include "daemon/storage.h"
#include "daemon/version.h"

namespace {

spdlog::level::level_enum spdlog_level(tob::daemon::LogLevel level) {
    using tob::daemon::LogLevel;
    switch (level) {
        case LogLevel::Trace:
            return spdlog::level::trace;
        case LogLevel::Debug:
            return spdlog::level::debug;
        case LogLevel::Info:
            return spdlog::level::info;
        case LogLevel::Warn:
            return spdlog::level::warn;
        case LogLevel::Error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

int dump_sign_log_of(const tob::daemon::NodeConfig& node,
                     const tob::daemon::ClusterConfig& cluster) {
    using namespace tob::consensus;
    auto storage = tob::daemon::NodeStorage::open(node.data_dir);
    if (!storage.ok()) {
        for (const auto& e : storage.errors) std::cerr << e << "\n";
        return 1;
    }
    auto loaded = (*storage.value)->load_records();
    for (const auto& p : loaded.problems) std::cerr << p << "\n";
    static const char* kKinds[] = {"?",
                                   "block",
                                   "seen",
                                   "cert",
                                   "aba",
                                   "commit",
                                   "requests",
                                   "fetch_request",
                                   "fetch_reply",
                                   "snapshot_request",
                                   "snapshot_reply"};
    static_assert(sizeof(kKinds) / sizeof(kKinds[0]) == kKindMax + 1);
    for (const auto& rec : loaded.records) {
        if (rec.type != DurableRecord::Type::Signed) continue;
        auto env = decode_envelope(rec.bytes, cluster.limits);
        if (!env) continue;
        const auto k = static_cast<unsigned>(env.value().kind);
        std::cout << "{\"epoch\": " << env.value().epoch << ", \"kind\": \""
                  << (k <= kKindMax ? kKinds[k] : "?") << "\", \"digest\": \""
                  << tob::crypto::to_hex(digest_of(rec.bytes)) << "\"}\n";
    }
    return loaded.sign_log_ok ? 0 : 2;
}

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

extern "C" void on_stop_signal(int) { g_stop = true; }
extern "C" void on_hup_signal(int) { g_reload = true; }

void install_signal_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_hup_signal;
    sigaction(SIGHUP, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

// Everything the command line sets.
struct Args {
    std::string config_file;
    bool show_version = false;
    bool check_only = false;
    bool dump_log = false;
    bool dump_sign_log = false;
    std::string export_snapshot;
    std::string import_snapshot;
    unsigned verify_threads = 2;
    std::string byzantine_name;
    tob::daemon::FaultLayerOptions faults;
    std::uint32_t twin_offset = 0;
    std::uint64_t crash_at = 0;
    bool no_curve = false;
    std::uint64_t snapshot_chunk_bytes = 0;
    std::optional<std::uint64_t> view_min_state_bytes;

    bool test_options() const {
        return faults.enabled() || !byzantine_name.empty() || twin_offset != 0 || crash_at != 0 ||
               no_curve || snapshot_chunk_bytes != 0 || view_min_state_bytes.has_value();
    }
};

void add_options(CLI::App& app, Args& args) {
    app.add_option("--config,-c", args.config_file,
                   "Node config file (config.toml); required unless --version");
    app.add_flag("--version", args.show_version, "Print the version and exit");
    app.add_flag("--check-config", args.check_only,
                 "Load the config and cluster file, check keys and data_dir; print each problem "
                 "(exit 1) or \"config ok\" (exit 0)");
    app.add_flag("--dump-log", args.dump_log,
                 "Print the committed log (epochs, requests, outputs; docs/checkers.md) as JSON "
                 "lines, replayed from the node's archive and checked against its COMMITs; the "
                 "node must be stopped");
    app.add_flag("--dump-sign-log", args.dump_sign_log,
                 "Print the node's sign-log (epoch, kind, payload digest) as JSON lines and exit; "
                 "the node must be stopped");
    app.add_option("--export-snapshot", args.export_snapshot,
                   "Write the newest stable checkpoint the node holds (state, manifest and the "
                   "COMMITs that certify it) to FILE and exit; the node must be stopped");
    app.add_option("--import-snapshot", args.import_snapshot,
                   "Check FILE (a snapshot of this cluster) against the cluster's keys, install "
                   "it as the node's state and exit; the node must be stopped");
    app.add_option("--verify-threads", args.verify_threads, "Signature verification worker threads")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
}

void add_test_options(CLI::App& app, Args& args) {
    app.add_option(
        "--test-byzantine", args.byzantine_name,
        "TEST ONLY (needs testing = true): behave Byzantine, one of\n" +
            tob::consensus::byzantine_help(tob::consensus::ByzantineHarness::Tobd, "  "));
    app.add_option("--test-drop", args.faults.drop,
                   "TEST ONLY: drop received peer frames with this probability")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--test-duplicate", args.faults.duplicate,
                   "TEST ONLY: duplicate received frames")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--test-delay", args.faults.delay, "TEST ONLY: delay (and so reorder) frames")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--test-delay-ms", args.faults.delay_ms_max, "TEST ONLY: maximum delay");
    app.add_option("--test-seed", args.faults.seed, "TEST ONLY: seed of the fault layer");
    app.add_option("--test-twin", args.twin_offset,
                   "TEST ONLY: run as a twin of this node (same key, its own data dir and mark "
                   "file in the config): bind at port+OFFSET, send broadcasts to each peer");
    app.add_option("--test-crash-at", args.crash_at,
                   "TEST ONLY: abort() at the N-th durable-write boundary (fail-point)");
    app.add_option("--test-snapshot-chunk-bytes", args.snapshot_chunk_bytes,
                   "TEST ONLY: at most this many entry bytes per snapshot chunk request")
        ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1} << 20));
    app.add_option("--test-view-min-state-bytes", args.view_min_state_bytes,
                   "TEST ONLY: keep checkpoints as views (linked table files) from this state "
                   "size on, instead of 16 MiB (0: always)");
    app.add_flag("--test-no-curve", args.no_curve,
                 "TEST ONLY: no CurveZMQ and no ZAP: every socket in plaintext, anyone may "
                 "connect (clients need TOBCTL_TEST_NO_CURVE=1)");
}

int print_errors(const tob::daemon::Errors& errors) {
    for (const auto& error : errors) std::cerr << error << "\n";
    return 1;
}

// --check-config, --dump-log and --dump-sign-log: they run beside a stopped node
// (or none) and exit. nullopt: none of them was asked for.
std::optional<int> run_offline_command(
    const Args& args, const tob::daemon::Outcome<tob::daemon::LoadedNode>& loaded) {
    if (args.check_only) {
        if (!loaded.ok()) {
            print_errors(loaded.errors);
            std::cerr << "config has " << loaded.errors.size() << " problem"
                      << (loaded.errors.size() == 1 ? "" : "s") << "\n";
            return 1;
        }
        std::cout << "config ok\n";
        return 0;
    }
    const bool snapshot_command = !args.export_snapshot.empty() || !args.import_snapshot.empty();
    if (!args.dump_log && !args.dump_sign_log && !snapshot_command) return std::nullopt;
    if (!loaded.ok()) return print_errors(loaded.errors);
    if (!args.export_snapshot.empty()) {
        return tob::daemon::export_snapshot(loaded.value->node, loaded.value->cluster,
                                            args.export_snapshot, std::cout, std::cerr);
    }
    if (!args.import_snapshot.empty()) {
        return tob::daemon::import_snapshot(loaded.value->node, loaded.value->cluster,
                                            args.import_snapshot, std::cout, std::cerr);
    }
    if (args.dump_log) {
        return tob::daemon::dump_log(loaded.value->node, loaded.value->cluster, std::cout,
                                     std::cerr);
    }
    return dump_sign_log_of(loaded.value->node, loaded.value->cluster);
}

void warn_about_unsafe_settings(const tob::daemon::NodeConfig& node,
                                const tob::daemon::ClusterConfig& cluster) {
    if (node.testing)
        spdlog::warn("testing = true in {}: test-only hooks are enabled", node.path.string());
    if (cluster.allow_unsafe) {
        spdlog::warn(
            "cluster file {} sets allow_unsafe: n={} t={} is not a fault-tolerant configuration",
            cluster.path.string(), cluster.n, cluster.t);
    }
}

// The node's options from the command line; nullopt (logged) when a test-only
// option is given without testing = true or names no known behaviour.
std::optional<tob::daemon::NodeOptions> node_options(const Args& args,
                                                     const tob::daemon::NodeConfig& node) {
    tob::daemon::NodeOptions options;
    options.verify_threads = args.verify_threads;
    options.twin_port_offset = args.twin_offset;
    options.crash_at = args.crash_at;
    options.test_no_curve = args.no_curve;
    options.snapshot_chunk_bytes = args.snapshot_chunk_bytes;
    options.view_min_state_bytes = args.view_min_state_bytes;
    if (args.test_options() && !node.testing) {
        spdlog::error(
            "tobd: --test-* options need testing = true in {} (they exist only for the "
            "fault-injection suite)",
            node.path.string());
        return std::nullopt;
    }
    if (!args.byzantine_name.empty() && args.byzantine_name != "none") {
        auto b = tob::consensus::parse_byzantine(args.byzantine_name,
                                                 tob::consensus::ByzantineHarness::Tobd);
        if (auto* error = std::get_if<std::string>(&b)) {
            spdlog::error("tobd: --test-byzantine: {}", *error);
            return std::nullopt;
        }
        options.byzantine = std::get<tob::consensus::Byzantine>(b);
        spdlog::warn("TEST MODE: this node behaves Byzantine ({})", args.byzantine_name);
    }
    if (args.no_curve) {
        spdlog::warn("TEST MODE: CurveZMQ OFF: plaintext sockets, no authentication");
    }
    options.faults = args.faults;
    if (args.faults.enabled()) {
        spdlog::warn("TEST MODE: fault layer drop={} duplicate={} delay={} up to {} ms",
                     args.faults.drop, args.faults.duplicate, args.faults.delay,
                     args.faults.delay_ms_max);
    }
    return options;
}

// The metrics and health endpoint, when metrics_address is set. false (logged):
// it could not listen.
bool start_http(const tob::daemon::NodeConfig& node, tob::daemon::Node& the_node,
                std::unique_ptr<tob::daemon::HttpServer>& http) {
    if (node.metrics_address.empty()) return true;
    tob::daemon::HttpHandlers handlers;
    handlers.metrics = [&the_node] { return the_node.metrics().render(); };
    handlers.ready = [&the_node](std::string& why) { return the_node.ready(why); };
    auto started = tob::daemon::HttpServer::start(node.metrics_address, handlers);
    if (auto* err = std::get_if<std::string>(&started)) {
        spdlog::error("tobd: not starting: metrics_address {}: {}", node.metrics_address, *err);
        return false;
    }
    http = std::move(std::get<std::unique_ptr<tob::daemon::HttpServer>>(started));
    spdlog::info("metrics and health on http://{}/metrics, /healthz, /readyz",
                 node.metrics_address);
    return true;
}

// What the node loop calls back into: sd_notify (ready, status, watchdog pings at
// half the watchdog interval) and the SIGHUP reload of log_level.
class ServiceHooks {
  public:
    explicit ServiceHooks(std::filesystem::path config_path)
        : config_path_(std::move(config_path)),
          watchdog_(notifier_.watchdog_interval()),
          next_ping_(std::chrono::steady_clock::now()) {}

    tob::daemon::NodeHooks hooks() {
        tob::daemon::NodeHooks hooks;
        hooks.ready = [this] { notifier_.ready(); };
        hooks.status = [this](const std::string& line) { notifier_.status(line); };
        hooks.alive = [this] { alive(); };
        return hooks;
    }
    void stopping() { notifier_.stopping(); }

  private:
    void alive() {
        const auto now = std::chrono::steady_clock::now();
        if (watchdog_ && now >= next_ping_) {
            notifier_.watchdog();
            next_ping_ = now + *watchdog_ / 2;
        }
        if (g_reload.exchange(false)) reload_log_level();
    }

    void reload_log_level() {
        notifier_.reloading();
        auto reread = tob::daemon::load_node_config(config_path_);
        if (reread.ok()) {
            spdlog::set_level(spdlog_level(reread.value->log_level));
            spdlog::info("SIGHUP: log level is now {}",
                         tob::daemon::to_string(reread.value->log_level));
        } else {
            for (const auto& e : reread.errors) spdlog::error("SIGHUP: {} (kept the old level)", e);
        }
        notifier_.ready_again();
    }

    std::filesystem::path config_path_;
    tob::daemon::Notifier notifier_;
    std::optional<std::chrono::microseconds> watchdog_;
    std::chrono::steady_clock::time_point next_ping_;
};

// Runs the node of a loaded, checked config until SIGTERM/SIGINT or a fatal error.
int run_node(const Args& args, const tob::daemon::NodeConfig& node,
             const tob::daemon::ClusterConfig& cluster) {
    spdlog::set_level(spdlog_level(node.log_level));
    warn_about_unsafe_settings(node, cluster);
    auto options = node_options(args, node);
    if (!options) return 1;
    auto keys = tob::daemon::load_node_keys(node, cluster);
    if (!keys.ok()) {
        for (const auto& error : keys.errors) spdlog::error("{}", error);
        return 1;
    }
    auto opened = tob::daemon::Node::open(node, cluster, std::move(*keys.value), *options);
    if (auto* err = std::get_if<std::string>(&opened)) {
        spdlog::error("tobd: not starting: {}", *err);
        return 1;
    }
    auto& the_node = *std::get<std::unique_ptr<tob::daemon::Node>>(opened);
    install_signal_handlers();

    ServiceHooks service(node.path);
    std::unique_ptr<tob::daemon::HttpServer> http;
    if (!start_http(node, the_node, http)) return 1;
    spdlog::info("tobd {} node {} of n={} (t={}, q={}) chain {}", tob::daemon::version(),
                 node.node_id, cluster.n, cluster.t, cluster.quorum(),
                 tob::crypto::to_hex(cluster.chain_id));
    const int code = the_node.run(g_stop, service.hooks());
    service.stopping();
    if (http) http->stop();
    spdlog::info("tobd stopped (exit {})", code);
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    tob::crypto::init();

    CLI::App app{"tobd: one node of a tobd cluster (asynchronous BFT total-order broadcast)"};
    Args args;
    add_options(app, args);
    add_test_options(app, args);
    try {
        app.parse(argc, argv);
        if (!args.show_version && args.config_file.empty()) throw CLI::RequiredError("--config");
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (args.show_version) {
        std::cout << "tobd " << tob::daemon::version() << "\n";
        return 0;
    }

    // --dump-sign-log and --dump-log run beside a stopped node only; they never bind
    // the node's ports. A twin binds other ports than the cluster file's (the
    // original holds those).
    auto loaded = tob::daemon::load_and_check(
        args.config_file,
        tob::daemon::CheckOptions{.ports = !args.dump_sign_log && !args.dump_log &&
                                           args.export_snapshot.empty() &&
                                           args.import_snapshot.empty() && args.twin_offset == 0});
    if (auto code = run_offline_command(args, loaded)) return *code;

    // Logs go to stderr (the journal under systemd); stdout stays free.
    auto logger = spdlog::stderr_color_mt("tobd");
    spdlog::set_default_logger(logger);
    if (!loaded.ok()) {
        for (const auto& error : loaded.errors) spdlog::error("{}", error);
        spdlog::error(
            "tobd: not starting: {} config problem{} (tobd --config {} --check-config lists them)",
            loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s", args.config_file);
        return 1;
    }
    return run_node(args, loaded.value->node, loaded.value->cluster);
}
