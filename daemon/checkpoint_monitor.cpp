// CheckpointMonitor: see daemon/checkpoint_monitor.h.

#include "daemon/checkpoint_monitor.h"

#include <spdlog/spdlog.h>

#include "daemon/storage.h"

namespace tob::daemon {

CheckpointMonitor::CheckpointMonitor(Registry& r, NodeStorage& storage)
    : storage_(storage),
      servable_gauge_(&r.gauge("tobd_checkpoint_servable_epoch",
                               "Newest stable checkpoint this node serves to peers (0: none)")),
      pruned_gauge_(&r.gauge("tobd_pruned_below_epoch",
                             "Durable records of epochs below this one have been deleted")),
      active_gauge_(&r.gauge("tobd_snapshot_transfer_active",
                             "1 while this node is fetching a peer's checkpoint")),
      epoch_gauge_(&r.gauge("tobd_snapshot_transfer_epoch",
                            "The checkpoint being fetched (0: still asking for offers)")),
      total_gauge_(&r.gauge("tobd_snapshot_transfer_bytes_total",
                            "Entry bytes of the checkpoint being fetched")),
      done_gauge_(&r.gauge("tobd_snapshot_transfer_bytes_done", "Entry bytes verified so far")),
      percent_gauge_(&r.gauge("tobd_snapshot_transfer_percent", "Percent of the bytes verified")),
      eta_gauge_(&r.gauge("tobd_snapshot_transfer_eta_seconds",
                          "Estimated seconds until the snapshot is installed (0: unknown)")),
      rejected_(&r.counter("tobd_snapshot_chunks_rejected_total",
                           "Snapshot chunks refused because they did not match the signed root")),
      served_(&r.counter("tobd_snapshot_chunks_served_total", "Snapshot chunks sent to peers")),
      installs_(&r.counter("tobd_snapshots_installed_total", "Snapshots installed from peers")),
      files_failed_(
          &r.gauge("tobd_snapshot_file_failures",
                   "Checkpoint views or snapshot files that could not be written (see the log)")),
      compactions_(
          &r.gauge("tobd_pruned_compactions",
                   "Background passes over pruned epochs and erased state ranges run so far")) {}

std::uint64_t CheckpointMonitor::eta_s(std::uint64_t now_ms) const {
    if (!progress_.active || progress_.bytes_total == 0) return 0;
    const std::uint64_t elapsed = now_ms - rate_since_ms_;
    const std::uint64_t moved = progress_.bytes_done - rate_since_bytes_;
    if (elapsed < 500 || moved == 0) return 0;
    const std::uint64_t left = progress_.bytes_total - progress_.bytes_done;
    return (left * elapsed / moved + 999) / 1000;
}

void CheckpointMonitor::refresh(const consensus::ReplicaStats& st, std::uint64_t now_ms) {
    last_now_ms_ = now_ms;
    const bool started =
        st.snapshot.active && (!progress_.active || progress_.epoch != st.snapshot.epoch);
    progress_ = st.snapshot;
    if (started) {
        rate_since_ms_ = now_ms;
        rate_since_bytes_ = progress_.bytes_done;
    }
    servable_ = st.checkpoint_servable;
    pruned_below_ = st.pruned_below;
    chunks_rejected_ = st.snapshot_chunks_rejected;
    servable_gauge_->set(static_cast<double>(servable_));
    pruned_gauge_->set(static_cast<double>(pruned_below_));
    active_gauge_->set(progress_.active ? 1 : 0);
    epoch_gauge_->set(static_cast<double>(progress_.epoch));
    total_gauge_->set(static_cast<double>(progress_.bytes_total));
    done_gauge_->set(static_cast<double>(progress_.bytes_done));
    const double percent = progress_.bytes_total
                               ? 100.0 * static_cast<double>(progress_.bytes_done) /
                                     static_cast<double>(progress_.bytes_total)
                               : 0.0;
    percent_gauge_->set(percent);
    eta_gauge_->set(static_cast<double>(eta_s(now_ms)));
    rejected_->inc(static_cast<double>(st.snapshot_chunks_rejected - last_rejected_));
    last_rejected_ = st.snapshot_chunks_rejected;
    served_->inc(static_cast<double>(st.snapshot_chunks_served - last_served_));
    last_served_ = st.snapshot_chunks_served;
    installs_->inc(static_cast<double>(st.snapshots_installed - last_installed_));
    last_installed_ = st.snapshots_installed;
    const std::uint64_t failures = storage_.kv().files().failures();
    if (failures > last_failures_) {
        spdlog::warn("checkpoint copy: {} ({} failure(s) so far)",
                     storage_.kv().files().last_failure(), failures);
        last_failures_ = failures;
    }
    files_failed_->set(static_cast<double>(failures));
    compactions_->set(static_cast<double>(storage_.compactions()));
    if (progress_.active && now_ms >= last_log_ms_ + 2000) {
        last_log_ms_ = now_ms;
        if (progress_.epoch == 0) {
            spdlog::info("snapshot transfer: asking peers for their latest checkpoint");
        } else {
            const std::uint64_t eta = eta_s(now_ms);
            spdlog::info(
                "snapshot transfer: checkpoint {} from {} peers: {:.1f}% ({:.1f} of {:.1f} MB), "
                "ETA {}, {} chunks rejected",
                progress_.epoch, progress_.sources, percent,
                static_cast<double>(progress_.bytes_done) / 1e6,
                static_cast<double>(progress_.bytes_total) / 1e6,
                eta ? std::to_string(eta) + " s" : std::string("unknown"), chunks_rejected_);
        }
    }
}

void CheckpointMonitor::installed(const consensus::SnapshotInstalled& snap, std::uint64_t now_ms) {
    const double secs = progress_.started_ms && now_ms > progress_.started_ms
                            ? static_cast<double>(now_ms - progress_.started_ms) / 1000.0
                            : 0.0;
    spdlog::info(
        "snapshot installed: checkpoint {} ({} entries, {:.1f} MB) in {:.1f} s; catching up "
        "from epoch {} with commit proofs",
        snap.epoch, snap.entries, static_cast<double>(snap.bytes) / 1e6, secs, snap.epoch + 1);
    progress_ = {};
}

void CheckpointMonitor::pruned(consensus::Epoch epoch) {
    spdlog::debug("pruned durable records below epoch {}", epoch);
}

void CheckpointMonitor::fill(client::StatusMsg& s) const {
    s.checkpoint = servable_;
    s.pruned_below = pruned_below_;
    s.snapshot_active = progress_.active;
    s.snapshot_epoch = progress_.epoch;
    s.snapshot_bytes_total = progress_.bytes_total;
    s.snapshot_bytes_done = progress_.bytes_done;
    s.snapshot_eta_s = eta_s(last_now_ms_);
    s.snapshot_chunks_rejected = chunks_rejected_;
}

}  // namespace tob::daemon
