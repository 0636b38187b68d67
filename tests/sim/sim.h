#pragma once
// tobsim: n consensus cores (consensus::Replica) in one process, driven by a
// seeded scheduler. See tests/sim/sim.cpp for the model; docs/simulator.md for
// the user-facing description.
//
// One seed = one run. Every parameter of the run (faulty ids and behaviours,
// drop/duplication rates, delays, crash schedule, window, timers, clients, tx
// timing) derives from (options, seed), so `--seeds S-S` with the same options
// replays a seed exactly.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/byzantine_catalogue.h"
#include "tests/sim/checker.h"
#include "tests/sim/counting_crypto.h"

namespace tob::sim {

// The Byzantine behaviours: the tobsim column of consensus/byzantine_catalogue.h
// (implemented in tests/sim/byzantine.cpp).
using Behaviour = consensus::Byzantine;

/// Fast: keyed-hash stand-in (consensus/fast_crypto.h). Real: Ed25519 and the
/// threshold coin. Counted: no cryptography at all, only counted (honest runs;
/// tests/sim/counting_crypto.h). Every mode counts its operations.
enum class CryptoMode : std::uint8_t { Fast, Real, Counted };

/// Test-only planted bugs in the harness, to show that a checker catches them.
enum class Plant : std::uint8_t {
    None,
    Amnesia,      // a restarted node loses its sign-log and its high-water mark (-> I5)
    SkipPersist,  // some Signed records are not persisted before sending (-> persist-before-send)
    SkipMark,     // HighWater records are never persisted (-> high-water)
    TrustChunks,  // snapshot chunks are installed unchecked (-> storage, state-root, agreement)
    RotState,  // a value in one honest node's stored state changes behind the root (-> state-root)
    SyncNothing,     // no step is synced: a crash may lose signatures already sent (-> I5)
    TrustAbaSender,  // agreement messages are taken on their envelope's word, not the link's
                     // (-> agreement, with the forge behaviour's ABA in other members' names)
};

struct Partition {
    std::uint64_t start_ms = 0, end_ms = 0;
    bool one_way = false;    // only messages from the marked side are cut
    std::vector<bool> side;  // per node
};

struct SimOptions {
    std::uint32_t nodes = 4;
    std::uint32_t faulty = 0;           // Byzantine nodes (normally <= t)
    std::vector<Behaviour> behaviours;  // each faulty node draws 1-2 of these
    std::uint32_t epochs = 6;   // the safety phase ends once an honest node delivered this many
    std::uint32_t txs = 24;     // transactions submitted by honest clients per seed
    double drop = 0.1;          // max per-message drop probability (safety phase)
    double crash = 0.1;         // max crash intensity (safety phase)
    double dup = 0.1;           // max duplication probability
    std::uint32_t clients = 0;  // 0: derived from the seed (1..4)
    CryptoMode crypto = CryptoMode::Fast;
    std::uint32_t unsafe_quorum = 0;        // test-only: certify with this many SEENs
    std::uint64_t fair_ms_max = 120000;     // liveness bound after the fair phase starts
    bool trace = false;                     // print events to stderr
    bool trace_messages = false;            // print every honest send and receive to stderr
    std::set<std::string> disabled_checks;  // test-only: checks to ignore (checker self-tests)
    Plant plant = Plant::None;              // test-only: a planted harness bug
    std::uint32_t plant_extra_work = 0;     // test-only: a planted slowdown per applied op
    bool partitions = true;                 // partition episodes in the safety phase
    bool atomic_persist = false;  // a step's records survive a crash all or none (else a prefix)
    bool safety_only = false;     // beyond the bound: check safety, not liveness
    std::uint64_t safety_only_fair_ms = 3000;  // how long the fair phase runs then
    std::uint64_t safety_ms = 0;               // length of the safety phase (0: from the seed)
    std::uint64_t proof_history_epochs = 0;    // the replicas' in-memory proof history (0: default)
    std::optional<std::uint64_t> commit_heartbeat_ms;  // the replicas' heartbeat (unset: default)
    /// Keep only the durable records (and the checkers' per-epoch state) of the last
    /// this many epochs below the lowest honest applied epoch (0: keep everything),
    /// as tobd keeps its archive; for long runs.
    std::uint64_t archive_epochs = 0;
    /// Every this many epochs, print each honest node's largest in-memory sizes
    /// (Replica::memory()) since the previous report (0: never).
    std::uint64_t sizes_every = 0;
    /// Checkpoints (docs/protocol.md, "Checkpoints"): K and R of the replicas. 0 =
    /// drawn from the seed (K in 2..8, R in 1..3K), which keeps snapshot transfer
    /// and pruning busy in a few dozen epochs. no_checkpoints turns them off.
    std::uint64_t checkpoint_interval = 0;
    std::uint64_t checkpoint_retention = 0;
    bool no_checkpoints = false;
    /// Entry bytes per snapshot chunk request (small, so that chunks split buckets).
    std::uint64_t snapshot_chunk_bytes = 0;  // 0: drawn from the seed
    /// Probability that one honest node is down from early in the safety phase until
    /// the fair phase (a long outage; its data directory is lost half of the time,
    /// within the reformat budget), so that it comes back further behind than the
    /// retention and needs a snapshot.
    double outage = 0;
    /// Batched delivery, as tobd's event loop hands over what one pass received: an
    /// honest node collects the messages that reach it for this many logical ms and
    /// handles them in one batch (Replica::begin_batch / end_batch). 0: one message
    /// per input; -1: drawn per seed (0 half of the time, else 1..5).
    std::int64_t batch_ms = 0;
};

/// The parameters one seed derived (printed first in text mode).
struct SeedParams {
    std::uint32_t n = 0, t = 0;
    std::vector<std::pair<NodeId, std::vector<Behaviour>>> byzantine;
    double drop = 0, dup = 0, crash = 0, reformat = 0, long_delay = 0;
    std::uint64_t delay_ms_max = 0;
    std::uint32_t window = 0;
    std::uint64_t block_timer_ms = 0;
    std::uint32_t clients = 0;
    std::uint64_t safety_ms = 0;
    std::uint64_t checkpoint_interval = 0, checkpoint_retention = 0, chunk_bytes = 0;
    std::optional<NodeId> outage_node;  // down from outage_ms until the fair phase
    std::uint64_t outage_ms = 0;
    bool outage_reformat = false;
    std::vector<Partition> partitions;
    std::vector<NodeId> slow_nodes;
    std::uint64_t batch_ms = 0;  // SimOptions::batch_ms as drawn
    /// crash-stop nodes and the logical ms at which each stops for good.
    std::vector<std::pair<NodeId, std::uint64_t>> stops;
    std::string describe() const;
};

/// The run's counters when an honest node first applied an epoch (for figures per
/// epoch that leave out the start and the quiet end of a run).
struct EpochMark {
    Epoch epoch = 0;
    std::uint64_t logical_ms = 0;
    std::uint64_t messages_sent = 0, bytes_sent = 0;
    CryptoCounts crypto;
    double cpu_s = 0;  // process CPU time (std::clock), a measurement only
};

struct SeedReport {
    std::uint64_t seed = 0;
    SeedParams params;
    std::vector<Violation> violations;
    std::uint64_t submitted_txs = 0;
    std::uint64_t committed_txs = 0;     // submitted txs that took effect at every honest node
    std::uint64_t committed_ops = 0;     // their operations
    std::uint64_t epochs = 0;            // highest epoch applied by an honest node
    std::uint64_t messages = 0;          // envelopes delivered
    std::uint64_t messages_sent = 0;     // envelopes sent, one per receiver (before losses)
    std::uint64_t bytes_sent = 0;        // their bytes
    CryptoCounts crypto;                 // every node's CryptoSuite calls
    std::vector<EpochMark> epoch_marks;  // [k] when epoch k+1 was first applied
    std::uint64_t aba_rounds_total = 0;
    std::uint64_t aba_instances = 0;
    std::uint64_t crashes = 0, reformats = 0;
    std::uint64_t faults_on_byzantine = 0;    // faults honest nodes reported against Byzantine ones
    std::uint64_t archive_proofs_served = 0;  // honest catch-up answers read from an archive
    std::uint64_t snapshots_installed = 0;    // snapshots installed by honest nodes
    std::uint64_t chunks_rejected = 0;        // snapshot chunks honest nodes refused
    std::uint64_t records_pruned = 0;         // durable records honest nodes pruned
    std::uint64_t unsynced_records_lost = 0;  // records written without sync, lost in crashes
    std::uint64_t logical_ms = 0;
    std::uint64_t fair_ms = 0;  // logical time the fair phase needed
    Digest fingerprint{};       // hash of the run's outcome (replay check)
};

SeedReport run_seed(const SimOptions& options, std::uint64_t seed);

}  // namespace tob::sim
