#pragma once
// CatchUp: COMMIT votes, stability, commit proofs and the ways a node that fell
// behind learns so and catches up (docs/protocol.md, "Commit proof" and
// "Repair"). Also the read-only proof archive the shell offers for epochs older
// than the core keeps in memory (in the spirit of etcd/raft's Storage interface).
//
// COMMIT and its thresholds
// -------------------------
// After applying epoch e a node signs COMMIT(e, output_digest, state_digest). The
// votes for e are grouped by the tuple (commit_key: the digest of the COMMIT body).
//  - t + 1 matching COMMITs make e *provable*: at most t of the signers lie, so at
//    least one honest node applied e and got this tuple. A node at e − 1 that
//    holds them plus the blocks of e (checked against output_digest) applies e
//    itself and must reach the same state_digest (check_proof()).
//  - q = ⌈(n + t + 1)/2⌉ matching COMMITs make e *stable*: at least q − t ≥ t + 1
//    honest nodes hold e's proof and answer fetches for it, so re-publishing what
//    this node signed for e is no longer needed (the Replica stops it).
//  - Two provable tuples for one epoch, or a provable tuple that differs from this
//    node's own result, mean nondeterminism or more than t faults: an alarm, and
//    the node halts; it never retries with other data. A member that signs two
//    COMMITs for one epoch is an equivocator (a Fault with both envelopes).
//
// Catch-up
// --------
// A COMMIT(e') from a peer with e' > delivered says that peer can prove every
// epoch up to e'. The node then asks for the proof of delivered + 1 (a
// FetchRequest(EpochProof); the answer holds t + 1 COMMITs, the list of the
// epoch's blocks — checked against their output digest — and the blocks that
// fit in one message; the others are fetched by digest, each in a reply of its
// own, so no answer exceeds message_bytes_max), one peer at a time, rotating every
// repair_initial_ms among the peers whose highest COMMIT is high enough (one
// silent peer cannot stall it). When it is only one epoch behind it first gives
// its own agreement repair_initial_ms to finish. Each applied proof immediately
// asks for the next epoch. Proofs come from the in-memory history (the last
// proof_history_epochs delivered epochs: their blocks and COMMITs) and, beyond it,
// from the ProofArchive the shell provides (its durable records); an epoch in
// neither cannot be proven here (snapshots would be needed: docs/status.md).
//
// How a node learns that it is behind, without a clock or a leader:
//  - hint: a peer that sends a block, SEEN, certificate or ABA message for an
//    epoch this node delivered is still working on it, so this node sends it its
//    own COMMIT for that epoch — or, when that epoch is older than the votes it
//    keeps (or the peer re-publishes a COMMIT that old), its *latest* COMMIT,
//    which proves that every epoch up to it can be fetched. At most one hint per
//    repair_max_ms per peer (and epoch), and none for the epoch whose COMMIT this
//    node broadcast less than repair_initial_ms ago: a peer one message behind
//    receives that broadcast as it finishes the epoch, and a second copy to each
//    peer was a third of the COMMIT traffic at low load (dropped as a duplicate
//    on arrival; docs/performance.md). A peer that lost the broadcast is still
//    working on the epoch after repair_initial_ms, and its next message is hinted.
//  - heartbeat: every commit_heartbeat_ms the latest own COMMIT is broadcast
//    again. A node that started late, or came back while the cluster is idle,
//    hears nothing else. It is the already-signed envelope: no new signature, no
//    sign-log record (found by the cluster test late_start: an idle cluster never
//    told the late node it was behind).
//
// Bounds
// ------
// With H = proof_history_epochs, W the window and V = max(H, 4W + 1) (the
// Replica keeps an unstable epoch for up to 4W epochs and asks whether it is
// stable):
//  - COMMIT votes only for epochs in (delivered − V, delivered + W + H]
//    (out-of-range COMMITs only raise the sender's hint), at most n per epoch:
//    (V + W + H) · n envelopes of about 200 bytes, each held twice (by tuple and
//    by sender);
//  - proofs of the last H delivered epochs, each at most n blocks of
//    block_bytes_max (bytes() reports what is held);
//  - one proof in progress (of delivered + 1): at most n blocks;
//  - per peer: its highest COMMIT epoch and its last hint time (n entries each).

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "consensus/crypto_suite.h"
#include "consensus/messages.h"
#include "consensus/step.h"

namespace tob::consensus {

/// A delivered epoch's proof as the shell keeps it: matching COMMIT envelopes
/// (at least t + 1) and the block envelopes of S in delivery order.
struct ArchivedProof {
    std::vector<Bytes> commits;
    std::vector<Bytes> blocks;
};

/// Read-only access to proofs of epochs older than the core keeps in memory. The
/// shell implements it over its durable records (daemon/proof_archive.h; tobsim
/// over each node's in-memory records). Called from the core's thread only.
class ProofArchive {
  public:
    virtual ~ProofArchive() = default;
    /// The proof of delivered epoch e, or nullopt if the archive no longer has it.
    virtual std::optional<ArchivedProof> proof(Epoch e) const = 0;
};

/// Builds the proof of epoch e from durable records of that epoch (Proof, Commit
/// and Signed records, in any order; others are skipped): the COMMIT envelopes of
/// the first tuple with at least `needed` distinct signers, in signer order, and
/// the blocks of the Proof record. For ProofArchive implementations.
std::optional<ArchivedProof> proof_from_records(const std::vector<DurableRecord>& records, Epoch e,
                                                std::uint32_t needed, const Limits& limits);

/// The tuple a COMMIT vouches for (digest of its canonical body).
Digest commit_key(const CommitBody& body);

/// output_digest(e) = H("tobd-output-v1", chain_id, e, [(j, d_j) for j in S in
/// delivery order]).
Digest output_digest(const Digest& chain_id, Epoch e,
                     const std::vector<std::pair<NodeId, Digest>>& list);

struct CatchUpParams {
    std::uint32_t n = 4;
    std::uint32_t t = 1;
    NodeId self = 0;
    Digest chain_id{};
    Limits limits;
    std::uint32_t window = 4;
    std::uint32_t stable_quorum = 3;  // q
    std::uint64_t repair_initial_ms = 200;
    std::uint64_t repair_max_ms = 1000;
    Epoch proof_history_epochs = 256;          // H
    std::uint64_t commit_heartbeat_ms = 2000;  // 0: no heartbeat
};

class CatchUp {
  public:
    /// A proof that checked out: apply `ordered` and compare with `tuple`.
    struct CheckedProof {
        CommitBody tuple;
        std::vector<Request> ordered;  // the epoch's requests in delivery order
        std::vector<Bytes> blocks;     // the block envelopes of S in delivery order
    };

    CatchUp(const CatchUpParams& params, const CryptoSuite& crypto, const ProofArchive* archive);

    // ---- this node's results ----------------------------------------------------------
    /// Epoch e was delivered here: keeps its proof (and the Proof record in `step`).
    /// `list`, if not empty, is (sender, body digest) of each of `blocks`, as the
    /// caller knows them (else they are decoded and hashed again).
    void keep_proof(Step& step, Epoch e, std::vector<Bytes> blocks, Epoch delivered,
                    std::vector<BlockRef> list = {});
    /// This node's result for e, from its own agreement. False (an alarm in `step`)
    /// if an earlier COMMIT of this node for e says otherwise; a provable tuple
    /// that differs raises an alarm too (the caller must not sign then).
    bool own_result(Step& step, Epoch e, const CommitBody& result);
    /// This node's result for e, from a checked proof (no conflict is possible).
    void proven_result(Epoch e, const CommitBody& tuple);
    /// This node signed `envelope`, its COMMIT for e, and broadcast it at now_ms.
    void signed_commit(Epoch e, const Bytes& envelope, std::uint64_t now_ms);

    // ---- peers' COMMITs ---------------------------------------------------------------
    /// A peer's COMMIT (body decoded). Counts it, makes it durable (a Commit
    /// record, to serve proofs), checks for conflicts (alarms in `step`). True if
    /// it was counted (new, and inside the tracked epochs).
    bool on_commit(Step& step, const Envelope& env, const Bytes& raw, const CommitBody& body,
                   Epoch delivered, std::uint64_t now_ms);
    bool stable(Epoch e) const;
    /// The COMMIT envelopes that agree with this node's own result for e (empty if
    /// e is not tracked or this node has no result): a checkpoint's certificate.
    std::vector<Bytes> matching_commits(Epoch e) const;
    /// The highest epoch any peer has sent a COMMIT for (0: none).
    Epoch highest_peer() const;

    // ---- catching up ---------------------------------------------------------------------
    /// Asks a peer for the proof of delivered + 1 if one can prove it (see the
    /// header comment). own_progress: this node runs the agreement of that epoch.
    void maybe_fetch(Step& step, Epoch delivered, bool own_progress, std::uint64_t now_ms);
    /// A proof was applied: ask for the next one at once.
    void applied_proof() { fetch_next_ms_ = 0; }
    /// Checks a complete proof of epoch e: t + 1 matching COMMITs, and blocks
    /// whose digests in delivery order give the tuple's output digest.
    std::optional<CheckedProof> check_proof(
        Epoch e, const std::vector<Envelope>& commits,
        const std::vector<std::pair<Envelope, Bytes>>& blocks) const;

    // A proof larger than one message comes in parts: the EpochProof reply holds
    // the COMMITs, the list of blocks and the blocks that fit; the others are
    // fetched by digest (FetchType::Block) and arrive in replies of their own.
    /// An EpochProof reply for e (the node is at e - 1): t + 1 matching COMMITs
    /// and a list that gives their output digest start the proof in progress (the
    /// list is taken from `blocks` when the reply has none). False if it does not
    /// check out.
    bool proof_reply(Epoch e, const std::vector<Envelope>& commits,
                     const std::vector<BlockRef>& list,
                     const std::vector<std::pair<Envelope, Bytes>>& blocks);
    /// A block envelope (raw, with the digest of its body) for the proof in progress.
    void offer_block(Epoch e, const Digest& digest, const Bytes& raw);
    /// The blocks the proof in progress of e still lacks.
    std::vector<BlockRef> missing_blocks(Epoch e) const;
    /// The proof of delivered + 1 once every block is there (and then forgets it).
    std::optional<CheckedProof> take_proof(Epoch delivered);

    /// The FetchReply answering FetchRequest(EpochProof) for e: the COMMITs, the
    /// list of blocks and as many blocks as fit in one message; from memory,
    /// else from the archive (counted in archive_served()). nullopt if e is not
    /// provable here.
    std::optional<FetchReply> proof_reply_for(Epoch e, Epoch delivered);
    /// A block of delivered epoch e by digest (FetchType::Block for a proof's
    /// block): from memory, else from the archive.
    std::optional<Bytes> proof_block(Epoch e, const Digest& digest, Epoch delivered) const;

    // ---- telling others ------------------------------------------------------------------
    /// A peer still works on epoch e <= delivered: send it a COMMIT (see "hint").
    void hint(Step& step, NodeId peer, Epoch e, Epoch delivered, std::uint64_t now_ms);
    /// Re-broadcasts the latest own COMMIT every commit_heartbeat_ms.
    void heartbeat(Step& step, std::uint64_t now_ms);
    /// The latest COMMIT envelope this node signed.
    const std::optional<Bytes>& latest_commit() const { return latest_; }

    // ---- recovery ----------------------------------------------------------------------
    void restore_proof(Epoch e, std::vector<Bytes> blocks, Epoch delivered);
    /// A peer's COMMIT from a Commit record.
    void restore_commit(const Bytes& envelope);
    /// This node's COMMIT from a Signed record.
    void restore_own_commit(Epoch e, const CommitBody& body, const Bytes& envelope);
    void finish_recovery();

    // ---- pruning and views ------------------------------------------------------------
    void prune(Epoch delivered);
    std::size_t commit_epochs() const { return votes_.size(); }
    std::size_t commit_votes() const;
    std::size_t proofs() const { return proofs_.size(); }
    std::size_t proof_bytes() const { return proof_bytes_; }
    std::uint64_t archive_served() const { return archive_served_; }
    /// The highest epoch that at least t + 1 peers sent a COMMIT for (so at least
    /// one honest peer reached it); 0 until t + 1 peers did. One liar's COMMIT for
    /// 2^64 - 1 cannot raise it (what "am I caught up?" compares with).
    Epoch peers_epoch() const;

  private:
    struct Votes {
        std::map<Digest, std::map<NodeId, Bytes>> by_tuple;  // commit_key -> signer -> envelope
        std::map<NodeId, std::pair<Digest, Bytes>> by_sender;
        std::optional<Digest> mine;
        bool stable = false;
    };
    void count(Epoch e, NodeId sender, const Digest& key, const Bytes& envelope);
    void check_conflicts(Step& step, Epoch e);
    void check_stable(Epoch e);
    void send_latest(Step& step, NodeId peer, std::uint64_t now_ms);
    void trim_proofs(Epoch delivered);
    /// Votes are kept for V = max(H, 4W + 1) epochs below the delivered one: the
    /// Replica keeps an unstable epoch for up to 4W epochs and asks stable().
    Epoch votes_horizon() const {
        return std::max<Epoch>(params_.proof_history_epochs, 4 * Epoch{params_.window} + 1);
    }

    CatchUpParams params_;
    const CryptoSuite& crypto_;
    const ProofArchive* archive_;
    std::map<Epoch, Votes> votes_;
    struct StoredProof {
        std::vector<Bytes> blocks;  // the block envelopes of S in delivery order
        std::vector<BlockRef> list;
    };
    struct PendingProof {
        Epoch epoch = 0;
        CommitBody tuple;
        std::vector<BlockRef> list;
        std::map<Digest, Bytes> blocks;  // received so far
    };
    std::optional<CommitBody> proven_tuple(const std::vector<Envelope>& commits) const;
    bool list_matches(Epoch e, const CommitBody& tuple, const std::vector<BlockRef>& list) const;
    std::optional<CheckedProof> assemble(const PendingProof& p) const;
    std::optional<ArchivedProof> archived(Epoch e) const;
    /// The COMMIT envelopes of `commits` whose signature verifies: a peer's COMMIT
    /// taken on its own connection was counted unchecked (verified_on_use,
    /// consensus/messages.h), and what leaves this node is checked.
    std::vector<Bytes> checked(std::vector<Bytes> commits) const;

    std::map<Epoch, StoredProof> proofs_;  // delivered epochs
    std::optional<PendingProof> pending_;  // the proof of delivered + 1 being fetched
    std::size_t proof_bytes_ = 0;
    std::map<NodeId, Epoch> highest_;                              // highest COMMIT epoch per peer
    std::map<NodeId, std::pair<Epoch, std::uint64_t>> hinted_;     // peer -> (epoch, when)
    std::map<NodeId, std::uint64_t> hinted_latest_ms_;             // peer -> when (latest COMMIT)
    std::optional<std::pair<Epoch, std::uint64_t>> broadcast_;     // own COMMIT: (epoch, when)
    std::optional<std::pair<Epoch, std::uint64_t>> behind_since_;  // (target, first noticed)
    std::uint64_t fetch_next_ms_ = 0;
    std::optional<Bytes> latest_;
    Epoch latest_epoch_ = 0;
    std::uint64_t next_heartbeat_ms_ = 0;
    std::uint64_t archive_served_ = 0;
};

}  // namespace tob::consensus
