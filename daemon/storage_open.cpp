// Opening a node's RocksDB: daemon/storage_open.h.

#include "daemon/storage_open.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>

namespace tob::daemon::storage_open {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

// RocksDB reports a held LOCK as an IOError: from another process "While lock
// file: <db>/LOCK: Resource temporarily unavailable" (fcntl F_SETLK -> EAGAIN),
// from this process "lock hold by current process, acquire time ...: No locks
// available" (its own table of locked files).
bool is_lock_held(const rocksdb::Status& s) {
    if (!s.IsIOError()) return false;
    const std::string text = s.ToString();
    if (!contains(text, "lock") && !contains(text, "LOCK")) return false;
    return contains(text, "Resource temporarily unavailable") ||
           contains(text, "lock hold by current process") || contains(text, "No locks available") ||
           contains(text, "Resource busy");
}

OpenAttempt open_db(const fs::path& db_path, rocksdb::WALRecoveryMode mode) {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    options.paranoid_checks = true;
    options.wal_recovery_mode = mode;
    options.max_open_files = 256;
    options.max_background_jobs = 2;
    options.db_write_buffer_size = 32u << 20;  // all memtables together
    options.keep_log_file_num = 5;             // RocksDB's own LOG files
    options.max_log_file_size = 8u << 20;
    // The "default" family (one counter) is written by every step but hardly ever
    // fills a memtable, so it would pin every WAL file until the WALs reach RocksDB's
    // default cap (4x all write buffers): beyond 16 MiB of WAL the families holding
    // the oldest one are flushed, which keeps the disk flat. Small memtables and WAL
    // keep the sawtooth small too: with 32 MiB memtables and a 64 MiB WAL cap the data
    // dir of a node under steady load swung between 0.55x and 1.45x of its mean
    // (tests/cluster/snapshot.py measure --full; docs/operations.md).
    options.max_total_wal_size = 16u << 20;
    // No fallocate: RocksDB preallocates each WAL file (about 1.1x the memtable),
    // and a node whose disk is full then kept writing into that space for minutes
    // before its first failed write (faults_disk_full). Appends that fail at once
    // make the fail-stop prompt; appends to ext4/xfs cost the same without it.
    options.allow_fallocate = false;

    rocksdb::ColumnFamilyOptions cf;
    cf.write_buffer_size = 8u << 20;
    cf.compression = rocksdb::kNoCompression;
    cf.bottommost_compression = rocksdb::kNoCompression;
    // Bloom filters, in the table files (10 bits a key, about 1 % false positives)
    // and in the memtables (whole keys, 2 % of a memtable): applying an epoch reads
    // every key it writes (the old value leaves the state root), and a fresh key is
    // absent, which without a filter cost a binary search in every memtable and an
    // index and data block of every overlapping table file. At the 64-operation
    // peak (fresh keys) the reads were a quarter of a node's CPU and the filters
    // raised the peak from about 17,000 to 23,500 ops/s (docs/performance.md).
    // The filter memory grows with the stored keys like the index blocks do.
    rocksdb::BlockBasedTableOptions table;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    cf.memtable_whole_key_filtering = true;
    cf.memtable_prefix_bloom_size_ratio = 0.02;

    // No blob files: with RocksDB 7.8's integrated BlobDB for the records and
    // blocks families, faults_disk_full failed about every second run (an
    // assertion on a blob or WAL file written again after a failed write, and a
    // data dir out of space when reopened after the run); docs/decisions.md.

    // The state: universal (tiered) compaction. Its keys are spread over the key
    // space by their bucket, so under leveled compaction every level-0 file
    // overlapped all of level 1 and each level-0 compaction rewrote the whole
    // state; in a 180 s run of the 64-op peak (fresh keys, a growing state) the
    // state's compactions wrote 8.1 x the payload per node and op, 5.5 x with
    // universal, 3.2 x with eight sorted runs before a merge (docs/decisions.md,
    // "The state's compactions"). Size amplification at most 100 % (RocksDB's
    // default is 200 %): a full compaction runs once the newer runs hold as much
    // as the oldest, so the state's files stay within twice the live state
    // between full compactions.
    rocksdb::ColumnFamilyOptions kv_cf = cf;
    kv_cf.compaction_style = rocksdb::kCompactionStyleUniversal;
    kv_cf.compaction_options_universal.max_size_amplification_percent = 100;
    kv_cf.level0_file_num_compaction_trigger = 8;

    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, cf},
        {std::string(kRecordsCf), cf},
        {std::string(kKvCf), kv_cf},
        {std::string(kBlocksCf), cf},
    };
    OpenAttempt attempt;
    attempt.status =
        rocksdb::DB::Open(options, db_path.string(), families, &attempt.handles, &attempt.db);
    return attempt;
}

}  // namespace

// The data dir made absolute, created private (0700) when missing, or checked to
// be a writable directory. An error names the dir and the problem.
std::optional<std::string> prepare_data_dir(const fs::path& data_dir_in, fs::path& data_dir) {
    if (data_dir_in.empty()) return "no data dir given";
    std::error_code ec;
    data_dir = fs::absolute(data_dir_in, ec).lexically_normal();
    if (ec) return data_dir_in.string() + ": cannot make the path absolute: " + ec.message();
    const auto status = fs::status(data_dir, ec);
    if (status.type() == fs::file_type::not_found) {
        fs::create_directories(data_dir, ec);
        if (ec) return data_dir.string() + ": cannot create the data dir: " + ec.message();
        fs::permissions(data_dir, fs::perms::owner_all, ec);
        if (ec) return data_dir.string() + ": cannot set mode 0700: " + ec.message();
    } else if (ec) {
        return data_dir.string() + ": cannot access the data dir: " + ec.message();
    } else if (status.type() != fs::file_type::directory) {
        return data_dir.string() + ": the data dir exists and is not a directory";
    }
    if (::access(data_dir.c_str(), W_OK | X_OK) != 0)
        return data_dir.string() + ": the data dir is not writable: " + errno_text(errno);
    return std::nullopt;
}

// Opens RocksDB; on Corruption retries with ever more tolerant WAL recovery modes.
// A reopen that lost writes leaves a note (the store is then marked damaged).
// An error names the db and says what the operator can do.
std::optional<std::string> open_db_recovering(const fs::path& data_dir, OpenAttempt& attempt,
                                              std::string& recovery_note) {
    const fs::path db_path = data_dir / "db";
    attempt = open_db(db_path, rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords);
    if (!attempt.status.ok() && attempt.status.IsCorruption()) {
        const std::string first = attempt.status.ToString();
        attempt = open_db(db_path, rocksdb::WALRecoveryMode::kPointInTimeRecovery);
        if (attempt.status.ok()) {
            recovery_note = "RocksDB open failed (" + first +
                            "); reopened with point-in-time WAL recovery, which drops every "
                            "write after the first bad WAL record";
        } else if (attempt.status.IsCorruption()) {
            const std::string second = attempt.status.ToString();
            attempt = open_db(db_path, rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords);
            if (attempt.status.ok()) {
                recovery_note = "RocksDB open failed (" + first +
                                "; point-in-time recovery: " + second +
                                "); reopened skipping every corrupt WAL record (the replicated "
                                "state may be missing writes)";
            } else if (attempt.status.IsCorruption()) {
                return db_path.string() +
                       ": the data dir is corrupt and RocksDB cannot recover it (" +
                       attempt.status.ToString() + "). Stop the node, move " + data_dir.string() +
                       " aside and start again: the node catches up from its peers, and the "
                       "high-water mark in its key dir keeps it from signing twice";
            }
        }
    }
    if (attempt.status.ok()) return std::nullopt;
    if (is_lock_held(attempt.status)) {
        return db_path.string() + ": data dir is in use by another tobd (RocksDB LOCK held): " +
               attempt.status.ToString();
    }
    return db_path.string() + ": cannot open RocksDB: " + attempt.status.ToString();
}

}  // namespace tob::daemon::storage_open
