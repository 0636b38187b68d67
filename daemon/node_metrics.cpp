// NodeMetrics: registration of the node's series and their refresh (node_metrics.h).

#include "daemon/node_metrics.h"

#include <algorithm>
#include <string>

#include "daemon/version.h"

namespace tob::daemon {

using namespace tob::consensus;

namespace {

const char* kind_name(std::uint8_t k) {
    static const char* kNames[] = {
        "unknown",       "block",    "seen",          "cert",        "aba",
        "commit",        "requests", "fetch_request", "fetch_reply", "snapshot_request",
        "snapshot_reply"};
    static_assert(sizeof(kNames) / sizeof(kNames[0]) == kKindMax + 1);
    return k <= kKindMax ? kNames[k] : kNames[0];
}

double to_double(std::uint64_t v) { return static_cast<double>(v); }

}  // namespace

NodeMetrics::NodeMetrics(Registry& registry)
    : duplicates_dropped(
          registry.counter("tobd_duplicates_dropped_total",
                           "Envelopes dropped before verification as copies of verified ones")),
      verify_queue_full(registry.counter("tobd_verify_queue_full_total",
                                         "Frames dropped because the verification queue was full")),
      verify_rejected(registry.counter(
          "tobd_envelopes_rejected_total",
          "Envelopes refused by verification (bad signature, non-member, malformed, foreign)")),
      client_rejected(registry.counter("tobd_client_requests_rejected_total",
                                       "Client submissions refused (bad signature, malformed)")),
      client_rate_limited(registry.counter(
          "tobd_client_rate_limited_total",
          "Client frames answered Overloaded: the source's byte or request rate was used up")),
      client_new_keys_limited(registry.counter(
          "tobd_client_new_keys_limited_total",
          "Client requests answered Overloaded: their connection brought new client keys "
          "faster than limits.client_new_keys_per_s")),
      commit_latency(
          registry.histogram("tobd_commit_latency_seconds",
                             "From a client's submission at this node to its request committing",
                             default_latency_buckets())),
      registry_(registry),
      epochs_delivered_(registry.counter("tobd_epochs_delivered_total",
                                         "Epochs delivered and applied to the state machine")),
      ops_committed_(registry.counter("tobd_operations_committed_total",
                                      "Client operations committed (in committed requests)")),
      requests_committed_(
          registry.counter("tobd_requests_committed_total", "Client requests committed")),
      requests_duplicate_(registry.counter("tobd_requests_skipped_total",
                                           "Ordered requests skipped by the dedup table",
                                           {{"reason", "duplicate"}})),
      epoch_duration_(registry.histogram("tobd_epoch_duration_seconds",
                                         "From joining an epoch to delivering it",
                                         default_latency_buckets())),
      aba_rounds_(registry.histogram(
          "tobd_aba_rounds", "Rounds used per decided binary agreement (mean per delivery batch)",
          {1, 2, 3, 4, 6, 8, 12, 16})),
      coin_invocations_(registry.counter(
          "tobd_coin_invocations_total",
          "ABA rounds used, summed over decided instances (every round invokes the common coin)")),
      bytes_in_(registry.counter("tobd_bytes_in_total", "Bytes received on all sockets")),
      bytes_out_(registry.counter("tobd_bytes_out_total", "Bytes sent on all sockets")),
      pubsub_drops_(registry.counter("tobd_pubsub_drops_total",
                                     "Frames lost on PUB/SUB (gaps in peers' sequence numbers)")),
      send_drops_(registry.counter("tobd_send_drops_total",
                                   "Sends dropped because a socket was at its high-water mark")),
      outbox_drops_(registry.counter(
          "tobd_outbox_drops_total",
          "Of the dropped sends: point-to-point frames that did not fit a peer's outbox")),
      broadcasts_p2p_(registry.counter(
          "tobd_broadcasts_point_to_point_total",
          "Broadcasts over the PUB's frame size, sent to each peer on its DEALER")),
      archive_served_(registry.counter(
          "tobd_archive_proofs_served_total",
          "Committed-epoch proofs served from the on-disk archive to nodes catching up")),
      verify_queue_depth_(
          registry.gauge("tobd_verify_queue_depth", "Frames waiting for signature verification")),
      pool_requests_(
          registry.gauge("tobd_pool_requests", "Uncommitted client requests in the pool")),
      peers_connected_(registry.gauge("tobd_peers_connected",
                                      "Peers whose PUB socket this node is connected to")),
      rocksdb_size_(registry.gauge("tobd_rocksdb_size_bytes", "Approximate RocksDB size")),
      epoch_(registry.gauge("tobd_epoch", "Highest epoch this node joined")),
      applied_(registry.gauge("tobd_applied_epoch", "Last applied epoch")),
      voting_(registry.gauge("tobd_voting",
                             "1 if the node signs; 0 for a non-voting follower or a halted node")),
      high_water_(registry.gauge("tobd_sign_high_water_epoch", "The signing high-water mark")) {
    for (std::uint8_t k = 0; k <= kKindMax; ++k) {
        messages_in_[k] =
            &registry.counter("tobd_messages_in_total", "Verified envelopes received, by kind",
                              {{"kind", kind_name(k)}});
        messages_out_[k] = &registry.counter("tobd_messages_out_total", "Envelopes sent, by kind",
                                             {{"kind", kind_name(k)}});
    }
    static constexpr const char* kStored[8] = {"state",     "Signed", "Block",  "Cert",
                                               "HighWater", "Proof",  "Commit", "Floor"};
    for (std::size_t k = 0; k < storage_appended_.size(); ++k) {
        storage_appended_[k] = &registry.counter(
            "tobd_storage_appended_bytes_total",
            "Bytes of records (by type) and state changes written to RocksDB, before its "
            "own WAL, flush and compaction writes",
            {{"kind", kStored[k]}});
    }
    for (std::size_t k = 0; k < storage_writes_.size(); ++k) {
        storage_writes_[k] = &registry.counter(
            "tobd_storage_writes_total",
            "Record batches written to RocksDB, synced (a message of the step depends on "
            "them) or not (made durable by the next synced batch)",
            {{"sync", k == 0 ? "yes" : "no"}});
    }
    registry.gauge("tobd_build_info", "Build information", {{"version", version()}}).set(1);
}

void NodeMetrics::refresh(const NodeSample& s) {
    epoch_.set(to_double(s.core.highest_joined));
    applied_.set(to_double(s.applied));
    pool_requests_.set(to_double(s.core.pool));
    peers_connected_.set(s.peers_connected);
    verify_queue_depth_.set(to_double(s.verify_queue_depth));
    voting_.set(s.voting ? 1 : 0);
    if (s.core.aba_instances > last_aba_instances_) {
        const auto di = s.core.aba_instances - last_aba_instances_;
        const auto dr = s.core.aba_rounds_total - last_aba_rounds_;
        aba_rounds_.observe(to_double(dr) / to_double(di));
        coin_invocations_.inc(to_double(dr));
        last_aba_instances_ = s.core.aba_instances;
        last_aba_rounds_ = s.core.aba_rounds_total;
    }
    archive_served_.inc(to_double(s.core.archive_proofs_served - last_archive_served_));
    last_archive_served_ = s.core.archive_proofs_served;
    const TransportStats& ts = s.transport;
    bytes_in_.inc(to_double(ts.bytes_in - last_transport_.bytes_in));
    bytes_out_.inc(to_double(ts.bytes_out - last_transport_.bytes_out));
    pubsub_drops_.inc(to_double(ts.pubsub_gaps - last_transport_.pubsub_gaps));
    send_drops_.inc(to_double(ts.send_drops - last_transport_.send_drops));
    outbox_drops_.inc(to_double(ts.outbox_drops - last_transport_.outbox_drops));
    broadcasts_p2p_.inc(
        to_double(ts.broadcasts_point_to_point - last_transport_.broadcasts_point_to_point));
    last_transport_ = ts;
}

namespace {
// Adds what each running total grew by since the last call to its counter.
template <std::size_t N>
void add_growth(const std::array<Counter*, N>& counters, std::array<std::uint64_t, N>& last,
                const std::array<std::uint64_t, N>& totals) {
    for (std::size_t k = 0; k < N; ++k) {
        if (totals[k] > last[k]) counters[k]->inc(to_double(totals[k] - last[k]));
        last[k] = totals[k];
    }
}
}  // namespace

void NodeMetrics::storage_appended(const std::array<std::uint64_t, 8>& totals) {
    add_growth(storage_appended_, last_storage_appended_, totals);
}

void NodeMetrics::storage_writes(std::uint64_t synced, std::uint64_t unsynced) {
    add_growth(storage_writes_, last_storage_writes_, {synced, unsynced});
}

void NodeMetrics::note_joined(Epoch joined, Epoch applied, std::uint64_t now_ms) {
    if (joined <= joined_noted_) return;
    for (Epoch e = std::max(joined_noted_ + 1, applied + 1); e <= joined; ++e)
        epoch_started_ms_.emplace(e, now_ms);
    joined_noted_ = joined;
}

void NodeMetrics::on_delivered(const EpochResult& epoch, std::uint64_t now_ms) {
    epochs_delivered_.inc();
    auto started = epoch_started_ms_.find(epoch.epoch);
    if (started != epoch_started_ms_.end())
        epoch_duration_.observe(to_double(now_ms - started->second) / 1000.0);
    epoch_started_ms_.erase(epoch_started_ms_.begin(), epoch_started_ms_.upper_bound(epoch.epoch));
    for (const auto& r : epoch.results) {
        if (r.duplicate) requests_duplicate_.inc();
        if (!r.duplicate && !r.malformed && !r.forbidden) {
            requests_committed_.inc();
            ops_committed_.inc(to_double(r.outputs.size()));
        }
    }
}

void NodeMetrics::fault(std::string_view kind, NodeId culprit) {
    registry_
        .counter("tobd_faults_total", "Peer misbehaviour detected, by kind and peer",
                 {{"kind", std::string(kind)}, {"peer", std::to_string(culprit)}})
        .inc();
}

void NodeMetrics::envelope_rejected(std::string_view reason) {
    verify_rejected.inc();
    registry_
        .counter("tobd_envelopes_rejected_by_reason_total",
                 "Envelopes refused by verification, by reason", {{"reason", std::string(reason)}})
        .inc();
}

}  // namespace tob::daemon
