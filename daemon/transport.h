#pragma once
// The ZeroMQ transport of one node (docs/daemon.md, "Transport").
//
// Sockets:
//  - PUB (bind, the node's pub_endpoint): the flooding plane. Every broadcast is
//    two frames: a 10-byte header [sender id u16 BE][sequence u64 BE] and the
//    signed envelope. The header is not signed and means nothing to the protocol:
//    receivers use the per-sender sequence only to count frames PUB/SUB lost
//    (ZeroMQ drops silently at its high-water mark; repair recovers them, the
//    gap counter makes the loss visible).
//  - SUB (connect to every other member's PUB): receives the flood.
//  - ROUTER (bind, router_endpoint): point-to-point envelopes from peers
//    ([id]['P'][envelope]) and client/admin messages ([id]['C'][body], see
//    cli/client/protocol.h).
//  - DEALER per peer (connect to the peer's ROUTER, ZMQ_IMMEDIATE so nothing
//    queues for a peer that is down): point-to-point sends (fetches, catch-up).
//  - a socket monitor on SUB: which peers' PUB sockets this node is connected to.
//
// ZMQ_MAXMSGSIZE on SUB and ROUTER makes ZeroMQ drop the connection of a peer
// that sends a frame over the limit before it is buffered. Every send is
// non-blocking; a send that would block is dropped and counted (repair resends).
//
// Test-only fault layer (docs/fault-model.md, "Where faults are injected"): when enabled,
// frames received on the peer planes are dropped, duplicated, and delayed (which
// also reorders them) with the configured probabilities. It exists only when the
// node config says testing = true and the option is given.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>
#include <zmq.hpp>

#include "consensus/types.h"
#include "daemon/config.h"

namespace tob::daemon {

struct FaultLayerOptions {
    double drop = 0;                 // probability a received peer frame is discarded
    double duplicate = 0;            // probability it is delivered twice
    double delay = 0;                // probability it is held back ...
    std::uint32_t delay_ms_max = 0;  // ... for up to this long (reordering it)
    std::uint64_t seed = 1;
    bool enabled() const { return drop > 0 || duplicate > 0 || (delay > 0 && delay_ms_max > 0); }
};

struct TransportOptions {
    consensus::NodeId self = 0;
    std::vector<ClusterMember> members;
    std::uint32_t message_bytes_max = 16u << 20;
    int send_hwm = 20000;
    int recv_hwm = 20000;
    FaultLayerOptions faults;
    // Test-only "twin" (docs/fault-model.md row 11: two daemons with one key): bind PUB and
    // ROUTER at port + twin_port_offset instead of the cluster file's ports (which
    // the original holds) and also send every broadcast point to point to each
    // peer, since peers subscribe only to the original's PUB. 0 = off.
    std::uint32_t twin_port_offset = 0;
};

struct Inbound {
    enum class Source : std::uint8_t { PubSub, Peer, Client };
    Source source = Source::PubSub;
    std::string routing_id;  // ROUTER frames: the sender's id (to answer clients)
    consensus::Bytes body;   // the envelope (PubSub, Peer) or the client message
};

struct TransportStats {
    std::uint64_t frames_in = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t frames_out = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t send_drops = 0;     // sends that would have blocked
    std::uint64_t pubsub_gaps = 0;    // frames lost on PUB/SUB, from sequence gaps
    std::uint64_t bad_frames = 0;     // wrong frame count / unknown channel
    std::uint64_t fault_dropped = 0;  // test fault layer
    std::uint64_t fault_duplicated = 0;
    std::uint64_t fault_delayed = 0;
};

class Transport {
  public:
    /// Binds PUB and ROUTER, connects SUB and the DEALERs. An error names the
    /// endpoint, e.g. "tcp://127.0.0.1:7100: Address already in use".
    static std::variant<std::unique_ptr<Transport>, std::string> open(TransportOptions options);
    ~Transport();

    /// Waits until a socket or one of `fds` is readable, or `timeout`.
    /// Returns which of `fds` are readable.
    std::vector<bool> wait(std::chrono::milliseconds timeout, const std::vector<int>& fds);
    /// Up to `max` received frames (non-blocking), fault layer applied.
    std::vector<Inbound> receive(std::size_t max);

    void broadcast(consensus::ByteView envelope);
    void send_to(consensus::NodeId peer, consensus::ByteView envelope);
    void send_client(const std::string& routing_id, consensus::ByteView body);

    std::uint32_t peers_connected() const { return static_cast<std::uint32_t>(connected_.size()); }
    const TransportStats& stats() const { return stats_; }

  private:
    explicit Transport(TransportOptions options);
    void drain_monitor();
    bool recv_multipart(zmq::socket_t& socket, std::vector<zmq::message_t>& parts);
    void admit(Inbound in, std::vector<Inbound>& out);

    TransportOptions opt_;
    zmq::context_t ctx_{1};
    zmq::socket_t pub_, sub_, router_, monitor_;
    std::map<consensus::NodeId, zmq::socket_t> dealers_;
    std::map<std::string, consensus::NodeId> pub_endpoint_to_peer_;
    std::set<consensus::NodeId> connected_;
    std::map<consensus::NodeId, std::uint64_t> last_seq_;
    std::uint64_t seq_ = 0;
    TransportStats stats_;
    // Fault layer.
    std::mt19937_64 rng_;
    struct Held {
        std::chrono::steady_clock::time_point release;
        Inbound in;
    };
    std::deque<Held> held_;
};

}  // namespace tob::daemon
