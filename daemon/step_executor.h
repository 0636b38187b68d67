#pragma once
// StepExecutor: carries out the core's Steps (consensus/step.h) for one tobd
// node, in the documented order:
//
//   (0) a test-only Byzantine shim rewrites the outgoing messages (byzantine.h)
//   (1) every durable record goes into ONE RocksDB write batch, together with
//       the state machine's staged changes (group commit); the batch is synced
//       when a message of the step depends on it (Step::needs_sync), else it
//       waits in the kernel for the next synced batch (one WAL, in order)
//   (2) the signing high-water mark file is raised and synced, if any record of
//       the step is a HighWater record above it: after the signatures it covers
//       are in the sign-log, before any of them can leave the node (a crash in
//       between leaves signatures above the mark, never a mark above the
//       signatures; consensus/sign_log.h)
//   (3) only then the messages are sent (point to point or broadcast)
//   (4) each committed epoch is handed to the node's callback (client replies,
//       metrics, archive pruning)
//   (5) faults are counted and logged; an alarm is logged and makes the node halt
//
// A failed write in (1) or (2) is fail-stop: nothing of the step is sent,
// execute() returns false and fatal() is the process exit code (3).
//
// Test-only fail-points (NodeOptions::crash_at) abort() the process at the N-th
// durable-write boundary: before the batch, before the mark, after both,
// after the first half of the messages (docs/fault-model.md row 4).

#include <cstdint>
#include <filesystem>
#include <functional>

#include "consensus/step.h"
#include "daemon/byzantine.h"
#include "daemon/node_metrics.h"
#include "daemon/storage.h"
#include "daemon/transport.h"

namespace tob::daemon {

class StepExecutor {
  public:
    struct Options {
        consensus::NodeId self = 0;
        std::filesystem::path mark_path;  // the signing high-water mark file
        std::uint64_t crash_at = 0;       // test-only fail-point (0 = off)
    };
    using CommittedFn = std::function<void(const consensus::EpochResult&)>;

    /// Every reference must outlive the executor; `byzantine` may be null.
    StepExecutor(Options options, NodeStorage& storage, Transport& transport, NodeMetrics& metrics,
                 ByzantineShim* byzantine, CommittedFn on_committed);

    /// The mark read at start (recovery); execute() only raises it.
    void set_high_water(consensus::Epoch mark) { high_water_ = mark; }
    consensus::Epoch high_water() const { return high_water_; }

    /// Steps (0)-(5). False: a durable write failed, nothing was sent (fail-stop).
    bool execute(consensus::Step step, std::uint64_t now_ms);
    /// The exit code after a fail-stop (0 while none happened).
    int fatal() const { return fatal_; }
    /// True once a step carried an alarm (the node halts for good).
    bool alarmed() const { return alarmed_; }

  private:
    void failpoint(const char* where);
    bool persist(const consensus::Step& step, bool durable);
    void send(const consensus::Step& step, bool durable);
    void report(const consensus::Step& step);

    Options options_;
    NodeStorage& storage_;
    Transport& transport_;
    NodeMetrics& metrics_;
    ByzantineShim* byzantine_;
    CommittedFn on_committed_;
    consensus::Epoch high_water_ = 0;
    std::uint64_t failpoints_passed_ = 0;
    int fatal_ = 0;
    bool alarmed_ = false;
};

}  // namespace tob::daemon
