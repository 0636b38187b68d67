#pragma once
// NodeMetrics: the series one tobd node exports (GET /metrics), registered once
// when the node opens, and their refresh from the core's and the transport's
// counters.
//
// Every series the event loop touches per message or per epoch is looked up here
// once and kept as a reference (the registry's references live as long as it
// does), so the hot paths only touch atomics. Two families have labels known only
// at run time (faults by kind and peer, rejected envelopes by reason); they are
// rare and looked up by label when they happen.
//
// The core and the transport keep running totals; refresh() (once a second)
// turns them into gauges, and into counter increments by the difference since
// the previous refresh. Epoch durations are measured here too: note_joined()
// remembers when the node joined each epoch, on_delivered() observes how long
// it took to deliver it.

#include <array>
#include <cstdint>
#include <map>
#include <string_view>

#include "consensus/messages.h"
#include "consensus/replica.h"
#include "daemon/metrics.h"
#include "daemon/transport.h"

namespace tob::daemon {

/// The values refresh() samples, taken by the node from its parts.
struct NodeSample {
    const consensus::ReplicaStats& core;
    consensus::Epoch applied = 0;
    std::uint32_t peers_connected = 0;
    std::size_t verify_queue_depth = 0;
    bool voting = false;  // signs: voting in the core and not halted
    const TransportStats& transport;
};

class NodeMetrics {
  public:
    /// Registers every series in `registry`, which must outlive this object.
    explicit NodeMetrics(Registry& registry);
    NodeMetrics(const NodeMetrics&) = delete;
    NodeMetrics& operator=(const NodeMetrics&) = delete;

    /// Gauges from the sample; counters by the growth of its running totals.
    void refresh(const NodeSample& sample);
    /// The node joined epochs up to `joined` (those above `applied` start now).
    void note_joined(consensus::Epoch joined, consensus::Epoch applied, std::uint64_t now_ms);
    /// An epoch was delivered: its duration, and the requests it committed.
    void on_delivered(const consensus::EpochResult& epoch, std::uint64_t now_ms);

    void message_in(consensus::Kind kind) { messages_in_[index(kind)]->inc(); }
    void message_out(consensus::Kind kind) { messages_out_[index(kind)]->inc(); }
    void fault(std::string_view kind, consensus::NodeId culprit);
    void envelope_rejected(std::string_view reason);
    void high_water(consensus::Epoch mark) { high_water_.set(static_cast<double>(mark)); }
    void rocksdb_size(std::uint64_t bytes) { rocksdb_size_.set(static_cast<double>(bytes)); }
    /// NodeStorage::appended_bytes(): running totals by kind (index 0 = state).
    void storage_appended(const std::array<std::uint64_t, 8>& totals);
    /// NodeStorage::write_counts(): running totals of batches with and without sync.
    void storage_writes(std::uint64_t synced, std::uint64_t unsynced);

    // Counted directly by the loop and the client service.
    Counter& duplicates_dropped;
    Counter& verify_queue_full;
    Counter& verify_rejected;
    Counter& client_rejected;
    Counter& client_rate_limited;
    Counter& client_new_keys_limited;
    Histogram& commit_latency;

  private:
    static std::size_t index(consensus::Kind kind) {
        const auto k = static_cast<std::uint8_t>(kind);
        return k <= consensus::kKindMax ? k : 0;
    }

    Registry& registry_;
    Counter& epochs_delivered_;
    Counter& ops_committed_;
    Counter& requests_committed_;
    Counter& requests_duplicate_;
    Histogram& epoch_duration_;
    Histogram& aba_rounds_;
    Counter& coin_invocations_;
    Counter& bytes_in_;
    Counter& bytes_out_;
    Counter& pubsub_drops_;
    Counter& send_drops_;
    Counter& outbox_drops_;
    Counter& broadcasts_p2p_;
    Counter& archive_served_;
    Gauge& verify_queue_depth_;
    Gauge& pool_requests_;
    Gauge& peers_connected_;
    Gauge& rocksdb_size_;
    Gauge& epoch_;
    Gauge& applied_;
    Gauge& voting_;
    Gauge& high_water_;
    // By envelope kind (index 0: unknown): these count every message.
    std::array<Counter*, consensus::kKindMax + 1> messages_in_{};
    std::array<Counter*, consensus::kKindMax + 1> messages_out_{};
    std::array<Counter*, 8> storage_appended_{};
    std::array<std::uint64_t, 8> last_storage_appended_{};
    std::array<Counter*, 2> storage_writes_{};
    std::array<std::uint64_t, 2> last_storage_writes_{};

    // Running totals at the previous refresh.
    TransportStats last_transport_;
    std::uint64_t last_aba_instances_ = 0, last_aba_rounds_ = 0;
    std::uint64_t last_archive_served_ = 0;
    // Joined epochs not yet delivered, with the time the node joined them.
    std::map<consensus::Epoch, std::uint64_t> epoch_started_ms_;
    consensus::Epoch joined_noted_ = 0;
};

}  // namespace tob::daemon
