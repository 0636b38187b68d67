#pragma once
// NodeStorage: the RocksDB database of one node, in <data_dir>/db.
//
// Column families:
//   "records"  the consensus core's durable records (consensus::DurableRecord):
//              sign-log, blocks, certificates, proofs, peers' COMMITs
//   "kv"       the replicated key-value state: daemon/kv_backend.h, under
//              consensus::kv::RootedStorage (bucketed keys, the state root) and
//              KvMachine; snapshot files of stable checkpoints live beside the
//              database in <data_dir>/snapshots (daemon/snapshot_files.h)
//   "blocks"   block envelopes, each stored once and referenced by the records that
//              hold it (daemon/block_refs.h); pruned with them
//   "default"  bookkeeping: the records sequence counter
//
// Records. Key = 'r' ‖ epoch (u64 BE) ‖ seq (u64 BE), where seq is a per-store
// counter that only grows: it is kept under "meta/next_record_seq" in the default
// column family and updated in the same WriteBatch as the records, so it survives
// restarts and is never reused (the largest key alone would not do: a record of a
// lower epoch appended after one of a higher epoch has a larger seq but a smaller
// key). load_records() therefore returns records in (epoch, append order) order.
// Value = type byte ‖ first 16 bytes of BLAKE2b-256(type ‖ epoch u64 BE ‖ bytes) ‖
// bytes. HighWater records are never stored here: they go to the mark file beside
// the node key (daemon/high_water.h), which the caller writes. A record holding
// block envelopes (Block, an own block in Signed, Proof) has the type byte's two
// high bits set (kIndirect | kBodyChecksum) and, instead of the bytes, the bytes
// with each envelope replaced by a reference into "blocks" (written in the same
// batch unless stored already); the checksum covers that stored body and each
// referenced block is checked against its hash when read, so a lost or damaged
// block is a corrupt record like any other. (Values written before 2026-12-07 have
// kIndirect only and the checksum over the rebuilt bytes; they still load.)
//
// Durability and failure policy:
//   - append() writes a step's records in ONE WriteBatch with sync = true (or,
//     for records no message depends on, without waiting for the disk), so a
//     crash keeps all or none. A failed write (disk full, I/O error, RocksDB in
//     read-only mode after a background error) is returned: the caller must stop
//     signing (fail-stop) — a signed message may leave only after its record is
//     durable. append() also refuses (and returns an error) when the data dir's
//     file system has less than kFreeSpaceReserve plus twice the batch free, so
//     the node stops cleanly before RocksDB meets a full disk in the middle of a
//     WAL record (RocksDB 7.8 then aborted the process once in a while in
//     faults_disk_full instead of returning the error).
//   - The state's own writes outside append() (staged epochs written before a
//     scan or a checkpoint's export, range erases) follow the same free-space
//     rule; refused, or failed with ENOSPC, they stop the process with exit code 3
//     (daemon/kv_backend.h), the code a refused append() leads to.
//   - kv().commit() is one synced WriteBatch per epoch. kv().get() and commit()
//     ABORT THE PROCESS (after a clear line on stderr) on any other RocksDB error
//     than NotFound: the state machine cannot continue from a failed write, and a
//     Corruption/IOError on read must never be read as "key absent", which would
//     make this node compute a different state from the others. The node is then
//     restarted by its supervisor; if the data dir is corrupt, the operator moves
//     it aside and the node catches up from peers.
//   - prune_records_below() is not synced: losing a prune only keeps extra data.
//     It raises the records floor ("meta/records_floor" in the default family),
//     below which load_records() reads nothing; a background thread, at most every
//     30 s, syncs the WAL (the floor is durable before anything below it goes) and
//     deletes the records' and blocks' table files wholly below the floor
//     (DeleteFilesInRange: no range tombstone, no rewrite of the live epochs, which
//     both families hold in epoch order), and compacts the ranges the state
//     erased. Pruned epochs in a file that also holds live ones stay on disk, unread,
//     until the floor passes the file.
//
// Damage (the sign-log cannot be trusted, so the node must not vote):
//   - RocksDB is opened with wal_recovery_mode = kTolerateCorruptedTailRecords
//     (a torn last write was never acknowledged, hence its messages never sent)
//     and paranoid checks. If that open fails with Corruption, the store is opened
//     again with kPointInTimeRecovery (stops at the first bad WAL record: a
//     consistent prefix of every column family, so the KV state stays a state that
//     really existed), then with kSkipAnyCorruptedRecords as a last resort; either
//     way the store is *damaged*. If every attempt fails, open() returns an error
//     telling the operator to move the data dir aside.
//   - load_records() reports a corrupt Signed record (or one of unknown type, or an
//     iterator error) as sign_log_ok = false and marks the store damaged. Corrupt
//     records of other types are dropped and counted: they can be fetched again.
//     A record that does not verify is judged by the type under which its checksum
//     does verify, if any, over the stored body or the rebuilt bytes; a type byte
//     the writer never produces (flags on a type never stored indirect, the body
//     checksum flag alone) names an unknown type. So damage to the type byte cannot
//     turn a Signed record into a droppable one.
//   - Damage is recorded in <data_dir>/SIGN-LOG-DAMAGED (one line, the reason,
//     fsynced), so that the node stays a non-voting follower across restarts even
//     if RocksDB later "heals" by compaction. Only the operator removes it (by
//     deleting or moving aside the data dir). A damaged store still accepts
//     appends and KV commits (the follower keeps catching up).
//
// Nothing here logs: problems are returned (open errors, damage_reason(),
// LoadedRecords::problems) for the caller to log. Thread safety: all methods may be
// called from any thread; append/load/prune are serialized internally.

#include <array>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "consensus/kv/kv_storage.h"
#include "consensus/replica.h"
#include "daemon/config.h"
#include "daemon/kv_backend.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace tob::daemon {

struct LoadedRecords {
    std::vector<consensus::DurableRecord> records;  // in (epoch, append order) order
    bool sign_log_ok = true;            // false: do not sign (corrupt sign-log or damaged store)
    std::vector<std::string> problems;  // one line per problem found, for the log
    std::uint64_t dropped = 0;          // corrupt non-sign-log records skipped
};

class NodeStorage {
  public:
    /// Name of the damage marker file inside the data dir.
    static constexpr const char* kDamageMarker = "SIGN-LOG-DAMAGED";

    /// Opens (creating if missing, mode 0700) data_dir and data_dir/db. Errors name
    /// the path, e.g. "<dir>/db: data dir is in use by another tobd (RocksDB LOCK
    /// held)". See the header comment for the corruption handling.
    static Outcome<std::unique_ptr<NodeStorage>> open(const std::filesystem::path& data_dir);

    ~NodeStorage();
    NodeStorage(const NodeStorage&) = delete;
    NodeStorage& operator=(const NodeStorage&) = delete;

    /// Makes `records` durable in one synced WriteBatch (HighWater records are
    /// skipped). nullopt on success, else an error message: stop signing.
    /// `sync = false` writes the batch to RocksDB's WAL without waiting for the
    /// disk: a process crash keeps it (the kernel has it), a power loss may lose
    /// it, and the next synced append makes it durable in order (one WAL). For
    /// records no outgoing message depends on (StepExecutor::must_sync).
    std::optional<std::string> append(const std::vector<consensus::DurableRecord>& records,
                                      bool sync = true);
    /// append() calls that wrote a batch: with sync, without (metrics, tests).
    struct WriteCounts {
        std::uint64_t synced = 0;
        std::uint64_t unsynced = 0;
    };
    WriteCounts write_counts() const;

    /// Every stored record, checked; see LoadedRecords.
    /// Group commit (the node turns it on): kv().commit() only stages an applied
    /// epoch's changes (reads see them at once) and the next append() writes them in
    /// the same synced batch as its records, so a crash keeps or loses an epoch's
    /// state together with the step's records (the Proof, the COMMIT) — never one
    /// without the other. Off (the default): every kv().commit() is its own synced
    /// write.
    void set_group_commit(bool on);
    bool has_staged() const;

    /// Only records with from_epoch <= epoch < to_epoch are read (recovery reads the
    /// recent ones; the catch-up archive reads one epoch at a time). The default
    /// to_epoch (the largest epoch) means no upper bound: a record stored at that
    /// epoch is read too, so a full load sees, and judges, every record.
    LoadedRecords load_records(consensus::Epoch from_epoch = 0,
                               consensus::Epoch to_epoch = ~consensus::Epoch{0});

    /// Prunes every record (and block) with epoch < e: raises the records floor
    /// (not synced), below which load_records reads nothing, and has the table
    /// files wholly below it deleted in the background (and what the state erased
    /// compacted).
    void prune_records_below(consensus::Epoch e);
    /// Background compactions run so far (metrics, tests).
    std::uint64_t compactions() const;

    /// Bytes handed to RocksDB by append() since open (keys and values, before
    /// RocksDB's own WAL, flush and compaction writes): index t = the records of
    /// DurableRecord::Type t, index 0 = the replicated state's staged changes.
    static constexpr std::size_t kAppendedKinds = 8;
    std::array<std::uint64_t, kAppendedKinds> appended_bytes() const;

    /// The replicated state's backend (column family "kv"). Aborts on errors.
    KvBackend& kv();

    /// True if the sign-log is known or suspected damaged (now or in an earlier run).
    bool damaged() const;
    /// Why (empty when not damaged).
    std::string damage_reason() const;

    /// SST files plus memtables of every column family, for metrics.
    std::uint64_t approximate_size_bytes() const;

    const std::filesystem::path& data_dir() const { return data_dir_; }
    std::filesystem::path db_path() const { return data_dir_ / "db"; }

    /// Bytes that must stay free on the data dir's file system (see append()).
    static constexpr std::uint64_t kFreeSpaceReserve = 64u << 10;
    /// Test hook: free bytes as append() sees them (nullopt: unknown, not checked).
    void set_free_space_probe_for_testing(std::function<std::optional<std::uint64_t>()> probe);

    /// Test hooks: the raw database and the records / kv column families.
    rocksdb::DB& db_for_testing() { return *db_; }
    rocksdb::ColumnFamilyHandle* records_cf_for_testing() { return records_cf_; }
    rocksdb::ColumnFamilyHandle* kv_cf_for_testing() { return kv_cf_; }
    rocksdb::ColumnFamilyHandle* blocks_cf_for_testing() { return blocks_cf_; }

    /// Record key layout (exposed for tests and tools).
    static std::string record_key(consensus::Epoch epoch, std::uint64_t seq);

  private:
    NodeStorage();
    void compact_loop();
    // Deletes the table files of `cf` whose keys all lie in [lo, hi) (compaction
    // thread).
    void delete_files_below(rocksdb::ColumnFamilyHandle* cf, const std::string& lo,
                            const std::string& hi);
    // Reads the records floor at open. Caller holds mutex_.
    std::optional<std::string> restore_records_floor_locked();

    // Sets the damaged flag and writes the marker (if not already there). Returns
    // a problem line if the marker could not be written. Caller holds mutex_.
    std::optional<std::string> mark_damaged_locked(const std::string& reason);
    // At open: the damage marker of an earlier run, and the note of a WAL recovery
    // that may have lost writes (which marks the store damaged now).
    void load_damage_state_locked(const std::string& recovery_note);
    // The value a record is stored as: its bytes, or with its block envelopes put
    // into `batch` ("blocks" family, unless stored already) and referenced
    // (daemon/block_refs.h). Caller holds mutex_.
    std::string stored_value_locked(const consensus::DurableRecord& record,
                                    rocksdb::WriteBatch& batch,
                                    std::vector<std::string>& new_blocks);
    // An error when fewer than kFreeSpaceReserve + 2 x batch_bytes are free.
    std::optional<std::string> check_free_space_locked(std::size_t batch_bytes) const;
    std::optional<std::string> check_free_space(std::size_t batch_bytes) const;
    // The bytes of an indirect record body; nullopt with `problem` set when a block
    // is missing (or, `check_hashes`, does not match its hash) or the body is
    // malformed. Caller holds mutex_.
    std::optional<consensus::Bytes> rebuild_locked(consensus::Epoch epoch, consensus::ByteView body,
                                                   bool check_hashes, std::string& problem) const;
    // At open: next_seq_ from the stored counter and the largest record key. An
    // error (no counter and unreadable records) means the data dir cannot be used.
    std::optional<std::string> restore_record_counter_locked();

    std::filesystem::path data_dir_;
    std::unique_ptr<rocksdb::DB> db_;
    rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
    rocksdb::ColumnFamilyHandle* records_cf_ = nullptr;
    rocksdb::ColumnFamilyHandle* kv_cf_ = nullptr;
    rocksdb::ColumnFamilyHandle* blocks_cf_ = nullptr;
    std::unique_ptr<KvBackend> kv_;

    // Background compaction of pruned ranges.
    mutable std::mutex compact_mutex_;
    std::condition_variable compact_cv_;
    bool compact_stop_ = false;
    consensus::Epoch compact_records_below_ = 0;  // requested
    consensus::Epoch compacted_records_below_ = 0;
    std::vector<std::pair<std::string, std::string>> compact_kv_;
    std::uint64_t compactions_ = 0;
    std::thread compactor_;

    mutable std::mutex mutex_;
    std::uint64_t next_seq_ = 0;
    // Records and blocks below this epoch are pruned (load_records skips them; their
    // table files are deleted in the background).
    consensus::Epoch records_floor_ = 0;
    std::array<std::uint64_t, kAppendedKinds> appended_{};
    WriteCounts writes_;
    // "blocks" keys written by this process and not pruned (a block not in here is
    // written again: after a restart, at most once more).
    std::set<std::string> stored_blocks_;
    std::function<std::optional<std::uint64_t>()> free_space_probe_;
    // A durable write failed or was refused: the destructor leaves the database
    // as a crash would (see ~NodeStorage).
    bool write_failed_ = false;
    bool damaged_ = false;
    std::string damage_reason_;
};

}  // namespace tob::daemon
