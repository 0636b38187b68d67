#pragma once
// DolevStrong: synchronous Byzantine broadcast with signature chains
// (Dolev and Strong, 1983) — the "scheduled consensus broadcast" that the
// synchronous rotating-leader protocol (sync_tob.h) uses to hand every honest
// node the leader's block, or nothing, in the same round.
//
// Setting. n members with signing keys (a CryptoSuite), at most t of them
// Byzantine, any t < n. One designated sender, one session id (the epoch).
// Time runs in lock-step rounds 1..t+1 whose length R is at least Δ + MaxDrift:
// Δ bounds the delay of a message between honest nodes, MaxDrift bounds how far
// apart two honest nodes start the same round. Then a message an honest node
// sends while it is in round r reaches every honest node before that node
// leaves round r+1. The caller owns the clock and says in which round each
// message arrived.
//
// Algorithm. A *chain* for value v is a list of signatures over
// (session, sender, H(v)) by distinct members, the sender's first.
//  - Round 1: the sender signs v and sends (v, [its signature]) to all.
//  - A node that, in its round r, receives a chain for v with at least r
//    signatures, all valid, and has not accepted v before, *accepts* v
//    (extracts it). If r <= t it appends its own signature and sends the
//    longer chain to all at once. A node relays at most two values: two are
//    enough to make everyone output ⊥, and the cap bounds the traffic at 2n
//    messages per node per instance.
//  - After round t+1: output v if exactly one value was accepted, else ⊥.
//
// Why every honest node outputs the same (agreement). It suffices that a value
// one honest node accepts reaches every honest node in time to be accepted
// there too (unless that node already holds two values): then either all
// honest nodes hold the same single value, or all hold two and output ⊥.
// Say honest A accepts v in round r.
//  - r <= t: A relays a chain of >= r+1 signatures; it arrives at every honest
//    B within round r+1 <= t+1 and has enough signatures there, so B accepts v.
//  - r = t+1: the chain has t+1 distinct signers; at most t are faulty, so one
//    signer H is honest. H signed only when it relayed, i.e. when it accepted v
//    in a round <= t; by the first case every honest node accepted v.
// The rule "r signatures in round r" is what closes the last case: without
// it a faulty sender hands a one-signature chain for a second value to one
// honest node in round t+1, that node outputs ⊥ and the others output v
// (tests/unit/dolev_strong_test.cpp shows it with TestKnobs::accept_short_chains).
//
// Validity. If the sender is honest it signs only v; no chain for another value
// can start with its signature, every honest node accepts v in round 1 and only
// v, and outputs v.
//
// Cost. t+1 rounds; each honest node sends at most 2(n-1) messages of at most
// n signatures each. Verification: each accepted chain is verified once; copies
// of an accepted value are dropped before verifying.
//
// Inputs are bounded: a value above value_bytes_max, a chain longer than n, with
// repeated or non-member signers, or not starting with the sender is dropped and
// reported as a Fault of the node that sent it (an honest relayer never sends
// such a chain). A chain that is merely too short for the round, or arrives
// outside rounds 1..t+1, is dropped and counted but not blamed: under
// asynchrony an honest node's message can be late.

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "consensus/crypto_suite.h"
#include "consensus/step.h"
#include "consensus/types.h"

namespace tob::consensus {

struct DsParams {
    std::uint32_t n = 4;
    std::uint32_t t = 1;
    NodeId self = 0;
    NodeId sender = 0;
    std::uint64_t session = 0;
    std::size_t value_bytes_max = 1u << 20;

    /// Test-only switches that weaken one rule, so that tests can show the rule
    /// matters. tobsim exposes accept_short_chains as --weak-dolev-strong.
    struct TestKnobs {
        bool accept_short_chains = false;  // accept a chain of any length >= 1 in any round
    } knobs;
};

struct DsLink {
    NodeId signer = 0;
    Signature sig{};
    bool operator==(const DsLink&) const = default;
};

struct DsMessage {
    std::uint64_t session = 0;
    NodeId sender = 0;
    Bytes value;
    std::vector<DsLink> chain;
};

struct DsStep {
    std::vector<DsMessage> broadcast;  // to every other member
    std::vector<Fault> faults;
};

/// Why messages were dropped (counters; none of them stops the instance).
struct DsStats {
    std::uint64_t accepted = 0;
    std::uint64_t duplicate = 0;      // value already accepted, or two accepted already
    std::uint64_t short_chain = 0;    // fewer than r signatures in round r (late or forged)
    std::uint64_t out_of_rounds = 0;  // arrived before round 1 or after round t+1
    std::uint64_t wrong_session = 0;  // another session or sender
    std::uint64_t invalid = 0;        // malformed chain or bad signature (a Fault)
};

class DolevStrong {
  public:
    static constexpr std::string_view kTag = "tobd-lecture-ds-v1";
    static constexpr std::size_t kRelayValuesMax = 2;

    DolevStrong(const DsParams& params, const CryptoSuite& crypto);

    /// The sender's input, in round 1. Ignored unless self == sender and
    /// nothing was proposed or accepted yet.
    [[nodiscard]] DsStep propose(const Bytes& value);

    /// A chain from member `from` that arrived while this node was in round
    /// `round` (1..t+1) of this instance.
    [[nodiscard]] DsStep handle_message(std::uint32_t round, NodeId from, const DsMessage& message);

    /// The output once round t+1 is over: the value if exactly one was
    /// accepted, else nullopt (⊥).
    std::optional<Bytes> output() const;
    /// Accepted values in the order accepted (at most kRelayValuesMax).
    std::vector<Bytes> accepted() const;
    const DsStats& stats() const { return stats_; }
    const DsParams& params() const { return p_; }

    /// The bytes every link of a chain for (session, sender, value) signs.
    static Bytes link_payload(std::uint64_t session, NodeId sender, ByteView value);
    /// `signer`'s link (signed with `crypto`, which must be signer's suite).
    static DsLink sign_link(const CryptoSuite& crypto, NodeId signer, std::uint64_t session,
                            NodeId sender, ByteView value);

  private:
    bool knows(const Digest& d) const;
    DsStep accept(std::uint32_t round, const DsMessage& message, const Digest& d);

    DsParams p_;
    const CryptoSuite& crypto_;
    std::vector<std::pair<Digest, Bytes>> accepted_;
    DsStats stats_;
};

}  // namespace tob::consensus
