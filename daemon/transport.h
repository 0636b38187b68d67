#pragma once
// The ZeroMQ transport of one node (docs/architecture.md; docs/security.md).
//
// Sockets, every one CurveZMQ-encrypted and authenticated (below):
//  - PUB (bind, the node's pub_endpoint): the flooding plane. Every broadcast is
//    two frames: a 10-byte header [sender id u16 BE][sequence u64 BE] and the
//    signed envelope. The header is not signed and means nothing to the protocol:
//    receivers use the per-sender sequence only to count frames PUB/SUB lost
//    (ZeroMQ drops silently at its high-water mark; repair recovers them, the
//    gap counter makes the loss visible).
//  - SUB (connect to every other member's PUB): receives the flood.
//  - member ROUTER (bind, router_endpoint): point-to-point envelopes from peers,
//    [id]['P'][envelope]. Nothing else is accepted on it. Its connections are the
//    authenticated ones (the ZAP user id names the member), so agreement
//    messages, which carry no signature, travel here and never on the PUB, and
//    so do SEENs and COMMITs, whose signature a receiver checks only when they
//    reach it from elsewhere (send_to_each; consensus/messages.h, sent_point_to_point).
//  - DEALER per peer (connect to the peer's member ROUTER, ZMQ_IMMEDIATE so nothing
//    queues for a peer that is down): point-to-point sends (fetches, catch-up).
//    No fixed routing id: the ROUTER names each connection itself, so there is no
//    name a stranger could take first.
//  - client ROUTER (bind, client_endpoint): the client plane, [id]['C'][body]
//    (cli/client/protocol.h), with small per-connection queues (client_hwm); its
//    frames never share a queue with member traffic.
//  - socket monitors on all of them: which peers' PUB sockets this node is
//    connected to, refused handshakes (counted), and lost links (below).
//
// Curve: the node's Curve key pair is the server key of its three bound sockets
// and the client key of its SUB and DEALERs, which pin each peer's public key from
// the cluster file. A ZAP handler (daemon/zap.h) in the transport's context
// admits exactly the members' keys on the PUB and the member ROUTER and the
// cluster's client policy on the client ROUTER; ZMQ_ZAP_ENFORCE_DOMAIN makes a
// handshake fail when no handler answers, and open() binds nothing until the
// handler has answered a probe (fail closed). Without a Curve key (the test-only
// switch `tobd --test-no-curve`) every socket is plaintext.
//
// Links recover from every failure: libzmq gives up on an outgoing connection
// whose handshake failed (another socket type or a stranger on the endpoint, a
// Curve key it refuses) and never dials it again. The monitors see the
// disconnection; when libzmq does not announce a retry itself, the transport
// dials the endpoint again after 0.5-2 s (issue 11, finding 12).
//
// ZMQ_MAXMSGSIZE on SUB and the ROUTERs makes ZeroMQ drop the connection of a
// peer that sends a frame over the limit before it is buffered. Every send is
// non-blocking; a send that would block is dropped and counted (repair resends).
//
// What a peer that does not read can hold here is bounded in bytes (issue 11;
// docs/memory.md, "The send side"). libzmq bounds its queues in messages only, so
// the transport keeps the large frames off the queues whose count is high:
//  - the PUB carries broadcasts of at most pub_frame_max bytes (64 KiB), at most
//    pub_send_hwm of them queued per subscriber; a larger broadcast goes to each
//    peer point to point instead, on its DEALER;
//  - a DEALER queues at most peer_send_hwm frames (of up to message_bytes_max)
//    inside libzmq, and the transport keeps up to outbox_bytes more for that peer
//    in its outbox, handed to the DEALER as it drains (wait() polls it for room);
//    a frame that does not fit is dropped and counted.
//
// Test-only fault layer (docs/fault-model.md): when enabled, frames received on
// the peer planes are dropped, duplicated, and delayed (which also reorders them)
// with the configured probabilities. It exists only when the node config says
// testing = true and the option is given.

#include <array>
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
#include "crypto/curve.h"
#include "daemon/client_connections.h"
#include "daemon/config.h"
#include "daemon/zap.h"

namespace tob::daemon {

class Registry;

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
    // Send side (above and daemon/memory_budget.h).
    std::size_t pub_frame_max = 64u << 10;
    int pub_send_hwm = 20000;
    int peer_send_hwm = 20000;
    std::uint64_t outbox_bytes = 64u << 20;  // per peer
    int recv_hwm = 20000;
    // Per client connection (a ROUTER's HWMs are per connection): receive (from
    // the memory budget) and send.
    int client_hwm = 1024;
    int client_send_hwm = 1024;
    // Reply bytes the node may hold for one client connection (the memory
    // budget's client_send_each_bytes; daemon/client_connections.h, "Replies").
    // 0 = not metered.
    std::uint64_t client_send_each_bytes = 0;
    // Client connections held at once, in all and per remote address
    // (daemon/client_connections.h).
    std::size_t client_connections_max = 50;
    std::size_t client_connections_per_address_max = 25;
    // Receive cap on one client frame (a Submit carries one request); 0 = message_bytes_max.
    std::uint64_t client_frame_max = 0;
    // The node's Curve key pair; nullopt = plaintext (test only).
    std::optional<crypto::CurveKeyPair> curve;
    // Who may connect to the client ROUTER (with curve).
    bool clients_open = true;
    std::set<crypto::CurvePublicKey> client_keys;
    // Test only: do not start the ZAP handler (open() must then refuse to bind).
    bool test_skip_zap = false;
    FaultLayerOptions faults;
    // Test-only "twin" (docs/fault-model.md, row 11: two daemons with one key): bind
    // the three sockets at port + twin_port_offset instead of the cluster file's ports
    // (which the original holds) and also send every broadcast point to point to
    // each peer, since peers subscribe only to the original's PUB. 0 = off.
    std::uint32_t twin_port_offset = 0;
};

struct Inbound {
    enum class Source : std::uint8_t { PubSub, Peer, Client };
    Source source = Source::PubSub;
    std::string routing_id;  // client frames: the connection's id (to answer it)
    std::string peer_key;    // client frames: the connection's Curve key, hex (empty: no Curve)
    consensus::Bytes body;   // the envelope (PubSub, Peer) or the client message
    // The member whose connection carried the frame: the ZAP user id on the
    // member ROUTER (authenticated by Curve), the frame header's sender on the
    // SUB; kUnknownMember when neither says (plaintext test mode on the ROUTER).
    consensus::NodeId from = kUnknownMember;
    static constexpr consensus::NodeId kUnknownMember = static_cast<consensus::NodeId>(-1);
};

/// The server sockets, for counters by socket.
enum class ServerSocket : std::uint8_t { MemberPub, MemberRouter, Client };
inline constexpr std::size_t kServerSockets = 3;

struct TransportStats {
    std::uint64_t frames_in = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t frames_out = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t send_drops = 0;                 // sends that would have blocked
    std::uint64_t outbox_drops = 0;               // of those: a peer's outbox was full
    std::uint64_t outbox_bytes = 0;               // held in the peers' outboxes now
    std::uint64_t outbox_bytes_max_seen = 0;      // the most one outbox has held
    std::uint64_t broadcasts_point_to_point = 0;  // over pub_frame_max: sent per peer
    std::uint64_t client_reply_drops = 0;         // replies over their connection's share, not sent
    std::uint64_t client_replies_held = 0;        // reply bytes pushed, not yet taken by the kernel
    std::uint64_t pubsub_gaps = 0;                // frames lost on PUB/SUB, from sequence gaps
    std::uint64_t bad_frames = 0;                 // wrong frame count / channel (all sockets)
    std::uint64_t fault_dropped = 0;              // test fault layer
    std::uint64_t fault_duplicated = 0;
    std::uint64_t fault_delayed = 0;
    // By ServerSocket: handshakes the socket refused (monitor events) and frames
    // of the wrong shape or channel it dropped.
    std::array<std::uint64_t, kServerSockets> handshakes_refused{};
    std::array<std::uint64_t, kServerSockets> frames_dropped{};
    std::uint64_t link_handshake_failures = 0;        // our outgoing handshakes that failed
    std::uint64_t link_redials = 0;                   // links the transport dialled again
    std::uint64_t client_connections = 0;             // open on the client ROUTER now
    std::uint64_t client_connections_refused = 0;     // shut down: over a connection limit
    std::uint64_t client_connections_evicted = 0;     // shut down: gave way to a newcomer
    std::uint64_t client_connections_reconciled = 0;  // gone without a DISCONNECTED event
};

namespace transport_detail {

enum class MonitorRole : std::uint8_t { Server, Sub, Dealer };

/// A socket monitor (a PAIR connected to zmq_socket_monitor's endpoint).
struct Monitor {
    zmq::socket_t socket;
    MonitorRole role = MonitorRole::Server;
    ServerSocket server = ServerSocket::MemberPub;  // role Server
    consensus::NodeId peer = 0;                     // role Dealer
};

/// One outgoing connection: SUB -> a peer's PUB, or DEALER -> a peer's ROUTER.
struct Link {
    MonitorRole kind = MonitorRole::Sub;
    consensus::NodeId peer = 0;
    std::string endpoint;
    bool up = false;  // handshake succeeded, not disconnected since
    std::optional<std::chrono::steady_clock::time_point> redial_at;
    unsigned failures = 0;  // redials since the last successful handshake
};

}  // namespace transport_detail

class Transport {
  public:
    /// Starts the ZAP handler and checks it answers (with curve), binds PUB and the
    /// two ROUTERs, connects SUB and the DEALERs. An error names the endpoint, e.g.
    /// "tcp://127.0.0.1:7100: Address already in use".
    static std::variant<std::unique_ptr<Transport>, std::string> open(TransportOptions options);
    ~Transport();

    /// Waits until a socket or one of `fds` is readable, or `timeout`.
    /// Returns which of `fds` are readable.
    std::vector<bool> wait(std::chrono::milliseconds timeout, const std::vector<int>& fds);
    /// Up to `max` received frames (non-blocking), fault layer applied.
    std::vector<Inbound> receive(std::size_t max);

    /// To every peer: on the PUB, or point to point when larger than pub_frame_max.
    void broadcast(consensus::ByteView envelope);
    /// To every peer point to point, each on its DEALER (through its outbox): for
    /// kinds the receiver takes only from the sender's authenticated connection.
    void send_to_each(consensus::ByteView envelope);
    void send_to(consensus::NodeId peer, consensus::ByteView envelope);
    void send_client(const std::string& routing_id, consensus::ByteView body);
    /// A request from the client connection `routing_id` was admitted: the
    /// connection has earned its slot (daemon/client_connections.h).
    void credit_client(const std::string& routing_id);

    std::uint32_t peers_connected() const { return static_cast<std::uint32_t>(connected_.size()); }
    bool curve() const { return opt_.curve.has_value(); }
    const TransportStats& stats() const { return stats_; }
    /// Adds what changed since the last call to the transport's counters in
    /// `registry` (handshakes refused, ZAP answers, dropped frames, redials).
    void publish(Registry& registry);

  private:
    using Monitor = transport_detail::Monitor;
    using MonitorRole = transport_detail::MonitorRole;
    using Link = transport_detail::Link;
    explicit Transport(TransportOptions options);
    std::optional<std::string> start_zap();
    void setup_server(zmq::socket_t& s, std::string_view domain);
    void setup_client(zmq::socket_t& s, const crypto::CurvePublicKey& server_key);
    void add_monitor(zmq::socket_t& socket, MonitorRole role, ServerSocket server,
                     consensus::NodeId peer);
    void connect_peers();
    void drain_monitor(Monitor& monitor);
    void on_link_event(Link& link, std::uint16_t event);
    void on_client_connection(std::uint16_t event, int fd);
    void reconcile_client_connections();
    int client_port();  // the bound client ROUTER's TCP port (-1: not TCP)
    void redial(Link& link);
    void redial_due();
    std::chrono::milliseconds until_next_redial(std::chrono::milliseconds cap) const;
    bool recv_multipart(zmq::socket_t& socket, std::vector<zmq::message_t>& parts);
    // Point-to-point sends through the peer's outbox (see the file comment).
    void queue_to(consensus::NodeId peer, zmq::message_t body);
    bool try_send_peer(zmq::socket_t& dealer, zmq::message_t& body);
    void flush_outbox(consensus::NodeId peer);
    void admit(Inbound in, std::vector<Inbound>& out);
    bool receive_sub(std::vector<zmq::message_t>& parts, std::vector<Inbound>& out);
    bool receive_router(std::vector<zmq::message_t>& parts, std::vector<Inbound>& out);
    bool receive_client(std::vector<zmq::message_t>& parts, std::vector<Inbound>& out);

    TransportOptions opt_;
    zmq::context_t ctx_{1};
    std::unique_ptr<ZapHandler> zap_;
    zmq::socket_t pub_, sub_, router_, client_;
    std::map<consensus::NodeId, zmq::socket_t> dealers_;
    struct Outbox {
        std::deque<zmq::message_t> frames;
        std::uint64_t bytes = 0;
    };
    std::map<consensus::NodeId, Outbox> outboxes_;
    std::vector<std::unique_ptr<Monitor>> monitors_;
    std::map<std::pair<MonitorRole, consensus::NodeId>, Link> links_;
    std::map<std::string, consensus::NodeId> pub_endpoint_to_peer_;
    std::set<consensus::NodeId> connected_;
    std::map<consensus::NodeId, std::uint64_t> last_seq_;
    std::uint64_t seq_ = 0;
    ClientConnections client_connections_;
    int client_port_ = -1;  // cached by client_port()
    TransportStats stats_;
    // What publish() last added to the registry.
    TransportStats published_;
    std::array<std::uint64_t, 5> zap_published_{};
    // Fault layer.
    std::mt19937_64 rng_;
    struct Held {
        std::chrono::steady_clock::time_point release;
        Inbound in;
    };
    std::deque<Held> held_;
    // Which of sub_, router_, client_ the last wait() saw readable (all of them
    // before the first wait): receive() reads only those, so an idle socket
    // costs no system call per pass.
    std::array<bool, 3> readable_{true, true, true};
    // The monitors wait() does not poll (links and the member servers): drained
    // every kMonitorDrainPeriod instead (transport.cpp).
    std::chrono::steady_clock::time_point next_monitor_drain_{};
};

/// The bytes the kernel has taken from the process on TCP socket `fd` since it
/// was opened: acknowledged by the peer plus still in the send queue (TCP_INFO and
/// SIOCOUTQ); nullopt when `fd` is not a TCP socket.
std::optional<std::uint64_t> tcp_bytes_taken(int fd);

}  // namespace tob::daemon
