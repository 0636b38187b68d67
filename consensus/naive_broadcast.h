#pragma once
// NaiveNode: replication WITHOUT total order — the first step of the lecture's
// line of reasoning (docs/protocols.md), kept so that its failure can be shown.
//
// Algorithm. A node that receives a request from a client applies it to its
// state machine at once and sends it to every other node; a node that receives
// a request from another node applies it at once if it has not applied it
// before. That is all: every request reaches every node (validity and liveness
// are fine), but each node applies requests in the order *it* received them.
//
// What breaks. Replication needs the same requests in the same order. Two
// clients that send "/2" to node 0 and "+1" to node 1 at the same moment leave
// node 0 with 1 → 1/2 → 3/2 and node 1 with 1 → 2 → 1: the replicas disagree
// forever, with no fault anywhere — an honest, synchronous network is enough.
// No threshold can repair this; the cure is an agreed order (sync_tob.h).
//
// Bounds. A node remembers the ids it applied (to apply each request once);
// past kNaiveAppliedMax of them it drops new requests and counts them.

#include <cstdint>
#include <set>
#include <vector>

#include "consensus/numeric_machine.h"
#include "consensus/op_request.h"
#include "consensus/types.h"

namespace tob::consensus {

inline constexpr std::size_t kNaiveAppliedMax = 1u << 20;

/// What a node does in one step: requests to send to every other node, and the
/// requests it applied (in the order it applied them).
struct NaiveStep {
    std::vector<OpRequest> broadcast;
    std::vector<OpRequest> applied;
};

class NaiveNode {
  public:
    NaiveNode(NodeId self, Rational initial) : self_(self), machine_(initial) {}

    /// A client's request: apply now, send to all.
    [[nodiscard]] NaiveStep handle_client(const OpRequest& request);
    /// Another node's copy: apply now unless applied before. Nothing is sent.
    [[nodiscard]] NaiveStep handle_message(NodeId from, const OpRequest& request);

    NodeId self() const { return self_; }
    const NumericMachine& machine() const { return machine_; }
    /// Every request this node applied, in its own order.
    const std::vector<OpRequest>& log() const { return log_; }
    std::uint64_t dropped() const { return dropped_; }

  private:
    bool apply(const OpRequest& request);

    NodeId self_;
    NumericMachine machine_;
    std::vector<OpRequest> log_;
    std::set<std::uint64_t> applied_ids_;
    std::uint64_t dropped_ = 0;
};

}  // namespace tob::consensus
