// Config loading, node checks and the testnet writer (daemon/config.h, daemon/testnet.h).

#include "daemon/config.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <variant>

#include "consensus/codec.h"
#include "crypto/coin.h"
#include "crypto/hash.h"
#include "crypto/keyfile.h"
#include "daemon/testnet.h"
#include "tests/unit/test_util.h"

namespace tob::daemon {
namespace {

namespace fs = std::filesystem;

using test_util::read_all;
using test_util::TempDir;
using test_util::write_all;

// Replaces the first occurrence of `from` (which must exist) with `to`.
void edit(const fs::path& path, const std::string& from, const std::string& to) {
    std::string text = read_all(path);
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from << " not in " << path;
    text.replace(at, from.size(), to);
    write_all(path, text);
}

std::string joined(const Errors& errors) {
    std::string out;
    for (const auto& e : errors) out += e + "\n";
    return out;
}

bool any_contains(const Errors& errors, const std::string& a, const std::string& b = "") {
    for (const auto& e : errors) {
        if (e.find(a) != std::string::npos && e.find(b) != std::string::npos) return true;
    }
    return false;
}

mode_t file_mode(const fs::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
}

// A listening TCP socket on 127.0.0.1 (port 0 = any free port); closed on destruction.
class Listener {
  public:
    explicit Listener(int port = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int yes = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
              ::listen(fd_, 4) == 0;
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
    }
    ~Listener() { ::close(fd_); }
    bool ok() const { return ok_; }
    int port() const { return port_; }

  private:
    int fd_ = -1;
    bool ok_ = false;
    int port_ = 0;
};

// A base port P such that P .. P+15 are free on 127.0.0.1 right now, below the
// ephemeral range and spread by pid: check_node binds a node's ports, so tests
// must not depend on the default 7100.. being free (a cluster test may hold them).
std::uint32_t free_base_port() {
    const std::uint32_t start = 20000 + static_cast<std::uint32_t>(::getpid() % 700) * 16;
    for (std::uint32_t attempt = 0; attempt < 700; ++attempt) {
        const std::uint32_t base = 20000 + (start - 20000 + attempt * 16) % (700 * 16);
        bool all_free = true;
        for (std::uint32_t p = base; p < base + 16 && all_free; ++p) {
            all_free = Listener(static_cast<int>(p)).ok();
        }
        if (all_free) return base;
    }
    ADD_FAILURE() << "no 16 consecutive free ports in 20000..31199";
    return 20000;
}

class ConfigTest : public ::testing::Test {
  protected:
    void SetUp() override {
        crypto::init();
        base_port_ = free_base_port();
    }

    // Options for a testnet in `dir` on this test's free ports.
    TestnetOptions testnet_options(const fs::path& dir, std::uint32_t nodes = 4) const {
        TestnetOptions options;
        options.dir = dir;
        options.nodes = nodes;
        options.base_port = base_port_;
        return options;
    }

    std::string endpoint(std::uint32_t offset) const {
        return "tcp://127.0.0.1:" + std::to_string(base_port_ + offset);
    }

    // A fresh 4-node testnet in tmp_/net.
    Testnet make_testnet(std::uint32_t nodes = 4) {
        TestnetOptions options = testnet_options(tmp_.path() / "net", nodes);
        options.allow_unsafe = nodes < 4;
        auto written = write_testnet(options);
        EXPECT_TRUE(written.ok()) << joined(written.errors);
        if (written.ok()) return *written.value;
        // Keep a failing test's file operations inside the temp dir.
        Testnet failed;
        failed.dir = tmp_.path() / "failed-testnet";
        failed.cluster_file = failed.dir / "cluster.toml";
        return failed;
    }

    fs::path node_config(const Testnet& net, int i) const {
        return net.dir / ("node" + std::to_string(i)) / "config.toml";
    }

    TempDir tmp_;
    std::uint32_t base_port_ = 0;
};

TEST_F(ConfigTest, testnet_loads_back_with_matching_keys_and_private_modes) {
    const Testnet net = make_testnet();
    ASSERT_EQ(net.nodes.size(), 4u);
    EXPECT_EQ(net.n, 4u);
    EXPECT_EQ(net.t, 1u);
    EXPECT_EQ(net.q, 3u);
    EXPECT_EQ(TestnetOptions{}.base_port, 7100u);  // tobctl testnet's default

    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_TRUE(cluster.ok()) << joined(cluster.errors);
    const ClusterConfig& c = *cluster.value;
    EXPECT_EQ(c.chain_id, crypto::blake2b256(crypto::view(read_all(net.cluster_file))));
    EXPECT_EQ(c.chain_id, net.chain_id);
    EXPECT_EQ(c.n, 4u);
    EXPECT_EQ(c.t, 1u);
    EXPECT_FALSE(c.allow_unsafe);
    EXPECT_EQ(c.quorum(), 3u);
    EXPECT_EQ(c.members.size(), 4u);
    EXPECT_EQ(c.limits.block_bytes_max, consensus::Limits{}.block_bytes_max);
    EXPECT_EQ(c.protocol.window, consensus::ReplicaConfig{}.window);
    EXPECT_EQ(c.protocol.block_timer_ms, consensus::ReplicaConfig{}.block_timer_ms);
    EXPECT_EQ(c.protocol.checkpoint_interval, 64u);
    EXPECT_EQ(c.protocol.aged_epochs, consensus::ReplicaConfig{}.aged_epochs);

    for (int i = 0; i < 4; ++i) {
        const fs::path dir = net.dir / ("node" + std::to_string(i));
        EXPECT_EQ(file_mode(dir / "node.key"), 0600u);
        EXPECT_EQ(file_mode(dir / "coin.key"), 0600u);
        EXPECT_EQ(c.members[i].pub_endpoint, endpoint(2 * i));
        EXPECT_EQ(c.members[i].router_endpoint, endpoint(2 * i + 1));

        auto loaded = load_and_check(dir / "config.toml");
        ASSERT_TRUE(loaded.ok()) << joined(loaded.errors);
        const NodeConfig& node = loaded.value->node;
        EXPECT_EQ(node.node_id, i);
        EXPECT_EQ(node.cluster_file, net.cluster_file);  // "../cluster.toml" resolved
        EXPECT_EQ(node.key_file, dir / "node.key");
        EXPECT_EQ(node.coin_key_file, dir / "coin.key");
        EXPECT_EQ(node.data_dir, dir / "data");
        EXPECT_EQ(node.high_water_file, dir / "sign-high-water");  // default: beside the key
        EXPECT_EQ(node.log_level, LogLevel::Info);
        EXPECT_FALSE(node.testing);
        EXPECT_EQ(node.metrics_address, "");
        EXPECT_EQ(node.limits.pool_requests_max, consensus::ReplicaConfig{}.pool_requests_max);
        EXPECT_EQ(node.limits.future_epoch_buffer_max, 10000u);
        EXPECT_EQ(node.message_bytes_max(c), c.limits.message_bytes_max);
        EXPECT_EQ(loaded.value->cluster.chain_id, c.chain_id);

        auto keys = load_node_keys(node, c);
        ASSERT_TRUE(keys.ok()) << joined(keys.errors);
        EXPECT_EQ(keys.value->signing.public_key(), c.members[i].public_key);
        EXPECT_EQ(keys.value->coin.index, static_cast<std::uint32_t>(i));
        EXPECT_EQ(crypto::coin_verification_key(keys.value->coin), c.members[i].coin_key);
    }
}

TEST_F(ConfigTest, testnet_coin_shares_combine_across_nodes) {
    // The written shares are a working coin: t+1 shares from the files combine
    // to the same h^x whichever t+1 nodes contribute.
    const Testnet net = make_testnet();
    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_TRUE(cluster.ok());
    const auto pk = cluster.value->coin_public_key();
    const std::string name = "config-test-coin";
    std::map<std::uint32_t, crypto::CoinShare> shares;
    for (int i = 0; i < 4; ++i) {
        auto share = crypto::load_coin_share(net.dir / ("node" + std::to_string(i)) / "coin.key");
        ASSERT_TRUE(std::holds_alternative<crypto::CoinSecretShare>(share));
        const auto& secret = std::get<crypto::CoinSecretShare>(share);
        shares[secret.index] = crypto::make_coin_share(secret, crypto::view(name));
        EXPECT_TRUE(
            crypto::verify_coin_share(pk, secret.index, crypto::view(name), shares[secret.index]));
    }
    auto first = crypto::combine_coin_shares(pk, {{0, shares[0]}, {1, shares[1]}});
    auto second = crypto::combine_coin_shares(pk, {{2, shares[2]}, {3, shares[3]}});
    ASSERT_TRUE(first && second);
    EXPECT_EQ(*first, *second);
}

TEST_F(ConfigTest, key_file_readable_by_others_is_refused_naming_the_file) {
    const Testnet net = make_testnet();
    const fs::path key = net.dir / "node2" / "node.key";
    ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
    auto loaded = load_and_check(node_config(net, 2));
    EXPECT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, key.string(), "0644")) << joined(loaded.errors);

    const fs::path coin = net.dir / "node2" / "coin.key";
    ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
    ASSERT_EQ(::chmod(coin.c_str(), 0640), 0);
    loaded = load_and_check(node_config(net, 2));
    EXPECT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, coin.string(), "0640")) << joined(loaded.errors);
}

TEST_F(ConfigTest, any_flipped_byte_of_the_cluster_file_changes_the_chain_id) {
    const Testnet net = make_testnet();
    std::string text = read_all(net.cluster_file);
    auto original = parse_cluster_config(text, net.cluster_file);
    ASSERT_TRUE(original.ok());

    // A byte inside a comment: still a valid file, but another chain.
    const auto comment = text.find("byte-identical");
    ASSERT_NE(comment, std::string::npos);
    std::string flipped = text;
    flipped[comment] ^= 0x20;
    auto changed = parse_cluster_config(flipped, net.cluster_file);
    ASSERT_TRUE(changed.ok()) << joined(changed.errors);
    EXPECT_NE(changed.value->chain_id, original.value->chain_id);
    EXPECT_EQ(changed.value->chain_id, crypto::blake2b256(crypto::view(flipped)));

    // A trailing newline counts too.
    auto longer = parse_cluster_config(text + "\n", net.cluster_file);
    ASSERT_TRUE(longer.ok());
    EXPECT_NE(longer.value->chain_id, original.value->chain_id);

    // And on disk, through the loader.
    write_all(net.cluster_file, flipped);
    auto loaded = load_cluster_config(net.cluster_file);
    ASSERT_TRUE(loaded.ok());
    EXPECT_EQ(loaded.value->chain_id, changed.value->chain_id);
}

TEST_F(ConfigTest, non_member_node_id_is_reported_with_file_and_key) {
    const Testnet net = make_testnet();
    edit(node_config(net, 0), "node_id = 0", "node_id = 7");
    auto loaded = load_and_check(node_config(net, 0));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, node_config(net, 0).string() +
                                                ": node_id: 7 is not a member (cluster has n=4)"))
        << joined(loaded.errors);
}

TEST_F(ConfigTest, node_id_with_another_nodes_keys_is_reported) {
    const Testnet net = make_testnet();
    edit(node_config(net, 0), "node_id = 0", "node_id = 1");
    auto loaded = load_and_check(node_config(net, 0));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, "node.key", "node[1].public_key"))
        << joined(loaded.errors);
    EXPECT_TRUE(any_contains(loaded.errors, "coin.key", "node_id is 1")) << joined(loaded.errors);
}

TEST_F(ConfigTest, coin_share_not_matching_the_cluster_coin_key_is_reported) {
    const Testnet net = make_testnet();
    // A share with the right index but from another dealing.
    const auto other = crypto::deal_coin(4, 1);
    const fs::path coin = net.dir / "node3" / "coin.key";
    ASSERT_FALSE(crypto::write_coin_share(coin, other.shares[3], true).has_value());
    auto loaded = load_and_check(node_config(net, 3));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, coin.string(), "node[3].coin_key"))
        << joined(loaded.errors);
}

TEST_F(ConfigTest, missing_key_file_is_reported) {
    const Testnet net = make_testnet();
    const fs::path key = net.dir / "node1" / "node.key";
    fs::remove(key);
    auto loaded = load_and_check(node_config(net, 1));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, key.string())) << joined(loaded.errors);
}

TEST_F(ConfigTest, missing_config_and_cluster_files_are_reported) {
    auto missing = load_and_check(tmp_.path() / "nope.toml");
    ASSERT_FALSE(missing.ok());
    EXPECT_TRUE(any_contains(missing.errors, (tmp_.path() / "nope.toml").string()))
        << joined(missing.errors);

    const Testnet net = make_testnet();
    fs::remove(net.cluster_file);
    auto loaded = load_and_check(node_config(net, 0));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, "cluster_file", net.cluster_file.string()))
        << joined(loaded.errors);
}

TEST_F(ConfigTest, malformed_toml_is_reported_with_file_and_line) {
    const Testnet net = make_testnet();
    write_all(net.cluster_file, "n = 4\nt = [1,\n");
    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors, net.cluster_file.string() + ":", "TOML syntax error"))
        << joined(cluster.errors);

    write_all(node_config(net, 0), "node_id = = 0\n");
    auto node = load_node_config(node_config(net, 0));
    ASSERT_FALSE(node.ok());
    EXPECT_TRUE(
        any_contains(node.errors, node_config(net, 0).string() + ":1:", "TOML syntax error"))
        << joined(node.errors);
}

TEST_F(ConfigTest, garbage_bytes_never_crash_the_loaders) {
    // Deterministic junk, including NULs, invalid UTF-8 and truncated TOML.
    std::uint32_t state = 12345;
    const std::string good = format_cluster_file(ClusterConfig{});
    for (int round = 0; round < 300; ++round) {
        std::string junk;
        if (round % 2 == 0) {
            for (int i = 0; i < 200; ++i) {
                state = state * 1664525u + 1013904223u;
                junk.push_back(static_cast<char>(state >> 24));
            }
        } else {
            junk = good.substr(0, (round * 37) % good.size());
            state = state * 1664525u + 1013904223u;
            if (!junk.empty()) junk[(state >> 8) % junk.size()] = static_cast<char>(state >> 24);
        }
        auto cluster = parse_cluster_config(junk, "junk.toml");
        auto node = parse_node_config(junk, "junk.toml");
        EXPECT_EQ(cluster.ok(), cluster.errors.empty());
        EXPECT_EQ(node.ok(), node.errors.empty());
    }
}

TEST_F(ConfigTest, t_inconsistent_with_n_is_reported_unless_allow_unsafe) {
    const Testnet net = make_testnet();
    edit(net.cluster_file, "t = 1", "t = 2");
    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors,
                             net.cluster_file.string() + ": t: 2 is inconsistent with n = 4",
                             "floor((n-1)/3) = 1"))
        << joined(cluster.errors);

    edit(net.cluster_file, "t = 2", "t = 2\nallow_unsafe = true");
    cluster = load_cluster_config(net.cluster_file);
    ASSERT_TRUE(cluster.ok()) << joined(cluster.errors);
    EXPECT_TRUE(cluster.value->allow_unsafe);
    EXPECT_EQ(cluster.value->t, 2u);

    // Even allow_unsafe cannot make t >= n.
    edit(net.cluster_file, "t = 2", "t = 4");
    cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors, ": t: 4 must be below n = 4"))
        << joined(cluster.errors);
}

TEST_F(ConfigTest, n_below_4_is_refused_without_allow_unsafe) {
    TestnetOptions options = testnet_options(tmp_.path() / "small", 3);
    auto refused = write_testnet(options);
    ASSERT_FALSE(refused.ok());
    EXPECT_TRUE(any_contains(refused.errors, "n = 3", "--allow-unsafe")) << joined(refused.errors);
    EXPECT_FALSE(fs::exists(options.dir));  // nothing written

    options.allow_unsafe = true;
    auto written = write_testnet(options);
    ASSERT_TRUE(written.ok()) << joined(written.errors);
    EXPECT_EQ(written.value->t, 0u);
    EXPECT_EQ(written.value->q, 2u);
    auto cluster = load_cluster_config(written.value->cluster_file);
    ASSERT_TRUE(cluster.ok()) << joined(cluster.errors);
    EXPECT_TRUE(cluster.value->allow_unsafe);

    // The same file without the flag is refused by the loader too.
    edit(written.value->cluster_file, "allow_unsafe = true", "allow_unsafe = false");
    cluster = load_cluster_config(written.value->cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors, ": n: 3 nodes tolerate no faulty node"))
        << joined(cluster.errors);
}

TEST_F(ConfigTest, testnet_refuses_a_non_empty_dir_and_force_removes_only_its_own_files) {
    const Testnet first = make_testnet();
    write_all(first.dir / "notes.txt", "keep me");
    fs::create_directory(first.dir / "nodes-backup");

    TestnetOptions options = testnet_options(first.dir);
    auto refused = write_testnet(options);
    ASSERT_FALSE(refused.ok());
    EXPECT_TRUE(any_contains(refused.errors, "not empty", "--force")) << joined(refused.errors);
    EXPECT_EQ(read_all(first.cluster_file).size() > 0, true);

    // A bigger testnet first, so a smaller one must remove node4..node6.
    options.force = true;
    options.nodes = 7;
    ASSERT_TRUE(write_testnet(options).ok());
    EXPECT_TRUE(fs::exists(first.dir / "node6"));
    options.nodes = 4;
    auto second = write_testnet(options);
    ASSERT_TRUE(second.ok()) << joined(second.errors);
    EXPECT_NE(second.value->chain_id, first.chain_id);  // fresh genesis nonce and keys
    EXPECT_FALSE(fs::exists(first.dir / "node4"));
    EXPECT_FALSE(fs::exists(first.dir / "node6"));
    EXPECT_EQ(read_all(first.dir / "notes.txt"), "keep me");
    EXPECT_TRUE(fs::exists(first.dir / "nodes-backup"));
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(load_and_check(node_config(*second.value, i)).ok());
}

TEST_F(ConfigTest, unknown_and_misplaced_keys_are_reported) {
    const Testnet net = make_testnet();
    edit(net.cluster_file, "[limits]\n", "[limits]\nwindow = 8\nblok_bytes_max = 5\n");
    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors, ": limits.window: unknown key", "[protocol]"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors, ": limits.blok_bytes_max: unknown key"))
        << joined(cluster.errors);

    edit(node_config(net, 0), "testing = false", "testing = false\nlog_levle = \"debug\"");
    auto node = load_node_config(node_config(net, 0));
    ASSERT_FALSE(node.ok());
    EXPECT_TRUE(any_contains(node.errors, ": log_levle: unknown key")) << joined(node.errors);
}

TEST_F(ConfigTest, wrong_types_and_ranges_are_reported_per_key) {
    const Testnet net = make_testnet();
    edit(net.cluster_file, "n = 4", "n = \"4\"");
    edit(net.cluster_file, "window = 4", "window = 0");
    edit(net.cluster_file, "block_bytes_max = 4194304", "block_bytes_max = -1");
    edit(net.cluster_file, "pub_endpoint = \"" + endpoint(2) + "\"",
         "pub_endpoint = \"127.0.0.1:" + std::to_string(base_port_ + 2) + "\"");
    edit(net.cluster_file, "router_endpoint = \"" + endpoint(5) + "\"",
         "router_endpoint = \"" + endpoint(1) + "\"");
    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    const std::string f = net.cluster_file.string() + ": ";
    EXPECT_TRUE(any_contains(cluster.errors, f + "n: expected an integer, got a string"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors, f + "protocol.window: 0 is out of range"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors, f + "limits.block_bytes_max: -1 is out of range"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors, f + "node[1].pub_endpoint: expected tcp://HOST:PORT"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors,
                             f + "node[2].router_endpoint:", "is also node[0].router_endpoint"))
        << joined(cluster.errors);

    edit(node_config(net, 1), "log_level = \"info\"", "log_level = \"loud\"");
    edit(node_config(net, 1), "metrics_address = \"\"", "metrics_address = \"localhost\"");
    edit(node_config(net, 1), "testing = false", "testing = 1");
    auto node = load_node_config(node_config(net, 1));
    ASSERT_FALSE(node.ok());
    const std::string g = node_config(net, 1).string() + ": ";
    EXPECT_TRUE(any_contains(node.errors, g + "log_level: expected one of trace"))
        << joined(node.errors);
    EXPECT_TRUE(any_contains(node.errors, g + "metrics_address: expected HOST:PORT"))
        << joined(node.errors);
    EXPECT_TRUE(any_contains(node.errors, g + "testing: expected true or false"))
        << joined(node.errors);
}

TEST_F(ConfigTest, cluster_members_must_be_dense_in_order_and_match_n) {
    const Testnet net = make_testnet();
    edit(net.cluster_file, "id = 2", "id = 3");
    edit(net.cluster_file, "genesis_nonce = \"", "genesis_nonce = \"zz");
    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors, "node[2].id: 3 is out of order"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors, "genesis_nonce: expected 64 hex digits"))
        << joined(cluster.errors);

    // Drop the last member: n no longer matches.
    TestnetOptions options = testnet_options(tmp_.path() / "other");
    auto written = write_testnet(options);
    ASSERT_TRUE(written.ok()) << joined(written.errors);
    const Testnet& other = *written.value;
    std::string text = read_all(other.cluster_file);
    text.erase(text.rfind("\n[[node]]"));
    text += "\n";
    auto shorter = parse_cluster_config(text, other.cluster_file);
    ASSERT_FALSE(shorter.ok());
    EXPECT_TRUE(any_contains(shorter.errors, "node: 3 [[node]] entries, but n = 4"))
        << joined(shorter.errors);
}

TEST_F(ConfigTest, limits_and_protocol_parameters_override_defaults) {
    const Testnet net = make_testnet();
    edit(net.cluster_file, "block_bytes_max = 4194304", "block_bytes_max = 1048576");
    edit(net.cluster_file, "request_bytes_max = 1048576", "request_bytes_max = 65536");
    edit(net.cluster_file, "window = 4", "window = 8");
    edit(net.cluster_file, "block_timer_ms = 20", "block_timer_ms = 5");
    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_TRUE(cluster.ok()) << joined(cluster.errors);
    EXPECT_EQ(cluster.value->limits.block_bytes_max, 1048576u);
    EXPECT_EQ(cluster.value->limits.request_bytes_max, 65536u);
    EXPECT_EQ(cluster.value->protocol.window, 8u);
    EXPECT_EQ(cluster.value->protocol.block_timer_ms, 5u);

    // A minimal file takes every default.
    std::string text = read_all(net.cluster_file);
    const auto limits_at = text.find("[limits]");
    const auto permissions_at = text.find("[permissions]");
    text.erase(limits_at, permissions_at - limits_at);
    auto minimal = parse_cluster_config(text, net.cluster_file);
    ASSERT_TRUE(minimal.ok()) << joined(minimal.errors);
    EXPECT_EQ(minimal.value->limits.message_bytes_max, consensus::Limits{}.message_bytes_max);
    // The protocol defaults are the core's (the simulator runs with them too).
    EXPECT_EQ(minimal.value->protocol.aged_epochs, consensus::ReplicaConfig{}.aged_epochs);
    EXPECT_EQ(minimal.value->protocol.window, consensus::ReplicaConfig{}.window);
    EXPECT_EQ(minimal.value->protocol.block_timer_ms, consensus::ReplicaConfig{}.block_timer_ms);

    // Limits that contradict each other.
    edit(net.cluster_file, "request_bytes_max = 65536", "request_bytes_max = 2097152");
    edit(net.cluster_file, "cert_signatures_max = 1024", "cert_signatures_max = 3");
    cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors,
                             "limits.request_bytes_max: 2097152 + 1024 bytes of block fields "
                             "exceed limits.block_bytes_max"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors, "limits.cert_signatures_max: 3 is below n = 4"))
        << joined(cluster.errors);
}

// Issue 11, finding 5: limits that cannot all hold are refused (a full block
// that no envelope can carry, a proof reply that cannot hold its COMMITs).
TEST_F(ConfigTest, limits_that_cannot_all_hold_are_refused) {
    const Testnet net = make_testnet();
    edit(net.cluster_file, "message_bytes_max = 16777216", "message_bytes_max = 4194400");
    edit(net.cluster_file, "fetch_items_max = 4096", "fetch_items_max = 5");
    auto cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors,
                             "limits.block_bytes_max: 4194304 + 160 bytes of envelope exceed "
                             "message_bytes_max (4194400)"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors, "limits.fetch_items_max: 5 is below n + t + 1 = 6"))
        << joined(cluster.errors);
    // Output caps (finding 2): a reply that cannot be sent, an epoch cap below
    // one request's.
    edit(net.cluster_file, "request_output_bytes_max = 1048576",
         "request_output_bytes_max = 4194304");
    edit(net.cluster_file, "epoch_output_bytes_max = 33554432", "epoch_output_bytes_max = 4000000");
    cluster = load_cluster_config(net.cluster_file);
    ASSERT_FALSE(cluster.ok());
    EXPECT_TRUE(any_contains(cluster.errors,
                             "limits.request_output_bytes_max: 4194304 + 512 bytes of reply "
                             "exceed message_bytes_max (4194400)"))
        << joined(cluster.errors);
    EXPECT_TRUE(any_contains(cluster.errors,
                             "limits.epoch_output_bytes_max: 4000000 is below "
                             "request_output_bytes_max (4194304)"))
        << joined(cluster.errors);
    // Every default holds, for any n the cluster file allows.
    for (std::uint32_t n : {1u, 4u, 100u, 1024u}) {
        EXPECT_TRUE(consensus::limit_problems(consensus::Limits{}, n).empty()) << "n = " << n;
    }
}

TEST_F(ConfigTest, node_local_limits_and_options) {
    const Testnet net = make_testnet();
    edit(node_config(net, 0), "pool_requests_max = 100000",
         "pool_requests_max = 500\nmessage_bytes_max = 1000");
    edit(node_config(net, 0), "log_level = \"info\"", "log_level = \"debug\"");
    edit(node_config(net, 0), "metrics_address = \"\"", "metrics_address = \"127.0.0.1:9100\"");
    auto node = load_node_config(node_config(net, 0));
    ASSERT_TRUE(node.ok()) << joined(node.errors);
    EXPECT_EQ(node.value->limits.pool_requests_max, 500u);
    EXPECT_EQ(node.value->limits.message_bytes_max, 1000u);
    EXPECT_EQ(node.value->log_level, LogLevel::Debug);
    EXPECT_EQ(node.value->metrics_address, "127.0.0.1:9100");

    // A receive cap below the cluster's envelope limit would drop honest traffic.
    auto loaded = load_and_check(node_config(net, 0));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(
        any_contains(loaded.errors, "limits.message_bytes_max: 1000 is below the cluster's"))
        << joined(loaded.errors);
}

TEST_F(ConfigTest, memory_max_mb_is_read_and_a_budget_that_cannot_hold_a_frame_is_refused) {
    const Testnet net = make_testnet();
    edit(node_config(net, 0), "memory_max_mb = 2048", "memory_max_mb = 3072");
    auto node = load_node_config(node_config(net, 0));
    ASSERT_TRUE(node.ok()) << joined(node.errors);
    EXPECT_EQ(node.value->limits.memory_max_mb, 3072u);
    EXPECT_TRUE(load_and_check(node_config(net, 0)).ok());

    // 64 MiB cannot hold two 16 MiB frames per peer connection in its ZeroMQ share.
    edit(node_config(net, 0), "memory_max_mb = 3072", "memory_max_mb = 64");
    auto loaded = load_and_check(node_config(net, 0));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, "limits.memory_max_mb: 64 MiB cannot hold two frames"))
        << joined(loaded.errors);
}

TEST_F(ConfigTest, client_requests_per_s_is_written_read_and_cannot_exceed_the_byte_rate) {
    const Testnet net = make_testnet();
    auto node = load_node_config(node_config(net, 0));
    ASSERT_TRUE(node.ok()) << joined(node.errors);
    EXPECT_EQ(node.value->limits.client_requests_per_s, 256u);  // the written default
    EXPECT_EQ(node.value->limits.client_new_keys_per_s, 16u);
    edit(node_config(net, 0), "client_requests_per_s = 256", "client_requests_per_s = 5000");
    node = load_node_config(node_config(net, 0));
    ASSERT_TRUE(node.ok()) << joined(node.errors);
    EXPECT_EQ(node.value->limits.client_requests_per_s, 5000u);

    // More requests than bytes a second: a request would cost less than a byte.
    edit(node_config(net, 0), "client_bytes_per_s = 262144", "client_bytes_per_s = 4096");
    auto loaded = load_node_config(node_config(net, 0));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, "limits.client_requests_per_s: 5000 exceeds"))
        << joined(loaded.errors);
}

TEST_F(ConfigTest, relative_paths_resolve_against_the_config_directory) {
    const Testnet net = make_testnet();
    // Load through a relative path from another working directory.
    const fs::path old_cwd = fs::current_path();
    fs::current_path(tmp_.path());
    auto loaded = load_and_check(fs::path("net") / "node1" / "config.toml");
    fs::current_path(old_cwd);
    ASSERT_TRUE(loaded.ok()) << joined(loaded.errors);
    EXPECT_EQ(loaded.value->node.path, net.dir / "node1" / "config.toml");
    EXPECT_EQ(loaded.value->node.key_file, net.dir / "node1" / "node.key");
    EXPECT_EQ(loaded.value->cluster.path, net.cluster_file);

    // Absolute paths are kept.
    edit(node_config(net, 1), "data_dir = \"data\"",
         "data_dir = \"" + (tmp_.path() / "elsewhere").string() + "\"");
    auto node = load_node_config(node_config(net, 1));
    ASSERT_TRUE(node.ok());
    EXPECT_EQ(node.value->data_dir, tmp_.path() / "elsewhere");
}

TEST_F(ConfigTest, data_dir_that_cannot_be_a_directory_is_reported) {
    const Testnet net = make_testnet();
    const fs::path blocker = net.dir / "node0" / "blocker";
    write_all(blocker, "a file");
    edit(node_config(net, 0), "data_dir = \"data\"", "data_dir = \"blocker\"");
    auto loaded = load_and_check(node_config(net, 0));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, "data_dir: " + blocker.string(), "not a directory"))
        << joined(loaded.errors);

    edit(node_config(net, 0), "data_dir = \"blocker\"", "data_dir = \"blocker/sub/data\"");
    loaded = load_and_check(node_config(net, 0));
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, "data_dir:", "cannot be created"))
        << joined(loaded.errors);

    // A data dir that does not exist yet under a writable parent is fine, and
    // checking creates nothing.
    edit(node_config(net, 0), "data_dir = \"blocker/sub/data\"", "data_dir = \"a/b/data\"");
    loaded = load_and_check(node_config(net, 0));
    ASSERT_TRUE(loaded.ok()) << joined(loaded.errors);
    EXPECT_FALSE(fs::exists(net.dir / "node0" / "a"));
}

TEST_F(ConfigTest, format_and_parse_round_trip) {
    ClusterConfig cluster;
    cluster.n = 4;
    cluster.t = 1;
    cluster.genesis_nonce.fill(0xab);
    cluster.limits.fetch_items_max = 17;
    cluster.protocol.checkpoint_interval = 99;
    const auto coin = crypto::deal_coin(4, 1);
    for (std::uint32_t i = 0; i < 4; ++i) {
        ClusterMember member;
        member.id = static_cast<consensus::NodeId>(i);
        member.public_key = crypto::SigningKey::generate().public_key();
        member.coin_key = coin.public_key.verification_keys[i];
        member.curve_key = crypto::CurveKeyPair::generate().public_key();
        member.pub_endpoint = "ipc:///run/tobd/pub" + std::to_string(i);
        member.router_endpoint = "tcp://[::1]:" + std::to_string(8000 + i);
        member.client_endpoint = "tcp://[::1]:" + std::to_string(9000 + i);
        cluster.members.push_back(member);
    }
    cluster.permissions.open = false;
    consensus::kv::ClientGrant grant;
    grant.read = {consensus::Bytes{'a', 'p', 'p', '/'}, consensus::Bytes{}};
    grant.write = {consensus::Bytes{'a', '"', '\\', '\n'}};
    cluster.permissions.clients[crypto::SigningKey::generate().public_key()] = grant;
    cluster.permissions.clients[crypto::SigningKey::generate().public_key()] = {};
    const std::string text = format_cluster_file(cluster);
    auto parsed = parse_cluster_config(text, tmp_.path() / "c.toml");
    ASSERT_TRUE(parsed.ok()) << joined(parsed.errors);
    const ClusterConfig& back = *parsed.value;
    EXPECT_EQ(back.chain_id, crypto::blake2b256(crypto::view(text)));
    EXPECT_EQ(back.genesis_nonce, cluster.genesis_nonce);
    EXPECT_EQ(back.limits.fetch_items_max, 17u);
    EXPECT_EQ(back.protocol.checkpoint_interval, 99u);
    ASSERT_EQ(back.members.size(), 4u);
    for (std::uint32_t i = 0; i < 4; ++i) {
        EXPECT_EQ(back.members[i].public_key, cluster.members[i].public_key);
        EXPECT_EQ(back.members[i].coin_key, cluster.members[i].coin_key);
        EXPECT_EQ(back.members[i].pub_endpoint, cluster.members[i].pub_endpoint);
        EXPECT_EQ(back.members[i].router_endpoint, cluster.members[i].router_endpoint);
        EXPECT_EQ(back.members[i].curve_key, cluster.members[i].curve_key);
        EXPECT_EQ(back.members[i].client_endpoint, cluster.members[i].client_endpoint);
    }
    EXPECT_EQ(back.permissions, cluster.permissions);
    EXPECT_EQ(back.coin_public_key().verification_keys, coin.public_key.verification_keys);

    NodeConfig node;
    node.node_id = 3;
    node.cluster_file = "../with \"quotes\"\\cluster.toml";
    node.key_file = "/abs/node.key";
    node.coin_key_file = "coin.key";
    node.data_dir = "data";
    node.log_level = LogLevel::Warn;
    node.testing = true;
    node.limits.message_bytes_max = 1u << 25;
    auto node_back = parse_node_config(format_node_config(node), tmp_.path() / "n" / "config.toml");
    ASSERT_TRUE(node_back.ok()) << joined(node_back.errors);
    EXPECT_EQ(node_back.value->node_id, 3);
    EXPECT_EQ(node_back.value->cluster_file.filename(), "with \"quotes\"\\cluster.toml");
    EXPECT_EQ(node_back.value->key_file, "/abs/node.key");
    EXPECT_EQ(node_back.value->log_level, LogLevel::Warn);
    EXPECT_TRUE(node_back.value->testing);
    EXPECT_EQ(node_back.value->limits.message_bytes_max, 1u << 25);
}

TEST_F(ConfigTest, a_port_in_use_is_reported_naming_the_cluster_file_and_key) {
    const Testnet net = make_testnet();
    const std::string router0 = endpoint(1);
    {
        Listener busy(static_cast<int>(base_port_ + 1));  // node 0's ROUTER port
        ASSERT_TRUE(busy.ok());
        auto loaded = load_and_check(node_config(net, 0));
        ASSERT_FALSE(loaded.ok());
        ASSERT_EQ(loaded.errors.size(), 1u) << joined(loaded.errors);
        EXPECT_TRUE(any_contains(loaded.errors,
                                 net.cluster_file.string() + ": node[0].router_endpoint: " +
                                     router0 + ": cannot listen: Address already in use",
                                 "already running?"))
            << joined(loaded.errors);
        // Another node's ports are its own business.
        EXPECT_TRUE(load_and_check(node_config(net, 1)).ok());
        // The writer's self-check (a config written for later) can leave ports out.
        EXPECT_TRUE(load_and_check(node_config(net, 0), CheckOptions{.ports = false}).ok());
    }
    // Free again: the check passes, and it left nothing listening behind.
    auto loaded = load_and_check(node_config(net, 0));
    ASSERT_TRUE(loaded.ok()) << joined(loaded.errors);
    EXPECT_TRUE(load_and_check(node_config(net, 0)).ok());
    Listener after(static_cast<int>(base_port_));
    EXPECT_TRUE(after.ok());
}

TEST_F(ConfigTest, metrics_address_is_host_port_and_its_port_must_be_free) {
    const Testnet net = make_testnet();
    const fs::path config = node_config(net, 2);
    const auto set_metrics = [&](const std::string& value) {
        std::string text = read_all(config);
        const auto at = text.find("metrics_address = ");
        text.replace(at, text.find('\n', at) - at, "metrics_address = \"" + value + "\"");
        write_all(config, text);
    };
    for (const char* bad : {"localhost", "127.0.0.1:0", "127.0.0.1:65536", ":9100", "::1:9100",
                            "[::1:9100", "http://127.0.0.1:9100", "127.0.0.1 :9100"}) {
        set_metrics(bad);
        auto node = load_node_config(config);
        ASSERT_FALSE(node.ok()) << bad;
        EXPECT_TRUE(
            any_contains(node.errors, config.string() + ": metrics_address: expected HOST:PORT"))
            << joined(node.errors);
    }
    for (const char* good : {"127.0.0.1:9100", "[::1]:9100", "localhost:9100", "0.0.0.0:1"}) {
        set_metrics(good);
        auto node = load_node_config(config);
        ASSERT_TRUE(node.ok()) << good << ": " << joined(node.errors);
        EXPECT_EQ(node.value->metrics_address, good);
    }

    Listener busy;
    ASSERT_TRUE(busy.ok());
    set_metrics("127.0.0.1:" + std::to_string(busy.port()));
    auto loaded = load_and_check(config);
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, config.string() + ": metrics_address: 127.0.0.1:" +
                                                std::to_string(busy.port()) +
                                                ": cannot listen: Address already in use"))
        << joined(loaded.errors);

    // The node's own PUB port: each address is free alone, not together.
    set_metrics("127.0.0.1:" + std::to_string(base_port_ + 4));
    loaded = load_and_check(config);
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, ": metrics_address: ", "Address already in use"))
        << joined(loaded.errors);

    int free_port = 0;
    {
        Listener probe;  // a port that is free once the probe closes
        free_port = probe.port();
    }
    set_metrics("127.0.0.1:" + std::to_string(free_port));
    loaded = load_and_check(config);
    EXPECT_TRUE(loaded.ok()) << joined(loaded.errors);

    // A host that is not this machine's.
    set_metrics("192.0.2.1:9100");
    loaded = load_and_check(config);
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, ": metrics_address: 192.0.2.1:9100: cannot listen",
                             "not an address of this machine"))
        << joined(loaded.errors);
}

TEST_F(ConfigTest, high_water_file_defaults_beside_the_key_and_must_be_writable_outside_data_dir) {
    const Testnet net = make_testnet();
    const fs::path config = node_config(net, 3);
    const fs::path dir = net.dir / "node3";

    // Explicit and relative: resolves against the config's directory.
    fs::create_directory(dir / "marks");
    edit(config, "data_dir = \"data\"", "data_dir = \"data\"\nhigh_water_file = \"marks/hw\"");
    auto loaded = load_and_check(config);
    ASSERT_TRUE(loaded.ok()) << joined(loaded.errors);
    EXPECT_EQ(loaded.value->node.high_water_file, dir / "marks" / "hw");

    // Its directory must exist: nothing is created by the check.
    edit(config, "high_water_file = \"marks/hw\"", "high_water_file = \"gone/hw\"");
    loaded = load_and_check(config);
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(
        loaded.errors, config.string() + ": high_water_file: " + (dir / "gone" / "hw").string(),
        "does not exist"))
        << joined(loaded.errors);
    EXPECT_FALSE(fs::exists(dir / "gone"));

    // A directory where the file should be.
    edit(config, "high_water_file = \"gone/hw\"", "high_water_file = \"marks\"");
    loaded = load_and_check(config);
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, ": high_water_file: ", "not a regular file"))
        << joined(loaded.errors);

    // Inside data_dir it would be lost with it.
    fs::create_directories(dir / "data" / "sub");
    edit(config, "high_water_file = \"marks\"", "high_water_file = \"data/sub/../hw\"");
    loaded = load_and_check(config);
    ASSERT_FALSE(loaded.ok());
    EXPECT_TRUE(any_contains(loaded.errors, ": high_water_file: ", "inside data_dir"))
        << joined(loaded.errors);

    edit(config, "high_water_file = \"data/sub/../hw\"", "high_water_file = \"\"");
    auto node = load_node_config(config);
    ASSERT_FALSE(node.ok());
    EXPECT_TRUE(any_contains(node.errors, ": high_water_file: expected a path"))
        << joined(node.errors);

    if (::geteuid() != 0) {  // root may write anywhere
        edit(config, "high_water_file = \"\"", "high_water_file = \"marks/hw\"");
        ASSERT_EQ(::chmod((dir / "marks").c_str(), 0500), 0);
        loaded = load_and_check(config);
        ::chmod((dir / "marks").c_str(), 0700);
        ASSERT_FALSE(loaded.ok());
        EXPECT_TRUE(any_contains(loaded.errors, ": high_water_file: ", "is not writable"))
            << joined(loaded.errors);
    }
}

TEST_F(ConfigTest, format_writes_high_water_file_only_when_not_the_default) {
    NodeConfig node;
    node.cluster_file = "../cluster.toml";
    node.key_file = "keys/node.key";
    node.coin_key_file = "keys/coin.key";
    node.data_dir = "data";
    const fs::path source = tmp_.path() / "n" / "config.toml";

    std::string text = format_node_config(node);  // unset: not written
    EXPECT_EQ(text.find("high_water_file"), std::string::npos) << text;
    auto back = parse_node_config(text, source);
    ASSERT_TRUE(back.ok()) << joined(back.errors);
    EXPECT_EQ(back.value->high_water_file, tmp_.path() / "n" / "keys" / "sign-high-water");

    node.high_water_file = "keys/sign-high-water";  // the default, spelt out: not written
    EXPECT_EQ(format_node_config(node).find("high_water_file"), std::string::npos);

    node.high_water_file = "/var/lib/tobd-keys/node0/sign-high-water";
    text = format_node_config(node);
    EXPECT_NE(text.find("high_water_file = \"/var/lib/tobd-keys/node0/sign-high-water\"\n"),
              std::string::npos)
        << text;
    back = parse_node_config(text, source);
    ASSERT_TRUE(back.ok()) << joined(back.errors);
    EXPECT_EQ(back.value->high_water_file, "/var/lib/tobd-keys/node0/sign-high-water");
}

TEST_F(ConfigTest, shipped_example_config_parses) {
    const fs::path example =
        fs::path(__FILE__).parent_path() / ".." / ".." / "systemd" / "tobd.example.toml";
    ASSERT_TRUE(fs::exists(example)) << example;
    auto node = load_node_config(example);
    ASSERT_TRUE(node.ok()) << joined(node.errors);
    // The layout of systemd/tobd@.service, instance node0 (docs/operations.md).
    const fs::path dir = resolve_path(fs::path(), example).parent_path();
    EXPECT_EQ(node.value->node_id, 0);
    EXPECT_EQ(node.value->data_dir, "/var/lib/tobd/node0");
    EXPECT_EQ(node.value->high_water_file, "/var/lib/tobd-keys/node0/sign-high-water");
    EXPECT_EQ(node.value->key_file, dir / "node.key");
    EXPECT_EQ(node.value->coin_key_file, dir / "coin.key");
    EXPECT_EQ(node.value->cluster_file, dir / "cluster.toml");
    EXPECT_EQ(node.value->metrics_address, "127.0.0.1:9100");
    EXPECT_FALSE(node.value->limits.message_bytes_max.has_value());
}

}  // namespace
}  // namespace tob::daemon
