#pragma once
// A local test network: what `tobctl testnet` writes, also used by unit tests.
//
// The writer acts as the dealer: it draws the coin polynomial (crypto::deal_coin,
// threshold t+1) and one Ed25519 key per node, writes every node's secrets to
// 0600 key files, and forgets them. Layout under DIR:
//   cluster.toml                       shared by every node (its bytes are the chain id)
//   node<i>/config.toml                node_id = i, relative paths to the files below
//   node<i>/node.key, node<i>/coin.key mode 0600
//   node<i>/data                       created by tobd on first start
// Node i listens on tcp://127.0.0.1:(base_port + 2i) (PUB) and base_port + 2i + 1
// (ROUTER), or on hosts[i] instead of 127.0.0.1 when hosts are given (e.g. one
// network namespace per node). After writing, every node config is loaded back and checked
// (load_and_check), so a testnet that is returned is known to start.

#include <cstdint>
#include <filesystem>
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
};

struct TestnetNode {
    consensus::NodeId id = 0;
    std::filesystem::path dir;
    std::filesystem::path config_file;
    std::string pub_endpoint;
    std::string router_endpoint;
    crypto::PublicKey public_key{};
};

struct Testnet {
    std::filesystem::path dir;
    std::filesystem::path cluster_file;
    crypto::Digest chain_id{};
    std::uint32_t n = 0;
    std::uint32_t t = 0;
    std::uint32_t q = 0;
    std::vector<TestnetNode> nodes;
};

/// Writes a testnet as described above. Refuses (errors, nothing written) when
/// nodes < 4 without allow_unsafe, when ports would exceed 65535, or when dir
/// exists and is not empty without force.
Outcome<Testnet> write_testnet(const TestnetOptions& options);

}  // namespace tob::daemon
