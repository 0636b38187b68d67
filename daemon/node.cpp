#include "daemon/node.h"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <map>
#include <set>

#include "cli/client/protocol.h"
#include "consensus/codec.h"
#include "consensus/kv/kv_machine.h"
#include "consensus/kv/rooted_storage.h"
#include "consensus/real_crypto.h"
#include "consensus/replica.h"
#include "crypto/hash.h"
#include "daemon/byzantine.h"
#include "daemon/checkpoint_monitor.h"
#include "daemon/high_water.h"
#include "daemon/metrics.h"
#include "daemon/proof_archive.h"
#include "daemon/storage.h"
#include "daemon/verify_pool.h"
#include "daemon/version.h"

namespace tob::daemon {

using namespace tob::consensus;
using namespace tob::client;  // the client plane (cli/client/protocol.h)
using consensus::kv::KvMachine;
using Clock = std::chrono::steady_clock;

std::optional<Byzantine> parse_byzantine(std::string_view name) {
    static const std::pair<std::string_view, Byzantine> kNames[] = {
        {"none", Byzantine::None},
        {"equivocate", Byzantine::Equivocate},
        {"conflicting-seen", Byzantine::ConflictingSeen},
        {"lying-aba", Byzantine::LyingAba},
        {"bad-coin", Byzantine::BadCoin},
        {"silent", Byzantine::Silent},
        {"replay", Byzantine::Replay},
        {"collude", Byzantine::Collude},
        {"corrupt-snapshot", Byzantine::CorruptSnapshot},
    };
    for (const auto& [n, b] : kNames)
        if (n == name) return b;
    return std::nullopt;
}

std::string_view to_string(Byzantine b) {
    switch (b) {
        case Byzantine::None:
            return "none";
        case Byzantine::Equivocate:
            return "equivocate";
        case Byzantine::ConflictingSeen:
            return "conflicting-seen";
        case Byzantine::LyingAba:
            return "lying-aba";
        case Byzantine::BadCoin:
            return "bad-coin";
        case Byzantine::Silent:
            return "silent";
        case Byzantine::Replay:
            return "replay";
        case Byzantine::Collude:
            return "collude";
        case Byzantine::CorruptSnapshot:
            return "corrupt-snapshot";
    }
    return "none";
}

namespace {

const char* kind_name(std::uint8_t k) {
    static const char* kNames[] = {
        "unknown",       "block",    "seen",          "cert",        "aba",
        "commit",        "requests", "fetch_request", "fetch_reply", "snapshot_request",
        "snapshot_reply"};
    static_assert(sizeof(kNames) / sizeof(kNames[0]) == kKindMax + 1);
    return k <= kKindMax ? kNames[k] : kNames[0];
}

struct PendingKey {
    PublicKey client;
    Nonce nonce;
    auto operator<=>(const PendingKey&) const = default;
};

struct Pending {
    std::vector<std::string> routing_ids;
    Digest request_digest{};
    std::uint64_t since_ms = 0;
    std::size_t ops = 0;
};

}  // namespace

// Records of the last kRecoverEpochs applied epochs are loaded into the core at
// start (it keeps the proofs of its last proof_history_epochs in memory); older
// records stay on disk until the core prunes them (checkpoint_retention epochs
// below its newest servable checkpoint, docs/protocol.md "Checkpoints"), and the
// core reads older proofs from them through the StorageProofArchive. A node
// further behind than that installs a snapshot.
constexpr Epoch kRecoverEpochs = 512;

struct Node::Impl {
    Impl(const NodeConfig& n, const ClusterConfig& c, NodeKeys k, const NodeOptions& o)
        : node(n), cluster(c), keys(std::move(k)), options(o) {}

    NodeConfig node;
    ClusterConfig cluster;
    NodeKeys keys;
    NodeOptions options;
    std::filesystem::path mark_path;

    std::unique_ptr<NodeStorage> storage;
    std::unique_ptr<consensus::kv::RootedStorage> rooted;  // the state root under kv
    std::unique_ptr<KvMachine> kv;
    VerifyCache cache;
    std::unique_ptr<CachingCryptoSuite> suite;
    ReplicaConfig rcfg;
    std::unique_ptr<StorageProofArchive> archive;  // before replica: it must outlive it
    std::unique_ptr<Replica> replica;
    std::unique_ptr<VerifyPool> pool;
    std::unique_ptr<Transport> transport;
    std::unique_ptr<ByzantineShim> byzantine;
    std::unique_ptr<CheckpointMonitor> checkpoints;

    Registry registry;
    // Copies of verified envelopes that arrived in the last 100-200 ms (two
    // generations of digests, rotated every 100 ms). Only these are dropped before
    // verification: relayed copies of one flood arrive within milliseconds of each
    // other, while re-publications come at least repair_initial_ms (200 ms) apart
    // and must reach the core again — it may have set aside the first copy (an ABA
    // message for a round it had not reached, a certificate before its block), and
    // repair is how it gets another chance. Dropping every copy forever stalled a
    // cluster whose frames were only delayed (found by the fault suite, reorder).
    std::set<Digest> recent_now, recent_before;
    Clock::time_point recent_rotated = Clock::now();
    Clock::time_point started = Clock::now();
    Epoch high_water = 0;
    Epoch peer_commit_max = 0;
    std::map<PendingKey, Pending> pending;
    std::map<Epoch, std::uint64_t> epoch_started_ms;  // joined epochs not yet delivered
    Epoch joined_noted = 0;
    std::atomic<bool> voting{true};
    std::atomic<bool> halted{false};
    std::atomic<bool> caught_up{false};
    std::atomic<bool> serving{false};
    std::string last_status;
    int fatal = 0;

    // Metrics (references into registry, valid for its lifetime).
    Counter* epochs_delivered = nullptr;
    Counter* ops_committed = nullptr;
    Counter* requests_committed = nullptr;
    Counter* requests_duplicate = nullptr;
    Histogram* commit_latency = nullptr;
    Histogram* epoch_duration = nullptr;
    Histogram* aba_rounds = nullptr;
    Counter* coin_invocations = nullptr;
    Counter* bytes_in = nullptr;
    Counter* bytes_out = nullptr;
    Counter* pubsub_drops = nullptr;
    Counter* send_drops = nullptr;
    Counter* duplicates_dropped = nullptr;
    Counter* verify_rejected = nullptr;
    Counter* verify_queue_full = nullptr;
    Counter* client_rejected = nullptr;
    Counter* archive_served = nullptr;
    // By envelope kind (index 0: unknown), registered once: these count every
    // message, so the loop must not look the series up by label each time.
    std::array<Counter*, kKindMax + 1> messages_in{};
    std::array<Counter*, kKindMax + 1> messages_out{};
    std::uint64_t failpoints_passed = 0;
    std::uint64_t last_archive_served = 0;
    Gauge* verify_queue_depth = nullptr;
    Gauge* pool_requests = nullptr;
    Gauge* peers_connected = nullptr;
    Gauge* rocksdb_size = nullptr;
    Gauge* epoch_gauge = nullptr;
    Gauge* applied_gauge = nullptr;
    Gauge* voting_gauge = nullptr;
    Gauge* high_water_gauge = nullptr;
    TransportStats last_tstats;
    std::uint64_t last_aba_instances = 0, last_aba_rounds = 0;

    std::uint64_t now_ms() const {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    }

    void register_metrics() {
        epochs_delivered = &registry.counter("tobd_epochs_delivered_total",
                                             "Epochs delivered and applied to the state machine");
        ops_committed = &registry.counter("tobd_operations_committed_total",
                                          "Client operations committed (in committed requests)");
        requests_committed =
            &registry.counter("tobd_requests_committed_total", "Client requests committed");
        requests_duplicate = &registry.counter("tobd_requests_skipped_total",
                                               "Ordered requests skipped by the dedup table",
                                               {{"reason", "duplicate"}});
        commit_latency =
            &registry.histogram("tobd_commit_latency_seconds",
                                "From a client's submission at this node to its request committing",
                                default_latency_buckets());
        epoch_duration = &registry.histogram("tobd_epoch_duration_seconds",
                                             "From joining an epoch to delivering it",
                                             default_latency_buckets());
        aba_rounds = &registry.histogram("tobd_aba_rounds",
                                         "Rounds used per decided binary agreement (mean per "
                                         "delivery batch)",
                                         {1, 2, 3, 4, 6, 8, 12, 16});
        coin_invocations = &registry.counter(
            "tobd_coin_invocations_total",
            "ABA rounds used, summed over decided instances (every round invokes the common coin)");
        bytes_in = &registry.counter("tobd_bytes_in_total", "Bytes received on all sockets");
        bytes_out = &registry.counter("tobd_bytes_out_total", "Bytes sent on all sockets");
        pubsub_drops = &registry.counter(
            "tobd_pubsub_drops_total", "Frames lost on PUB/SUB (gaps in peers' sequence numbers)");
        send_drops = &registry.counter("tobd_send_drops_total",
                                       "Sends dropped because a socket was at its high-water mark");
        duplicates_dropped =
            &registry.counter("tobd_duplicates_dropped_total",
                              "Envelopes dropped before verification as copies of verified ones");
        verify_rejected = &registry.counter(
            "tobd_envelopes_rejected_total",
            "Envelopes refused by verification (bad signature, non-member, malformed, foreign)");
        verify_queue_full =
            &registry.counter("tobd_verify_queue_full_total",
                              "Frames dropped because the verification queue was full");
        client_rejected =
            &registry.counter("tobd_client_requests_rejected_total",
                              "Client submissions refused (bad signature, malformed)");
        for (std::uint8_t k = 0; k <= kKindMax; ++k) {
            messages_in[k] =
                &registry.counter("tobd_messages_in_total", "Verified envelopes received, by kind",
                                  {{"kind", kind_name(k)}});
            messages_out[k] = &registry.counter(
                "tobd_messages_out_total", "Envelopes sent, by kind", {{"kind", kind_name(k)}});
        }
        archive_served = &registry.counter(
            "tobd_archive_proofs_served_total",
            "Committed-epoch proofs served from the on-disk archive to nodes catching up");
        verify_queue_depth =
            &registry.gauge("tobd_verify_queue_depth", "Frames waiting for signature verification");
        pool_requests =
            &registry.gauge("tobd_pool_requests", "Uncommitted client requests in the pool");
        peers_connected = &registry.gauge("tobd_peers_connected",
                                          "Peers whose PUB socket this node is connected to");
        rocksdb_size = &registry.gauge("tobd_rocksdb_size_bytes", "Approximate RocksDB size");
        epoch_gauge = &registry.gauge("tobd_epoch", "Highest epoch this node joined");
        applied_gauge = &registry.gauge("tobd_applied_epoch", "Last applied epoch");
        voting_gauge = &registry.gauge(
            "tobd_voting", "1 if the node signs; 0 for a non-voting follower or a halted node");
        high_water_gauge =
            &registry.gauge("tobd_sign_high_water_epoch", "The signing high-water mark");
        registry.gauge("tobd_build_info", "Build information", {{"version", version()}}).set(1);
    }

    // ---- startup ----------------------------------------------------------------

    std::string open_all() {
        mark_path = node.high_water_file;  // default: beside key_file
        auto opened = NodeStorage::open(node.data_dir);
        if (!opened.ok()) {
            std::string all;
            for (const auto& e : opened.errors) all += (all.empty() ? "" : "; ") + e;
            return all;
        }
        storage = std::move(*opened.value);
        storage->set_group_commit(true);
        rooted = std::make_unique<consensus::kv::RootedStorage>(storage->kv());
        if (rooted->migrated())
            spdlog::warn("state: moved {} keys of an older data dir into state-root buckets",
                         rooted->migrated());
        kv = std::make_unique<KvMachine>(*rooted, cluster.chain_id, cluster.limits);

        std::vector<PublicKey> members;
        for (const auto& m : cluster.members) members.push_back(m.public_key);
        suite = std::make_unique<CachingCryptoSuite>(
            RealCryptoSuite(members, cluster.coin_public_key(), keys.signing, keys.coin), cache);

        rcfg.n = cluster.n;
        rcfg.t = cluster.t;
        rcfg.self = node.node_id;
        rcfg.chain_id = cluster.chain_id;
        rcfg.limits = cluster.limits;
        rcfg.window = cluster.protocol.window;
        rcfg.aged_epochs = cluster.protocol.aged_epochs;
        rcfg.block_timer_ms = cluster.protocol.block_timer_ms;
        rcfg.pool_requests_max = node.limits.pool_requests_max;
        rcfg.checkpoint_interval = cluster.protocol.checkpoint_interval;
        rcfg.checkpoint_retention = cluster.protocol.checkpoint_retention;
        rcfg.snapshot_chunk_bytes =
            std::min<std::uint64_t>(1u << 20, cluster.limits.message_bytes_max / 2);
        archive = std::make_unique<StorageProofArchive>(*storage, cluster.t, cluster.limits);
        replica = std::make_unique<Replica>(rcfg, *suite, *kv, archive.get(), rooted.get());

        TransportOptions topt;
        topt.self = node.node_id;
        topt.members = cluster.members;
        topt.message_bytes_max = node.message_bytes_max(cluster);
        topt.faults = options.faults;
        topt.twin_port_offset = options.twin_port_offset;
        auto t = Transport::open(topt);
        if (auto* err = std::get_if<std::string>(&t)) return "cannot listen: " + *err;
        transport = std::move(std::get<std::unique_ptr<Transport>>(t));
        pool = std::make_unique<VerifyPool>(*suite, rcfg, options.verify_threads,
                                            node.limits.future_epoch_buffer_max);
        if (options.byzantine != Byzantine::None) {
            byzantine = std::make_unique<ByzantineShim>(options.byzantine, *suite, rcfg,
                                                        options.faults.seed);
        }
        register_metrics();
        checkpoints = std::make_unique<CheckpointMonitor>(registry, *storage);
        return {};
    }

    void recover() {
        // The core needs the records of the epochs it still works on and of the
        // catch-up horizon it serves from memory; older ones stay on disk as the
        // proof archive until pruned.
        const Epoch applied = kv->last_applied();
        const Epoch horizon = std::max<Epoch>(kRecoverEpochs, rcfg.proof_history_epochs);
        auto loaded = storage->load_records(applied > horizon ? applied - horizon : 0);
        for (const auto& p : loaded.problems) spdlog::error("storage: {}", p);
        if (loaded.dropped > 0)
            spdlog::warn(
                "storage: dropped {} damaged non-sign-log records (they are re-fetched "
                "from peers)",
                loaded.dropped);
        Recovery rec;
        rec.records = std::move(loaded.records);
        rec.sign_log_ok = loaded.sign_log_ok && !storage->damaged();
        auto mark = read_high_water(mark_path);
        switch (mark.state) {
            case MarkState::Ok:
                rec.high_water = mark.epoch;
                break;
            case MarkState::Missing:
                rec.sign_log_ok = false;
                spdlog::critical(
                    "signing high-water mark {} is missing while the node key exists: this node "
                    "will NOT sign (non-voting follower). If the key is new, create the mark with "
                    "`tobctl testnet` (the dealer writes it); never fake it for a key that has "
                    "signed before.",
                    mark_path.string());
                break;
            case MarkState::Corrupt:
                rec.sign_log_ok = false;
                spdlog::critical(
                    "signing high-water mark: {}: this node will NOT sign "
                    "(non-voting follower)",
                    mark.error);
                break;
        }
        if (!loaded.sign_log_ok || storage->damaged()) {
            spdlog::critical(
                "SIGN-LOG DAMAGED in {} ({}): this node runs as a NON-VOTING FOLLOWER (it catches "
                "up and serves local reads, it never signs). The sign-log is never repaired from "
                "peers; to rejoin as a voter, move the data dir aside: the node then catches up "
                "and signs only above its high-water mark.",
                node.data_dir.string(),
                storage->damaged() ? storage->damage_reason() : "records failed their checksums");
        }
        high_water = rec.high_water;
        const std::size_t n_records = rec.records.size();
        Step step = replica->recover(rec, now_ms());
        voting = replica->stats().voting;
        spdlog::info("recovered: {} records, applied epoch {}, high-water mark {}, {}", n_records,
                     kv->last_applied(), high_water, voting ? "voting" : "NON-VOTING follower");
        flush(std::move(step));
    }

    // ---- inputs ---------------------------------------------------------------------

    void on_inbound(Inbound in) {
        if (in.source == Inbound::Source::Client) {
            on_client(in.routing_id, in.body);
            return;
        }
        const Digest d = digest_of(in.body);
        if (const auto t = Clock::now(); t - recent_rotated >= std::chrono::milliseconds(100)) {
            recent_before = std::move(recent_now);
            recent_now.clear();
            recent_rotated = t;
        }
        if (recent_now.count(d) || recent_before.count(d)) {
            duplicates_dropped->inc();
            return;
        }
        const auto source = in.source == Inbound::Source::PubSub ? VerifyResult::Source::PubSub
                                                                 : VerifyResult::Source::Peer;
        if (!pool->submit_envelope(source, std::move(in.body), d)) verify_queue_full->inc();
    }

    void reply_client(const std::string& id, const ClientMessage& m) {
        transport->send_client(id, encode_client_message(m));
    }

    void on_client(const std::string& id, const Bytes& body) {
        auto msg = decode_client_message(body, cluster.limits);
        if (!msg) {
            client_rejected->inc();
            reply_client(
                id, ErrorMsg{ErrorCode::BadRequest, "undecodable message: " + msg.error(), {}});
            return;
        }
        if (auto* submit = std::get_if<SubmitMsg>(&msg.value())) {
            const Digest rd = digest_of(submit->request);
            if (halted) {
                reply_client(id, ErrorMsg{ErrorCode::Halted, "node halted with an alarm", rd});
                return;
            }
            if (!pool->submit_request(id, std::move(submit->request))) {
                verify_queue_full->inc();
                reply_client(id, ErrorMsg{ErrorCode::Overloaded, "verification queue full", rd});
            }
            return;
        }
        if (std::holds_alternative<StatusQueryMsg>(msg.value())) {
            reply_client(id, status_msg());
            return;
        }
        if (auto* get = std::get_if<LocalGetMsg>(&msg.value())) {
            reply_client(id, LocalValueMsg{kv->last_applied(), kv->read(get->key)});
            return;
        }
        client_rejected->inc();
        reply_client(id, ErrorMsg{ErrorCode::BadRequest, "not a client-to-node message", {}});
    }

    StatusMsg status_msg() const {
        StatusMsg s;
        s.node = node.node_id;
        s.version = std::string(version());
        s.epoch = replica->stats().highest_joined;
        s.applied = kv->last_applied();
        s.peers_connected = transport->peers_connected();
        s.pool = replica->stats().pool;
        s.faults = replica->stats().faults;
        s.state_digest = kv->state_digest();
        s.voting = voting;
        s.halted = halted;
        s.uptime_s = now_ms() / 1000;
        checkpoints->fill(s);
        return s;
    }

    void on_result(VerifyResult r, Step& step) {
        if (r.source == VerifyResult::Source::Client) {
            if (!r.request) {
                client_rejected->inc();
                reply_client(r.routing_id,
                             ErrorMsg{ErrorCode::BadRequest, r.error, digest_of(r.request_bytes)});
                return;
            }
            const Request& req = *r.request;
            const Digest rd = digest_of(r.request_bytes);
            if (kv->committed(req.client, req.nonce)) {
                answer_from_table(r.routing_id, req, rd);
                return;
            }
            if (pending.size() >= node.limits.pool_requests_max &&
                !pending.count(PendingKey{req.client, req.nonce})) {
                reply_client(r.routing_id, ErrorMsg{ErrorCode::Overloaded,
                                                    "too many requests waiting for their outcome",
                                                    digest_of(r.request_bytes)});
                return;
            }
            auto& p = pending[PendingKey{req.client, req.nonce}];
            if (p.routing_ids.empty()) {
                p.since_ms = now_ms();
                p.request_digest = rd;
                p.ops = req.ops.size();
            }
            if (p.routing_ids.size() < 16) p.routing_ids.push_back(r.routing_id);
            if (!halted) step.append(replica->handle_request(req, now_ms()));
            return;
        }
        if (!r.envelope) {
            verify_rejected->inc();
            registry
                .counter("tobd_envelopes_rejected_by_reason_total",
                         "Envelopes refused by verification, by reason",
                         {{"reason", reject_reason(r.error)}})
                .inc();
            spdlog::debug("dropped a frame: {}", r.error);
            return;
        }
        if (recent_now.size() < 200000) recent_now.insert(r.raw_digest);
        const Envelope& env = *r.envelope;
        messages_in[static_cast<std::uint8_t>(env.kind)]->inc();
        if (env.kind == Kind::Commit && env.sender != node.node_id)
            peer_commit_max = std::max(peer_commit_max, env.epoch);
        if (byzantine) byzantine->observe(env, r.bytes);
        if (!halted) step.append(replica->handle_envelope(env, now_ms()));
    }

    static std::string reject_reason(const std::string& e) {
        if (e.find("signature") != std::string::npos) return "signature";
        if (e.find("member") != std::string::npos) return "non_member";
        if (e.find("chain") != std::string::npos) return "foreign_chain";
        if (e.find("larger") != std::string::npos) return "oversized";
        return "malformed";
    }

    void answer_from_table(const std::string& id, const Request& req, const Digest& rd) {
        ReplyMsg reply;
        reply.node = node.node_id;
        reply.client = req.client;
        reply.nonce = req.nonce;
        reply.request_digest = rd;
        auto outs = kv->stored_outputs(req.client, req.nonce);
        reply.status = outs ? ReplyStatus::Committed : ReplyStatus::Duplicate;
        if (outs) reply.outputs = std::move(*outs);
        sign_and_send(id, reply);
    }

    void sign_and_send(const std::string& id, ReplyMsg& reply) {
        reply.sig = sign_reply(keys.signing, cluster.chain_id, reply);
        reply_client(id, reply);
    }

    // ---- outputs --------------------------------------------------------------------

    /// Executes a Step in the documented order. Returns false on a fatal error.
    void failpoint(const char* where) {
        if (options.crash_at == 0 || ++failpoints_passed < options.crash_at) return;
        spdlog::critical("fail-point {} reached at {}: abort()", options.crash_at, where);
        spdlog::default_logger()->flush();
        std::abort();
    }

    bool flush(Step step) {
        if (byzantine) byzantine->rewrite(step, now_ms());
        const bool durable = !step.persist.empty() || storage->has_staged();
        if (durable) failpoint("before the high-water mark");
        // (1) the mark file, before any signature in a new epoch leaves
        Epoch mark = high_water;
        for (const auto& rec : step.persist)
            if (rec.type == DurableRecord::Type::HighWater) mark = std::max(mark, rec.epoch);
        if (mark > high_water) {
            if (auto err = write_high_water(mark_path, mark)) {
                spdlog::critical(
                    "cannot raise the signing high-water mark ({}): stopping without "
                    "sending (fail-stop)",
                    *err);
                fatal = 3;
                return false;
            }
            high_water = mark;
            high_water_gauge->set(static_cast<double>(mark));
        }
        // (2) every record of the step, one synced batch
        if (durable) {
            failpoint("before the records batch");
            if (auto err = storage->append(step.persist)) {
                spdlog::critical(
                    "cannot write durable records ({}): stopping without sending "
                    "(fail-stop)",
                    *err);
                fatal = 3;
                return false;
            }
        }
        // (3) messages
        if (durable) failpoint("after the records batch");
        std::size_t sent = 0;
        for (const auto& m : step.messages) {
            if (durable && ++sent == step.messages.size() / 2 + 1) failpoint("mid-send");
            messages_out[static_cast<std::uint8_t>(m.kind)]->inc();
            if (m.to) {
                if (*m.to != node.node_id) transport->send_to(*m.to, m.envelope);
            } else {
                transport->broadcast(m.envelope);
            }
        }
        // (4) committed epochs, snapshots installed, pruning
        for (const auto& c : step.committed) on_committed(c);
        for (const auto& snap : step.installed) checkpoints->installed(snap, now_ms());
        if (step.prune_below > 0) {
            storage->prune_records_below(step.prune_below);
            checkpoints->pruned(step.prune_below);
        }
        // (5) faults and alarms
        for (const auto& f : step.faults) {
            registry
                .counter("tobd_faults_total", "Peer misbehaviour detected, by kind and peer",
                         {{"kind", to_string(f.kind)}, {"peer", std::to_string(f.culprit)}})
                .inc();
            spdlog::warn("fault by node {}: {}: {}", f.culprit, to_string(f.kind), f.detail);
        }
        for (const auto& a : step.alarms) spdlog::critical("ALARM (node halts): {}", a);
        if (!step.alarms.empty() || replica->halted()) halted = true;
        return true;
    }

    void on_committed(const EpochResult& c) {
        epochs_delivered->inc();
        const std::uint64_t now = now_ms();
        auto es = epoch_started_ms.find(c.epoch);
        if (es != epoch_started_ms.end()) {
            epoch_duration->observe(static_cast<double>(now - es->second) / 1000.0);
        }
        epoch_started_ms.erase(epoch_started_ms.begin(), epoch_started_ms.upper_bound(c.epoch));
        for (const auto& r : c.results) {
            if (r.duplicate) requests_duplicate->inc();
            if (!r.duplicate && !r.malformed) {
                requests_committed->inc();
                ops_committed->inc(static_cast<double>(r.outputs.size()));
            }
            auto it = pending.find(PendingKey{r.client, r.nonce});
            if (it == pending.end()) continue;
            ReplyMsg reply;
            reply.node = node.node_id;
            reply.client = r.client;
            reply.nonce = r.nonce;
            reply.request_digest = r.request_digest;
            reply.epoch = c.epoch;
            reply.position = r.position;
            if (r.malformed) {
                reply.status = ReplyStatus::Malformed;
            } else if (r.duplicate) {
                // A retry's second copy was ordered: answer with the stored outcome of
                // the first, exactly as a node answering from its dedup table would.
                auto outs = kv->stored_outputs(r.client, r.nonce);
                reply.status = outs ? ReplyStatus::Committed : ReplyStatus::Duplicate;
                reply.epoch = 0;
                reply.position = 0;
                if (outs) reply.outputs = std::move(*outs);
            } else {
                reply.status = ReplyStatus::Committed;
                reply.outputs = r.outputs;
                commit_latency->observe(static_cast<double>(now - it->second.since_ms) / 1000.0);
            }
            for (const auto& id : it->second.routing_ids) sign_and_send(id, reply);
            pending.erase(it);
        }
    }

    void refresh_gauges() {
        const auto& st = replica->stats();
        epoch_gauge->set(static_cast<double>(st.highest_joined));
        applied_gauge->set(static_cast<double>(kv->last_applied()));
        pool_requests->set(static_cast<double>(st.pool));
        peers_connected->set(transport->peers_connected());
        verify_queue_depth->set(static_cast<double>(pool->queue_depth()));
        voting = st.voting && !st.halted;
        voting_gauge->set(voting && !halted ? 1 : 0);
        if (st.aba_instances > last_aba_instances) {
            const auto di = st.aba_instances - last_aba_instances;
            const auto dr = st.aba_rounds_total - last_aba_rounds;
            aba_rounds->observe(static_cast<double>(dr) / static_cast<double>(di));
            coin_invocations->inc(static_cast<double>(dr));
            last_aba_instances = st.aba_instances;
            last_aba_rounds = st.aba_rounds_total;
        }
        archive_served->inc(static_cast<double>(st.archive_proofs_served - last_archive_served));
        last_archive_served = st.archive_proofs_served;
        const auto& ts = transport->stats();
        bytes_in->inc(static_cast<double>(ts.bytes_in - last_tstats.bytes_in));
        bytes_out->inc(static_cast<double>(ts.bytes_out - last_tstats.bytes_out));
        pubsub_drops->inc(static_cast<double>(ts.pubsub_gaps - last_tstats.pubsub_gaps));
        send_drops->inc(static_cast<double>(ts.send_drops - last_tstats.send_drops));
        last_tstats = ts;
        caught_up = kv->last_applied() + rcfg.window >= peer_commit_max;
    }

    void note_joined() {
        const Epoch joined = replica->stats().highest_joined;
        if (joined <= joined_noted) return;
        const std::uint64_t now = now_ms();
        for (Epoch e = std::max(joined_noted + 1, kv->last_applied() + 1); e <= joined; ++e)
            epoch_started_ms.emplace(e, now);
        joined_noted = joined;
    }

    void expire_pending() {
        const std::uint64_t now = now_ms();
        for (auto it = pending.begin(); it != pending.end();) {
            if (now - it->second.since_ms > 300'000)
                it = pending.erase(it);
            else
                ++it;
        }
    }

    std::string status_line() const {
        const auto& st = replica->stats();
        return "epoch " + std::to_string(st.highest_joined) + ", applied " +
               std::to_string(kv->last_applied()) + ", peers " +
               std::to_string(transport->peers_connected()) + "/" + std::to_string(cluster.n - 1) +
               ", pool " + std::to_string(st.pool) +
               (halted   ? ", HALTED"
                : voting ? ""
                         : ", NON-VOTING follower");
    }

    int run(const std::atomic<bool>& stop, NodeHooks& hooks) {
        recover();
        if (fatal) return fatal;
        serving = true;
        refresh_gauges();
        if (hooks.ready) hooks.ready();
        spdlog::info("node {} serving: pub {} router {}", node.node_id,
                     cluster.members[node.node_id].pub_endpoint,
                     cluster.members[node.node_id].router_endpoint);
        const auto tick = std::chrono::milliseconds(options.tick_ms);
        auto next_tick = Clock::now();
        auto next_second = Clock::now();
        while (!stop.load()) {
            if (hooks.alive) hooks.alive();
            auto now = Clock::now();
            auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now);
            if (timeout.count() < 0) timeout = std::chrono::milliseconds(0);
            (void)transport->wait(timeout, {pool->wake_fd()});
            Step step;
            for (auto& in : transport->receive(1024)) on_inbound(std::move(in));
            for (auto& r : pool->take_results()) on_result(std::move(r), step);
            now = Clock::now();
            if (now >= next_tick && !halted) {
                step.append(replica->tick(now_ms()));
                next_tick = now + tick;
            } else if (halted) {
                next_tick = now + std::chrono::milliseconds(100);
            }
            if (!flush(std::move(step))) return fatal;
            note_joined();
            if (now >= next_second) {
                next_second = now + std::chrono::seconds(1);
                refresh_gauges();
                checkpoints->refresh(replica->stats(), now_ms());
                rocksdb_size->set(static_cast<double>(storage->approximate_size_bytes()));
                expire_pending();
                std::string line = status_line();
                if (line != last_status) {
                    last_status = line;
                    if (hooks.status) hooks.status(line);
                }
            }
        }
        spdlog::info("node {} stopping (applied epoch {})", node.node_id, kv->last_applied());
        return 0;
    }
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;

std::variant<std::unique_ptr<Node>, std::string> Node::open(const NodeConfig& node,
                                                            const ClusterConfig& cluster,
                                                            NodeKeys keys, NodeOptions options) {
    auto impl = std::make_unique<Impl>(node, cluster, std::move(keys), options);
    if (auto err = impl->open_all(); !err.empty()) return err;
    return std::unique_ptr<Node>(new Node(std::move(impl)));
}

int Node::run(const std::atomic<bool>& stop, NodeHooks hooks) { return impl_->run(stop, hooks); }

Registry& Node::metrics() { return impl_->registry; }

bool Node::ready(std::string& why) const {
    if (!impl_->serving) return why = "starting", false;
    if (impl_->halted) return why = "halted with an alarm", false;
    if (!impl_->voting) return why = "non-voting follower", false;
    if (!impl_->caught_up) return why = "catching up", false;
    return true;
}

}  // namespace tob::daemon
