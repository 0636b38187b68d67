#pragma once
// RootedStorage: the layer between the KV machine and the shell's store that
// keeps the state root (consensus/state_root.h) and implements the core's
// SnapshotStore (consensus/state_transfer.h). The machine sees a plain KvStorage
// (keys and values exactly as it wrote them); the backend sees this layout:
//
//   "\x00tob/last_applied", "\x00tob/state_digest"
//                           the machine's chain metadata, as they are (not state:
//                           they are the epoch and the chain digest, which COMMIT
//                           signs on its own)
//   L ‖ bucket u16 BE ‖ key every other key of the machine (user data, dedup
//                           table, stored outputs): the replicated state, grouped
//                           by bucket so a bucket is one contiguous key range.
//                           L is the live prefix, 0x10 or 0x20
//   (the other of 0x10/0x20) staging: a snapshot being installed
//   "\x00tobroot/live"       L (absent: 0x10)
//   "\x00tobroot/lanes/" ‖ u16 BE bucket
//                           that bucket's LtHash lanes ‖ count u64 ‖ bytes u64 as of
//   "\x00tobroot/at"         the checkpoint epoch they were written at, and
//   "\x00tobroot/dirty"      a bitmap of the buckets changed since then.
//
// Cost. A committed epoch costs, per distinct key written, the old value (from
// what the machine read this epoch, else one backend read) and two LtHash
// expansions (remove old, add new); nothing is written for the root except the
// dirty bitmap when a bucket first changes after a checkpoint. At a checkpoint the
// changed buckets' lanes (2 KiB each, at most 256) are written and the root is
// hashed from the 256 summaries. A restart reloads the lanes and rescans only the
// buckets of the dirty bitmap. tobd's per-write cost is printed by
// `tobd --bench-state-root` (docs/decisions.md has the figures).
//
// Installing a snapshot: entries are staged under the other prefix, and one
// atomic backend batch flips the live prefix and writes the lanes, the epoch and
// the digest; the old state is then erased (a crash before the flip keeps the old
// state, and staging is emptied at the next start).
//
// A store written before checkpoints existed (user keys under 0x01, dedup and
// outputs under "\x00tob/") is migrated into buckets when opened.

#include <map>
#include <vector>

#include "consensus/kv/kv_storage.h"
#include "consensus/state_root.h"
#include "consensus/state_transfer.h"

namespace tob::consensus::kv {

class RootedStorage final : public KvStorage, public SnapshotStore {
  public:
    /// Loads the lanes (recomputing the dirty buckets) and empties staging.
    explicit RootedStorage(StateBackend& backend);

    // ---- KvStorage (the machine's view) ----------------------------------------------
    std::optional<Bytes> get(ByteView key) const override;
    void commit(KvBatch batch) override;

    // ---- SnapshotStore (consensus/state_transfer.h) ------------------------------------
    Digest take_checkpoint(Epoch e) override;
    void checkpoint_stable(Epoch e, const std::vector<Bytes>& certificate) override;
    void release_checkpoint(Epoch e) override;
    std::vector<Epoch> servable() const override;
    std::optional<HeldCheckpoint> held(Epoch e) const override;
    std::optional<ChunkData> read_chunk(Epoch e, std::uint32_t first, std::uint32_t count,
                                        const Bytes& after_key,
                                        std::uint64_t bytes_max) const override;
    void stage_begin() override;
    void stage(const std::vector<StateEntry>& entries) override;
    void stage_discard(std::uint32_t bucket) override;
    void install(Epoch e, const Digest& state_digest,
                 const std::vector<BucketHash>& buckets) override;

    // ---- views -----------------------------------------------------------------------
    /// The summaries and root of the current state.
    Manifest manifest() const;
    Digest root() const { return state_root(manifest()); }
    /// Every state entry, in (bucket, key) order (tests, tobsim's storage check).
    void for_each_entry(const ScanFn& fn) const;
    /// Keys moved from the pre-checkpoint layout when this store was opened.
    std::uint64_t migrated() const { return migrated_; }
    /// Buckets recomputed by scanning when this store was opened.
    std::uint32_t rescanned() const { return rescanned_; }
    /// The chain metadata keys, which are not state.
    static bool is_chain_metadata(ByteView key);

  private:
    void migrate();
    void load();
    BucketHash scan_bucket(std::uint8_t prefix, std::uint32_t b) const;
    void mark(std::uint32_t b, bool& bitmap_changed);
    Bytes dirty_bitmap() const;
    std::uint8_t staging() const { return live_ == 0x10 ? 0x20 : 0x10; }

    StateBackend& backend_;
    std::uint8_t live_ = 0x10;
    std::vector<BucketHash> buckets_;
    std::vector<bool> dirty_;  // changed since the lanes on disk
    mutable std::vector<std::optional<Digest>> digests_;
    // Values the machine read since the last commit (logical key -> value and
    // bucket), so a commit knows the old value of what it overwrites, and its
    // bucket, without reading or hashing again.
    struct Read {
        std::optional<Bytes> value;
        std::uint32_t bucket = 0;
    };
    mutable std::map<Bytes, Read> read_cache_;
    std::map<Epoch, HeldCheckpoint> taken_;  // taken here, not yet persisted
    mutable std::map<Epoch, HeldCheckpoint> held_cache_;
    std::uint64_t migrated_ = 0;
    std::uint32_t rescanned_ = 0;
};

}  // namespace tob::consensus::kv
