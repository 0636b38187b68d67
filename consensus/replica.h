#pragma once
// Replica: asynchronous Byzantine total-order broadcast for one node
// (docs/protocol.md), as a pure deterministic state machine. Inputs: verified
// envelopes from peers, client requests, ticks carrying a logical time. Output of
// each input: a Step (consensus/step.h) listing records to make durable (before
// any message of the same step leaves), messages to send, epochs committed
// (already applied to the StateMachine), faults, and alarms (a halt:
// nondeterminism or more than t faults detected).
//
// The shell (daemon or simulator) verifies each envelope's signature and sender
// before calling handle_envelope (open_envelope below), and executes a Step in
// this order: 1. persist `persist` (one synced write), 2. send `messages`,
// 3. report `committed` to clients, 4. record `faults`.
//
// The sub-protocols
// -----------------
// The Replica routes each input to the unit it concerns and assembles their
// outputs; each unit has its own state, rules, bounds and tests:
//   sign_log.h         slots, the signing high-water mark and its floor (Safety rules)
//   request_pool.h     the pool, aging, block building, flooding (Client requests, Propose)
//   block_broadcast.h  per (e, j): block, SEEN, certificate at q (Flood, Seen, Certify)
//   epoch_subset.h     the n agreements of an epoch and the output order (Agree, Output)
//   binary_agreement.h one agreement (Binary agreement, Common coin)
//   catch_up.h         COMMIT votes, proofs, fetches, hints, heartbeat (Commit proof, Repair)
//   state_transfer.h   checkpoint roots, pruning, snapshot offers and chunks (Checkpoints)
//
// What the Replica itself decides
// -------------------------------
//  - The window. Epochs e = 1, 2, ... run while there is work, at most W at once:
//    a node signs only for epochs in (delivered, delivered + W], and drops (and
//    counts, but never blames: honest nodes sit at different epochs) messages
//    outside it; catch-up replies are exempt. Epochs are delivered strictly in
//    order, each exactly once.
//  - The join rule. A node joins epoch e by proposing its block B(e, self)
//    (possibly empty); joining e joins every earlier epoch first. It joins when
//    it has work and a block is due (full, or the block timer ran while none of
//    its blocks is in an undelivered epoch), or when a
//    valid block, SEEN, certificate or ABA message for e arrives inside the
//    window. New work goes into the lowest epoch it has not proposed in.
//  - Delivery. When EpochSubset knows S for delivered + 1 and every block of S
//    is held by its certified digest (fetched otherwise), the epoch is applied,
//    its proof kept, and COMMIT signed; or a checked commit proof (catch_up.h)
//    applies it, and the state digest must then match the proof's (else alarm).
//  - Repair. Until an epoch is stable the node re-publishes everything it signed
//    for it and every certificate it holds, with backoff doubling from
//    repair_initial_ms up to repair_max_ms; its state is kept while not stable and
//    at most 4·W epochs below the delivered one.
//  - Restart. recover() refills the sign-log and every unit from the durable
//    records and resumes the open epochs where they were, re-publishing what was
//    signed and never signing it differently. The agreements of delivered, not yet
//    stable epochs are rebuilt too: one a crash left undecided (the epoch applied,
//    the step's last AUX/TERM lost) keeps taking that epoch's messages until it
//    decides again (docs/protocol.md, "Repair": agreements after a restart).
//  - Invariants of its own code are TOB_CHECKs (consensus/check.h): they stop
//    the process even in release builds.
//
// Memory: every unit is bounded by the window (or by proof_history_epochs for
// catch-up), never by the number of epochs run; memory() reports the sizes and
// tobsim --sizes-every prints them over long runs.

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "consensus/catch_up.h"
#include "consensus/codec.h"
#include "consensus/crypto_suite.h"
#include "consensus/messages.h"
#include "consensus/request_pool.h"
#include "consensus/state_machine.h"
#include "consensus/state_transfer.h"
#include "consensus/step.h"

namespace tob::consensus {

struct ReplicaConfig {
    std::uint32_t n = 4;
    std::uint32_t t = 1;
    NodeId self = 0;
    Digest chain_id{};
    Limits limits;
    std::uint32_t window = 4;           // W: epochs in (delivered, delivered+W] run at once
    std::uint32_t aged_epochs = 8;      // k: a request older than k delivered epochs is "aged"
    std::uint64_t block_timer_ms = 20;  // cut a non-full block after this long
    std::uint64_t repair_initial_ms = 200;
    std::uint64_t repair_max_ms = 1000;  // re-publication backoff cap
    /// Delivered epochs whose proofs (blocks and COMMITs) stay in memory to answer
    /// catch-up; older ones come from the ProofArchive, if the shell gives one.
    Epoch proof_history_epochs = 256;
    /// Re-broadcast the latest own COMMIT this often (0: never), so that a node
    /// that starts late or returns while the cluster is idle learns it is behind.
    std::uint64_t commit_heartbeat_ms = 2000;
    std::uint32_t pool_requests_max = 100000;
    std::size_t pool_bytes_max = std::size_t{256} << 20;  // and a fair share per client
    Round max_rounds_ahead = 16;
    /// K: COMMIT carries the state root every K epochs (0: no checkpoints; also
    /// none without a SnapshotStore). docs/protocol.md, "Checkpoints".
    Epoch checkpoint_interval = 0;
    /// R: durable records of epochs more than R below the newest servable
    /// checkpoint are pruned; a node more than R behind fetches a snapshot.
    Epoch checkpoint_retention = 256;
    /// Entry bytes asked for in one snapshot chunk (capped by message_bytes_max).
    std::uint64_t snapshot_chunk_bytes = 1u << 20;
    /// Test-only (tobsim --unsafe-quorum): certify with this many SEENs instead of q.
    /// 0 = q. Never set in the daemon.
    std::uint32_t unsafe_cert_quorum = 0;
    /// Test-only (tobsim --plant trust-chunks): install snapshot chunks without
    /// checking them against the manifest. Never set in the daemon.
    bool unsafe_trust_snapshot_chunks = false;
};

/// What a restarted node recovers from its storage.
struct Recovery {
    std::vector<DurableRecord> records;  // in the order they were persisted
    Epoch high_water = 0;                // from the key-directory file (0 = never signed)
    bool sign_log_ok = true;             // false: corrupt sign-log or missing mark -> follower
};

struct ReplicaStats {
    Epoch delivered = 0;
    Epoch highest_joined = 0;
    std::size_t pool = 0;
    std::uint64_t faults = 0;
    std::uint64_t dropped_out_of_window = 0;
    std::uint64_t aba_rounds_total = 0;  // sum over decided ABA instances of rounds used
    std::uint64_t aba_instances = 0;
    std::uint64_t archive_proofs_served = 0;  // EpochProof fetches answered from the archive
    /// The highest epoch t + 1 peers sent a COMMIT for (CatchUp::peers_epoch): at
    /// least one honest peer reached it, whatever the liars claim.
    Epoch peers_epoch = 0;
    // Checkpoints and snapshots (consensus/state_transfer.h).
    Epoch checkpoint_servable = 0;  // newest checkpoint this node can serve (0: none)
    Epoch pruned_below = 0;         // records below this epoch may be gone
    TransferProgress snapshot;      // the transfer in progress, if any
    std::uint64_t snapshot_chunks_rejected = 0;
    std::uint64_t snapshot_chunks_served = 0;
    std::uint64_t snapshots_installed = 0;
    bool voting = true;
    bool halted = false;
};

/// What the core holds in memory, per unit (counts and bytes), for tests and for
/// tobsim's --sizes-every. Each unit's header states the bound these stay under.
struct ReplicaMemory {
    // sign_log.h
    std::size_t sign_log_slots = 0;
    std::size_t sign_log_epochs = 0;
    // request_pool.h
    std::size_t pool_requests = 0;
    std::size_t pool_bytes = 0;
    std::size_t pool_in_flight = 0;
    std::size_t verified_cached = 0;
    // block_broadcast.h
    std::size_t blocks = 0;
    std::size_t block_bytes = 0;
    std::size_t broadcast_epochs = 0;
    std::size_t certs = 0;
    std::size_t seen_votes = 0;
    // epoch_subset.h
    std::size_t agreement_epochs = 0;
    std::size_t aba_instances = 0;
    std::size_t aba_rounds = 0;
    // catch_up.h
    std::size_t commit_epochs = 0;
    std::size_t commit_votes = 0;
    std::size_t proofs = 0;
    std::size_t proof_bytes = 0;
    // the Replica's window: what it re-publishes until an epoch is stable
    std::size_t window_epochs = 0;
    std::size_t republish_envelopes = 0;
    std::size_t republish_bytes = 0;
};

/// What the shell's check of an envelope computed, handed to the core so that it
/// is not computed again; any may be absent (null: the core computes it). The
/// shell computed them from this very envelope: `body_digest` = digest_of(body),
/// `requests` = (digest_of(encode(r)), encode(r).size()) of each request of a
/// Block's or request batch's body, in order (the core uses them only when their
/// number matches); `block` and `batch` = the body of a Block or Requests
/// envelope as decode_block / decode_request_batch return it under the core's
/// limits (the core moves from them; a block still has its size, epoch and
/// proposer checked against the envelope).
struct Precomputed {
    const Digest* body_digest = nullptr;
    const RequestDigests* requests = nullptr;
    Block* block = nullptr;
    RequestBatch* batch = nullptr;
};

/// The `channel` argument of open_envelope when the connection that carried the
/// bytes authenticates no member (the flood plane, whose header is unsigned).
inline constexpr NodeId kNoChannel = static_cast<NodeId>(-1);

/// The shell-side check of inbound bytes (the daemon runs it in worker threads,
/// the simulator inline): size limit, canonical decoding, chain id, sender is a
/// member, envelope signature. A channel-authenticated kind (Kind::Aba,
/// consensus/messages.h) has no signature instead: its sig must be all zero and
/// `channel`, the member whose authenticated connection carried it (or the
/// signed sender of the FetchReply it came in), must be its sender. On failure
/// the reason is returned; the bytes must then be dropped and counted (and
/// blamed on the sender only if the signature verified, which it cannot have
/// here). A failure of the channel rule says nothing about the bytes: the same
/// bytes may arrive later on the right connection (is_channel_refusal).
/// `body_digest` (if given) receives digest_of(body) of an opened envelope: the
/// signature covers it, so it is computed here once (a block is known by it).
Decoded<Envelope> open_envelope(ByteView bytes, const CryptoSuite& crypto,
                                const ReplicaConfig& config, NodeId channel,
                                Digest* body_digest = nullptr);
/// Whether open_envelope refused for the channel alone (not for the bytes).
bool is_channel_refusal(const std::string& error);

class Replica {
  public:
    /// `archive` (may be null) answers catch-up beyond the in-memory proof history;
    /// `snapshots` (may be null: no checkpoints) holds the state's checkpoints and
    /// installs peers' ones. Both must outlive the Replica.
    Replica(const ReplicaConfig& config, const CryptoSuite& crypto, StateMachine& state,
            const ProofArchive* archive = nullptr, SnapshotStore* snapshots = nullptr);
    ~Replica();

    /// Rebuilds from durable records after a restart. Call once, before any input.
    /// Re-publication of what was signed starts with the next tick.
    [[nodiscard]] Step recover(const Recovery& recovery, std::uint64_t now_ms);

    /// An envelope whose signature and sender the shell verified, with what the
    /// check computed (Precomputed; saves hashing a block or its requests again).
    [[nodiscard]] Step handle_envelope(const Envelope& envelope, std::uint64_t now_ms,
                                       Precomputed pre = {});
    /// A client request submitted to this node (signature checked here).
    /// `admission` (if given) says what became of it: the shell answers a client
    /// whose request was Invalid or Overloaded at once (consensus/request_pool.h).
    [[nodiscard]] Step handle_request(const Request& request, std::uint64_t now_ms,
                                      Admission* admission = nullptr);
    /// Logical time advanced: cut blocks, re-publish, re-request.
    [[nodiscard]] Step tick(std::uint64_t now_ms);
    /// Between begin_batch() and end_batch() the agreement messages of every input
    /// wait; end_batch() signs them as one bundle per epoch, each message under its
    /// own sign-log slot, and returns that step. A shell that executes the steps of
    /// several inputs together (persist, then send) brackets them so, and spends one
    /// signature per epoch where it spent one per input (one per instance step).
    /// Without begin_batch() every input's messages leave with its own step.
    void begin_batch();
    [[nodiscard]] Step end_batch();

    const ReplicaStats& stats() const { return stats_; }
    Epoch delivered() const { return stats_.delivered; }
    bool halted() const { return stats_.halted; }
    /// The latest COMMIT envelope this node signed (re-sent by the heartbeat).
    std::optional<Bytes> latest_commit() const;
    /// A stall report for operators and tests: for each joined, undelivered epoch,
    /// the blocks, SEENs and certificates held per proposer and the state of every
    /// undecided agreement. Several lines; empty when nothing is pending.
    std::string describe_pending() const;
    /// Whether the block store holds the block whose envelope body has this
    /// digest (read only; the shell uses it to drop re-published copies early).
    bool holds_block(const Digest& body_digest) const;
    /// Current sizes of every unit (walks the per-epoch state: not for hot paths).
    ReplicaMemory memory() const;

  private:
    struct Impl;
    ReplicaStats stats_;  // before impl_: Impl's constructor writes into it
    std::unique_ptr<Impl> impl_;
};

}  // namespace tob::consensus
