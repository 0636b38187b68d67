#include "daemon/storage.h"

#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

#include "crypto/durable_file.h"
#include "crypto/hash.h"
#include "daemon/block_refs.h"
#include "daemon/record_value.h"
#include "daemon/storage_open.h"

namespace tob::daemon {

namespace fs = std::filesystem;
using consensus::DurableRecord;

namespace {

constexpr char kRecordPrefix = 'r';
constexpr std::size_t kRecordKeySize = 1 + 8 + 8;
constexpr std::string_view kSeqKey = "meta/next_record_seq";
// The records floor: records and blocks of lower epochs are pruned (u64 BE).
constexpr std::string_view kFloorKey = "meta/records_floor";
constexpr std::size_t kMarkerBytesMax = 4096;

void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::uint64_t get_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
    return v;
}

std::string one_line(std::string text) {
    for (char& c : text) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    if (text.size() > 1000) text.resize(1000);
    return text;
}

// The first line of an existing marker file (bounded read), or the reason it
// could not be read.
std::string read_marker(const fs::path& path) {
    std::string text;
    if (auto problem = crypto::read_small_file(path, kMarkerBytesMax, text)) {
        return "(marker present but unreadable: " + problem->problem + ")";
    }
    const std::size_t nl = text.find('\n');
    if (nl != std::string::npos) text.resize(nl);
    if (text.empty()) text = "(marker present, no reason recorded)";
    return text;
}

}  // namespace

// --- NodeStorage -------------------------------------------------------------

std::string NodeStorage::record_key(consensus::Epoch epoch, std::uint64_t seq) {
    std::string key;
    key.reserve(kRecordKeySize);
    key.push_back(kRecordPrefix);
    put_u64(key, epoch);
    put_u64(key, seq);
    return key;
}

NodeStorage::NodeStorage() = default;

NodeStorage::~NodeStorage() {
    {
        std::lock_guard lock(compact_mutex_);
        compact_stop_ = true;
    }
    compact_cv_.notify_all();
    if (db_) db_->DisableManualCompaction();
    if (compactor_.joinable()) compactor_.join();
    kv_.reset();
    std::uint64_t background_errors = 0;
    if (db_) (void)db_->GetIntProperty("rocksdb.background-errors", &background_errors);
    if (db_ && (write_failed_ || background_errors > 0)) {
        // After a failed write the database is left as a crash leaves it (the WAL
        // has every synced batch): closing it flushes the WAL file again, which
        // RocksDB 7.8 does not allow after an error (an assertion aborted the
        // process after its clean fail-stop in faults_disk_full).
        (void)db_.release();
        return;
    }
    if (db_) {
        for (auto* cf : {default_cf_, records_cf_, kv_cf_, blocks_cf_}) {
            if (cf) db_->DestroyColumnFamilyHandle(cf);
        }
        (void)db_->Close();
        db_.reset();
    }
}

Outcome<std::unique_ptr<NodeStorage>> NodeStorage::open(const fs::path& data_dir_in) {
    Outcome<std::unique_ptr<NodeStorage>> out;
    auto fail = [&](std::string message) {
        out.errors.push_back(std::move(message));
        return std::move(out);
    };
    fs::path data_dir;
    if (auto problem = storage_open::prepare_data_dir(data_dir_in, data_dir)) return fail(*problem);
    storage_open::OpenAttempt attempt;
    std::string recovery_note;
    if (auto problem = storage_open::open_db_recovering(data_dir, attempt, recovery_note))
        return fail(*problem);

    std::unique_ptr<NodeStorage> storage(new NodeStorage());
    storage->data_dir_ = data_dir;
    storage->db_.reset(attempt.db);
    storage->default_cf_ = attempt.handles.at(0);
    storage->records_cf_ = attempt.handles.at(1);
    storage->kv_cf_ = attempt.handles.at(2);
    storage->blocks_cf_ = attempt.handles.at(3);
    storage->kv_ = std::make_unique<KvBackend>(attempt.db, storage->kv_cf_,
                                               storage->db_path().string() + " (state)",
                                               data_dir / "snapshots");
    {
        NodeStorage* self = storage.get();
        storage->kv_->set_space_check(
            [self](std::size_t bytes) { return self->check_free_space(bytes); });
    }

    {
        std::lock_guard lock(storage->mutex_);
        storage->load_damage_state_locked(recovery_note);
        if (auto problem = storage->restore_record_counter_locked()) return fail(*problem);
        if (auto problem = storage->restore_records_floor_locked()) return fail(*problem);
    }
    NodeStorage* raw = storage.get();
    storage->compactor_ = std::thread([raw] { raw->compact_loop(); });
    out.value = std::move(storage);
    return out;
}

void NodeStorage::load_damage_state_locked(const std::string& recovery_note) {
    const fs::path marker = data_dir_ / kDamageMarker;
    std::error_code ec;
    if (fs::exists(fs::symlink_status(marker, ec))) {
        damaged_ = true;
        damage_reason_ =
            "marked damaged by an earlier run (" + marker.string() + "): " + read_marker(marker);
    }
    if (!recovery_note.empty()) {
        if (auto problem = mark_damaged_locked(recovery_note)) {
            damage_reason_ += " [" + *problem + "]";
        }
    }
}

std::optional<std::string> NodeStorage::restore_record_counter_locked() {
    // The stored counter, and (defensively) one past the seq of the largest key. A
    // full key scan only if the counter is missing while records exist.
    std::optional<std::uint64_t> stored_seq;
    std::vector<std::string> seq_problems;
    {
        std::string value;
        const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), default_cf_, kSeqKey, &value);
        if (s.ok() && value.size() == 8) {
            stored_seq = get_u64(value.data());
        } else if (s.ok()) {
            seq_problems.push_back("record counter has " + std::to_string(value.size()) +
                                   " bytes, expected 8");
        } else if (!s.IsNotFound()) {
            seq_problems.push_back("reading the record counter failed: " + s.ToString());
        }
    }
    std::uint64_t next = stored_seq.value_or(0);
    {
        std::unique_ptr<rocksdb::Iterator> it(
            db_->NewIterator(rocksdb::ReadOptions(), records_cf_));
        const bool full_scan = !stored_seq.has_value();
        if (full_scan) {
            it->SeekToFirst();
        } else {
            it->SeekToLast();
        }
        for (; it->Valid(); full_scan ? it->Next() : it->Prev()) {
            const rocksdb::Slice key = it->key();
            if (key.size() == kRecordKeySize && key[0] == kRecordPrefix) {
                const std::uint64_t seq = get_u64(key.data() + 9);
                if (seq != UINT64_MAX) next = std::max(next, seq + 1);
            }
            if (!full_scan) break;
        }
        if (!it->status().ok())
            seq_problems.push_back("scanning the records failed: " + it->status().ToString());
    }
    if (!seq_problems.empty()) {
        std::string reason = "records column family unreadable at open:";
        for (const auto& p : seq_problems) reason += " " + p + ";";
        if (!stored_seq.has_value()) {
            // Without a counter a new record could overwrite an old one.
            return db_path().string() + ": " + reason +
                   " the data dir is corrupt. Stop the node, move " + data_dir_.string() +
                   " aside and start again: the node catches up from its peers";
        }
        if (auto problem = mark_damaged_locked(reason)) damage_reason_ += " [" + *problem + "]";
    }
    next_seq_ = next;
    return std::nullopt;
}

std::optional<std::string> NodeStorage::mark_damaged_locked(const std::string& reason) {
    const bool first = !damaged_;
    damaged_ = true;
    if (first) damage_reason_ = one_line(reason);
    const fs::path marker = data_dir_ / kDamageMarker;
    std::error_code ec;
    if (fs::exists(fs::symlink_status(marker, ec))) return std::nullopt;
    if (auto problem = crypto::write_file_durably(marker, one_line(reason) + "\n")) {
        return "could not write the damage marker: " + problem->message;
    }
    return std::nullopt;
}

void NodeStorage::set_group_commit(bool on) {
    std::lock_guard lock(mutex_);
    kv_->set_group_commit(on);
}

bool NodeStorage::has_staged() const {
    std::lock_guard lock(mutex_);
    return kv_->has_staged();
}

std::optional<std::string> NodeStorage::append(const std::vector<DurableRecord>& records,
                                               bool sync) {
    std::lock_guard lock(mutex_);
    rocksdb::WriteBatch batch;
    std::uint64_t seq = next_seq_;
    auto appended = appended_;
    std::vector<std::string> new_blocks;  // "blocks" keys this batch writes
    for (const auto& record : records) {
        if (record.type == DurableRecord::Type::HighWater) continue;  // the mark file's job
        auto& counted = appended[static_cast<std::uint8_t>(record.type) % kAppendedKinds];
        const std::size_t before = batch.GetDataSize();
        const std::string value = stored_value_locked(record, batch, new_blocks);
        const rocksdb::Status s = batch.Put(records_cf_, record_key(record.epoch, seq), value);
        counted += batch.GetDataSize() - before;
        if (!s.ok()) {
            return db_path().string() + ": cannot batch a " +
                   record_value::type_name(static_cast<std::uint8_t>(record.type)) +
                   " record of epoch " + std::to_string(record.epoch) + ": " + s.ToString();
        }
        ++seq;
    }
    const bool kv_staged = kv_ && kv_->has_staged();
    if (seq == next_seq_ && !kv_staged) return std::nullopt;  // nothing to store
    std::string counter;
    put_u64(counter, seq);
    rocksdb::Status s = batch.Put(default_cf_, kSeqKey, counter);
    const std::size_t before_kv = batch.GetDataSize();
    if (s.ok() && kv_staged) s = kv_->take_staged(batch);
    appended[0] += batch.GetDataSize() - before_kv;
    if (s.ok()) {
        if (auto problem = check_free_space_locked(batch.GetDataSize())) {
            write_failed_ = true;
            return problem;
        }
        rocksdb::WriteOptions options;
        options.sync = sync;
        s = db_->Write(options, &batch);
        ++(sync ? writes_.synced : writes_.unsynced);
    }
    // Advance even on failure: the write may have reached the disk in part of the
    // cases RocksDB reports as failed, and a gap in seq is harmless.
    const std::uint64_t count = seq - next_seq_;
    next_seq_ = seq;
    if (!s.ok()) {
        write_failed_ = true;
        return db_path().string() + (sync ? ": synced" : ": unsynced") + " write of " +
               std::to_string(count) + " records failed: " + s.ToString();
    }
    appended_ = appended;
    stored_blocks_.insert(new_blocks.begin(), new_blocks.end());
    return std::nullopt;
}

void NodeStorage::set_free_space_probe_for_testing(
    std::function<std::optional<std::uint64_t>()> probe) {
    std::lock_guard lock(mutex_);
    free_space_probe_ = std::move(probe);
}

std::optional<std::string> NodeStorage::check_free_space(std::size_t batch_bytes) const {
    std::lock_guard lock(mutex_);
    return check_free_space_locked(batch_bytes);
}

std::optional<std::string> NodeStorage::check_free_space_locked(std::size_t batch_bytes) const {
    std::optional<std::uint64_t> free;
    if (free_space_probe_) {
        free = free_space_probe_();
    } else if (struct statvfs st{}; ::statvfs(data_dir_.c_str(), &st) == 0) {
        free = std::uint64_t{st.f_bavail} * st.f_frsize;
    }
    const std::uint64_t need = kFreeSpaceReserve + 2 * std::uint64_t{batch_bytes};
    if (!free || *free >= need) return std::nullopt;  // unknown: RocksDB will tell
    return db_path().string() + ": only " + std::to_string(*free) +
           " bytes free on its file system, " + std::to_string(need) + " needed for a batch of " +
           std::to_string(batch_bytes) + " bytes and the reserve: not written (disk full)";
}

std::string NodeStorage::stored_value_locked(const DurableRecord& record,
                                             rocksdb::WriteBatch& batch,
                                             std::vector<std::string>& new_blocks) {
    const auto pieces = block_refs::pieces(record);
    if (pieces.empty()) return record_value::encode(record);
    for (const auto& p : pieces) {
        std::string k = block_refs::key(record.epoch, p.hash);
        if (stored_blocks_.count(k) ||
            std::find(new_blocks.begin(), new_blocks.end(), k) != new_blocks.end()) {
            continue;
        }
        const rocksdb::Slice envelope(reinterpret_cast<const char*>(record.bytes.data()) + p.offset,
                                      p.size);
        if (!batch.Put(blocks_cf_, k, envelope).ok()) return record_value::encode(record);
        new_blocks.push_back(std::move(k));
    }
    const std::string body = block_refs::encode(record.bytes, pieces);
    return record_value::encode(record, &body);
}

std::optional<consensus::Bytes> NodeStorage::rebuild_locked(consensus::Epoch epoch,
                                                            consensus::ByteView body,
                                                            bool check_hashes,
                                                            std::string& problem) const {
    rocksdb::ReadOptions options;
    options.verify_checksums = true;
    options.fill_cache = false;
    auto fetch = [&](const std::string& k) -> std::optional<std::string> {
        std::string envelope;
        const rocksdb::Status s = db_->Get(options, blocks_cf_, k, &envelope);
        if (s.ok()) return envelope;
        if (!s.IsNotFound()) problem = "reading its block failed: " + s.ToString();
        return std::nullopt;
    };
    auto out = block_refs::rebuild(epoch, body, fetch, problem, check_hashes);
    return out;
}

LoadedRecords NodeStorage::load_records(consensus::Epoch from_epoch, consensus::Epoch to_epoch) {
    constexpr consensus::Epoch kNoUpperBound = ~consensus::Epoch{0};
    std::lock_guard lock(mutex_);
    LoadedRecords out;
    std::vector<std::string> sign_log_problems;
    const std::string where = db_path().string();

    rocksdb::ReadOptions options;
    options.verify_checksums = true;
    options.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options, records_cf_));
    // Records below the floor are pruned, whether or not their table files are
    // gone yet.
    for (it->Seek(record_key(std::max(from_epoch, records_floor_), 0)); it->Valid(); it->Next()) {
        const rocksdb::Slice key = it->key();
        const rocksdb::Slice value = it->value();
        const bool key_ok = key.size() == kRecordKeySize && key[0] == kRecordPrefix;
        const consensus::Epoch epoch = key_ok ? get_u64(key.data() + 1) : 0;
        if (key_ok && epoch >= to_epoch && to_epoch != kNoUpperBound) break;
        const std::string at =
            key_ok ? "record (epoch " + std::to_string(epoch) + ", seq " +
                         std::to_string(get_u64(key.data() + 9)) + ")"
                   : "record with malformed key " +
                         crypto::to_hex(crypto::view(std::string_view(key.data(), key.size())));

        record_value::Judged judged;
        if (!key_ok) {
            judged.type = record_value::trusted_type(std::string_view(value.data(), value.size()));
            judged.problem = "malformed key";
        } else {
            judged = record_value::judge(
                epoch, std::string_view(value.data(), value.size()),
                [&](consensus::ByteView body, bool check_hashes, std::string& problem) {
                    return rebuild_locked(epoch, body, check_hashes, problem);
                });
            if (judged.record) {
                out.records.push_back(std::move(*judged.record));
                continue;
            }
        }
        const std::optional<std::uint8_t> type = judged.type;
        const std::string& problem = judged.problem;
        const std::string shown = type ? record_value::type_name(*type) : "unknown type";
        const std::string line = where + ": corrupt " + at + " of " + shown + ": " + problem;
        if (type && record_value::refetchable_type(*type)) {
            ++out.dropped;
            out.problems.push_back(line + "; dropped (it can be fetched from peers again)");
        } else {
            sign_log_problems.push_back(line);
            out.problems.push_back(line + "; the sign-log cannot be trusted");
        }
    }
    if (!it->status().ok()) {
        const std::string line = where + ": reading the records failed: " + it->status().ToString();
        sign_log_problems.push_back(line);
        out.problems.push_back(line + "; the sign-log cannot be trusted");
    }

    if (!sign_log_problems.empty()) {
        std::string reason = sign_log_problems.front();
        if (sign_log_problems.size() > 1)
            reason += " (and " + std::to_string(sign_log_problems.size() - 1) + " more)";
        if (auto problem = mark_damaged_locked(reason)) out.problems.push_back(*problem);
    } else if (damaged_) {
        out.problems.push_back(where + ": store is marked damaged: " + damage_reason_);
    }
    if (damaged_) out.sign_log_ok = false;
    return out;
}

void NodeStorage::prune_records_below(consensus::Epoch e) {
    if (e == 0) return;
    std::vector<std::pair<std::string, std::string>> erased;
    {
        std::lock_guard lock(mutex_);
        if (e > records_floor_) {
            // Not synced: a lost prune only keeps records that are no longer needed.
            // No range deletion: the records and blocks families are written in
            // epoch order, and a range tombstone [0, e) in a fresh table file would
            // make that file overlap every older one, so that each compaction of it
            // rewrote all the live records and blocks (2.5-2.8 x the payload at the
            // 64-op peak). The floor hides the pruned epochs at once; their table
            // files are deleted whole, in the background, once the floor is durable.
            std::string value;
            put_u64(value, e);
            rocksdb::WriteBatch batch;
            (void)batch.Put(default_cf_, kFloorKey, value);
            (void)db_->Write(rocksdb::WriteOptions(), &batch);
            records_floor_ = e;
        }
        stored_blocks_.erase(stored_blocks_.begin(),
                             stored_blocks_.lower_bound(block_refs::key(e, {})));
        erased = kv_->take_erased();
    }
    {
        std::lock_guard lock(compact_mutex_);
        compact_records_below_ = std::max(compact_records_below_, e);
        for (auto& r : erased) compact_kv_.push_back(std::move(r));
    }
    compact_cv_.notify_all();
}

std::optional<std::string> NodeStorage::restore_records_floor_locked() {
    std::string value;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), default_cf_, kFloorKey, &value);
    if (s.IsNotFound()) return std::nullopt;  // nothing pruned yet, or pruned by range
    if (!s.ok()) return db_path().string() + ": reading the records floor failed: " + s.ToString();
    if (value.size() != 8) {
        return db_path().string() + ": the records floor has " + std::to_string(value.size()) +
               " bytes, expected 8 (the data dir is damaged: move it aside)";
    }
    records_floor_ = get_u64(value.data());
    return std::nullopt;
}

void NodeStorage::compact_loop() {
    std::unique_lock lock(compact_mutex_);
    for (;;) {
        compact_cv_.wait(lock, [&] {
            return compact_stop_ || compact_records_below_ > compacted_records_below_ ||
                   !compact_kv_.empty();
        });
        if (compact_stop_) return;
        const consensus::Epoch below = compact_records_below_;
        auto kv_ranges = std::exchange(compact_kv_, {});
        lock.unlock();
        // The floor's write must be durable before the files below it go: else a
        // crash could bring back an older floor with some of the records above it
        // gone (a Signed record without its block reads as a damaged sign-log).
        if (below > compacted_records_below_ && db_->SyncWAL().ok()) {
            delete_files_below(records_cf_, record_key(0, 0), record_key(below, 0));
            delete_files_below(blocks_cf_, block_refs::key(0, {}), block_refs::key(below, {}));
        }
        rocksdb::CompactRangeOptions options;
        options.exclusive_manual_compaction = false;
        options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
        for (const auto& [a, b] : kv_ranges) {
            rocksdb::Slice ka(a), kb(b);
            (void)db_->CompactRange(options, kv_cf_, &ka, &kb);
        }
        lock.lock();
        compacted_records_below_ = below;
        ++compactions_;
        // At most one round every 30 s: pruning moves a little at every checkpoint.
        compact_cv_.wait_for(lock, std::chrono::seconds(30), [&] { return compact_stop_; });
    }
}

void NodeStorage::delete_files_below(rocksdb::ColumnFamilyHandle* cf, const std::string& lo,
                                     const std::string& hi) {
    const rocksdb::Slice from(lo), to(hi);
    (void)rocksdb::DeleteFilesInRange(db_.get(), cf, &from, &to, /*include_end=*/false);
    // DeleteFilesInRange leaves level 0 alone (its files may overlap). A level-0
    // file wholly below the floor (a jump of the floor, after a catch-up) is moved
    // down first; one that reaches above it waits for the floor to pass it.
    rocksdb::ColumnFamilyMetaData meta;
    db_->GetColumnFamilyMetaData(cf, &meta);
    if (meta.levels.empty()) return;
    std::vector<std::string> dead;
    for (const auto& f : meta.levels[0].files)
        if (f.largestkey < hi) dead.push_back(f.name);
    if (dead.empty() || meta.levels.size() < 2) return;
    if (db_->CompactFiles(rocksdb::CompactionOptions(), cf, dead, 1).ok())
        (void)rocksdb::DeleteFilesInRange(db_.get(), cf, &from, &to, false);
}

std::uint64_t NodeStorage::compactions() const {
    std::lock_guard lock(compact_mutex_);
    return compactions_;
}

std::array<std::uint64_t, NodeStorage::kAppendedKinds> NodeStorage::appended_bytes() const {
    std::lock_guard lock(mutex_);
    return appended_;
}

NodeStorage::WriteCounts NodeStorage::write_counts() const {
    std::lock_guard lock(mutex_);
    return writes_;
}

KvBackend& NodeStorage::kv() { return *kv_; }

bool NodeStorage::damaged() const {
    std::lock_guard lock(mutex_);
    return damaged_;
}

std::string NodeStorage::damage_reason() const {
    std::lock_guard lock(mutex_);
    return damaged_ ? damage_reason_ : std::string();
}

std::uint64_t NodeStorage::approximate_size_bytes() const {
    std::uint64_t total = 0;
    for (auto* cf : {default_cf_, records_cf_, kv_cf_, blocks_cf_}) {
        for (const char* property : {"rocksdb.total-sst-files-size", "rocksdb.total-blob-file-size",
                                     "rocksdb.size-all-mem-tables"}) {
            std::uint64_t value = 0;
            if (db_->GetIntProperty(cf, property, &value)) total += value;
        }
    }
    return total;
}

}  // namespace tob::daemon
