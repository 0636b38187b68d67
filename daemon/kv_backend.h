#pragma once
// KvBackend: the replicated state in RocksDB (column family "kv" of NodeStorage),
// as the StateBackend that consensus::kv::RootedStorage builds the state root and
// the checkpoints on (consensus/kv/kv_storage.h).
//
//  - get/commit: point reads and one WriteBatch per applied epoch. With group
//    commit (NodeStorage::set_group_commit) a commit is only staged (reads see it)
//    and NodeStorage::append writes it in the same synced batch as the step's
//    records. Errors other than NotFound ABORT the process (storage.h explains why).
//  - scan, erase_range, hold_view: first write what is staged (unsynced: the next
//    synced batch makes it durable in order), so that they see every commit.
//  - Views: holding a view (a checkpoint taken) takes a RocksDB snapshot and
//    exports the state's table files at that point: the "kv" memtable is flushed
//    and its table files are hard-linked into snapshots/<epoch>.export. When the
//    core persists the view (the checkpoint is stable), a background thread makes
//    the export a small database of its own, snapshots/<epoch>.view, and the
//    RocksDB snapshot is released at once; nothing of the state is copied. If the
//    export failed, the view is written out as a whole-state file from the
//    RocksDB snapshot instead (daemon/snapshot_files.h). Persisted views survive
//    restarts.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "consensus/kv/kv_storage.h"
#include "daemon/snapshot_files.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Snapshot;
class WriteBatch;
class Status;
struct ExportImportFilesMetaData;
}  // namespace rocksdb

namespace tob::daemon {

class KvBackend final : public consensus::kv::StateBackend {
  public:
    KvBackend(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string where,
              const std::filesystem::path& snapshots_dir);
    ~KvBackend() override;
    KvBackend(const KvBackend&) = delete;
    KvBackend& operator=(const KvBackend&) = delete;

    std::optional<consensus::Bytes> get(consensus::ByteView key) const override;
    void commit(consensus::kv::KvBatch batch) override;
    void scan(consensus::ByteView from, consensus::ByteView to,
              const consensus::kv::ScanFn& fn) const override;
    void erase_range(consensus::ByteView from, consensus::ByteView to) override;
    void hold_view(consensus::Epoch id, consensus::Bytes prefix) override;
    void persist_view(consensus::Epoch id, consensus::Bytes meta) override;
    void drop_view(consensus::Epoch id) override;
    std::vector<consensus::Epoch> persisted_views() const override;
    std::optional<consensus::Bytes> view_meta(consensus::Epoch id) const override;
    bool scan_view(consensus::Epoch id, std::uint32_t bucket, consensus::ByteView after,
                   const consensus::kv::ScanFn& fn) const override;

    // ---- group commit (NodeStorage) ---------------------------------------------
    void set_group_commit(bool on) { group_commit_ = on; }
    /// NodeStorage's disk-full rule (storage.h): a problem when `bytes` may not be
    /// written. The state's own writes outside NodeStorage::append (staged epochs
    /// written before a scan or a checkpoint, range erases) follow it too, and a
    /// full disk there fail-stops the process with exit code 3, as it does there.
    using SpaceCheck = std::function<std::optional<std::string>(std::size_t bytes)>;
    void set_space_check(SpaceCheck check) { space_check_ = std::move(check); }

    /// A checkpoint is kept as a view (its table files linked) when the state's
    /// table files and memtable hold at least this many bytes, else as a file
    /// (a copy): a view's fixed cost (a flush, small table files to compact, a
    /// database to create) exceeds a copy of a small state. Tests set 0.
    static constexpr std::uint64_t kViewMinStateBytes = 16u << 20;
    void set_view_min_state_bytes(std::uint64_t bytes) { view_min_state_bytes_ = bytes; }
    bool has_staged() const { return !staged_.empty(); }
    /// Adds the staged changes to `wb` (the caller writes it synced) and clears them.
    rocksdb::Status take_staged(rocksdb::WriteBatch& wb);

    SnapshotFiles& files() { return *files_; }
    /// Ranges erased since the last call (for compaction in the background).
    std::vector<std::pair<std::string, std::string>> take_erased();

  private:
    void flush_staged() const;
    /// Exports the state's table files for view `id` (nullptr if that failed);
    /// `memtable_bytes` is what the export's flush will write.
    std::shared_ptr<const rocksdb::ExportImportFilesMetaData> export_state(
        consensus::Epoch id, std::uint64_t memtable_bytes);
    /// An exported table file without any key (range deletions only), if any.
    std::optional<std::string> range_deletions_only(
        const rocksdb::ExportImportFilesMetaData& exported) const;
    [[noreturn]] void fatal(const std::string& what) const;
    /// A write of the state failed or was refused for want of space: stop with
    /// exit code 3 and leave the database as a crash leaves it (storage.h).
    [[noreturn]] void disk_full(const std::string& what) const;
    void write_or_stop(rocksdb::WriteBatch& wb, const char* what) const;

    rocksdb::DB* db_;
    rocksdb::ColumnFamilyHandle* cf_;
    std::string where_;
    bool group_commit_ = false;
    SpaceCheck space_check_;
    std::uint64_t view_min_state_bytes_ = kViewMinStateBytes;
    mutable consensus::kv::KvBatch staged_;  // group commit: applied epochs not yet written
    struct Held {
        const rocksdb::Snapshot* snapshot = nullptr;
        consensus::Bytes prefix;
        std::shared_ptr<const rocksdb::ExportImportFilesMetaData> exported;
    };
    std::map<consensus::Epoch, Held> held_;
    std::vector<std::pair<std::string, std::string>> erased_;
    std::unique_ptr<SnapshotFiles> files_;
};

}  // namespace tob::daemon
