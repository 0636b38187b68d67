#pragma once
// SnapshotFiles: the durable copies of stable checkpoints a node serves to peers
// (docs/protocol.md, "Checkpoints"), in <data_dir>/snapshots/, of two kinds:
//
//  - A view, <epoch>.view/: a small RocksDB database whose one column family
//    "kv" is the state's table files at the checkpoint, hard links to the files
//    the node's own database had when the checkpoint was taken (KvBackend exports
//    them, import_async turns the export into the database in the background),
//    plus the file TOBVIEW: "TOBVIEW1", u32 prefix length, the live key prefix,
//    u32 meta length, meta, "TOBVEND1". Nothing of the state is copied: a view
//    costs a flush of the state's memtable and some links, whatever the state's
//    size; its files take disk space only once the node's database has compacted
//    them away (docs/decisions.md, "Checkpoint views").
//  - A file, <epoch>.snap: the whole state in the format below, written from a
//    RocksDB snapshot when no view could be exported, by `tobd --import-snapshot`
//    and read and written by `tobd --export-snapshot` / `--import-snapshot`.
//
// File format (all integers big endian):
//   "TOBSNAP1"
//   u32 meta length, meta       consensus::encode_held(): epoch, root, manifest,
//                               certificate (the COMMITs that make it verifiable)
//   buckets 0..255 in order, each the bucket's entries in key order:
//                               u32 key length, key, u32 value length, value
//   "TOBSNEND"
// The manifest gives each bucket's count and bytes, hence where each bucket
// starts. A file is written as <epoch>.snap.tmp, fsynced and renamed, so a file
// with the final name is complete; a reader still checks the trailer and the
// sizes against the manifest. Nothing here checks the hashes: a reader that
// installs a file checks it (snapshot_tool.h), and a peer checks every chunk.
//
// Thread safety: one writer thread; every public method may be called from any
// thread.

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "consensus/kv/kv_storage.h"
#include "consensus/state_transfer.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Snapshot;
struct ExportImportFilesMetaData;
}  // namespace rocksdb

namespace tob::daemon {

class SnapshotFiles {
  public:
    /// Reads the bucket `b` of the state being saved (called in the writer thread).
    using Source = std::function<void(std::uint32_t b, const consensus::kv::ScanFn& fn)>;

    /// Loads the complete files of `dir` (created if missing); removes stale .tmp files.
    explicit SnapshotFiles(std::filesystem::path dir);
    ~SnapshotFiles();
    SnapshotFiles(const SnapshotFiles&) = delete;
    SnapshotFiles& operator=(const SnapshotFiles&) = delete;

    /// Writes checkpoint `id` in the background; `release` runs (in the writer
    /// thread) when `source` is no longer needed, whatever happens.
    void write_async(consensus::Epoch id, consensus::Bytes meta, Source source,
                     std::function<void()> release);
    /// Where the state's table files of checkpoint `id` are exported to (hard
    /// links); left-overs are removed when the store is opened.
    std::filesystem::path export_dir(consensus::Epoch id) const;
    /// Makes the files exported to export_dir(id) the view of checkpoint `id`, in
    /// the background; `prefix` is the live key prefix of the exported state.
    void import_async(consensus::Epoch id, consensus::Bytes meta, consensus::Bytes prefix,
                      std::shared_ptr<const rocksdb::ExportImportFilesMetaData> exported);
    /// Removes export_dir(id) if it exists (an export that will not be imported).
    void discard_export(consensus::Epoch id);
    /// Counts a failure that happened outside the writer (an export), for failures().
    void note_failure(std::string what);
    /// Forgets checkpoint `id`: cancels its write or deletes its file or view.
    void remove(consensus::Epoch id);
    /// Complete files, oldest first.
    std::vector<consensus::Epoch> complete() const;
    std::optional<consensus::Bytes> meta(consensus::Epoch id) const;
    /// The file (<epoch>.snap) or the view's directory (<epoch>.view).
    std::optional<std::filesystem::path> path(consensus::Epoch id) const;
    bool is_view(consensus::Epoch id) const;
    /// The entries of bucket `b` of file `id` after `after` (all if empty), in key
    /// order, until fn returns false; false if there is no such complete file.
    bool scan(consensus::Epoch id, std::uint32_t b, consensus::ByteView after,
              const consensus::kv::ScanFn& fn) const;
    /// Writes that failed (I/O errors), for the log and metrics.
    std::uint64_t failures() const;
    std::string last_failure() const;
    /// Waits until no write is queued or running (tests, offline tools).
    void wait_idle();

    /// Bucket `b` of a state stored under `prefix` ‖ u16 BE bucket ‖ key in `cf`
    /// (read at `snapshot`, if any), the entries after key `after` (all if empty)
    /// in key order, keys without prefix and bucket, until fn returns false. The
    /// one reader of such a range: a view's database, and KvBackend's RocksDB
    /// snapshots. False on a read error.
    static bool scan_bucket(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                            const rocksdb::Snapshot* snapshot, consensus::ByteView prefix,
                            std::uint32_t b, consensus::ByteView after,
                            const consensus::kv::ScanFn& fn);

    // ---- the format, for the offline tools ---------------------------------------
    /// Writes a complete snapshot file at `path` (tmp + fsync + rename). Returns an
    /// error message on failure.
    static std::optional<std::string> write_file(const std::filesystem::path& path,
                                                 const consensus::Bytes& meta,
                                                 const Source& source);
    /// Reads a file's meta and calls fn(bucket, key, value) for every entry in
    /// file order (stops when fn returns false). An error message on a malformed
    /// file (bad magic or trailer, sizes off the manifest, truncation).
    using EntryFn = std::function<bool(std::uint32_t bucket, consensus::ByteView key,
                                       consensus::ByteView value)>;
    static std::optional<std::string> read_file(const std::filesystem::path& path,
                                                consensus::HeldCheckpoint& held, const EntryFn& fn);

  private:
    struct Job {
        consensus::Epoch id = 0;
        consensus::Bytes meta;
        Source source;  // a file, or
        std::function<void()> release;
        std::shared_ptr<const rocksdb::ExportImportFilesMetaData> exported;  // a view
        consensus::Bytes prefix;
    };
    struct View;  // an open view database
    struct File {
        consensus::Bytes meta;
        std::vector<std::uint64_t> offsets;  // start of each bucket, and the end
        bool view = false;                   // a view: offsets empty, prefix set
        consensus::Bytes prefix;
        mutable std::shared_ptr<View> open;  // opened at its first scan
    };
    /// Queues a job; of the queued, only the two newest are kept (the rest released).
    void enqueue(Job job);
    void run();
    void finish_file(Job& job, const std::optional<std::string>& problem, bool cancelled);
    void finish_view(Job& job, const std::optional<std::string>& problem, bool cancelled);
    std::optional<std::string> import_view(const Job& job) const;
    bool scan_view(consensus::Epoch id, std::uint32_t b, consensus::ByteView after,
                   const consensus::kv::ScanFn& fn) const;
    std::filesystem::path file_of(consensus::Epoch id) const;
    std::filesystem::path view_of(consensus::Epoch id) const;

    std::filesystem::path dir_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<Job> queue_;
    std::optional<consensus::Epoch> writing_;
    bool cancel_ = false;
    bool stop_ = false;
    std::map<consensus::Epoch, File> files_;
    // The file offset after the last entry a scan returned, per (id, bucket, key):
    // a chunk that continues a big bucket starts there instead of at its start.
    mutable std::map<std::tuple<consensus::Epoch, std::uint32_t, consensus::Bytes>, std::uint64_t>
        resume_;
    std::uint64_t failures_ = 0;
    std::string last_failure_;
    std::thread thread_;
};

}  // namespace tob::daemon
