#pragma once
// A local test network: what `tobctl testnet` writes, also used by unit tests.
//
// The writer acts as the dealer: it draws the coin polynomial (crypto::deal_coin,
// threshold t+1), one Ed25519 key and one Curve key pair per node, writes every
// node's secrets to 0600 key files, and forgets them. Layout under DIR:
//   cluster.toml                       shared by every node (its bytes are the chain id)
//   node<i>/config.toml                node_id = i, relative paths to the files below
//   node<i>/node.key, coin.key, curve.key  mode 0600
//   node<i>/data                       created by tobd on first start
// Node i listens on tcp://127.0.0.1:(base_port + 2i) (PUB), base_port + 2i + 1
// (member ROUTER) and base_port + 2n + i (client ROUTER), or on hosts[i] instead of
// 127.0.0.1 when hosts are given (e.g. one network namespace per node). The
// cluster file's [permissions] are open unless options.permissions says otherwise.
// After writing, every node config is loaded back and checked (load_and_check), so
// a testnet that is returned is known to start.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "crypto/sign.h"
#include "daemon/config.h"

namespace tob::daemon {

struct TestnetOptions {
    std::filesystem::path dir;
    std::uint32_t nodes = 4;
    std::uint32_t base_port = 7100;
    bool allow_unsafe =
        false;           // permit n < 4 (t = 0); the cluster file then says allow_unsafe = true
    bool force = false;  // replace cluster.toml and node<i>/ dirs already in dir (nothing else)
    /// Node i's address (IPv4 literal or host name); empty = 127.0.0.1 for all.
    /// With hosts, node i listens on hosts[i]:base_port + 2i (+1); one entry per node.
    std::vector<std::string> hosts;
    /// The cluster file's [permissions]; nullopt = open (any client key may read and
    /// write every key).
    std::optional<consensus::kv::Permissions> permissions;
};

struct TestnetNode {
    consensus::NodeId id = 0;
    std::filesystem::path dir;
    std::filesystem::path config_file;
    std::string pub_endpoint;
    std::string router_endpoint;
    std::string client_endpoint;
    crypto::PublicKey public_key{};
    crypto::CurvePublicKey curve_key{};
};

struct Testnet {
    std::filesystem::path dir;
    std::filesystem::path cluster_file;
    crypto::Digest chain_id{};
    std::uint32_t n = 0;
    std::uint32_t t = 0;
    std::uint32_t q = 0;
    consensus::kv::Permissions permissions;  // as written
    std::vector<TestnetNode> nodes;
};

/// Writes a testnet as described above. Refuses (errors, nothing written) when
/// nodes < 4 without allow_unsafe, when ports would exceed 65535, or when dir
/// exists and is not empty without force.
Outcome<Testnet> write_testnet(const TestnetOptions& options);

}  // namespace tob::daemon
