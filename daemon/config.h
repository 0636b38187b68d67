#pragma once
// Configuration of a tobd node: the cluster file shared by every member and the
// node's own config file (docs/config.md describes both formats key by key).
//
// cluster.toml is consensus-critical: every member must hold a byte-identical
// copy, because the chain id is BLAKE2b-256 of the file's exact bytes
// (comments and whitespace included). The chain id goes into every signed
// envelope and every coin name, so a re-created cluster (new genesis nonce)
// never repeats a signed byte string, and two nodes whose cluster files differ
// in any byte simply cannot talk to each other.
//
// config.toml is local to one node: its id, where its keys and data live, its
// log level and local resource bounds. Relative paths in it resolve against the
// directory of the config file, never against the working directory.
//
// Loading never throws and never crashes on a corrupt file: it returns the value
// or a list of errors, each naming the file and the key, e.g.
//   "/tmp/t4/node0/config.toml: node_id: 7 is not a member (cluster has n=4)".
// Unknown keys are errors too: a typo in a limit must not silently fall back to
// a default.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/kv/permissions.h"
#include "consensus/replica.h"
#include "consensus/types.h"
#include "crypto/coin.h"
#include "crypto/curve.h"
#include "crypto/hash.h"
#include "crypto/sign.h"

namespace tob::daemon {

using Errors = std::vector<std::string>;

/// A value, or the reasons it could not be produced. Exactly one side is set.
template <class T>
struct Outcome {
    std::optional<T> value;
    Errors errors;
    bool ok() const { return value.has_value() && errors.empty(); }
};

/// The core's defaults (consensus::ReplicaConfig): the daemon's defaults for the
/// parameters it hands to the core are taken from here, so the two cannot drift
/// apart (and the simulator tests the values production runs with).
inline constexpr consensus::ReplicaConfig kCoreDefaults{};

/// Protocol parameters from the cluster file's [protocol] table. They shape what
/// nodes sign, so every member must use the same values (they are covered by the
/// chain id like everything else in the file).
struct ProtocolParams {
    // Cut a non-full block after this long.
    std::uint32_t block_timer_ms = static_cast<std::uint32_t>(kCoreDefaults.block_timer_ms);
    // W: epochs in flight; sign only in (delivered, delivered+W].
    std::uint32_t window = kCoreDefaults.window;
    // K: COMMIT carries the state root every K epochs (docs/protocol.md "Checkpoints").
    std::uint32_t checkpoint_interval = 64;
    // R: records more than R epochs below the newest servable checkpoint are
    // pruned; a node further behind than that installs a snapshot.
    std::uint32_t checkpoint_retention = 256;
    // k: a request uncommitted this long gets reserved block space.
    std::uint32_t aged_epochs = kCoreDefaults.aged_epochs;
    // H: a request applied in epoch e is skipped unless e <= expires <= e + H
    // (docs/protocol.md "Client requests"); dedup entries last at most H epochs
    // after their client's last commit.
    std::uint32_t request_expiry_max_epochs =
        static_cast<std::uint32_t>(consensus::kRequestExpiryMaxEpochsDefault);
};

/// One [[node]] entry of the cluster file.
struct ClusterMember {
    consensus::NodeId id = 0;
    crypto::PublicKey public_key{};      // Ed25519, signs envelopes
    crypto::Point coin_key{};            // y_i = g^{x_i} on ristretto255
    crypto::CurvePublicKey curve_key{};  // X25519, the member's CurveZMQ server/client key
    std::string pub_endpoint;            // ZeroMQ PUB bind address, e.g. tcp://127.0.0.1:7100
    std::string router_endpoint;         // member ROUTER bind address (fetches, catch-up)
    std::string client_endpoint;         // client ROUTER bind address (requests, status, reads)
};

/// The parsed cluster file.
struct ClusterConfig {
    std::filesystem::path path;      // as loaded (absolute)
    crypto::Digest chain_id{};       // BLAKE2b-256 of the file's exact bytes
    crypto::Digest genesis_nonce{};  // 32 random bytes chosen by the dealer
    std::uint32_t n = 0;
    std::uint32_t t = 0;        // == floor((n-1)/3) unless allow_unsafe
    bool allow_unsafe = false;  // set in the file: n < 4 or a non-standard t
    consensus::Limits limits;
    ProtocolParams protocol;
    std::vector<ClusterMember> members;  // members[i].id == i
    // [permissions]: which client keys may read and write which keys (enforced by
    // the KV state machine; docs/security.md).
    consensus::kv::Permissions permissions;

    /// q = ceil((n+t+1)/2).
    std::uint32_t quorum() const { return consensus::quorum(n, t); }
    /// The coin's public parameters (y_i of every member).
    crypto::CoinPublicKey coin_public_key() const;
};

enum class LogLevel { Trace, Debug, Info, Warn, Error };

/// "trace", "debug", "info", "warn", "error".
std::string_view to_string(LogLevel level);
std::optional<LogLevel> parse_log_level(std::string_view text);

/// Local resource bounds from config.toml's [limits] table. These do not affect
/// what the node signs, so they may differ between members.
struct LocalLimits {
    std::uint32_t pool_requests_max =
        kCoreDefaults.pool_requests_max;            // client requests in the pool
    std::uint32_t future_epoch_buffer_max = 10000;  // messages buffered for epochs not yet joined
    // Receive cap on one transport frame. Unset = the cluster's message_bytes_max;
    // check_node refuses a value below it (honest peers may send that much).
    std::optional<std::uint32_t> message_bytes_max;
    // The memory budget of the node in MiB: every daemon queue, cache and table
    // gets a bound in bytes derived from it (daemon/memory_budget.h, docs/memory.md).
    std::uint32_t memory_max_mb = 2048;
    // Bytes per second one client source (Curve key, or connection without Curve)
    // may send this node; beyond it frames are answered Overloaded before any
    // check (daemon/client_rate.h). The burst is max(this, request_bytes_max).
    std::uint32_t client_bytes_per_s = 256u << 10;
    // Frames (requests, queries) per second one client source may send this node:
    // each frame is charged at least client_bytes_per_s / client_requests_per_s
    // bytes of that rate, however small it is (daemon/client_rate.h).
    std::uint32_t client_requests_per_s = 256;
    // Client keys this node's state does not know that one client source may
    // bring per second (burst: four seconds' worth, at least 16); 0 = no limit.
    std::uint32_t client_new_keys_per_s = 16;
    // Connections the client ROUTER holds at once, in all and from one remote
    // address; more are shut down as they arrive (daemon/client_connections.h).
    std::uint32_t client_connections_max = 50;
    std::uint32_t client_connections_per_address_max = 25;
};

/// The parsed node config. Every path is absolute (resolved against the
/// directory of the config file when relative in the file).
struct NodeConfig {
    std::filesystem::path path;  // the config file itself (absolute)
    consensus::NodeId node_id = 0;
    std::filesystem::path cluster_file;
    std::filesystem::path key_file;       // Ed25519 key (tobd-key-v1, mode 0600)
    std::filesystem::path coin_key_file;  // coin share x_i (tobd-key-v1, mode 0600)
    // The node's Curve key pair (tobd-key-v1 type curve25519, mode 0600). Default (when
    // absent from the file): key_file's directory / "curve.key"; parse_node_config sets it.
    std::filesystem::path curve_key_file;
    std::filesystem::path data_dir;
    // The signing high-water mark (docs/protocol.md "Safety rules", daemon/high_water.h). Kept
    // apart from data_dir so that it survives losing it. Default (when absent from the file):
    // key_file's directory / "sign-high-water"; parse_node_config always sets it. Empty in a
    // NodeConfig built in code means that default too.
    std::filesystem::path high_water_file;
    LogLevel log_level = LogLevel::Info;
    std::string metrics_address;  // "host:port" for Prometheus/health over HTTP; empty = off
    bool testing = false;         // enables test-only hooks (fault layer); never in production
    LocalLimits limits;

    /// The effective receive cap: the local override or the cluster's limit.
    std::uint32_t message_bytes_max(const ClusterConfig& cluster) const {
        return limits.message_bytes_max.value_or(cluster.limits.message_bytes_max);
    }
};

/// Largest file either loader reads; anything bigger is refused unread.
inline constexpr std::uintmax_t kConfigFileBytesMax = 16u << 20;

/// Parses cluster-file bytes. `source` names the file in error messages and
/// becomes ClusterConfig::path. The chain id is BLAKE2b-256(bytes).
Outcome<ClusterConfig> parse_cluster_config(std::string_view bytes,
                                            const std::filesystem::path& source);
/// Reads and parses a cluster file.
Outcome<ClusterConfig> load_cluster_config(const std::filesystem::path& path);

/// Parses node-config bytes; relative paths resolve against source's directory.
Outcome<NodeConfig> parse_node_config(std::string_view bytes, const std::filesystem::path& source);
/// Reads and parses a node config file.
Outcome<NodeConfig> load_node_config(const std::filesystem::path& path);

/// The secrets a node runs with, checked against the cluster file.
struct NodeKeys {
    crypto::SigningKey signing;
    crypto::CoinSecretShare coin;
    crypto::CurveKeyPair curve;
};

/// Loads the key files named by `node` (crypto refuses group/other-accessible or
/// corrupt files, naming them) and checks them against the cluster: the Ed25519
/// public key equals members[node_id].public_key, the coin share's index equals
/// node_id and g^{x} equals members[node_id].coin_key, the Curve key's public key
/// equals members[node_id].curve_key.
Outcome<NodeKeys> load_node_keys(const NodeConfig& node, const ClusterConfig& cluster);

/// What check_node checks besides the files themselves.
struct CheckOptions {
    /// The node's own tcp:// PUB, member ROUTER and client ROUTER endpoints (from the cluster file)
    /// and metrics_address can be bound right now. Off for a config that is
    /// written for later (the testnet writer's self-check) rather than started.
    bool ports = true;
};

/// Everything a node must satisfy before it starts: node_id is a member, the
/// keys load and match the cluster, data_dir exists as a writable directory or
/// can be created, high_water_file's directory exists and is writable (and is
/// not inside data_dir), local limits are consistent with the cluster's, and
/// (options.ports) its ports are free: each is bound and listened on with
/// SO_REUSEADDR as ZeroMQ and the HTTP server do, all at once (so two of them
/// on one port are caught too), then closed. Empty = ok. Creates nothing.
Errors check_node(const NodeConfig& node, const ClusterConfig& cluster,
                  const CheckOptions& options = {});

/// What tobd and `tobd --check-config` run: load the node config, then its
/// cluster file, then check_node. On success both configs are returned.
struct LoadedNode {
    NodeConfig node;
    ClusterConfig cluster;
};
Outcome<LoadedNode> load_and_check(const std::filesystem::path& config_file,
                                   const CheckOptions& options = {});

/// Renders a cluster file (every limit and protocol parameter written out, keys
/// in a fixed order). path and chain_id are ignored; the chain id of the result
/// is BLAKE2b-256 of the returned text. parse_cluster_config reads it back.
std::string format_cluster_file(const ClusterConfig& cluster);
/// Renders a node config; paths are written exactly as they are held (so a
/// caller can write relative ones such as "../cluster.toml").
std::string format_node_config(const NodeConfig& node);

/// The default curve_key_file of a node whose key_file is `key_file`.
std::filesystem::path default_curve_key_path(const std::filesystem::path& key_file);

/// Reads a permissions file: a TOML file holding one [permissions] table in the
/// cluster file's format (`tobctl testnet --permissions FILE`).
Outcome<consensus::kv::Permissions> load_permissions_file(const std::filesystem::path& path);
/// The [permissions] table as format_cluster_file writes it.
std::string format_permissions(const consensus::kv::Permissions& permissions);

/// Makes a path absolute against `base_dir` (if relative) and normalises it.
std::filesystem::path resolve_path(const std::filesystem::path& base_dir,
                                   const std::filesystem::path& path);

}  // namespace tob::daemon
