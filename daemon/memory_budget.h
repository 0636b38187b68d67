#pragma once
// MemoryBudget: every bound of the daemon's own queues, caches and tables, in
// bytes, derived from one number, the node config's `memory_max_mb`
// (docs/memory.md has the table; issue 11, "a memory budget per node").
//
// The daemon's share of the budget (the rest is left to the core's pool, its
// future-epoch buffer, the proofs it keeps, and RocksDB):
//
//   ZeroMQ receive queues   1/4   SUB and member ROUTER: HWM (messages) x frame max
//   ZeroMQ send queues      3/32  PUB (1/32): HWM x 64 KiB broadcast frames per
//                                 subscriber; DEALERs (1/16, up to 1/8 for two
//                                 frames): HWM x frame max per peer
//   peer outboxes           1/32  split evenly among the peers (daemon/transport.h)
//   verification queues     1/4   half per member (split evenly), half for clients
//   positive verify cache   1/64
//   failed-digest memory    1/256
//   recent-duplicate set    1/128
//   client pending table    1/64
//   client replies queued   1/32  per client connection an even share, but at least
//                                 one reply of the largest size (then up to 1/16)
//   client byte rates       1/256 one token bucket per client source
//
// derive_memory_budget refuses a budget in which a bound cannot hold one frame
// of the size honest peers may send, or a ZeroMQ receive queue two (libzmq's
// ROUTER stops delivering at a high-water mark of 1); the error says what to change.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace tob::daemon {

struct NodeConfig;
struct ClusterConfig;

struct MemoryBudgetInput {
    std::uint64_t memory_max_mb = 2048;
    std::uint32_t n = 4;                                // members
    std::uint32_t message_bytes_max = 16u << 20;        // the node's receive cap on one frame
    std::uint32_t request_bytes_max = 1u << 20;         // one client request
    std::uint32_t pool_requests_max = 100000;           // the node's pool limit (count)
    std::uint32_t client_connections_max = 50;          // the client ROUTER's connections
    std::uint32_t request_output_bytes_max = 1u << 20;  // one request's outputs (a reply)
};

/// One named bound, for /metrics (tobd_bound_bytes{bound="..."}).
struct NamedBound {
    std::string name;
    std::uint64_t bytes = 0;
};

struct MemoryBudget {
    std::uint64_t total_bytes = 0;
    // ZeroMQ: receive HWM (messages) per connection of the SUB and the member
    // ROUTER; frames on them are at most frame_max bytes.
    int member_recv_hwm = 1;
    std::uint64_t frame_max = 0;
    std::uint64_t zmq_receive_bytes = 0;  // HWM x frame_max x 2 sockets x (n-1) connections
    // ZeroMQ send side (daemon/transport.h): the PUB carries broadcasts of at most
    // pub_frame_max bytes, pub_send_hwm per subscriber; each DEALER holds
    // peer_send_hwm frames of up to frame_max, and its outbox outbox_bytes more.
    std::uint64_t pub_frame_max = 0;
    int pub_send_hwm = 16;
    int peer_send_hwm = 2;
    std::uint64_t zmq_send_bytes = 0;  // peers x (pub HWM x pub frame + peer HWM x frame_max)
    std::uint64_t outbox_bytes = 0;    // per peer
    std::uint64_t outboxes_bytes = 0;  // all peers
    // The client ROUTER: frame cap and HWM per connection.
    std::uint64_t client_frame_max = 0;
    int client_hwm = 4;                          // min(4, (M/8) / (connections x frame))
    std::uint64_t zmq_client_receive_bytes = 0;  // connections x client_hwm x frame
    // What the node queues for one client connection and has not yet handed the
    // kernel (daemon/client_connections.h, "Replies"): at least one reply of the
    // largest size, client_reply_max bytes.
    std::uint64_t client_reply_max = 0;
    std::uint64_t client_send_each_bytes = 0;
    std::uint64_t client_send_bytes = 0;  // connections x client_send_each_bytes
    // Verification queues (jobs queued plus results not yet taken by the loop).
    std::uint64_t verify_member_bytes = 0;       // per member
    std::uint64_t verify_clients_bytes = 0;      // all clients together
    std::uint64_t verify_client_each_bytes = 0;  // one client connection
    // Caches and tables (entry counts derived from bytes with a per-entry cost).
    std::uint64_t verify_cache_bytes = 0;
    std::size_t verify_cache_generation = 0;  // entries per generation (two kept)
    std::uint64_t failed_cache_bytes = 0;
    std::size_t failed_entries = 0;
    std::uint64_t recent_bytes = 0;
    std::size_t recent_generation = 0;  // entries per generation (two kept)
    std::uint64_t pending_bytes = 0;
    std::size_t pending_max = 0;  // client requests waiting for their outcome
    std::uint64_t client_rate_bytes = 0;
    std::size_t client_rate_entries = 0;  // client sources with a byte-rate bucket
    // Fetch and archive answers per member (bandwidth, not memory).
    std::uint64_t fetch_answer_bytes_per_s = 0;

    /// Every memory bound with its name, for /metrics.
    std::vector<NamedBound> named() const;
};

// Per-entry costs used to turn byte bounds into entry counts: a 32-byte digest
// plus the container's node and bucket overhead (std::set / unordered_set /
// list + map), rounded up.
inline constexpr std::uint64_t kDigestEntryBytes = 64;
inline constexpr std::uint64_t kFailedEntryBytes = 128;
// One pending client request without its routing ids (key, digest, times, map node).
inline constexpr std::uint64_t kPendingEntryBytes = 192;
// One client source's byte-rate bucket: its key (a Curve key in hex, 64 chars, or a
// routing id), the bucket and the map node.
inline constexpr std::uint64_t kClientRateEntryBytes = 256;
// What a Submit message adds around the request it carries, at most.
inline constexpr std::uint64_t kClientFrameOverhead = 1024;
// ZeroMQ's frame envelope allowance on top of message_bytes_max.
inline constexpr std::uint64_t kFrameOverhead = 64;
// What a reply message adds around a request's outputs, at most (consensus/codec.h's
// kReplyOverhead and ZeroMQ's framing).
inline constexpr std::uint64_t kClientReplyOverhead = 1024;
// Broadcasts up to this size go on the PUB; larger ones point to point.
inline constexpr std::uint64_t kPubFrameMax = 64u << 10;
// The fewest broadcasts the PUB must be able to queue per subscriber.
inline constexpr std::uint64_t kPubSendHwmMin = 16;

/// The budget, or why these settings cannot all hold.
std::variant<MemoryBudget, std::string> derive_memory_budget(const MemoryBudgetInput& in);
/// The input as a node's two config files give it.
MemoryBudgetInput memory_budget_input(const NodeConfig& node, const ClusterConfig& cluster);

}  // namespace tob::daemon
