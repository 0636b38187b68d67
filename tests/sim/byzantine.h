#pragma once
// The simulator's Byzantine behaviours (the tobsim column of
// consensus/byzantine_catalogue.h; docs/simulator.md describes each).
//
// A Byzantine node runs an honest Replica underneath (except `silent`); the
// Adversary sits between it and the network:
//
//   observe   every envelope the node receives: replay material, requests to
//             put in other blocks, the digests of blocks seen
//   forward   every message its Replica sends: passed on, altered, re-routed or
//             held back, the node's own envelopes only
//   act       every tick: messages it makes up on its own (forgeries, junk,
//             conflicting votes, replays, ...)
//
// Each behaviour is one named function below; forward and act try them in a fixed
// order. Every random choice is drawn from the world's network stream in that
// order, so a seed replays exactly: keep the order (and the draws) when editing.
// Everything is signed with keys the Byzantine nodes legitimately hold.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "consensus/byzantine_catalogue.h"
#include "consensus/crypto_suite.h"
#include "consensus/messages.h"
#include "consensus/replica.h"
#include "consensus/step.h"
#include "tests/sim/rng.h"

namespace tob::sim {

using Behaviour = consensus::Byzantine;
using Shared = std::shared_ptr<const consensus::Bytes>;

/// What the adversary may do to and learn from the simulated world (the World
/// implements it).
class AdversaryWorld {
  public:
    virtual ~AdversaryWorld() = default;
    virtual std::uint32_t n() const = 0;
    virtual std::uint32_t t() const = 0;
    virtual std::uint32_t window() const = 0;
    virtual const consensus::Digest& chain_id() const = 0;
    virtual const consensus::Digest& foreign_chain_id() const = 0;
    /// The network's random stream (shared with delays and drops).
    virtual Rng& rng() = 0;
    virtual bool honest(consensus::NodeId id) const = 0;
    /// The honest clients' public keys (requests to steal or forge in their name).
    virtual std::size_t clients() const = 0;
    virtual const consensus::PublicKey& client_key(std::size_t index) const = 0;
    /// The Byzantine nodes, in id order.
    virtual std::vector<consensus::NodeId> byzantine_ids() const = 0;
    /// An envelope signed by `signer` (a Byzantine node: the adversary has its key).
    virtual consensus::Bytes seal_as(consensus::NodeId signer, consensus::Epoch e,
                                     consensus::Kind k, consensus::Bytes body) = 0;
    /// Point to point (`to` set) or to every other node, through the faulty network.
    virtual void send(consensus::NodeId from, std::optional<consensus::NodeId> to,
                      const consensus::Bytes& bytes) = 0;
    virtual void send_shared(consensus::NodeId from, consensus::NodeId to, Shared bytes) = 0;
};

/// What one Byzantine node remembers between steps (bounded).
struct AdversaryMemory {
    std::deque<Shared> captured;  // replay material
    std::deque<consensus::Request> known_requests;
    // epoch -> (alternative block envelope, SEEN of it)
    std::map<consensus::Epoch, std::pair<consensus::Bytes, consensus::Bytes>> alt_blocks;
    std::map<consensus::Epoch, std::set<consensus::NodeId>> alt_group;  // who gets the alternative
    std::map<std::tuple<consensus::Epoch, consensus::NodeId>, consensus::Digest> known_blocks;
};

/// One Byzantine node's behaviours for the duration of one call.
class Adversary {
  public:
    Adversary(AdversaryWorld& world, consensus::NodeId self,
              const std::vector<Behaviour>& behaviours, const consensus::CryptoSuite& crypto,
              const consensus::ReplicaConfig& config, consensus::Epoch delivered,
              AdversaryMemory& memory);

    /// A received frame; the opened envelope for the node's Replica, if it opens.
    std::optional<consensus::Envelope> observe(consensus::NodeId from, const Shared& bytes);
    /// One message of the node's Replica.
    void forward(const consensus::Outgoing& m);
    /// The node's own additions on a tick.
    void act();

  private:
    using Targets = std::vector<consensus::NodeId>;
    bool has(Behaviour b) const;
    consensus::Bytes seal(consensus::Epoch e, consensus::Kind k, consensus::Bytes body);
    void send(consensus::NodeId to, const consensus::Bytes& bytes);
    void to_subset(const consensus::Bytes& bytes);
    std::vector<consensus::NodeId> others(consensus::NodeId self) const;
    std::vector<consensus::NodeId> random_subset();
    consensus::Bytes random_bytes(std::size_t len);
    consensus::Digest random_digest();
    consensus::Epoch pick_epoch();
    consensus::Request forged_request();

    // forward, in this order; true: the message was dealt with
    bool equivocate_block(const consensus::Envelope& env, const consensus::Outgoing& m,
                          const Targets& targets);
    const std::pair<consensus::Bytes, consensus::Bytes>* make_alternative(
        const consensus::Envelope& env);
    bool corrupt_snapshot(const consensus::Envelope& env, const consensus::Outgoing& m,
                          const Targets& targets);
    bool withhold(const consensus::Envelope& env, const consensus::Outgoing& m,
                  const Targets& targets);
    bool lie_in_commit(const consensus::Envelope& env, const consensus::Outgoing& m,
                       const Targets& targets);
    bool equivocate_seen(const consensus::Envelope& env, const consensus::Outgoing& m,
                         const Targets& targets);
    bool conflict_in_seen(const consensus::Envelope& env, const consensus::Outgoing& m,
                          const Targets& targets);
    bool forge_in_block(const consensus::Envelope& env, const consensus::Outgoing& m,
                        const Targets& targets);
    bool lie_in_aba(const consensus::Envelope& env, const consensus::Outgoing& m,
                    const Targets& targets);

    // act, in this order
    void conflicting_seens();
    void lying_aba_messages();
    void bad_coin_shares();
    void forgeries();
    void forge_sender_name(consensus::Epoch e);
    void forge_aba_names(consensus::Epoch e, consensus::NodeId proposer);
    void forge_flipped_signature(consensus::Epoch e);
    void forge_foreign_chain(consensus::Epoch e);
    void forge_certificate(consensus::Epoch e);
    void forge_fetch_reply(consensus::Epoch e);
    void forge_non_member(consensus::Epoch e);
    void replays();
    void junk();
    void forged_requests();
    void lying_commits();
    void window_edge();

    AdversaryWorld& world_;
    Rng& rng_;
    consensus::NodeId self_;
    const std::vector<Behaviour>& behaviours_;
    const consensus::CryptoSuite& crypto_;
    const consensus::ReplicaConfig& config_;
    consensus::Epoch delivered_;
    AdversaryMemory& memory_;
};

}  // namespace tob::sim
