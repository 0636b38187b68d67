// MemoryBudget: the daemon's byte bounds from memory_max_mb (memory_budget.h).

#include "daemon/memory_budget.h"

#include <algorithm>
#include <optional>

#include "daemon/config.h"

namespace tob::daemon {

namespace {

std::string mib(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

std::vector<NamedBound> MemoryBudget::named() const {
    return {
        {"zmq_receive", zmq_receive_bytes},
        {"zmq_client_receive", zmq_client_receive_bytes},
        {"client_replies", client_send_bytes},
        {"zmq_send", zmq_send_bytes},
        {"peer_outboxes", outboxes_bytes},
        {"verify_queue_members", verify_member_bytes},  // per member; used = the fullest
        {"verify_queue_clients", verify_clients_bytes},
        {"verify_cache", verify_cache_bytes},
        {"failed_digests", failed_cache_bytes},
        {"recent_digests", recent_bytes},
        {"client_pending", pending_bytes},
        {"client_rates", client_rate_bytes},
    };
}

namespace {

// The client ROUTER: what it may receive (an eighth) and hold for clients to
// read (a 32nd, at least one largest reply per connection). nullopt: it fits.
std::optional<std::string> derive_client_router(const MemoryBudgetInput& in, std::uint64_t m,
                                                MemoryBudget& b) {
    // The client ROUTER: at most client_connections_max connections, each holding
    // at most client_hwm frames, within an eighth of the budget.
    const std::uint64_t connections = std::max<std::uint64_t>(in.client_connections_max, 1);
    const std::uint64_t client_hwm = (m / 8) / (connections * b.client_frame_max);
    // Two frames at least: libzmq's ROUTER with a receive high-water mark of 1
    // stopped delivering a Curve client's frames at all (measured).
    if (client_hwm < 2) {
        return "memory_max_mb: " + std::to_string(in.memory_max_mb) + " MiB cannot hold two " +
               "requests of request_bytes_max (" + std::to_string(in.request_bytes_max) +
               " bytes) per client connection (limits.client_connections_max = " +
               std::to_string(connections) + ", in an eighth of the budget); raise " +
               "memory_max_mb, or lower client_connections_max or request_bytes_max";
    }
    b.client_hwm = static_cast<int>(std::min<std::uint64_t>(client_hwm, 4));
    b.zmq_client_receive_bytes = connections * std::uint64_t(b.client_hwm) * b.client_frame_max;

    // Replies queued for a client connection that does not read: a 32nd of the
    // budget split evenly, but one reply of the largest size at least, so that
    // every answer can be sent (within a 16th).
    b.client_reply_max = std::uint64_t{in.request_output_bytes_max} + kClientReplyOverhead;
    b.client_send_each_bytes = std::max(b.client_reply_max, (m / 32) / connections);
    b.client_send_bytes = connections * b.client_send_each_bytes;
    if (b.client_send_bytes > m / 16) {
        return "memory_max_mb: " + std::to_string(in.memory_max_mb) + " MiB cannot queue one " +
               "reply of request_output_bytes_max (" + std::to_string(in.request_output_bytes_max) +
               " bytes) for each of " + std::to_string(connections) +
               " client connections in a 16th of the budget; " +
               "raise memory_max_mb, or lower client_connections_max or request_output_bytes_max";
    }
    return std::nullopt;
}

}  // namespace

std::variant<MemoryBudget, std::string> derive_memory_budget(const MemoryBudgetInput& in) {
    MemoryBudget b;
    if (in.memory_max_mb < 64) return std::string("memory_max_mb: at least 64 (MiB)");
    const std::uint64_t m = in.memory_max_mb << 20;
    const std::uint64_t peers = in.n > 1 ? in.n - 1 : 1;
    b.total_bytes = m;
    b.frame_max = std::uint64_t{in.message_bytes_max} + kFrameOverhead;

    // ZeroMQ receive side: one pipe per peer on the SUB and on the member ROUTER.
    // Two frames at least: with a receive high-water mark of 1 libzmq's member
    // ROUTER stopped delivering frames for good (every unicast of a 7-node cluster
    // lost, its sockets' receive queues full and unread: faults_crash_stop_n7),
    // as the client ROUTER did for Curve clients below.
    const std::uint64_t hwm = (m / 4) / (2 * peers * b.frame_max);
    if (hwm < 2) {
        return "memory_max_mb: " + std::to_string(in.memory_max_mb) +
               " MiB cannot hold two frames of message_bytes_max (" +
               std::to_string(in.message_bytes_max) + " bytes) per peer connection (" +
               std::to_string(2 * peers) + " connections in a quarter of the budget); raise " +
               "memory_max_mb to at least " + mib(16 * peers * b.frame_max + (1u << 20)) +
               " or lower message_bytes_max";
    }
    b.member_recv_hwm = static_cast<int>(std::min<std::uint64_t>(hwm, 20000));
    b.zmq_receive_bytes = std::uint64_t(b.member_recv_hwm) * 2 * peers * b.frame_max;
    b.client_frame_max = std::uint64_t{in.request_bytes_max} + kClientFrameOverhead;

    // ZeroMQ send side: a peer that does not read holds what this node sends it in
    // the PUB's pipe to it (HWM in messages of at most pub_frame_max, which is why
    // larger broadcasts do not go there), its DEALER's pipe (HWM in messages of up
    // to frame_max) and its outbox (bytes).
    b.pub_frame_max = std::min<std::uint64_t>(kPubFrameMax, in.message_bytes_max);
    const std::uint64_t pub_hwm = (m / 32) / (peers * (b.pub_frame_max + kFrameOverhead));
    if (pub_hwm < kPubSendHwmMin) {
        return "memory_max_mb: " + std::to_string(in.memory_max_mb) + " MiB cannot queue " +
               std::to_string(kPubSendHwmMin) + " broadcasts of " +
               std::to_string(b.pub_frame_max) + " bytes for each of " + std::to_string(peers) +
               " peers in a 32nd of the budget; raise memory_max_mb";
    }
    b.pub_send_hwm = static_cast<int>(std::min<std::uint64_t>(pub_hwm, 20000));
    // A 16th of the budget for the DEALERs' pipes, but two frames each at least
    // (an eighth is the most that takes, given the receive side's floor above).
    const std::uint64_t peer_hwm = std::max<std::uint64_t>((m / 16) / (peers * b.frame_max), 2);
    if (2 * peers * b.frame_max > m / 8) {
        return "memory_max_mb: " + std::to_string(in.memory_max_mb) +
               " MiB cannot queue two frames of message_bytes_max (" +
               std::to_string(in.message_bytes_max) + " bytes) to each of " +
               std::to_string(peers) + " peers in an eighth of the budget; raise " +
               "memory_max_mb or lower message_bytes_max";
    }
    b.peer_send_hwm = static_cast<int>(std::min<std::uint64_t>(peer_hwm, 20000));
    b.zmq_send_bytes = peers * (std::uint64_t(b.pub_send_hwm) * (b.pub_frame_max + kFrameOverhead) +
                                std::uint64_t(b.peer_send_hwm) * b.frame_max);
    b.outbox_bytes = (m / 32) / peers;
    b.outboxes_bytes = b.outbox_bytes * peers;

    if (auto error = derive_client_router(in, m, b)) return *error;

    // Verification queues: a quarter, half of it for the members.
    b.verify_member_bytes = (m / 8) / peers;
    if (b.verify_member_bytes < b.frame_max) {
        return "memory_max_mb: " + std::to_string(in.memory_max_mb) + " MiB leaves each of the " +
               std::to_string(peers) + " peers " + mib(b.verify_member_bytes) +
               " of verification queue, less than one frame of " +
               "message_bytes_max; raise memory_max_mb or lower message_bytes_max";
    }
    b.verify_clients_bytes = m / 8;
    b.verify_client_each_bytes = std::max(b.client_frame_max, b.verify_clients_bytes / 16);
    if (b.verify_clients_bytes < b.client_frame_max) {
        return std::string(
            "memory_max_mb: the clients' verification queue cannot hold one request");
    }

    b.verify_cache_bytes = m / 64;
    b.verify_cache_generation = b.verify_cache_bytes / (2 * kDigestEntryBytes);
    b.failed_cache_bytes = m / 256;
    b.failed_entries = b.failed_cache_bytes / kFailedEntryBytes;
    b.recent_bytes = m / 128;
    b.recent_generation = b.recent_bytes / (2 * kDigestEntryBytes);
    b.pending_bytes = m / 64;
    b.pending_max =
        std::min<std::size_t>(in.pool_requests_max, b.pending_bytes / (kPendingEntryBytes + 64));
    b.client_rate_bytes = m / 256;
    b.client_rate_entries = b.client_rate_bytes / kClientRateEntryBytes;
    b.fetch_answer_bytes_per_s = std::max<std::uint64_t>(b.frame_max, m / 32);
    return b;
}

MemoryBudgetInput memory_budget_input(const NodeConfig& node, const ClusterConfig& cluster) {
    MemoryBudgetInput in;
    in.memory_max_mb = node.limits.memory_max_mb;
    in.n = cluster.n;
    in.message_bytes_max = node.message_bytes_max(cluster);
    in.request_bytes_max = cluster.limits.request_bytes_max;
    in.pool_requests_max = node.limits.pool_requests_max;
    in.client_connections_max = node.limits.client_connections_max;
    in.request_output_bytes_max = cluster.limits.request_output_bytes_max;
    return in;
}

}  // namespace tob::daemon
