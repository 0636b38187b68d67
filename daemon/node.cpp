#include "daemon/node.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include "cli/client/protocol.h"
#include "consensus/codec.h"
#include "consensus/kv/kv_machine.h"
#include "consensus/kv/rooted_storage.h"
#include "consensus/real_crypto.h"
#include "consensus/replica.h"
#include "crypto/hash.h"
#include "daemon/byzantine.h"
#include "daemon/checkpoint_monitor.h"
#include "daemon/client_access.h"
#include "daemon/client_service.h"
#include "daemon/fetch_gate.h"
#include "daemon/high_water.h"
#include "daemon/memory_budget.h"
#include "daemon/metrics.h"
#include "daemon/node_metrics.h"
#include "daemon/proof_archive.h"
#include "daemon/step_executor.h"
#include "daemon/storage.h"
#include "daemon/verify_pool.h"
#include "daemon/version.h"

namespace tob::daemon {

using namespace tob::consensus;
using namespace tob::client;  // the client plane (cli/client/protocol.h)
using consensus::kv::KvMachine;
using Clock = std::chrono::steady_clock;

// Records of the last kRecoverEpochs applied epochs are loaded into the core at
// start (it keeps the proofs of its last proof_history_epochs in memory); older
// records stay on disk until the core prunes them (checkpoint_retention epochs
// below its newest servable checkpoint, docs/protocol.md "Checkpoints"), and the
// core reads older proofs from them through the StorageProofArchive. A node
// further behind than that installs a snapshot.
constexpr Epoch kRecoverEpochs = 512;
// A member's fetch replies are taken this long after the node last asked it.
constexpr std::uint64_t kSolicitedMs = 10000;
// Fetch requests admitted per member (daemon/fetch_gate.h): a catching-up or
// repairing node asks a few per missing item every 200 ms.
constexpr std::uint64_t kFetchRequestsPerS = 128;
constexpr std::uint64_t kFetchRequestsBurst = 512;
// While frames are refused at ingress faster than this per 100 ms (a flood), a
// loop iteration that read nothing but refused frames is followed by a pause of
// kFloodPollGap before the next poll: ZeroMQ then hands the loop the flood in
// batches instead of waking it (a poll, an eventfd write and two context
// switches) for every few frames. An iteration with any other input does not
// pause, so honest frames wait at most one such pause.
constexpr std::uint64_t kFloodRefusedPerWindow = 100;
constexpr auto kFloodWindow = std::chrono::milliseconds(100);
constexpr auto kFloodPollGap = std::chrono::milliseconds(1);

struct Node::Impl {
    Impl(const NodeConfig& n, const ClusterConfig& c, NodeKeys k, const NodeOptions& o)
        : node(n), cluster(c), keys(std::move(k)), options(o) {}

    NodeConfig node;
    ClusterConfig cluster;
    NodeKeys keys;
    NodeOptions options;
    std::filesystem::path mark_path;

    MemoryBudget budget;
    std::unique_ptr<NodeStorage> storage;
    std::unique_ptr<consensus::kv::RootedStorage> rooted;  // the state root under kv
    std::unique_ptr<KvMachine> kv;
    std::unique_ptr<VerifyCache> cache;
    std::unique_ptr<CachingCryptoSuite> suite;
    ReplicaConfig rcfg;
    std::unique_ptr<StorageProofArchive> archive;  // before replica: it must outlive it
    std::unique_ptr<Replica> replica;
    std::unique_ptr<VerifyPool> pool;
    std::unique_ptr<Transport> transport;
    std::unique_ptr<ByzantineShim> byzantine;
    std::unique_ptr<CheckpointMonitor> checkpoints;

    Registry registry;
    std::unique_ptr<NodeMetrics> metrics;
    std::unique_ptr<ClientService> clients;
    std::unique_ptr<StepExecutor> executor;
    // The verification workers drop copies of envelopes verified in the last
    // 100-200 ms (daemon/verify_pool.cpp). Only these: relayed copies of one flood
    // arrive within milliseconds of each other, while re-publications come at least
    // repair_initial_ms (200 ms) apart and must reach the core again — it may have
    // set aside the first copy (an ABA message for a round it had not reached, a
    // certificate before its block), and repair is how it gets another chance.
    // Dropping every copy forever stalled a cluster whose frames were only delayed
    // (found by the fault suite, reorder).
    Clock::time_point started = Clock::now();
    VerifyPoolTotals pool_published;        // pool counters already added to the metrics
    std::unique_ptr<FetchGate> fetch_gate;  // by member: fetch requests and answer bytes
    Counter* fetch_refused_rate = nullptr;  // fetch requests dropped at ingress, by reason
    Counter* fetch_refused_answers = nullptr;
    std::uint64_t refused_in_window = 0;  // frames refused at ingress since window_start
    std::atomic<bool> voting{true};
    bool kv_damage_told = false;  // the KV damage alarm was logged
    std::atomic<bool> halted{false};
    std::atomic<bool> caught_up{false};
    std::atomic<bool> serving{false};
    std::string last_status;
    int fatal = 0;

    std::uint64_t now_ms() const {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    }

    // ---- startup ----------------------------------------------------------------

    std::string open_all() {
        mark_path = node.high_water_file;  // default: beside key_file
        auto derived = derive_memory_budget(memory_budget_input(node, cluster));
        if (auto* why = std::get_if<std::string>(&derived)) return "limits." + *why;
        budget = std::get<MemoryBudget>(derived);
        auto opened = NodeStorage::open(node.data_dir);
        if (!opened.ok()) {
            std::string all;
            for (const auto& e : opened.errors) all += (all.empty() ? "" : "; ") + e;
            return all;
        }
        storage = std::move(*opened.value);
        storage->set_group_commit(true);
        if (options.view_min_state_bytes)
            storage->kv().set_view_min_state_bytes(*options.view_min_state_bytes);
        rooted = std::make_unique<consensus::kv::RootedStorage>(storage->kv());
        if (rooted->migrated())
            spdlog::warn("state: moved {} keys of an older data dir into state-root buckets",
                         rooted->migrated());
        kv = std::make_unique<KvMachine>(*rooted, cluster.chain_id, cluster.limits,
                                         cluster.permissions,
                                         cluster.protocol.request_expiry_max_epochs);
        make_core();
        auto t = Transport::open(transport_options(node, cluster, keys, options));
        if (auto* err = std::get_if<std::string>(&t)) return "cannot listen: " + *err;
        transport = std::move(std::get<std::unique_ptr<Transport>>(t));
        VerifyPoolBounds bounds;
        bounds.member_bytes = budget.verify_member_bytes;
        bounds.clients_bytes = budget.verify_clients_bytes;
        bounds.client_each_bytes = budget.verify_client_each_bytes;
        bounds.failed_entries = budget.failed_entries / 2;  // the other half: the cache's
        bounds.recent_generation = budget.recent_generation;
        pool = std::make_unique<VerifyPool>(*suite, rcfg, options.verify_threads, bounds);
        if (options.byzantine) {
            byzantine = std::make_unique<ByzantineShim>(*options.byzantine, *suite, rcfg,
                                                        options.faults.seed);
        }
        make_services();
        checkpoints = std::make_unique<CheckpointMonitor>(registry, *storage);
        fetch_gate = std::make_unique<FetchGate>(cluster.n, budget.fetch_answer_bytes_per_s,
                                                 kFetchRequestsPerS, kFetchRequestsBurst);
        const char* help =
            "Fetch requests dropped at ingress, before any check: the member asked over its "
            "request rate (rate) or its answer bytes were used up (answers)";
        fetch_refused_rate =
            &registry.counter("tobd_fetch_requests_refused_total", help, {{"reason", "rate"}});
        fetch_refused_answers =
            &registry.counter("tobd_fetch_requests_refused_total", help, {{"reason", "answers"}});
        return {};
    }

    // The crypto suite and the core, over the opened storage.
    void make_core() {
        std::vector<PublicKey> members;
        for (const auto& m : cluster.members) members.push_back(m.public_key);
        cache = std::make_unique<VerifyCache>(budget.verify_cache_generation,
                                              budget.failed_entries / 2);
        suite = std::make_unique<CachingCryptoSuite>(
            RealCryptoSuite(members, cluster.coin_public_key(), keys.signing, keys.coin), *cache);
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
        if (options.snapshot_chunk_bytes != 0) {
            rcfg.snapshot_chunk_bytes =
                std::min(rcfg.snapshot_chunk_bytes, options.snapshot_chunk_bytes);
        }
        archive = std::make_unique<StorageProofArchive>(*storage, cluster.t, cluster.limits);
        replica = std::make_unique<Replica>(rcfg, *suite, *kv, archive.get(), rooted.get());
    }

    // The metrics, the client service and the step executor, over the open parts.
    void make_services() {
        metrics = std::make_unique<NodeMetrics>(registry);
        ClientService::Options copt;
        copt.self = node.node_id;
        copt.chain_id = cluster.chain_id;
        copt.limits = cluster.limits;
        copt.pending_max = budget.pending_max;
        copt.pending_bytes_max = budget.pending_bytes;
        copt.permissions = cluster.permissions;
        copt.client_bytes_per_s = node.limits.client_bytes_per_s;
        copt.client_burst_bytes =
            std::max<std::uint64_t>(node.limits.client_bytes_per_s, budget.client_frame_max);
        copt.client_rate_entries = budget.client_rate_entries;
        copt.client_frame_cost_min =
            node.limits.client_bytes_per_s / node.limits.client_requests_per_s;
        copt.client_new_keys_per_s = node.limits.client_new_keys_per_s;
        copt.sign_replies = options.test_no_curve;
        copt.client_new_keys_burst =
            std::max<std::uint64_t>(16, 4 * std::uint64_t{node.limits.client_new_keys_per_s});
        clients =
            std::make_unique<ClientService>(copt, keys.signing, *kv, *transport, *pool, *metrics,
                                            halted, [this] { return status_msg(); });
        StepExecutor::Options eopt;
        eopt.self = node.node_id;
        eopt.mark_path = mark_path;
        eopt.crash_at = options.crash_at;
        executor =
            std::make_unique<StepExecutor>(eopt, *storage, *transport, *metrics, byzantine.get(),
                                           [this](const EpochResult& c) { on_committed(c); });
    }

    // The signing high-water mark file as recovery needs it: a missing or corrupt
    // mark makes the node a non-voting follower.
    void read_mark(Recovery& rec) const {
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
        read_mark(rec);
        if (!loaded.sign_log_ok || storage->damaged()) {
            spdlog::critical(
                "SIGN-LOG DAMAGED in {} ({}): this node runs as a NON-VOTING FOLLOWER (it catches "
                "up and serves local reads, it never signs). The sign-log is never repaired from "
                "peers; to rejoin as a voter, move the data dir aside: the node then catches up "
                "and signs only above its high-water mark.",
                node.data_dir.string(),
                storage->damaged() ? storage->damage_reason() : "records failed their checksums");
        }
        executor->set_high_water(rec.high_water);
        const std::size_t n_records = rec.records.size();
        Step step = replica->recover(rec, now_ms());
        voting = replica->stats().voting;
        spdlog::info("recovered: {} records, applied epoch {}, high-water mark {}, {}", n_records,
                     kv->last_applied(), executor->high_water(),
                     voting ? "voting" : "NON-VOTING follower");
        flush(std::move(step));
    }

    // ---- inputs ---------------------------------------------------------------------

    // Nothing is hashed or decoded here: every frame goes to its source's queue
    // of the verification workers (daemon/verify_pool.h).
    void on_inbound(Inbound in) {
        if (in.source == Inbound::Source::Client) {
            clients->on_frame(in.routing_id, in.peer_key, std::move(in.body), now_ms());
            return;
        }
        if (fetch_refused(in)) return;
        const auto source = in.source == Inbound::Source::PubSub ? VerifyResult::Source::PubSub
                                                                 : VerifyResult::Source::Peer;
        if (!pool->submit_envelope(source, in.from, std::move(in.body)))
            metrics->verify_queue_full.inc();
    }

    // A fetch request of a member over its request rate or without answer bytes
    // left is dropped here, on its kind alone: before it is queued, hashed or
    // checked, and before the core looks anything up (daemon/fetch_gate.h).
    bool fetch_refused(const Inbound& in) {
        if (peek_envelope_kind(in.body) != Kind::FetchRequest) return false;
        const auto verdict = fetch_gate->admit(in.from, now_ms());
        if (verdict == FetchGate::Verdict::Admit) return false;
        (verdict == FetchGate::Verdict::OverRate ? fetch_refused_rate : fetch_refused_answers)
            ->inc();
        ++refused_in_window;
        return true;
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
            if (clients->on_verified(r, now_ms()) && !halted) {
                consensus::Admission admitted = consensus::Admission::Invalid;
                step.append(replica->handle_request(*r.request, now_ms(), &admitted));
                if (admitted == consensus::Admission::Overloaded)
                    clients->on_overloaded(*r.request);
            }
            return;
        }
        if (!r.envelope) {
            metrics->envelope_rejected(reject_reason(r.error));
            spdlog::debug("dropped a frame: {}", r.error);
            return;
        }
        const Envelope& env = *r.envelope;
        if (env.kind == Kind::FetchReply && !pool->solicited(env.sender)) {
            metrics->envelope_rejected("unsolicited");  // the core would open every envelope
            return;
        }
        metrics->message_in(env.kind);
        if (byzantine) byzantine->observe(env, r.bytes);
        if (halted) return;
        if (env.kind == Kind::FetchRequest) {
            on_fetch_request(env, step);
            return;
        }
        // A block comes with the digest its signature check computed.
        step.append(replica->handle_envelope(
            env, now_ms(),
            consensus::Precomputed{env.kind == Kind::Block ? &r.body_digest : nullptr,
                                   &r.request_digests, r.block ? &*r.block : nullptr,
                                   r.batch ? &*r.batch : nullptr}));
        if (env.kind == Kind::Block && replica->holds_block(r.body_digest))
            pool->note_held_block(r.raw_digest, env.epoch);
    }

    // Fetch and archive answers at most at the member's byte rate: a request
    // that finds its bucket empty is dropped before the core reads or signs.
    void on_fetch_request(const Envelope& env, Step& step) {
        if (env.sender >= cluster.n) return;
        const std::uint64_t now = now_ms();
        if (!fetch_gate->may_answer(env.sender, now)) {
            registry
                .counter("tobd_fetch_requests_limited_total",
                         "Fetch requests dropped: the member's answer rate was used up")
                .inc();
            return;
        }
        Step answer = replica->handle_envelope(env, now);
        std::uint64_t bytes = 0;
        for (const auto& m : answer.messages)
            if (m.kind == Kind::FetchReply && m.to == env.sender) bytes += m.envelope.size();
        fetch_gate->charge_answer(env.sender, bytes, now);
        registry.counter("tobd_fetch_answer_bytes_total", "Bytes of fetch and archive answers sent")
            .inc(static_cast<double>(bytes));
        step.append(std::move(answer));
    }

    static std::string reject_reason(const std::string& e) {
        if (e.find("signature") != std::string::npos) return "signature";
        if (e.find("member") != std::string::npos) return "non_member";
        if (e.find("chain") != std::string::npos) return "foreign_chain";
        if (e.find("larger") != std::string::npos) return "oversized";
        return "malformed";
    }

    // ---- outputs --------------------------------------------------------------------

    /// Executes a Step (step_executor.h). Returns false on a fatal error.
    bool flush(Step step) {
        // Snapshots installed and pruning: after the step's records are written.
        const auto installed = std::move(step.installed);
        const Epoch prune_below = step.prune_below;
        // Fetch replies are taken from a member only for a while after asking it.
        for (const auto& m : step.messages) {
            if (m.kind != Kind::FetchRequest) continue;
            for (NodeId p = 0; p < cluster.n; ++p)
                if (!m.to || *m.to == p) pool->solicit(p, kSolicitedMs);
        }
        const bool ok = executor->execute(std::move(step), now_ms());
        if (!ok) fatal = executor->fatal();
        if (ok) {
            for (const auto& snap : installed) checkpoints->installed(snap, now_ms());
            if (prune_below > 0) {
                storage->prune_records_below(prune_below);
                checkpoints->pruned(prune_below);
            }
        }
        if (executor->alarmed() || replica->halted()) halted = true;
        return ok;
    }

    void on_committed(const EpochResult& c) {
        const std::uint64_t now = now_ms();
        metrics->on_delivered(c, now);
        clients->on_committed(c, now);
    }

    void refresh_gauges() {
        const auto& st = replica->stats();
        if (!kv_damage_told) {
            if (auto d = kv->damage()) {
                kv_damage_told = true;
                spdlog::critical(
                    "KV STATE DAMAGED in {} ({}): this node runs as a NON-VOTING FOLLOWER "
                    "(it keeps applying epochs, its results may differ from the cluster's, it "
                    "never signs). To rejoin as a voter, stop it and move the data dir aside: it "
                    "then catches up from peers.",
                    node.data_dir.string(), *d);
            }
        }
        voting = st.voting && !st.halted;
        metrics->refresh(NodeSample{st, kv->last_applied(), transport->peers_connected(),
                                    pool->queue_depth(), voting && !halted, transport->stats()});
        transport->publish(registry);
        publish_bounds();
        // t + 1 peers' COMMITs, so one liar's COMMIT for 2^64 - 1 cannot keep a node
        // "catching up" for good (issue 11, finding 9).
        caught_up = epoch_add(kv->last_applied(), rcfg.window) >= st.peers_epoch;
    }

    // Every memory bound and its fill level (tobd_bound_bytes, tobd_bound_used_bytes),
    // and the workers' counters.
    void publish_bounds() {
        const std::map<std::string, std::uint64_t> used = {
            {"zmq_receive", 0},  // inside libzmq: not observable; the bound is its HWM x frame
            {"zmq_send", 0},     // likewise
            {"peer_outboxes", transport->stats().outbox_bytes},
            {"client_replies", transport->stats().client_replies_held},
            {"verify_queue_members", pool->member_bytes_max_used()},
            {"verify_queue_clients", pool->clients_bytes_used()},
            {"verify_cache", cache->size() * kDigestEntryBytes},
            {"failed_digests", (pool->failed_size() + cache->failed().size()) * kFailedEntryBytes},
            {"recent_digests", pool->recent_size() * kDigestEntryBytes},
            {"client_pending", clients->pending_bytes()},
            {"client_rates", clients->rates_bytes()},
        };
        for (const auto& b : budget.named()) {
            const Labels labels{{"bound", b.name}};
            registry.gauge("tobd_bound_bytes", "Memory bound in bytes (from memory_max_mb)", labels)
                .set(static_cast<double>(b.bytes));
            auto it = used.find(b.name);
            registry
                .gauge("tobd_bound_used_bytes", "Bytes held now under each memory bound", labels)
                .set(static_cast<double>(it == used.end() ? 0 : it->second));
        }
        const VerifyPoolTotals now = pool->totals();
        metrics->duplicates_dropped.inc(
            static_cast<double>(now.duplicates - pool_published.duplicates));
        registry
            .counter("tobd_verify_failed_repeats_total",
                     "Frames dropped unchecked: their digest failed a check before")
            .inc(static_cast<double>(now.failed_repeats - pool_published.failed_repeats));
        registry
            .counter("tobd_verify_held_block_copies_total",
                     "Block frames dropped unchecked: the core holds that block")
            .inc(static_cast<double>(now.held_repeats - pool_published.held_repeats));
        registry
            .counter("tobd_verify_checks_skipped_total",
                     "Envelopes whose checks the filters spared (window, round, solicitation)")
            .inc(static_cast<double>(now.checks_skipped - pool_published.checks_skipped));
        pool_published = now;
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

    // Once a second: gauges, the database size, expired client requests, the
    // service manager's status line.
    void every_second(NodeHooks& hooks) {
        refresh_gauges();
        checkpoints->refresh(replica->stats(), now_ms());
        metrics->rocksdb_size(storage->approximate_size_bytes());
        metrics->storage_appended(storage->appended_bytes());
        const auto writes = storage->write_counts();
        metrics->storage_writes(writes.synced, writes.unsynced);
        clients->expire(now_ms());
        report_stall();
        std::string line = status_line();
        if (line != last_status) {
            last_status = line;
            if (hooks.status) hooks.status(line);
        }
    }

    // An epoch joined but not applied for 10 s (a healthy cluster applies one in
    // well under a second) is logged with the core's view of it: blocks, SEENs,
    // certificates and the undecided agreements. Repeated at 20, 40, ... s (at
    // most every 5 minutes), so an operator (or a failing test) sees why a
    // cluster stopped without a debugger and without filling the log.
    Epoch stall_applied = 0;
    std::uint64_t stall_since_ms = 0, stall_next_report_ms = 0, stall_gap_ms = 0;
    void report_stall() {
        const auto& st = replica->stats();
        const Epoch applied = kv->last_applied();
        const std::uint64_t now = now_ms();
        if (st.highest_joined <= applied || applied != stall_applied || halted) {
            stall_applied = applied;
            stall_since_ms = now;
            stall_gap_ms = 10'000;
            stall_next_report_ms = now + stall_gap_ms;
            return;
        }
        if (now < stall_next_report_ms) return;
        // The node's non-zero counters and gauges (histograms left out): where a
        // lost or refused message shows.
        std::string dropped;
        std::istringstream lines(registry.render());
        for (std::string line; std::getline(lines, line);) {
            if (line.empty() || line[0] == '#') continue;
            if (line.find("_bucket") != std::string::npos ||
                line.find("_sum") != std::string::npos || line.find("_count") != std::string::npos)
                continue;
            if (line.size() >= 2 && line.compare(line.size() - 2, 2, " 0") == 0) continue;
            dropped += "  " + line + "\n";
        }
        spdlog::warn(
            "node {}: no epoch applied for {} s (applied {}, joined {}); pending:\n{}counters:\n{}",
            node.node_id, (now - stall_since_ms) / 1000, applied, st.highest_joined,
            replica->describe_pending(), dropped);
        stall_gap_ms = std::min<std::uint64_t>(2 * stall_gap_ms, 300'000);
        stall_next_report_ms = now + stall_gap_ms;
    }

    // Whether the core has work in progress that its tick drives (cutting blocks,
    // re-publishing, re-requesting): requests in its pool, an epoch joined but not
    // applied, or a catch-up. Without any, the loop ticks every idle_tick_ms (for
    // the COMMIT heartbeat) instead of every tick_ms: timers, not polling.
    bool has_work() const {
        const auto& st = replica->stats();
        return st.pool > 0 || st.highest_joined > kv->last_applied() || !caught_up;
    }

    int run(const std::atomic<bool>& stop, NodeHooks& hooks) {
        recover();
        if (fatal) return fatal;
        serving = true;
        refresh_gauges();
        if (hooks.ready) hooks.ready();
        spdlog::info("node {} serving: pub {} router {} client {}{}", node.node_id,
                     cluster.members[node.node_id].pub_endpoint,
                     cluster.members[node.node_id].router_endpoint,
                     cluster.members[node.node_id].client_endpoint,
                     transport->curve() ? "" : " (CURVE OFF: plaintext, test only)");
        const auto tick = std::chrono::milliseconds(options.tick_ms);
        const auto idle_tick =
            std::chrono::milliseconds(std::max(options.idle_tick_ms, options.tick_ms));
        auto next_tick = Clock::now();
        auto next_second = Clock::now();
        auto window_start = Clock::now();
        bool flood = false, refused_only = false;
        while (!stop.load()) {
            if (hooks.alive) hooks.alive();
            auto now = Clock::now();
            if (now >= window_start + kFloodWindow) {
                flood = refused_in_window >= kFloodRefusedPerWindow;
                refused_in_window = 0;
                window_start = now;
            }
            if (flood && refused_only) {
                std::this_thread::sleep_for(kFloodPollGap);
                now = Clock::now();
            }
            // Rounded up: a timeout rounded down to 0 ms while the tick is still
            // under a millisecond away made the loop spin through zmq_poll until
            // it came (thousands of empty passes a second at low load).
            auto timeout = std::chrono::ceil<std::chrono::milliseconds>(next_tick - now);
            if (timeout.count() < 0) timeout = std::chrono::milliseconds(0);
            (void)transport->wait(timeout, {pool->wake_fd()});
            Step step;
            pool->set_applied(kv->last_applied());
            bool input = false;
            std::size_t frames = 0;
            const std::uint64_t refused_before = refused_in_window;
            for (auto& in : transport->receive(1024)) {
                on_inbound(std::move(in));
                ++frames;
            }
            refused_only = frames > 0 && refused_in_window - refused_before == frames;
            input = frames > 0 && !refused_only;
            // The inputs of one pass share a step (persisted, then sent), so their
            // agreement messages share a signature too (Replica::begin_batch).
            replica->begin_batch();
            for (auto& r : pool->take_results()) {
                on_result(std::move(r), step);
                input = true;
                refused_only = false;
            }
            now = Clock::now();
            // Any input brings the fast tick back (an idle node sleeps up to idle_tick).
            if (input) next_tick = std::min(next_tick, now + tick);
            if (now >= next_tick && !halted) {
                Step ticked = replica->tick(now_ms());
                const bool busy = !ticked.messages.empty() || !ticked.persist.empty() ||
                                  !ticked.committed.empty() || has_work();
                step.append(std::move(ticked));
                next_tick = now + (busy ? tick : idle_tick);
            } else if (halted) {
                next_tick = now + std::chrono::milliseconds(100);
            }
            Step batch = replica->end_batch();
            if (!batch.messages.empty()) next_tick = std::min(next_tick, now + tick);
            step.append(std::move(batch));
            if (!flush(std::move(step))) return fatal;
            metrics->note_joined(replica->stats().highest_joined, kv->last_applied(), now_ms());
            if (now >= next_second) {
                next_second = now + std::chrono::seconds(1);
                every_second(hooks);
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
