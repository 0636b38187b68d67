// tobd: one node of a tobd cluster.
//
//   tobd --config FILE                 load and check the config, then run the node
//   tobd --config FILE --check-config  print every config problem (exit 1) or "config ok" (exit 0)
//   tobd --version                     "tobd <version>"
//
// The node runtime (transport, storage, event loop) is not implemented yet: with
// a valid config tobd logs what it would run and exits 0. A bad config is never
// started on: every problem is reported and the exit code is 1.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "crypto/hash.h"
#include "daemon/config.h"
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

}  // namespace

int main(int argc, char** argv) {
    tob::crypto::init();

    CLI::App app{"tobd: one node of a tobd cluster (asynchronous BFT total-order broadcast)"};
    std::string config_file;
    bool show_version = false;
    bool check_only = false;
    app.add_option("--config,-c", config_file,
                   "Node config file (config.toml); required unless --version");
    app.add_flag("--version", show_version, "Print the version and exit");
    app.add_flag("--check-config", check_only,
                 "Load the config and cluster file, check keys and data_dir; print each problem "
                 "(exit 1) or \"config ok\" (exit 0)");
    try {
        app.parse(argc, argv);
        if (!show_version && config_file.empty()) throw CLI::RequiredError("--config");
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    if (show_version) {
        std::cout << "tobd " << tob::daemon::version() << "\n";
        return 0;
    }

    auto loaded = tob::daemon::load_and_check(config_file);

    if (check_only) {
        if (!loaded.ok()) {
            for (const auto& error : loaded.errors) std::cerr << error << "\n";
            std::cerr << "config has " << loaded.errors.size() << " problem"
                      << (loaded.errors.size() == 1 ? "" : "s") << "\n";
            return 1;
        }
        std::cout << "config ok\n";
        return 0;
    }

    // Logs go to stderr (the journal under systemd); stdout stays free.
    auto logger = spdlog::stderr_color_mt("tobd");
    spdlog::set_default_logger(logger);
    if (!loaded.ok()) {
        for (const auto& error : loaded.errors) spdlog::error("{}", error);
        spdlog::error(
            "tobd: not starting: {} config problem{} (tobd --config {} --check-config lists them)",
            loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s", config_file);
        return 1;
    }
    const auto& node = loaded.value->node;
    const auto& cluster = loaded.value->cluster;
    spdlog::set_level(spdlog_level(node.log_level));
    if (node.testing)
        spdlog::warn("testing = true in {}: test-only hooks are enabled", node.path.string());
    if (cluster.allow_unsafe) {
        spdlog::warn(
            "cluster file {} sets allow_unsafe: n={} t={} is not a fault-tolerant configuration",
            cluster.path.string(), cluster.n, cluster.t);
    }
    spdlog::info(
        "tobd node {} of n={} (t={}, q={}) chain {} config ok; the node runtime is not implemented "
        "yet",
        node.node_id, cluster.n, cluster.t, cluster.quorum(),
        tob::crypto::to_hex(cluster.chain_id));
    return 0;
}
