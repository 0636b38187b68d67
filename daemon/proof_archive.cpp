#include "daemon/proof_archive.h"

#include "daemon/storage.h"

namespace tob::daemon {

StorageProofArchive::StorageProofArchive(NodeStorage& storage, std::uint32_t t,
                                         const consensus::Limits& limits)
    : storage_(storage), t_(t), limits_(limits) {}

std::optional<consensus::ArchivedProof> StorageProofArchive::proof(consensus::Epoch e) const {
    // Only the records of epoch e are read (one short range scan).
    auto loaded = storage_.load_records(e, e + 1);
    return consensus::proof_from_records(loaded.records, e, t_ + 1, limits_);
}

}  // namespace tob::daemon
