#pragma once
// SyncTobNode: the synchronous rotating-leader total-order broadcast of the
// lecture — the step before tobd's asynchronous protocol (docs/protocols.md).
// It replicates the numeric machine of numeric_machine.h.
//
// Timing model (what it assumes). A known bound Δ on the delay of every message
// between honest nodes, and a known bound MaxDrift on how far apart two honest
// nodes' clocks start the same round. Each node runs lock-step rounds of length
// R = Δ + MaxDrift on its own clock: a message sent while the sender is in
// round g arrives before the receiver leaves round g+1 (arrival <= start of
// the sender's round g + R + Δ <= start of the receiver's round g+2). The
// caller owns the clock and calls on_round(g) when its round g begins.
// Nodes have signing keys (a CryptoSuite). Any t < n Byzantine nodes for
// agreement; liveness needs one honest leader in every n epochs, i.e. t < n.
// (tobsim runs it with the same t = floor((n-1)/3) as the real protocol.)
//
// State. UnQueued: requests this node knows that are not ordered yet. Queued:
// the ordered log, applied to the machine in order.
//
// Algorithm.
//  - Requests travel by *unscheduled* consensus broadcast: a node that learns
//    a request (from a client or a peer) and does not know it yet puts it in
//    UnQueued and sends it to all, once. If one honest node holds a request at
//    time T, every honest node holds it by T + Δ. Nobody agrees *when*; that
//    is why requests are not applied on arrival (naive_broadcast.h shows what
//    happens then).
//  - Epoch e is rounds e(t+1) .. e(t+1)+t, led by node e mod n. When epoch e
//    begins, its leader takes up to block_requests_max requests from UnQueued
//    (lowest ids first) and sends the block by *scheduled* consensus broadcast:
//    a Dolev–Strong instance (dolev_strong.h) with session e, which needs
//    exactly t+1 rounds.
//  - When epoch e ends (on_round of the first round of e+1), every node takes
//    the instance's output. A block: each request not yet Queued is appended
//    to Queued, applied, and removed from UnQueued, in block order. ⊥ (a
//    silent leader, an empty UnQueued, or an equivocating leader): nothing.
//    Dolev–Strong gives every honest node the same block or ⊥ in the same
//    epoch, so all honest Queued logs stay equal, epoch by epoch.
//  - Rotation: an evil leader can withhold, censor or equivocate, which costs
//    one epoch of progress and never agreement; the next honest leader takes
//    whatever is still in its UnQueued.
//
// Latency, counted in rounds of length R for a request handed to an honest
// node: <= 1 round to reach every honest UnQueued, <= t+1 rounds until the next
// epoch begins, then at most t epochs with faulty leaders when faulty ids are
// consecutive (rotation visits every id once in n epochs) and one honest epoch:
// at most 1 + (t+1) + (t+1)(t+1) rounds, i.e. 7 rounds for n = 4, t = 1.
//
// What breaks without synchrony. If a message takes longer than the bound, an
// honest node can receive the leader's chain only after its round t+1 ended
// (dropped as late), output ⊥ and leave out a block the other honest nodes
// applied: the logs, and the machines, diverge — and nothing in the protocol
// notices. tobsim --protocol sync --network async shows it; the asynchronous
// protocol of docs/protocol.md needs no bound for safety.
//
// Bounds. UnQueued holds at most unqueued_max requests (further ones dropped and
// counted); chains for the next epoch that arrive early (clock drift) wait in a
// buffer of at most pending_max; chains for other epochs are dropped and counted.
// A block that does not decode (only a faulty leader can send one) counts as
// empty on every node alike. Client authentication is left out (op_request.h).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "consensus/dolev_strong.h"
#include "consensus/numeric_machine.h"
#include "consensus/op_request.h"

namespace tob::consensus {

struct SyncTobParams {
    std::uint32_t n = 4;
    std::uint32_t t = 1;
    NodeId self = 0;
    Rational initial = Rational::integer(1);
    std::size_t block_requests_max = 256;
    std::size_t unqueued_max = 1u << 16;
    std::size_t pending_max = 256;
    DsParams::TestKnobs knobs;  // passed to every Dolev–Strong instance (tests only)
};

struct SyncMessage {
    enum class Kind : std::uint8_t { Request, Block };
    Kind kind = Kind::Request;
    OpRequest request;  // Kind::Request
    DsMessage block;    // Kind::Block
};

/// How one epoch ended at this node.
struct SyncEpochOutcome {
    Epoch epoch = 0;
    NodeId leader = 0;
    bool block = false;            // Dolev–Strong output a value (else ⊥)
    std::size_t accepted = 0;      // values the instance accepted (2 = the leader equivocated)
    std::size_t newly_queued = 0;  // requests appended to Queued
};

struct SyncStep {
    std::vector<SyncMessage> broadcast;  // to every other node
    std::vector<OpRequest> applied;      // appended to Queued (and applied) in this step
    std::vector<SyncEpochOutcome> finished;
    std::vector<Fault> faults;
};

struct SyncStats {
    std::uint64_t unqueued_dropped = 0;  // UnQueued full
    std::uint64_t late = 0;              // chains for an epoch that had ended
    std::uint64_t pending_dropped = 0;   // early chains beyond pending_max or further ahead
    DsStats ds;                          // summed over finished instances
};

class SyncTobNode {
  public:
    SyncTobNode(const SyncTobParams& params, const CryptoSuite& crypto);

    static std::uint32_t rounds_per_epoch(std::uint32_t t) { return t + 1; }
    static NodeId leader(Epoch epoch, std::uint32_t n) { return static_cast<NodeId>(epoch % n); }

    /// A client's request: the start of its unscheduled broadcast.
    [[nodiscard]] SyncStep handle_client(const OpRequest& request);
    /// A message from member `from` (the caller checked that `from` is a member).
    [[nodiscard]] SyncStep handle_message(NodeId from, const SyncMessage& message);
    /// This node's round `round` begins. Rounds must come in order; a skipped
    /// round is run (empty) before `round`.
    [[nodiscard]] SyncStep on_round(std::uint64_t round);

    const NumericMachine& machine() const { return machine_; }
    const std::vector<OpRequest>& queued() const { return queued_; }
    std::size_t unqueued_size() const { return unqueued_.size(); }
    std::optional<Epoch> epoch() const { return epoch_; }
    const SyncStats& stats() const { return stats_; }

  private:
    void run_round(std::uint64_t round, SyncStep& step);
    void finish_epoch(SyncStep& step);
    void start_epoch(Epoch epoch, SyncStep& step);
    void feed(std::uint32_t ds_round, NodeId from, const DsMessage& m, SyncStep& step);
    bool learn(const OpRequest& request);

    SyncTobParams p_;
    const CryptoSuite& crypto_;
    NumericMachine machine_;
    std::map<std::uint64_t, OpRequest> unqueued_;  // by id: the leader's order is deterministic
    std::set<std::uint64_t> queued_ids_;
    std::vector<OpRequest> queued_;
    std::optional<std::uint64_t> round_;                 // current round
    std::optional<Epoch> epoch_;                         // current epoch
    std::unique_ptr<DolevStrong> ds_;                    // the current epoch's instance
    std::vector<std::pair<NodeId, DsMessage>> pending_;  // chains for the next epoch
    SyncStats stats_;
};

}  // namespace tob::consensus
