// KvBackend: see daemon/kv_backend.h.

#include "daemon/kv_backend.h"

#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <cstdio>
#include <cstdlib>

namespace tob::daemon {

using consensus::Bytes;
using consensus::ByteView;
using consensus::Epoch;
using consensus::kv::KvBatch;
using consensus::kv::ScanFn;

namespace {

rocksdb::Slice slice(ByteView b) {
    return rocksdb::Slice(reinterpret_cast<const char*>(b.data()), b.size());
}
ByteView view(const rocksdb::Slice& s) {
    return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

rocksdb::Status add(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* cf,
                    const KvBatch& batch) {
    rocksdb::Status s;
    for (const auto& [key, value] : batch) {
        s = value ? wb.Put(cf, slice(key), slice(*value)) : wb.Delete(cf, slice(key));
        if (!s.ok()) return s;
    }
    return s;
}

// Iterates [from, to) of `cf` (in `snapshot` if given) until fn returns false.
rocksdb::Status iterate(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                        const rocksdb::Snapshot* snapshot, ByteView from, ByteView to,
                        const ScanFn& fn) {
    rocksdb::ReadOptions options;
    options.snapshot = snapshot;
    options.fill_cache = false;
    const rocksdb::Slice upper = slice(to);
    options.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(options, cf));
    for (it->Seek(slice(from)); it->Valid(); it->Next()) {
        if (!fn(view(it->key()), view(it->value()))) break;
    }
    return it->status();
}

}  // namespace

KvBackend::KvBackend(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string where,
                     const std::filesystem::path& snapshots_dir)
    : db_(db),
      cf_(cf),
      where_(std::move(where)),
      files_(std::make_unique<SnapshotFiles>(snapshots_dir)) {}

KvBackend::~KvBackend() {
    files_.reset();  // joins the writer, which releases the snapshots it was given
    for (auto& [id, h] : held_) db_->ReleaseSnapshot(h.snapshot);
}

void KvBackend::fatal(const std::string& what) const {
    std::fprintf(stderr,
                 "tobd: FATAL: %s: %s. The state machine cannot continue; stopping. Free disk "
                 "space or fix the I/O error, then restart; if the data dir is corrupt, move it "
                 "aside: the node catches up from its peers.\n",
                 where_.c_str(), what.c_str());
    std::fflush(stderr);
    std::abort();
}

std::optional<Bytes> KvBackend::get(ByteView key) const {
    if (!staged_.empty()) {
        auto it = staged_.find(Bytes(key.begin(), key.end()));
        if (it != staged_.end()) return it->second;
    }
    rocksdb::PinnableSlice value;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, slice(key), &value);
    if (s.IsNotFound()) return std::nullopt;
    // Never read an error as "absent": this node would compute another state.
    if (!s.ok()) fatal("reading the replicated state (column family kv) failed: " + s.ToString());
    const auto* p = reinterpret_cast<const std::uint8_t*>(value.data());
    return Bytes(p, p + value.size());
}

void KvBackend::commit(KvBatch batch) {
    if (batch.empty()) return;
    if (group_commit_) {
        // Staged: visible to get() at once, made durable by the next
        // NodeStorage::append in the same synced batch as that step's records.
        // A later value of a key replaces the staged one.
        consensus::kv::merge_batch(staged_, std::move(batch));
        return;
    }
    rocksdb::WriteBatch wb;
    rocksdb::Status s = add(wb, cf_, batch);
    if (s.ok()) {
        rocksdb::WriteOptions options;
        options.sync = true;
        s = db_->Write(options, &wb);
    }
    if (!s.ok()) {
        fatal("writing an epoch of the replicated state (" + std::to_string(batch.size()) +
              " keys, synced) failed: " + s.ToString());
    }
}

rocksdb::Status KvBackend::take_staged(rocksdb::WriteBatch& wb) {
    rocksdb::Status s = add(wb, cf_, staged_);
    staged_.clear();
    return s;
}

void KvBackend::disk_full(const std::string& what) const {
    std::fprintf(stderr,
                 "tobd: CRITICAL: %s: %s: stopping without sending (fail-stop, exit code 3). Free "
                 "disk space, then restart.\n",
                 where_.c_str(), what.c_str());
    std::fflush(stderr);
    std::_Exit(3);
}

void KvBackend::write_or_stop(rocksdb::WriteBatch& wb, const char* what) const {
    if (space_check_) {
        if (auto problem = space_check_(wb.GetDataSize())) disk_full(*problem);
    }
    // Not synced: the next synced write (the step's records) makes it durable, in order.
    const rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &wb);
    if (s.IsNoSpace()) disk_full(std::string(what) + " failed: " + s.ToString());
    if (!s.ok()) fatal(std::string(what) + " failed: " + s.ToString());
}

void KvBackend::flush_staged() const {
    if (staged_.empty()) return;
    rocksdb::WriteBatch wb;
    const rocksdb::Status s = add(wb, cf_, staged_);
    if (!s.ok()) fatal("batching staged state failed: " + s.ToString());
    write_or_stop(wb, "writing staged state");
    staged_.clear();
}

void KvBackend::scan(ByteView from, ByteView to, const ScanFn& fn) const {
    flush_staged();
    const rocksdb::Status s = iterate(db_, cf_, nullptr, from, to, fn);
    if (!s.ok()) fatal("scanning the replicated state failed: " + s.ToString());
}

void KvBackend::erase_range(ByteView from, ByteView to) {
    flush_staged();
    // Nothing to erase, nothing written: a range deletion over no key would end up
    // as a table file of range deletions only, which a checkpoint's export cannot
    // hand to RocksDB 7.8's import (export_state). The state erases its staging
    // area at every start, usually empty.
    bool any = false;
    (void)iterate(db_, cf_, nullptr, from, to, [&](ByteView, ByteView) {
        any = true;
        return false;
    });
    if (!any) return;
    rocksdb::WriteBatch wb;
    const rocksdb::Status s = wb.DeleteRange(cf_, slice(from), slice(to));
    if (!s.ok()) fatal("batching a range erase of the replicated state failed: " + s.ToString());
    write_or_stop(wb, "erasing a range of the replicated state");
    erased_.emplace_back(std::string(reinterpret_cast<const char*>(from.data()), from.size()),
                         std::string(reinterpret_cast<const char*>(to.data()), to.size()));
}

std::vector<std::pair<std::string, std::string>> KvBackend::take_erased() {
    return std::exchange(erased_, {});
}

std::shared_ptr<const rocksdb::ExportImportFilesMetaData> KvBackend::export_state(
    Epoch id, std::uint64_t memtable_bytes) {
    files_->discard_export(id);
    // The export flushes the state's memtable: not on a disk that cannot take it.
    if (space_check_) {
        if (auto problem = space_check_(memtable_bytes)) {
            files_->note_failure(where_ + ": no export for checkpoint " + std::to_string(id) +
                                 ": " + *problem);
            return nullptr;
        }
    }
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(db_, &raw);
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    rocksdb::ExportImportFilesMetaData* exported = nullptr;
    // Flushes the state's memtable (nothing is written that a flush would not
    // write later) and links its table files: the state as of now, which is the
    // checkpoint's, since the loop applies nothing while this runs.
    if (s.ok()) s = checkpoint->ExportColumnFamily(cf_, files_->export_dir(id).string(), &exported);
    std::shared_ptr<const rocksdb::ExportImportFilesMetaData> out(exported);
    std::string why = s.ToString();
    if (s.ok() && out) {
        if (auto file = range_deletions_only(*out)) {
            why = "table file " + *file +
                  " holds only range deletions, which RocksDB 7.8 cannot import";
        } else {
            return out;
        }
    }
    files_->discard_export(id);
    files_->note_failure(where_ + ": exporting the state for checkpoint " + std::to_string(id) +
                         " failed (a whole-state file is written instead): " + why);
    return nullptr;
}

std::optional<std::string> KvBackend::range_deletions_only(
    const rocksdb::ExportImportFilesMetaData& exported) const {
    // RocksDB 7.8's import reads each file's first key and asserts that there is
    // one (the process aborts). Such a file is rare: the state's range erases
    // cover keys, and an erase of an empty range writes nothing (erase_range).
    rocksdb::TablePropertiesCollection live;
    (void)db_->GetPropertiesOfAllTables(cf_, &live);
    for (const auto& f : exported.files) {
        std::shared_ptr<const rocksdb::TableProperties> props;
        if (auto it = live.find(f.db_path + f.name); it != live.end()) {
            props = it->second;
        } else {  // compacted away since: read the exported link itself
            rocksdb::SstFileReader reader{rocksdb::Options()};
            if (reader.Open(f.db_path + f.name).ok()) props = reader.GetTableProperties();
        }
        if (!props || props->num_entries <= props->num_range_deletions) return f.db_path + f.name;
    }
    return std::nullopt;
}

void KvBackend::hold_view(Epoch id, Bytes prefix) {
    flush_staged();
    if (auto it = held_.find(id); it != held_.end()) db_->ReleaseSnapshot(it->second.snapshot);
    std::uint64_t tables = 0, memtables = 0;
    (void)db_->GetIntProperty(cf_, "rocksdb.live-sst-files-size", &tables);
    (void)db_->GetIntProperty(cf_, "rocksdb.cur-size-all-mem-tables", &memtables);
    const bool view = tables + memtables >= view_min_state_bytes_;
    held_[id] =
        Held{db_->GetSnapshot(), std::move(prefix), view ? export_state(id, memtables) : nullptr};
}

void KvBackend::persist_view(Epoch id, Bytes meta) {
    auto it = held_.find(id);
    if (it == held_.end()) return;
    const Held h = it->second;
    held_.erase(it);
    if (h.exported) {
        // The exported files hold the state: the snapshot is not needed.
        db_->ReleaseSnapshot(h.snapshot);
        files_->import_async(id, std::move(meta), h.prefix, h.exported);
        return;
    }
    rocksdb::DB* db = db_;
    rocksdb::ColumnFamilyHandle* cf = cf_;
    auto source = [db, cf, h](std::uint32_t b, const ScanFn& fn) {
        (void)SnapshotFiles::scan_bucket(db, cf, h.snapshot, h.prefix, b, {}, fn);
    };
    files_->write_async(id, std::move(meta), std::move(source),
                        [db, h] { db->ReleaseSnapshot(h.snapshot); });
}

void KvBackend::drop_view(Epoch id) {
    if (auto it = held_.find(id); it != held_.end()) {
        db_->ReleaseSnapshot(it->second.snapshot);
        if (it->second.exported) files_->discard_export(id);
        held_.erase(it);
    }
    files_->remove(id);
}

std::vector<Epoch> KvBackend::persisted_views() const { return files_->complete(); }

std::optional<Bytes> KvBackend::view_meta(Epoch id) const { return files_->meta(id); }

bool KvBackend::scan_view(Epoch id, std::uint32_t bucket, ByteView after, const ScanFn& fn) const {
    auto it = held_.find(id);
    if (it == held_.end()) return files_->scan(id, bucket, after, fn);
    return SnapshotFiles::scan_bucket(db_, cf_, it->second.snapshot, it->second.prefix, bucket,
                                      after, fn);
}

}  // namespace tob::daemon
