#pragma once
// Building blocks of `tobattack` (tests/attack): the attack tools of the resource
// attack suite (docs/attacks.md). Three roles share them:
//
//  - a Byzantine MEMBER holds a real member's keys (loaded from its node config)
//    and talks exactly as daemon/transport.cpp does: a PUB bound on the member's
//    pub_endpoint (two frames: the 10-byte [sender u16][seq u64] header and the
//    signed envelope) that the honest nodes' SUB sockets connect to, and one
//    DEALER per peer (routing id "node-<id>") sending [P][envelope] to the peer's
//    ROUTER;
//  - a CLIENT holds any Ed25519 key (clients are not registered) and sends
//    [C][client message] to the nodes' ROUTERs (cli/client/protocol.h);
//  - a STRANGER holds nothing but the public cluster file.
//
// The client protocol is referenced at its current path cli/client/protocol.h
// (it moves to cli/client/ in a parallel change; only the include changes).

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "cli/client/protocol.h"
#include "consensus/codec.h"
#include "consensus/real_crypto.h"
#include "consensus/replica.h"
#include "daemon/config.h"

namespace tob::attack {

using consensus::Bytes;
using consensus::ByteView;
using consensus::Digest;
using consensus::Epoch;
using consensus::NodeId;
using Clock = std::chrono::steady_clock;

/// Options every attack understands (CLI flags of the same names).
struct Common {
    double seconds = 20;          // run for this long
    double rate = 0;              // units per second (0 = the attack's default)
    std::uint64_t count = 0;      // stop after this many units (0 = no limit)
    std::uint64_t size = 0;       // attack-specific size (requests per batch, bytes, ...)
    std::vector<NodeId> targets;  // nodes attacked (default: every node but self)
    std::uint64_t seed = 0;       // 0 = random
    bool no_pub = false;          // member: do not bind the PUB endpoint
    bool sink_router = false;     // member: bind the ROUTER endpoint and never read it
    bool deaf_sub = false;        // member: subscribe to every PUB and never read it
    std::string endpoint;         // stranger squat: the endpoint to take
    std::string variant;          // attack-specific variant
    double delay = 0;             // member: bind the sockets, wait this long, then attack
    // client: requests expire this many epochs after the applied epoch the nodes
    // report (0: the cluster's request_expiry_max_epochs, the longest allowed)
    std::uint64_t horizon = 0;
    std::uint64_t window =
        0;  // client big-burst: most requests unanswered per target (0: no limit)
};

/// Paces a loop at `rate` units per second (0 = unpaced) until `seconds` pass or
/// `count` units were done.
class Pacer {
  public:
    Pacer(double rate, double seconds, std::uint64_t count);
    /// Waits for the next slot; false when time or count is up.
    bool next();
    std::uint64_t done() const { return done_; }
    double elapsed() const;
    bool expired() const;

  private:
    double rate_;
    std::uint64_t count_;
    Clock::time_point start_, end_;
    std::uint64_t done_ = 0;
};

std::mt19937_64 make_rng(std::uint64_t seed);
Bytes random_bytes(std::mt19937_64& rng, std::size_t n);
/// Overwrites `b` with random bytes (no allocation).
void fill_random(std::mt19937_64& rng, Bytes& b);
template <std::size_t N>
std::array<std::uint8_t, N> random_array(std::mt19937_64& rng) {
    std::array<std::uint8_t, N> a;
    for (auto& b : a) b = static_cast<std::uint8_t>(rng());
    return a;
}

/// The cluster file, or exits with a message.
daemon::ClusterConfig load_cluster(const std::string& path);

/// A member's identity: node config, cluster and keys (exits on error).
struct MemberIdentity {
    daemon::NodeConfig node;
    daemon::ClusterConfig cluster;
    std::optional<daemon::NodeKeys> keys;
    std::unique_ptr<consensus::RealCryptoSuite> suite;  // signs as this member
    consensus::ReplicaConfig rcfg;
};
MemberIdentity load_member(const std::string& node_config);

/// A member's sockets (see the file comment).
class MemberLink {
  public:
    MemberLink(zmq::context_t& ctx, const daemon::ClusterConfig& cluster, NodeId self,
               const Common& opt);
    /// Every broadcast goes on the PUB (when bound) and point to point to each target.
    void broadcast(ByteView envelope, const std::vector<NodeId>& targets);
    /// Subscribes to every other member's PUB and never reads (--deaf-sub).
    void go_deaf(const daemon::ClusterConfig& cluster);
    /// Point to point to one peer; false if its queue is full.
    bool send_to(NodeId peer, ByteView envelope);
    bool pub_bound() const { return pub_bound_; }
    std::uint64_t frames() const { return frames_; }
    std::uint64_t bytes() const { return bytes_; }
    std::uint64_t drops() const { return drops_; }

  private:
    NodeId self_;
    zmq::socket_t pub_, sink_, deaf_;
    std::vector<std::pair<NodeId, zmq::socket_t>> dealers_;
    bool pub_bound_ = false;
    std::uint64_t seq_ = 0, frames_ = 0, bytes_ = 0, drops_ = 0;
};

/// Client-plane sockets: a DEALER per node.
class ClientLink {
  public:
    ClientLink(zmq::context_t& ctx, const daemon::ClusterConfig& cluster, int sndhwm = 100000);
    /// Queues [C][body] without blocking; false when the socket is full.
    bool send(NodeId node, ByteView body);
    /// Everything that arrives within `timeout` (decoded; undecodable is skipped).
    std::vector<std::pair<NodeId, client::ClientMessage>> poll(std::chrono::milliseconds timeout);
    /// Highest applied epoch reported by `nodes` within `timeout` (nullopt: no answer).
    std::optional<Epoch> applied(const std::vector<NodeId>& nodes,
                                 std::chrono::milliseconds timeout);
    std::uint64_t bytes() const { return bytes_; }

  private:
    const daemon::ClusterConfig& cluster_;
    std::vector<zmq::socket_t> sockets_;
    std::uint64_t bytes_ = 0;
};

/// A request signed by `key` (1 <= ops) that may commit up to epoch `expires`.
consensus::Request signed_request(const crypto::SigningKey& key, const Digest& chain_id,
                                  consensus::Nonce nonce, std::vector<consensus::Op> ops,
                                  Epoch expires);
/// Encoded SubmitMsg body for `request`.
Bytes submit_body(const consensus::Request& request);

/// Prints "tobattack: KEY=VALUE ..." progress/summary lines on stdout, flushed.
void report(const std::string& line);
/// Sleeps `seconds` (fractions too).
void sleep_seconds(double seconds);

}  // namespace tob::attack
