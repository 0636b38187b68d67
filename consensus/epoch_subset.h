#pragma once
// EpochSubset: which blocks make up epoch e (docs/protocol.md, "Agree" and
// "Output"). One binary agreement ABA(e, j) per proposer j decides whether j's
// certified block is in the epoch's set S; this unit runs the n instances of each
// open epoch, feeds them their inputs and reads S off their decisions. The
// instances themselves are consensus/binary_agreement.h.
//
// Inputs
// ------
//  - A certificate CERT(e, j, ·) held ⇒ input 1 to ABA(e, j). The certificate
//    proves that at least t + 1 honest nodes hold the block (block_broadcast.h),
//    so a 1 decided on its strength never names a block nobody can serve.
//  - Once n − t instances of the epoch decided 1 ⇒ input 0 to every instance that
//    has no input yet. Why n − t: S must hold at least n − t blocks, so that at
//    least n − 2t ≥ t + 1 of them are honest (one honest block per epoch is what
//    keeps every client request moving: request_pool.h). Waiting for n − t ones
//    can always end, because the n − t honest proposers' blocks get certified and
//    every honest node eventually inputs 1 for them; inputting 0 earlier could
//    let the adversary leave honest blocks out of every epoch. Inputting 0 after
//    that is needed for termination: a silent proposer's block never gets a
//    certificate, and its instance would otherwise wait forever for an input.
//  - An input arrives at most once and is ignored once the instance has an input,
//    has decided, or has moved past round 0 (binary_agreement.h); instances handle
//    and relay other nodes' messages before their own input.
//
// Output
// ------
// The result of epoch e is known only when all n instances decided:
// S = { j : ABA(e, j) decided 1 }, |S| ≥ n − t (by the rule above, at least n − t
// instances decided 1 before anyone input 0). outcome() lists S in proposer order
// rotated by e — j = e mod n first — so that no proposer's requests are always
// ordered first. The Replica then needs, for each j in S, exactly the certified
// block (block_broadcast.h), and delivers epochs strictly in order.
//
// A node that may not sign in epoch e (a non-voting follower, or below its
// floor: sign_log.h) opens no instances there and learns the epoch through a
// commit proof instead (catch_up.h).
//
// Bounds
// ------
// Instances exist for open epochs only (the window and recently delivered, not
// yet stable epochs: at most 5·W epochs), n per epoch. Each instance keeps rounds
// [round, round + max_rounds_ahead] with 6 flag bytes per sender and at most 2n
// coin shares of 96 bytes (pending and verified), and the R rounds behind it with
// their flags only (BVAL relays, binary_agreement.cpp); so an epoch holds at most
// n · ((R + 1) · (6n + 2n · 96) + R · 6n) bytes of votes — about 54 KiB for n = 4
// and R = max_rounds_ahead = 16 — and in practice one or two rounds.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/binary_agreement.h"
#include "consensus/crypto_suite.h"
#include "consensus/messages.h"

namespace tob::consensus {

struct SubsetParams {
    std::uint32_t n = 4;
    std::uint32_t t = 1;
    NodeId self = 0;
    Digest chain_id{};
    Round max_rounds_ahead = 16;
};

class EpochSubset {
  public:
    /// What one input to the epoch produced, in order. Each entry is one
    /// instance's step; the Replica signs each entry's messages as one bundle.
    struct Progress {
        std::vector<std::pair<NodeId, std::vector<AbaMessage>>> sends;
        std::vector<Fault> faults;
        std::uint32_t decisions = 0;    // instances that decided in this input
        std::uint64_t rounds_used = 0;  // summed over those instances
    };

    EpochSubset(const SubsetParams& params, const CryptoSuite& crypto);

    /// Whether epoch e's instances exist.
    bool open(Epoch e) const { return epochs_.count(e) != 0; }
    /// Creates the n instances of epoch e (the caller checked it may sign in e).
    void open_epoch(Epoch e);
    /// A certificate for (e, j) is held: input 1 (if the instance takes an input).
    Progress input_one(Epoch e, NodeId j);
    /// An ABA message from another member (envelope verified, j < n checked).
    Progress handle(Epoch e, NodeId from, const AbaMessage& message);
    /// After a restart: rebuilds epoch e's instances (open_epoch first) from the
    /// messages this node signed, per proposer in signing order.
    void restore(Epoch e, const std::map<NodeId, std::vector<AbaMessage>>& sent);

    /// Whether epoch e's instances exist and one of them has not decided (at this
    /// node: after a restart that lost its last agreement messages, a delivered
    /// epoch can be in that state; see Replica::Impl::resume).
    bool undecided(Epoch e) const;

    /// Once all n instances decided: S in output order (rotated by e).
    std::optional<std::vector<NodeId>> outcome(Epoch e) const;

    /// Drops the instances of epochs with retire(e).
    void prune(const std::function<bool(Epoch)>& retire);
    std::size_t epochs() const { return epochs_.size(); }
    std::size_t instances() const;
    /// Round states held over all instances (each at most 2 max_rounds_ahead + 1).
    std::size_t rounds_held() const;
    /// Stall report of epoch e: one line per undecided instance (empty if e is not open).
    std::string describe(Epoch e) const;

  private:
    struct Agreements {
        std::map<NodeId, std::unique_ptr<BinaryAgreement>> aba;
        std::map<NodeId, bool> decided;
        bool zeros_input = false;
    };
    void absorb(Epoch e, Agreements& st, NodeId j, AbaStep&& step, Progress& out);

    SubsetParams params_;
    const CryptoSuite& crypto_;
    std::map<Epoch, Agreements> epochs_;
};

}  // namespace tob::consensus
