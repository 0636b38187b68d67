#pragma once
// StorageProofArchive: the consensus core's read-only ProofArchive
// (consensus/catch_up.h) over the node's RocksDB records. The core keeps the
// proofs of its last proof_history_epochs delivered epochs in memory; for older
// ones it asks here, and this reads the records of that one epoch (the Proof
// record with the blocks of S, and the stored COMMITs: peers' Commit records and
// this node's own Signed COMMIT) and returns t+1 matching COMMITs and the blocks,
// exactly what the core would have built from memory. The receiver checks the
// reply like any other proof. Records stay on disk for the daemon's archive
// horizon (docs/daemon.md); an epoch pruned from disk cannot be served.

#include <cstdint>

#include "consensus/catch_up.h"
#include "consensus/types.h"

namespace tob::daemon {

class NodeStorage;

class StorageProofArchive final : public consensus::ProofArchive {
  public:
    /// `storage` must outlive the archive; t is the cluster's fault bound.
    StorageProofArchive(NodeStorage& storage, std::uint32_t t, const consensus::Limits& limits);

    std::optional<consensus::ArchivedProof> proof(consensus::Epoch e) const override;

  private:
    NodeStorage& storage_;
    std::uint32_t t_;
    consensus::Limits limits_;
};

}  // namespace tob::daemon
