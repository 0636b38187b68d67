#pragma once
// Backup and restore for operators (docs/operations.md, "Backups"):
//
//   tobd --config FILE --export-snapshot OUT   copies the newest stable checkpoint the
//                                              (stopped) node holds to OUT
//   tobd --config FILE --import-snapshot IN    checks IN against the cluster and
//                                              installs it as the (stopped) node's state
//
// A snapshot file (daemon/snapshot_files.h) carries the checkpoint's epoch, root,
// manifest and the COMMITs that made it stable. Both commands check a file the
// same way before trusting it: at least t + 1 COMMITs from distinct members of
// this cluster (signatures checked against the cluster file's keys) on one tuple
// whose checkpoint root is the hash of the manifest, every entry in the bucket
// the file puts it in and in key order, and every bucket's LtHash, count and bytes
// equal to the manifest's. Import then stages the entries and switches the state
// in one atomic write (consensus/kv/rooted_storage.h); it refuses a node that is
// already at or past the checkpoint. After an import the node starts at the
// checkpoint and catches up from its peers; it signs nothing at or below its
// signing high-water mark, as after any loss of its data directory.

#include <filesystem>
#include <iosfwd>

#include "daemon/config.h"

namespace tob::daemon {

/// Exit codes: 0 done, 1 cannot open/read/write, 2 nothing to export or the file
/// does not check out, 3 the node is already at or past the checkpoint (import).
int export_snapshot(const NodeConfig& node, const ClusterConfig& cluster,
                    const std::filesystem::path& out_file, std::ostream& out, std::ostream& err);
int import_snapshot(const NodeConfig& node, const ClusterConfig& cluster,
                    const std::filesystem::path& in_file, std::ostream& out, std::ostream& err);

}  // namespace tob::daemon
