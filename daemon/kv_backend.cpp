// KvBackend: see daemon/kv_backend.h.

#include "daemon/kv_backend.h"

#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
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

void KvBackend::flush_staged() const {
    if (staged_.empty()) return;
    rocksdb::WriteBatch wb;
    rocksdb::Status s = add(wb, cf_, staged_);
    // Not synced: the next synced write (the step's records) makes it durable, in order.
    if (s.ok()) s = db_->Write(rocksdb::WriteOptions(), &wb);
    if (!s.ok()) fatal("writing staged state failed: " + s.ToString());
    staged_.clear();
}

void KvBackend::scan(ByteView from, ByteView to, const ScanFn& fn) const {
    flush_staged();
    const rocksdb::Status s = iterate(db_, cf_, nullptr, from, to, fn);
    if (!s.ok()) fatal("scanning the replicated state failed: " + s.ToString());
}

void KvBackend::erase_range(ByteView from, ByteView to) {
    flush_staged();
    const rocksdb::Status s =
        db_->DeleteRange(rocksdb::WriteOptions(), cf_, slice(from), slice(to));
    if (!s.ok()) fatal("erasing a range of the replicated state failed: " + s.ToString());
    erased_.emplace_back(std::string(reinterpret_cast<const char*>(from.data()), from.size()),
                         std::string(reinterpret_cast<const char*>(to.data()), to.size()));
}

std::vector<std::pair<std::string, std::string>> KvBackend::take_erased() {
    return std::exchange(erased_, {});
}

std::shared_ptr<const rocksdb::ExportImportFilesMetaData> KvBackend::export_state(Epoch id) {
    files_->discard_export(id);
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(db_, &raw);
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    rocksdb::ExportImportFilesMetaData* exported = nullptr;
    // Flushes the state's memtable (nothing is written that a flush would not
    // write later) and links its table files: the state as of now, which is the
    // checkpoint's, since the loop applies nothing while this runs.
    if (s.ok()) s = checkpoint->ExportColumnFamily(cf_, files_->export_dir(id).string(), &exported);
    std::shared_ptr<const rocksdb::ExportImportFilesMetaData> out(exported);
    if (s.ok() && out) return out;
    files_->discard_export(id);
    files_->note_failure(where_ + ": exporting the state for checkpoint " + std::to_string(id) +
                         " failed (a whole-state file is written instead): " + s.ToString());
    return nullptr;
}

void KvBackend::hold_view(Epoch id, Bytes prefix) {
    flush_staged();
    if (auto it = held_.find(id); it != held_.end()) db_->ReleaseSnapshot(it->second.snapshot);
    held_[id] = Held{db_->GetSnapshot(), std::move(prefix), export_state(id)};
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
        Bytes lo = h.prefix, hi = h.prefix;
        lo.push_back(static_cast<std::uint8_t>(b >> 8));
        lo.push_back(static_cast<std::uint8_t>(b));
        hi.push_back(static_cast<std::uint8_t>((b + 1) >> 8));
        hi.push_back(static_cast<std::uint8_t>(b + 1));
        const std::size_t head = lo.size();
        (void)iterate(db, cf, h.snapshot, lo, hi,
                      [&](ByteView k, ByteView v) { return fn(k.subspan(head), v); });
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
    const Held& h = it->second;
    Bytes lo = h.prefix, hi = h.prefix;
    lo.push_back(static_cast<std::uint8_t>(bucket >> 8));
    lo.push_back(static_cast<std::uint8_t>(bucket));
    hi.push_back(static_cast<std::uint8_t>((bucket + 1) >> 8));
    hi.push_back(static_cast<std::uint8_t>(bucket + 1));
    const std::size_t head = lo.size();
    Bytes start = lo;
    start.insert(start.end(), after.begin(), after.end());
    const rocksdb::Status s = iterate(db_, cf_, h.snapshot, start, hi, [&](ByteView k, ByteView v) {
        const ByteView key = k.subspan(head);
        if (!after.empty() && std::equal(key.begin(), key.end(), after.begin(), after.end())) {
            return true;
        }
        return fn(key, v);
    });
    return s.ok();
}

}  // namespace tob::daemon
