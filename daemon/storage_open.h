#pragma once
// Opening a node's RocksDB (NodeStorage::open, daemon/storage.h): the data dir
// checked or created private, the column families with their options (the
// records' and blocks' blob files), and the retries with ever more tolerant WAL
// recovery modes after a Corruption.

#include <rocksdb/status.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace tob::daemon::storage_open {

inline constexpr std::string_view kRecordsCf = "records";
inline constexpr std::string_view kKvCf = "kv";
inline constexpr std::string_view kBlocksCf = "blocks";

struct OpenAttempt {
    rocksdb::Status status;
    rocksdb::DB* db = nullptr;
    /// default, records, kv, blocks (in that order).
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
};

/// The data dir made absolute, created private (0700) when missing, or checked to
/// be a writable directory. An error names the dir and the problem.
std::optional<std::string> prepare_data_dir(const std::filesystem::path& data_dir_in,
                                            std::filesystem::path& data_dir);

/// Opens <data_dir>/db; on Corruption retries with ever more tolerant WAL recovery
/// modes. A reopen that lost writes leaves a note (the store is then marked
/// damaged). An error names the db and says what the operator can do.
std::optional<std::string> open_db_recovering(const std::filesystem::path& data_dir,
                                              OpenAttempt& attempt, std::string& recovery_note);

}  // namespace tob::daemon::storage_open
