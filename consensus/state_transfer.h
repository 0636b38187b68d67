#pragma once
// StateTransfer: checkpoints, pruning and snapshot transfer (docs/protocol.md,
// "Checkpoints"). The core decides; the shell stores and moves bytes through the
// SnapshotStore below (consensus/kv/rooted_storage.h implements it over the
// shell's storage, like ProofArchive for catch-up).
//
// Checkpoints
// -----------
// Every K = checkpoint_interval epochs (e % K == 0) the node, right after applying
// e, asks the store for the state root and signs it in COMMIT(e)'s
// checkpoint_root. The store keeps a read view of the state at e.
//  - t + 1 matching COMMITs carrying the root make checkpoint e *verifiable*:
//    one signer is honest, so the root is the one every honest node computed.
//    That is what a node installing a snapshot checks.
//  - q matching COMMITs (this node's among them) make it *stable*, exactly like
//    any epoch (CatchUp::stable). Only then does the node make the checkpoint
//    servable (the store persists it with those q COMMITs as its certificate) and
//    prune below it: q − t ≥ t + 1 honest nodes then hold e, so its proofs and
//    its state stay obtainable even if t nodes go silent; with t + 1 a node could
//    prune on the word of one honest node that may be the only one to ever hold
//    the checkpoint. (tobsim shows what pruning too early costs: a node that
//    cannot find a snapshot nor a proof anywhere.)
//
// Pruning
// -------
// With S the newest checkpoint this node can serve and R = checkpoint_retention,
// records (blocks, certificates, proofs, COMMITs, sign-log entries) of epochs
// below S − R may be deleted: Step::prune_below. Sign-log entries there are below
// delivered − W, where no node signs (consensus/sign_log.h), and the state's own
// last_applied, written before the prune, is the floor a restart starts from. A
// node never prunes before it can serve a checkpoint, so whoever is missing what
// was pruned can get the snapshot instead. Older servable checkpoints are
// released when a newer one is servable, except the one a peer fetched from in
// the last kPinMs of logical time (a transfer in progress keeps its source).
//
// Snapshot transfer
// -----------------
// A node asks its peers for offers (SnapshotRequest op offer, broadcast at most
// every repair_max_ms) when it is behind and catch-up by proofs cannot be
// expected to work: a peer's COMMIT is more than R epochs ahead (peers prune
// their proofs R epochs below their checkpoints), or its delivered epoch has not
// moved for kStallMs while a peer is ahead. An offer carries the peer's newest
// servable checkpoint: its COMMITs and its manifest. The node checks the COMMIT
// signatures, t + 1 distinct signers on one tuple whose checkpoint root is the
// manifest's root, and that the checkpoint is above its delivered epoch; a peer
// whose offer does not check out is blamed (an honest node offers only what it
// verified). Then:
//  - The 256 buckets are fetched in chunks of consecutive buckets, each request
//    sized by the manifest to at most chunk_bytes of entries (at least one
//    bucket; a bucket larger than that comes in parts from one peer), from every
//    peer that offered the same checkpoint, at most kPerPeer requests in flight
//    per peer; a request unanswered for kChunkTimeoutMs goes to another peer.
//  - Each reply is checked on its own: entries in (bucket, key) order inside the
//    asked buckets, and every complete bucket's LtHash, count and bytes equal to
//    the manifest's summary. A reply that fails is a Fault against its sender
//    (counted in chunks_rejected), its buckets go back to the queue, and the
//    sender gets no more requests in this transfer.
//  - Verified entries go to the store's staging area; when every bucket is
//    verified the store installs them atomically as the state at the checkpoint,
//    with the state digest of the certificate's tuple, and the node continues
//    with commit proofs from the epoch after it (consensus/catch_up.h).
// The transfer never signs anything. A node whose sources all fail or vanish
// asks for offers again, keeping the buckets it verified if the new offer is the
// same checkpoint.
//
// Bounds: at most one transfer; per peer kPerPeer requests in flight; the
// verified-bucket set and hashes of partial buckets are kStateBuckets entries;
// entries pass through to the store and are never held beyond one reply.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "consensus/crypto_suite.h"
#include "consensus/snapshot_wire.h"
#include "consensus/state_root.h"
#include "consensus/step.h"

namespace tob::consensus {

class CatchUp;

/// A checkpoint this node can serve.
struct HeldCheckpoint {
    Epoch epoch = 0;
    Digest root{};
    Bytes manifest;                  // encode_manifest()
    std::vector<Bytes> certificate;  // COMMIT envelopes of `epoch` carrying `root`
    bool operator==(const HeldCheckpoint&) const = default;
};

/// Serialised form of a HeldCheckpoint (stored beside a persisted view and at
/// the start of an exported snapshot file): u64 epoch ‖ root ‖ manifest ‖ u32
/// count ‖ (u32 length ‖ COMMIT envelope)*.
Bytes encode_held(const HeldCheckpoint& h);
std::optional<HeldCheckpoint> decode_held(ByteView bytes);

/// The tuple that at least t + 1 of `certificate`'s COMMIT envelopes of epoch e
/// (checked: chain id, member, signature) agree on with a checkpoint root; nullopt
/// if none. What makes a checkpoint verifiable (offers, `tobd --import-snapshot`).
std::optional<CommitBody> verify_certificate(Epoch e, const std::vector<Bytes>& certificate,
                                             const CryptoSuite& crypto, std::uint32_t n,
                                             std::uint32_t t, const Digest& chain_id,
                                             const Limits& limits);

/// What a chunk reply holds (SnapshotStore::read_chunk).
struct ChunkData {
    std::uint32_t first_bucket = 0;
    std::uint32_t last_bucket = 0;
    bool last_complete = true;
    std::vector<StateEntry> entries;
};

/// The application's state seen as checkpoints. Implemented over the shell's
/// storage (consensus/kv/rooted_storage.h); called from the core's thread only.
class SnapshotStore {
  public:
    virtual ~SnapshotStore() = default;
    // ---- this node's checkpoints ------------------------------------------------
    /// The state was just brought to checkpoint epoch e: its root. The store keeps
    /// a read view of this state until release_checkpoint(e).
    virtual Digest take_checkpoint(Epoch e) = 0;
    /// Checkpoint e (taken here or installed) is stable with these COMMITs: make it
    /// servable (durably; the store may take a while).
    virtual void checkpoint_stable(Epoch e, const std::vector<Bytes>& certificate) = 0;
    virtual void release_checkpoint(Epoch e) = 0;
    /// Checkpoints that can be served now, oldest first.
    virtual std::vector<Epoch> servable() const = 0;
    virtual std::optional<HeldCheckpoint> held(Epoch e) const = 0;
    /// Entries of buckets first..first+count−1 of servable checkpoint e (the first
    /// one's after `after_key`), at most bytes_max chunk_entry_bytes() but at least
    /// one entry if any is left; nullopt if e is not servable.
    virtual std::optional<ChunkData> read_chunk(Epoch e, std::uint32_t first, std::uint32_t count,
                                                const Bytes& after_key,
                                                std::uint64_t bytes_max) const = 0;
    // ---- installing a peer's checkpoint -------------------------------------------
    virtual void stage_begin() = 0;  // empties the staging area
    virtual void stage(const std::vector<StateEntry>& entries) = 0;
    virtual void stage_discard(std::uint32_t bucket) = 0;
    /// Atomically replaces the state with the staged entries, as the state after
    /// epoch e with chain digest `state_digest` (the StateMachine must reload()).
    /// `buckets` are the verified bucket hashes. e then counts as taken.
    virtual void install(Epoch e, const Digest& state_digest,
                         const std::vector<BucketHash>& buckets) = 0;
};

struct TransferParams {
    std::uint32_t n = 4;
    std::uint32_t t = 1;
    NodeId self = 0;
    Digest chain_id{};
    Limits limits;
    Epoch checkpoint_interval = 0;  // K; 0: no checkpoints
    Epoch retention = 0;            // R
    std::uint64_t repair_initial_ms = 200;
    std::uint64_t repair_max_ms = 1000;
    std::uint64_t chunk_bytes = 1u << 20;  // entry bytes per chunk request
    bool unsafe_trust_chunks = false;      // test-only: skip the chunk check (tobsim's plant)
};

/// A snapshot that was installed (for the Replica and, through Step, the shell).
struct InstalledSnapshot {
    Epoch epoch = 0;
    CommitBody tuple;
    std::vector<Bytes> certificate;
    std::uint64_t bytes = 0;  // entry bytes installed
    std::uint64_t entries = 0;
};

/// Progress of the current transfer (tobctl status, /metrics, the log).
struct TransferProgress {
    bool active = false;
    Epoch epoch = 0;  // the checkpoint being fetched (0: still waiting for offers)
    std::uint64_t bytes_total = 0, bytes_done = 0;
    std::uint32_t buckets_done = 0;
    std::uint32_t sources = 0;
    std::uint64_t started_ms = 0;
};

class StateTransfer {
  public:
    static constexpr std::uint64_t kStallMs = 8000;
    static constexpr std::uint64_t kChunkTimeoutMs = 4000;
    static constexpr std::uint64_t kPinMs = 30000;
    static constexpr std::size_t kPerPeer = 2;
    static constexpr std::size_t kTakenMax = 4;  // unstable checkpoints kept

    StateTransfer(const TransferParams& params, const CryptoSuite& crypto, SnapshotStore* store);

    bool enabled() const { return store_ != nullptr && p_.checkpoint_interval > 0; }
    bool is_checkpoint(Epoch e) const {
        return enabled() && e > 0 && e % p_.checkpoint_interval == 0;
    }

    // ---- this node's checkpoints -------------------------------------------------
    /// Epoch e was applied here; at a checkpoint epoch, the root to sign.
    std::optional<Digest> applied(Epoch e);
    /// Per tick: stable checkpoints become servable, old ones are released, and the
    /// prune floor may rise (Step::prune_below).
    void tick(Step& step, const CatchUp& catchup, std::uint64_t now);
    /// A peer's SnapshotRequest (offer or chunk): the reply, if any.
    void on_request(Step& step, const Envelope& env, std::uint64_t now);

    // ---- installing ---------------------------------------------------------------
    /// Whether to look for a snapshot; asks for offers when so.
    void maybe_start(Step& step, Epoch delivered, Epoch peers_highest, std::uint64_t now);
    /// A SnapshotReply. Returns the installed snapshot when this reply completed one.
    std::optional<InstalledSnapshot> on_reply(Step& step, const Envelope& env, Epoch delivered,
                                              std::uint64_t now);
    /// Timeouts and new requests.
    void poll(Step& step, std::uint64_t now);

    const TransferProgress& progress() const { return progress_; }
    std::uint64_t chunks_rejected() const { return chunks_rejected_; }
    std::uint64_t chunks_served() const { return chunks_served_; }
    std::uint64_t installed() const { return installed_; }
    Epoch pruned_below() const { return pruned_below_; }
    std::optional<Epoch> newest_servable() const;

  private:
    struct Source {
        std::size_t in_flight = 0;
        std::uint32_t strikes = 0;
    };
    struct Outstanding {  // one chunk request
        NodeId peer = 0;
        std::uint32_t first = 0, count = 0;
        Bytes after_key;
        std::uint64_t sent_ms = 0;
    };
    struct Partial {  // a bucket that comes in parts, from one peer
        NodeId peer = 0;
        BucketHash hash;
        Bytes last_key;
    };
    struct Transfer {
        Epoch epoch = 0;
        Digest root{};
        CommitBody tuple;
        std::vector<Bytes> certificate;
        Manifest manifest;
        std::map<NodeId, Source> sources;
        std::set<NodeId> liars;
        std::vector<bool> done;  // per bucket
        std::vector<BucketHash> hashes;
        std::map<std::uint32_t, Partial> partial;
        std::vector<Outstanding> outstanding;
    };

    // Offers.
    void on_offer(Step& step, const Envelope& env, const SnapshotReply& reply, Epoch delivered,
                  std::uint64_t now);
    // Chunks.
    std::optional<InstalledSnapshot> on_chunk(Step& step, const Envelope& env,
                                              const SnapshotReply& reply, std::uint64_t now);
    bool verify_chunk(const Outstanding& asked, const SnapshotReply& reply, NodeId from,
                      std::string& why, std::vector<std::pair<std::uint32_t, BucketHash>>& complete,
                      std::optional<Partial>& partial) const;
    void reject(Step& step, const Envelope& env, const Outstanding& asked, const std::string& why);
    void requeue(const Outstanding& o);
    void schedule(Step& step, std::uint64_t now);
    std::optional<InstalledSnapshot> finish(Step& step);
    void serve_chunk(Step& step, const Envelope& env, const SnapshotRequest& req,
                     std::uint64_t now);
    void serve_offer(Step& step, const Envelope& env, std::uint64_t now);

    TransferParams p_;
    const CryptoSuite& crypto_;
    SnapshotStore* store_;

    // Serving side.
    std::map<Epoch, Digest> taken_;  // checkpoints taken, not yet stable here
    std::map<Epoch, std::uint64_t> last_served_ms_;
    std::map<NodeId, std::pair<std::uint64_t, std::uint32_t>> served_window_;  // rate limit
    Epoch pruned_below_ = 0;
    std::uint64_t chunks_served_ = 0;

    // Installing side.
    std::optional<Transfer> transfer_;
    bool wanted_ = false;  // looking for offers
    std::uint64_t next_offer_ms_ = 0;
    Epoch last_delivered_ = 0;
    std::uint64_t delivered_since_ms_ = 0;
    TransferProgress progress_;
    std::uint64_t chunks_rejected_ = 0;
    std::uint64_t installed_ = 0;
};

}  // namespace tob::consensus
