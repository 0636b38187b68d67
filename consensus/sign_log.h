#pragma once
// SignLog: the rule that an honest node never signs two different payloads for
// one statement, across crashes and restarts (docs/protocol.md, "Safety rules":
// sign-log and signing high-water mark; invariant I5 in docs/fault-model.md).
//
// Slots
// -----
// Every statement a node can make once is a *slot*; the payload it put there is
// remembered as a digest:
//
//   slot                          payload                    why it must be unique
//   Block  (e, i)                 digest of the block body   two blocks of one (e, i) are
//   equivocation Seen   (e, j)                 digest of the SEEN body    two SEEN digests could
//   certify two blocks Bval   (e, j, r, v)           v                          one slot per value:
//   relaying the other
//                                                            value is legitimate (t+1 rule)
//   Aux    (e, j, r)              the value                  AUX is "first value only"
//   Conf   (e, j, r)              the set                    one CONF per round
//   Term   (e, j)                 the value                  a decision never flips
//   Commit (e)                    digest of the COMMIT body  two tuples would be a false proof
//
// Agreement messages fill their slots and are logged like the rest although their
// envelopes carry no signature (the connection authenticates them,
// consensus/messages.h): the rule is about what a node says, not how peers check
// who said it. "Signs" below covers them.
//
// Coin shares are deterministic (the same name always gives the same share) and
// need no slot; relayed certificates, fetches and flooded request batches are not
// statements of this node and need none either.
//
// slots_of() is the ONE function from an envelope to its slots. The core uses it
// when it signs (the claims of the envelope about to be signed must be free or
// hold the same payload) and when it recovers (the claims of every logged
// envelope are filled again); tobsim's slot checker (tests/sim/sim.cpp) uses it
// on every envelope an honest node sends, so the checker cannot drift from the core.
//
// Rules
// -----
//  - A slot that holds payload p is signed again only with p (re-signing the same
//    bytes is allowed: Ed25519 is deterministic, so the same envelope comes out).
//  - With the first signature in an epoch above the high-water mark, a HighWater
//    record follows the Signed record in `persist`: the shell writes the records,
//    then the mark (both synced), and only then sends. Every signature that left
//    the node is thus at or below the mark, and a crash inside the step never
//    leaves the mark above the recovered signatures (the old order, mark first,
//    did: the node then took its own mark for a lost epoch and sat that epoch out
//    although nothing of it had left; with t Byzantine members beside it the
//    epoch could not finish; found by tobsim, n = 7, t = 2).
//  - A node whose sign-log was lost (no Signed record loaded), or whose highest
//    loaded Signed record is below its mark M (a data directory restored from an
//    older backup), signs only in epochs > M: whatever it signed after the loaded
//    records is at or below M. (A backup taken inside the mark's own epoch M has
//    records at M and is not detected: the mark file would need a count of
//    signatures per epoch for that.)
//  - That floor is itself durable (a Floor record, written at the recovery that
//    set it, before any signature): after signing above the floor the Signed
//    records reach the mark, and without the record the next restart would see a
//    complete-looking log and sign at or below the floor again.
//  - A non-voting node (corrupt sign-log or missing mark) signs nothing.
//
// Memory bound
// ------------
// Slots are kept per epoch and pruned: prune_through(x) forgets every slot of
// epochs <= x and from then on refuses to sign in those epochs, so forgetting
// can never let a second payload through. The Replica prunes through
// delivered − W (W = window): nothing is signed below the delivered epoch except
// the COMMIT and late ABA messages of the epoch just delivered, so the margin of
// W epochs is never needed in practice. Per epoch a node fills at most
//   1 block + n SEEN + n·(R·4 + 1) ABA slots (R = rounds used, each with two BVAL
//   values, AUX and CONF, plus TERM) + 1 COMMIT,
// and only epochs in (delivered − W, delivered + W] are held, so the log holds
// O(W · n · R) slots (about 2·4·(1 + 4 + 4·9 + 1) = 336 for n = 4, W = 4, R = 2),
// not one per epoch ever signed.

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "consensus/crypto_suite.h"
#include "consensus/messages.h"
#include "consensus/step.h"
#include "consensus/types.h"

namespace tob::consensus {

enum class SlotKind : std::uint8_t {
    Block = 1,
    Seen = 2,
    Bval = 3,
    Aux = 4,
    Conf = 5,
    Term = 6,
    Commit = 7,
};
const char* to_string(SlotKind kind);

struct Slot {
    SlotKind kind = SlotKind::Block;
    Epoch epoch = 0;
    NodeId proposer = 0;     // Block: the signer; Seen and ABA slots: the proposer j; Commit: 0
    Round round = 0;         // ABA slots except Term; else 0
    std::uint8_t value = 0;  // Bval only (one slot per value); else 0
    auto operator<=>(const Slot&) const = default;
};

struct SlotClaim {
    Slot slot;
    Digest payload{};
    bool operator==(const SlotClaim&) const = default;
};

/// The slot of one ABA message of epoch e; nullopt for a coin share.
std::optional<Slot> aba_slot(Epoch epoch, const AbaMessage& message);

/// The slots an envelope fills (its sender's statements), with their payloads.
/// Empty for kinds that carry no statement; nullopt if a slot-carrying body does
/// not decode under `limits`. Does not look at the signature.
std::optional<std::vector<SlotClaim>> slots_of(const Envelope& envelope, const Limits& limits);

class SignLog {
  public:
    SignLog(NodeId self, const Digest& chain_id, const Limits& limits, const CryptoSuite& crypto);

    // ---- recovery (before any signature) ----------------------------------------
    /// The signing high-water mark from the key directory or a HighWater record.
    void raise_mark(Epoch mark);
    /// Refills the slots of an envelope this node signed (a Signed record).
    /// False if the envelope does not decode; it is then ignored.
    bool adopt(const Bytes& signed_envelope);
    /// A corrupt sign-log or a missing mark: sign nothing.
    void set_voting(bool voting) { voting_ = voting; }
    /// A Floor record: a floor set at an earlier recovery (never sign at or below).
    void raise_floor(Epoch floor);
    /// After every record was adopted: with none adopted, or none at the mark
    /// M > 0, the sign-log was lost or is older than M, and the node signs only
    /// above M. Returns a floor that no Floor record holds yet: the caller
    /// persists it (a Floor record) before the first signature, because the
    /// Signed records made above the floor would hide the loss at the next
    /// restart (they reach the mark, and nothing at or below the floor is known).
    std::optional<Epoch> finish_recovery();

    // ---- signing ------------------------------------------------------------------
    /// Whether this node may sign statements in epoch e at all.
    bool may_sign(Epoch e) const { return voting_ && e > floor_ && e > pruned_through_; }
    bool filled(const Slot& slot) const;
    /// Signs a statement (kind Block, Seen, Aba or Commit) of epoch e: checks its
    /// claims, fills them, and appends to `step` the Signed record and then (first
    /// signature above the mark) a HighWater record. nullopt if this node may
    /// not sign in e or a claimed slot holds another payload.
    std::optional<Bytes> sign(Step& step, Epoch e, Kind kind, Bytes body);

    /// Forgets the slots of epochs <= e and never signs there again.
    void prune_through(Epoch e);

    // ---- views ------------------------------------------------------------------------
    Epoch high_water() const { return high_water_; }
    Epoch floor() const { return floor_; }
    bool voting() const { return voting_; }
    std::size_t slots() const { return slot_count_; }
    /// Epochs with at least one filled slot.
    std::size_t epochs() const { return slots_.size(); }

  private:
    NodeId self_;
    Digest chain_id_;
    Limits limits_;
    const CryptoSuite& crypto_;
    bool voting_ = true;
    bool adopted_any_ = false;
    Epoch highest_adopted_ = 0;  // highest epoch of an adopted Signed record
    Epoch high_water_ = 0;
    Epoch floor_ = 0;           // lost sign-log: never sign at or below (the mark)
    Epoch recorded_floor_ = 0;  // the highest floor a Floor record holds
    Epoch pruned_through_ = 0;  // slots at or below are forgotten: never sign there
    std::map<Epoch, std::map<Slot, Digest>> slots_;  // by epoch, so pruning cuts a prefix
    std::size_t slot_count_ = 0;
};

}  // namespace tob::consensus
