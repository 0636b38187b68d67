#pragma once
// CheckpointMonitor: what the daemon shows about checkpoints, pruning and snapshot
// transfer (docs/protocol.md, "Checkpoints"; docs/operations.md): metrics on
// /metrics, a progress line in the log every few seconds while a snapshot is being
// fetched (percent, bytes, ETA), a line when one is installed, and the fields of
// `tobctl status`. The core decides everything; this only reads ReplicaStats.

#include <cstdint>
#include <string>

#include "cli/client/protocol.h"
#include "consensus/replica.h"
#include "daemon/metrics.h"

namespace tob::daemon {

class NodeStorage;

class CheckpointMonitor {
  public:
    CheckpointMonitor(Registry& registry, NodeStorage& storage);

    /// Once a second from the event loop.
    void refresh(const consensus::ReplicaStats& stats, std::uint64_t now_ms);
    /// A step installed a snapshot.
    void installed(const consensus::SnapshotInstalled& snap, std::uint64_t now_ms);
    /// A step pruned records below `epoch`.
    void pruned(consensus::Epoch epoch);
    /// The status fields of tobctl status.
    void fill(client::StatusMsg& status) const;

  private:
    std::uint64_t eta_s(std::uint64_t now_ms) const;

    NodeStorage& storage_;
    consensus::TransferProgress progress_;
    consensus::Epoch servable_ = 0, pruned_below_ = 0;
    std::uint64_t chunks_rejected_ = 0, last_rejected_ = 0, last_served_ = 0, last_installed_ = 0;
    std::uint64_t last_log_ms_ = 0;
    std::uint64_t last_failures_ = 0;                         // logged so far
    std::uint64_t rate_since_ms_ = 0, rate_since_bytes_ = 0;  // for the ETA
    std::uint64_t last_now_ms_ = 0;

    Gauge* servable_gauge_;
    Gauge* pruned_gauge_;
    Gauge* active_gauge_;
    Gauge* epoch_gauge_;
    Gauge* total_gauge_;
    Gauge* done_gauge_;
    Gauge* percent_gauge_;
    Gauge* eta_gauge_;
    Counter* rejected_;
    Counter* served_;
    Counter* installs_;
    Gauge* files_failed_;
    Gauge* compactions_;
};

}  // namespace tob::daemon
