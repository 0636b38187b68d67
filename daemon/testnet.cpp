#include "daemon/testnet.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <vector>

#include "crypto/coin.h"
#include "crypto/keyfile.h"
#include "daemon/high_water.h"

namespace tob::daemon {

namespace fs = std::filesystem;

namespace {

// Writes a new file (never replaces one) and syncs it, so that a testnet that
// was reported as written survives a crash of the machine.
std::optional<std::string> write_new_file(const fs::path& path, std::string_view text,
                                          mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return path.string() + ": cannot create: " + std::strerror(errno);
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t wrote = ::write(fd, text.data() + done, text.size() - done);
        if (wrote < 0) {
            if (errno == EINTR) continue;
            const std::string why = std::strerror(errno);
            ::close(fd);
            return path.string() + ": write failed: " + why;
        }
        done += static_cast<std::size_t>(wrote);
    }
    if (::fsync(fd) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        return path.string() + ": fsync failed: " + why;
    }
    if (::close(fd) != 0) return path.string() + ": close failed: " + std::strerror(errno);
    return std::nullopt;
}

void sync_dir(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
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

}  // namespace

Outcome<Testnet> write_testnet(const TestnetOptions& options) {
    Outcome<Testnet> out;
    const std::uint32_t n = options.nodes;
    const consensus::Limits default_limits;
    if (n == 0) {
        out.errors.push_back("a testnet needs at least one node");
        return out;
    }
    if (n < 4 && !options.allow_unsafe) {
        out.errors.push_back(
            "refusing n = " + std::to_string(n) +
            ": fewer than 4 nodes tolerate no faulty node (t = floor((n-1)/3) = 0); "
            "use --allow-unsafe to create it anyway");
        return out;
    }
    if (n > default_limits.cert_signatures_max) {
        out.errors.push_back("refusing n = " + std::to_string(n) +
                             ": above limits.cert_signatures_max = " +
                             std::to_string(default_limits.cert_signatures_max));
        return out;
    }
    if (options.base_port == 0 ||
        static_cast<std::uint64_t>(options.base_port) + 2ull * n - 1 > 65535) {
        out.errors.push_back(
            "base port " + std::to_string(options.base_port) + " with " + std::to_string(n) +
            " nodes needs ports up to " +
            std::to_string(static_cast<std::uint64_t>(options.base_port) + 2ull * n - 1) +
            "; ports are 1..65535");
        return out;
    }
    if (!options.hosts.empty() && options.hosts.size() != n) {
        out.errors.push_back("--hosts lists " + std::to_string(options.hosts.size()) +
                             " addresses for " + std::to_string(n) + " nodes");
        return out;
    }
    for (const std::string& host : options.hosts) {
        if (host.empty() || host.find_first_of(" \t/:\"'") != std::string::npos) {
            out.errors.push_back("bad host address '" + host + "'");
            return out;
        }
    }
    if (options.dir.empty()) {
        out.errors.push_back("no directory given");
        return out;
    }
    const fs::path dir = resolve_path(fs::path(), options.dir);
    if (auto error = prepare_dir(dir, options.force)) {
        out.errors.push_back(*error);
        return out;
    }

    crypto::init();
    const std::uint32_t t = consensus::max_faulty(n);
    ClusterConfig cluster;
    cluster.n = n;
    cluster.t = t;
    cluster.allow_unsafe = n < 4;
    randombytes_buf(cluster.genesis_nonce.data(), cluster.genesis_nonce.size());

    Testnet testnet;
    testnet.dir = dir;
    testnet.cluster_file = dir / "cluster.toml";
    testnet.n = n;
    testnet.t = t;
    testnet.q = consensus::quorum(n, t);

    // Dealer: the coin shares exist in memory only until they are written; the
    // DealtCoin wipes them when it goes out of scope.
    {
        const crypto::DealtCoin coin = crypto::deal_coin(n, t);
        for (std::uint32_t i = 0; i < n; ++i) {
            const crypto::SigningKey key = crypto::SigningKey::generate();
            TestnetNode node;
            node.id = static_cast<consensus::NodeId>(i);
            node.dir = dir / ("node" + std::to_string(i));
            node.config_file = node.dir / "config.toml";
            const std::string host = options.hosts.empty() ? "127.0.0.1" : options.hosts[i];
            node.pub_endpoint =
                "tcp://" + host + ":" + std::to_string(options.base_port + 2 * i);
            node.router_endpoint =
                "tcp://" + host + ":" + std::to_string(options.base_port + 2 * i + 1);
            node.public_key = key.public_key();

            std::error_code ec;
            fs::create_directory(node.dir, ec);
            if (ec) {
                out.errors.push_back(node.dir.string() + ": cannot create: " + ec.message());
                return out;
            }
            fs::permissions(node.dir, fs::perms::owner_all, ec);  // holds secrets: 0700
            if (auto error = crypto::write_signing_key(node.dir / "node.key", key)) {
                out.errors.push_back(error->message);
                return out;
            }
            if (auto error = crypto::write_coin_share(node.dir / "coin.key", coin.shares[i])) {
                out.errors.push_back(error->message);
                return out;
            }
            // The signing high-water mark starts at 0 beside the key: a node whose
            // key exists but whose mark is missing refuses to sign.
            if (auto error = write_high_water(default_high_water_path(node.dir / "node.key"), 0)) {
                out.errors.push_back(*error);
                return out;
            }

            NodeConfig config;
            config.node_id = node.id;
            config.cluster_file = "../cluster.toml";
            config.key_file = "node.key";
            config.coin_key_file = "coin.key";
            config.data_dir = "data";
            config.log_level = LogLevel::Info;
            config.testing = false;
            if (auto error = write_new_file(node.config_file, format_node_config(config), 0644)) {
                out.errors.push_back(*error);
                return out;
            }
            sync_dir(node.dir);

            ClusterMember member;
            member.id = node.id;
            member.public_key = node.public_key;
            member.coin_key = coin.public_key.verification_keys[i];
            member.pub_endpoint = node.pub_endpoint;
            member.router_endpoint = node.router_endpoint;
            cluster.members.push_back(std::move(member));
            testnet.nodes.push_back(std::move(node));
        }
    }

    // The cluster file is written last: its presence means the testnet is complete.
    const std::string cluster_text = format_cluster_file(cluster);
    if (auto error = write_new_file(testnet.cluster_file, cluster_text, 0644)) {
        out.errors.push_back(*error);
        return out;
    }
    sync_dir(dir);
    testnet.chain_id = crypto::blake2b256(crypto::view(cluster_text));

    // Load everything back the way tobd will: a testnet we report is one that starts.
    for (const auto& node : testnet.nodes) {
        auto loaded = load_and_check(node.config_file, CheckOptions{.ports = false});
        for (auto& error : loaded.errors) out.errors.push_back("self-check: " + error);
        if (loaded.ok() && loaded.value->cluster.chain_id != testnet.chain_id) {
            out.errors.push_back("self-check: " + node.config_file.string() +
                                 ": chain id differs from the one written");
        }
    }
    if (out.errors.empty()) out.value = std::move(testnet);
    return out;
}

}  // namespace tob::daemon
