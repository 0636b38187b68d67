#include "daemon/testnet.h"

#include <sodium.h>
#include <sys/types.h>

#include <optional>
#include <system_error>
#include <vector>

#include "crypto/coin.h"
#include "crypto/durable_file.h"
#include "crypto/keyfile.h"
#include "daemon/high_water.h"

namespace tob::daemon {

namespace fs = std::filesystem;

namespace {

// Writes a new file (never replaces one) and syncs it and its directory, so that
// a testnet that was reported as written survives a crash of the machine.
std::optional<std::string> write_new_file(const fs::path& path, std::string_view text,
                                          mode_t mode) {
    crypto::DurableWriteOptions options;
    options.mode = crypto::DurableWriteOptions::Mode::CreateNew;
    options.permissions = mode;
    if (auto problem = crypto::write_file_durably(path, text, options)) return problem->message;
    return std::nullopt;
}

// "node" followed by one or more digits: a directory this writer owns.
bool is_node_dir_name(const std::string& name) {
    if (name.size() <= 4 || name.compare(0, 4, "node") != 0) return false;
    for (std::size_t i = 4; i < name.size(); ++i) {
        if (name[i] < '0' || name[i] > '9') return false;
    }
    return true;
}

// Prepares `dir`: creates it, or checks it is empty, or (force) removes what a
// previous testnet left there — cluster.toml and node<digits>/ — and nothing else.
std::optional<std::string> prepare_dir(const fs::path& dir, bool force) {
    std::error_code ec;
    const auto status = fs::symlink_status(dir, ec);
    if (status.type() == fs::file_type::not_found) {
        fs::create_directories(dir, ec);
        if (ec) return dir.string() + ": cannot create: " + ec.message();
        return std::nullopt;
    }
    if (!fs::is_directory(fs::status(dir, ec)))
        return dir.string() + ": exists and is not a directory";
    const bool empty = fs::is_empty(dir, ec);
    if (ec) return dir.string() + ": cannot read: " + ec.message();
    if (empty) return std::nullopt;
    if (!force) {
        return dir.string() +
               ": exists and is not empty; use --force to replace the testnet in it "
               "(removes cluster.toml and node<i>/ only)";
    }
    // Collect first, remove after: the listing is not disturbed by the removals.
    std::vector<fs::path> owned;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        std::error_code type_ec;
        const auto type = it->symlink_status(type_ec).type();
        if ((name == "cluster.toml" && type != fs::file_type::directory) ||
            (is_node_dir_name(name) && type == fs::file_type::directory)) {
            owned.push_back(it->path());
        }
    }
    if (ec) return dir.string() + ": cannot list: " + ec.message();
    for (const auto& path : owned) {
        fs::remove_all(path, ec);
        if (ec) return path.string() + ": cannot remove: " + ec.message();
    }
    return std::nullopt;
}

// The options' problems, before anything is written (nullopt: fine).
std::optional<std::string> check_options(const TestnetOptions& options) {
    const std::uint32_t n = options.nodes;
    const consensus::Limits default_limits;
    if (n == 0) return "a testnet needs at least one node";
    if (n < 4 && !options.allow_unsafe) {
        return "refusing n = " + std::to_string(n) +
               ": fewer than 4 nodes tolerate no faulty node (t = floor((n-1)/3) = 0); "
               "use --allow-unsafe to create it anyway";
    }
    if (n > default_limits.cert_signatures_max) {
        return "refusing n = " + std::to_string(n) + ": above limits.cert_signatures_max = " +
               std::to_string(default_limits.cert_signatures_max);
    }
    const std::uint64_t last_port = std::uint64_t{options.base_port} + 3ull * n - 1;
    if (options.base_port == 0 || last_port > 65535) {
        return "base port " + std::to_string(options.base_port) + " with " + std::to_string(n) +
               " nodes needs ports up to " + std::to_string(last_port) + "; ports are 1..65535";
    }
    if (!options.hosts.empty() && options.hosts.size() != n) {
        return "--hosts lists " + std::to_string(options.hosts.size()) + " addresses for " +
               std::to_string(n) + " nodes";
    }
    for (const std::string& host : options.hosts) {
        if (host.empty() || host.find_first_of(" \t/:\"'") != std::string::npos) {
            return "bad host address '" + host + "'";
        }
    }
    if (options.dir.empty()) return "no directory given";
    return std::nullopt;
}

// Node i's directory, endpoints and key; nothing written yet.
TestnetNode describe_node(const TestnetOptions& options, const fs::path& dir, std::uint32_t i,
                          const crypto::SigningKey& key, const crypto::CurveKeyPair& curve) {
    TestnetNode node;
    node.id = static_cast<consensus::NodeId>(i);
    node.dir = dir / ("node" + std::to_string(i));
    node.config_file = node.dir / "config.toml";
    const std::string host = options.hosts.empty() ? "127.0.0.1" : options.hosts[i];
    node.pub_endpoint = "tcp://" + host + ":" + std::to_string(options.base_port + 2 * i);
    node.router_endpoint = "tcp://" + host + ":" + std::to_string(options.base_port + 2 * i + 1);
    node.client_endpoint =
        "tcp://" + host + ":" + std::to_string(options.base_port + 2 * options.nodes + i);
    node.public_key = key.public_key();
    node.curve_key = curve.public_key();
    return node;
}

// Writes node<i>/ (mode 0700): its three key files, its signing high-water mark at 0
// (a node whose key exists but whose mark is missing refuses to sign) and its
// config, each synced.
std::optional<std::string> write_node_dir(const TestnetNode& node, const crypto::SigningKey& key,
                                          const crypto::CoinSecretShare& share,
                                          const crypto::CurveKeyPair& curve) {
    std::error_code ec;
    fs::create_directory(node.dir, ec);
    if (ec) return node.dir.string() + ": cannot create: " + ec.message();
    fs::permissions(node.dir, fs::perms::owner_all, ec);  // holds secrets: 0700
    if (auto error = crypto::write_signing_key(node.dir / "node.key", key)) return error->message;
    if (auto error = crypto::write_coin_share(node.dir / "coin.key", share)) return error->message;
    if (auto error = crypto::write_curve_key(node.dir / "curve.key", curve)) return error->message;
    if (auto error = write_high_water(default_high_water_path(node.dir / "node.key"), 0)) {
        return error;
    }
    NodeConfig config;
    config.node_id = node.id;
    config.cluster_file = "../cluster.toml";
    config.key_file = "node.key";
    config.coin_key_file = "coin.key";
    config.data_dir = "data";
    config.log_level = LogLevel::Info;
    config.testing = false;
    return write_new_file(node.config_file, format_node_config(config), 0644);
}

// Acts as the dealer: one key and one coin share per node, written to node<i>/.
// The coin shares exist in memory only until they are written; the DealtCoin
// wipes them when it goes out of scope.
std::optional<std::string> deal_nodes(const TestnetOptions& options, Testnet& testnet,
                                      ClusterConfig& cluster) {
    const crypto::DealtCoin coin = crypto::deal_coin(testnet.n, testnet.t);
    for (std::uint32_t i = 0; i < testnet.n; ++i) {
        const crypto::SigningKey key = crypto::SigningKey::generate();
        const crypto::CurveKeyPair curve = crypto::CurveKeyPair::generate();
        TestnetNode node = describe_node(options, testnet.dir, i, key, curve);
        if (auto error = write_node_dir(node, key, coin.shares[i], curve)) return error;
        ClusterMember member;
        member.id = node.id;
        member.public_key = node.public_key;
        member.coin_key = coin.public_key.verification_keys[i];
        member.curve_key = node.curve_key;
        member.pub_endpoint = node.pub_endpoint;
        member.router_endpoint = node.router_endpoint;
        member.client_endpoint = node.client_endpoint;
        cluster.members.push_back(std::move(member));
        testnet.nodes.push_back(std::move(node));
    }
    return std::nullopt;
}

// Loads every node config back the way tobd will: a testnet we report is one
// that starts.
void self_check(const Testnet& testnet, Errors& errors) {
    for (const auto& node : testnet.nodes) {
        auto loaded = load_and_check(node.config_file, CheckOptions{.ports = false});
        for (auto& error : loaded.errors) errors.push_back("self-check: " + error);
        if (loaded.ok() && loaded.value->cluster.chain_id != testnet.chain_id) {
            errors.push_back("self-check: " + node.config_file.string() +
                             ": chain id differs from the one written");
        }
    }
}

}  // namespace

Outcome<Testnet> write_testnet(const TestnetOptions& options) {
    Outcome<Testnet> out;
    if (auto error = check_options(options)) {
        out.errors.push_back(*error);
        return out;
    }
    const fs::path dir = resolve_path(fs::path(), options.dir);
    if (auto error = prepare_dir(dir, options.force)) {
        out.errors.push_back(*error);
        return out;
    }

    crypto::init();
    const std::uint32_t n = options.nodes;
    const std::uint32_t t = consensus::max_faulty(n);
    ClusterConfig cluster;
    cluster.n = n;
    cluster.t = t;
    cluster.allow_unsafe = n < 4;
    randombytes_buf(cluster.genesis_nonce.data(), cluster.genesis_nonce.size());
    cluster.permissions = options.permissions.value_or(consensus::kv::Permissions::open_to_all());

    Testnet testnet;
    testnet.dir = dir;
    testnet.cluster_file = dir / "cluster.toml";
    testnet.n = n;
    testnet.t = t;
    testnet.q = consensus::quorum(n, t);
    testnet.permissions = cluster.permissions;
    if (auto error = deal_nodes(options, testnet, cluster)) {
        out.errors.push_back(*error);
        return out;
    }

    // The cluster file is written last: its presence means the testnet is complete
    // (writing it syncs dir, and with it the node<i>/ entries).
    const std::string cluster_text = format_cluster_file(cluster);
    if (auto error = write_new_file(testnet.cluster_file, cluster_text, 0644)) {
        out.errors.push_back(*error);
        return out;
    }
    testnet.chain_id = crypto::blake2b256(crypto::view(cluster_text));
    self_check(testnet, out.errors);
    if (out.errors.empty()) out.value = std::move(testnet);
    return out;
}

}  // namespace tob::daemon
