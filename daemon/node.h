#pragma once
// Node: one running tobd node — the IO shell around the consensus core.
//
// It owns the RocksDB storage (daemon/storage.h), the replicated KV machine on
// top of it (consensus/kv/kv_machine.h), the Replica (consensus/replica.h), the
// ZeroMQ transport (daemon/transport.h) and the verification workers
// (daemon/verify_pool.h), and runs the event loop on the calling thread:
//
//   wait for a frame, a verified result or the next tick
//   -> frames: drop duplicates of already-verified envelopes by digest, hand the
//      rest to the verification workers; client frames go to the client service
//      (daemon/client_service.h), which answers status and local reads at once
//   -> verified envelopes and client requests: into the Replica
//   -> every tick_ms: Replica::tick (cut blocks, re-publish, re-request); every
//      idle_tick_ms instead while the core has no work in progress and no input
//      arrives (an idle cluster sleeps in poll: timers, not polling)
//   -> execute the accumulated Steps (daemon/step_executor.h): (1) raise the
//      signing high-water mark file, synced, (2) append every durable record in
//      ONE synced RocksDB write batch, (3) only then send the messages, (4) answer
//      clients whose requests committed, (5) count faults, halt on an alarm
//   -> once a second: metrics (daemon/node_metrics.h), expiry, status line.
//
// Persist-before-send holds per flush (a group commit over the inputs handled
// since the last flush). A failed durable write is fail-stop: nothing of that
// flush is sent, the node logs why and run() returns a non-zero exit code (under
// systemd it is restarted; it resumes once the disk has space again).
//
// At start the node rebuilds the core from its records (Replica::recover) with the
// mark file; a damaged sign-log, a missing or corrupt mark, or a damage marker in
// the data dir makes it a non-voting follower, logged loudly.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "consensus/byzantine_catalogue.h"
#include "daemon/config.h"
#include "daemon/transport.h"

namespace tob::daemon {

class Registry;

struct NodeOptions {
    unsigned verify_threads = 2;
    std::uint32_t tick_ms = 5;
    // With no work in progress (Node::Impl::has_work) the loop ticks this often
    // instead (the COMMIT heartbeat); any input brings tick_ms back.
    std::uint32_t idle_tick_ms = 100;
    FaultLayerOptions faults;  // test-only, needs testing = true
    // Test-only (needs testing = true): a Byzantine behaviour of the catalogue that
    // tobd implements (consensus/byzantine_catalogue.h, daemon/byzantine.h).
    std::optional<consensus::Byzantine> byzantine;
    std::uint32_t twin_port_offset = 0;  // test-only: run as a twin (transport.h)
    bool test_no_curve = false;          // test-only: plaintext sockets, no ZAP (security.md)
    // Test-only fail-point (docs/fault-model.md row 4, like Tendermint's FAIL_TEST_INDEX):
    // abort() at the N-th durable-write boundary of this process (0 = off). The
    // boundaries, counted in order in every flush that persists something: before
    // the mark file, before the records batch, after it (before any send), and
    // after the first half of the messages.
    std::uint64_t crash_at = 0;
    // Test-only: entry bytes per snapshot chunk request (0: the default, the smaller
    // of 1 MiB and half of message_bytes_max); small chunks spread a transfer over
    // every peer that offers.
    std::uint64_t snapshot_chunk_bytes = 0;
    std::optional<std::uint64_t> view_min_state_bytes;  // test-only (KvBackend)
};

/// Callbacks into the service manager (sd_notify) — any may be empty.
struct NodeHooks {
    std::function<void()> ready;                     // storage open, peers dialled, serving
    std::function<void(const std::string&)> status;  // one-line status, on change
    std::function<void()> alive;                     // called every loop iteration
};

class Node {
  public:
    /// Opens storage, loads keys' derived suite, binds sockets. Every error is a
    /// complete sentence naming the file or endpoint.
    static std::variant<std::unique_ptr<Node>, std::string> open(const NodeConfig& node,
                                                                 const ClusterConfig& cluster,
                                                                 NodeKeys keys,
                                                                 NodeOptions options);
    ~Node();

    /// Runs until `stop` becomes true (0) or a fatal error (non-zero).
    int run(const std::atomic<bool>& stop, NodeHooks hooks);

    /// Thread-safe views for the HTTP endpoints.
    Registry& metrics();
    bool ready(std::string& why) const;

  private:
    struct Impl;
    explicit Node(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace tob::daemon
