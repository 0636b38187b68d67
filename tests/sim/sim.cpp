// tobsim: the deterministic simulator.
//
// Model. n nodes live in one process. An honest node is a consensus::Replica over
// a KvMachine over a MemoryKvStorage, plus a list of durable records (what the
// daemon's sign-log/block store would hold) and the signing high-water mark
// (what the daemon keeps beside the key). The shell around each node does what
// the daemon does, in the daemon's order: open_envelope (decode + verify with the
// receiver's suite) -> handle_envelope; then execute the Step: append `persist`
// to the durable list BEFORE any of `messages` is put on the network, report
// `committed` to clients, look at `faults` and `alarms`.
//
// The network is a queue of (deliver_at, seq, from, to, bytes) events ordered by
// logical time (ms) and a sequence number, so equal times break ties
// deterministically. In the *safety phase* the scheduler delays (uniformly up to
// a per-seed maximum, with a per-seed share of long delays, which reorders),
// duplicates and drops messages, and crashes and restarts honest nodes: a crash
// drops the Replica (memory) and keeps the durable records and the KV store; a
// third of crashes happen in the middle of a step (a random prefix of its
// persist records survives, none of its messages leave), and a crash loses a
// random suffix of the records written since the node's last synced step (the
// daemon syncs a step's write only when it holds a signature: Step::needs_sync;
// a power failure loses what the kernel had not written); some restarts are
// "reformats" (records and KV store wiped, the high-water mark kept), after which
// the node must catch up and must not sign at or below the mark. In the *fair
// phase* nothing is dropped, crashed nodes are restarted and every message
// arrives within a bounded delay; the run ends when every transaction of every
// honest client took effect at every honest node and all honest nodes applied
// the same number of epochs, or fails liveness after a generous bound.
//
// Up to f Byzantine nodes run an honest Replica underneath (except `silent`),
// and the harness mutates, re-routes or adds to its output with the node's own,
// legitimately held keys (tests/sim/byzantine.h; the names in
// consensus/byzantine_catalogue.h, the behaviours in docs/simulator.md). Honest clients submit
// signed requests to random honest nodes and retry at another honest node, with the same signed
// request, when the node they used has not reported the commit after a timeout.
//
// Invariants checked after every step (violations end the seed):
//  - I5: no honest node ever signs two payloads for one slot (block (e,i), SEEN
//    (e,j), AUX/CONF (e,j,r), TERM (e,j), COMMIT(e)), across crashes and
//    reformats; a reformatted node does not sign at or below its mark;
//  - persist-before-send: every own signed envelope that leaves is in the node's
//    durable Signed records;
//  - no two honest certificates for one (e, j) name different digests; honest
//    TERMs of one ABA agree; honest COMMITs of one epoch agree;
//  - every application of an epoch by an honest node equals every other honest
//    application of that epoch (outputs, digests, results); epochs are applied
//    strictly in order; only submitted requests appear in an output;
//  - no honest node blames an honest node; no honest node raises an alarm.
// After the seed the checkers of tests/sim/checker.h run over the applied logs,
// and the honest KV stores must be byte-equal.

#include "tests/sim/sim.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <sstream>
#include <tuple>

#include "consensus/codec.h"
#include "consensus/fast_crypto.h"
#include "consensus/kv/kv_machine.h"
#include "consensus/kv/rooted_storage.h"
#include "consensus/replica.h"
#include "consensus/sign_log.h"
#include "consensus/snapshot_wire.h"
#include "crypto/hash.h"
#include "tests/sim/byzantine.h"
#include "tests/sim/real_crypto.h"
#include "tests/sim/rng.h"

namespace tob::sim {

using namespace tob::consensus;
using consensus::kv::KvMachine;
using consensus::kv::MemoryKvStorage;
using consensus::kv::RootedStorage;

std::string SeedParams::describe() const {
    std::ostringstream os;
    os << "n=" << n << " t=" << t << " byzantine={";
    bool first = true;
    for (const auto& [id, bs] : byzantine) {
        if (!first) os << ", ";
        first = false;
        os << id << ":";
        for (std::size_t i = 0; i < bs.size(); ++i) os << (i ? "+" : "") << to_string(bs[i]);
    }
    os << "} drop=" << drop << " dup=" << dup << " crash=" << crash << " reformat=" << reformat
       << " delay_max=" << delay_ms_max << "ms long_delay=" << long_delay << " window=" << window
       << " block_timer=" << block_timer_ms << "ms clients=" << clients << " safety=" << safety_ms
       << "ms";
    if (checkpoint_interval)
        os << " checkpoints=" << checkpoint_interval << "/" << checkpoint_retention
           << " chunk=" << chunk_bytes;
    if (outage_node)
        os << " outage=" << *outage_node << "@" << outage_ms << "ms"
           << (outage_reformat ? "+reformat" : "");
    for (const auto& part : partitions) {
        os << " partition[" << part.start_ms << "-" << part.end_ms << "ms"
           << (part.one_way ? " one-way" : "") << ":";
        for (std::size_t i = 0; i < part.side.size(); ++i)
            if (part.side[i]) os << " " << i;
        os << "]";
    }
    if (!slow_nodes.empty()) {
        os << " slow={";
        for (std::size_t i = 0; i < slow_nodes.size(); ++i) os << (i ? "," : "") << slow_nodes[i];
        os << "}";
    }
    if (batch_ms) os << " batch=" << batch_ms << "ms";
    for (const auto& [id, at] : stops) os << " stop=" << id << "@" << at << "ms";
    return os.str();
}

namespace {

constexpr std::uint64_t kTickMs = 10;
constexpr std::uint64_t kCheckMs = 50;
bool slot_kind(Kind k) {
    return k == Kind::Block || k == Kind::Seen || k == Kind::Aba || k == Kind::Commit;
}

// Whether an own envelope carries a sign-log slot (coin shares are deterministic
// and need none, so a bundle of coin shares only is not logged). The slots are
// the core's own (consensus/sign_log.h), so the checker cannot drift from it.
bool needs_log(const Envelope& env, const Limits& limits) {
    if (!slot_kind(env.kind)) return false;
    auto claims = slots_of(env, limits);
    return !claims || !claims->empty();
}

// One line about an envelope, for --trace-messages.
std::string describe(const Decoded<Envelope>& d, const Bytes& raw) {
    if (!d) return "undecodable (" + std::to_string(raw.size()) + " bytes): " + d.error();
    const Envelope& env = d.value();
    static const char* kinds[] = {"?",        "BLOCK", "SEEN",  "CERT",  "ABA",      "COMMIT",
                                  "REQUESTS", "FETCH", "REPLY", "SNAPQ", "SNAPREPLY"};
    std::string out =
        std::string(kinds[static_cast<int>(env.kind) <= 10 ? static_cast<int>(env.kind) : 0]) +
        " from " + std::to_string(env.sender) + " e=" + std::to_string(env.epoch);
    Limits lim;
    switch (env.kind) {
        case Kind::Seen:
            if (auto s = decode_seen(env.body, lim))
                out += " j=" + std::to_string(s.value().proposer) +
                       " d=" + hex_prefix(s.value().digest);
            break;
        case Kind::Block:
            if (auto b = decode_block(env.body, lim))
                out += " reqs=" + std::to_string(b.value().requests.size()) +
                       " d=" + hex_prefix(digest_of(env.body));
            break;
        case Kind::Cert:
            if (auto c = decode_certificate(env.body, lim))
                out += " j=" + std::to_string(c.value().proposer) +
                       " d=" + hex_prefix(c.value().digest);
            break;
        case Kind::Aba:
            if (auto b = decode_aba_bundle(env.body, lim)) {
                static const char* t[] = {"?", "BVAL", "AUX", "CONF", "TERM", "COIN"};
                for (const auto& m : b.value().messages)
                    out += " " + std::string(t[static_cast<int>(m.type)]) + "(j" +
                           std::to_string(m.proposer) + ",r" + std::to_string(m.round) + ",v" +
                           std::to_string(m.value) + ")";
            }
            break;
        case Kind::FetchRequest:
            if (auto f = decode_fetch_request(env.body, lim))
                out += " type=" + std::to_string(static_cast<int>(f.value().type)) +
                       " j=" + std::to_string(f.value().proposer) +
                       " d=" + hex_prefix(f.value().digest);
            break;
        case Kind::SnapshotRequest:
            if (auto q = decode_snapshot_request(env.body, lim))
                out += " op=" + std::to_string(static_cast<int>(q.value().op)) +
                       " b=" + std::to_string(q.value().first_bucket) + "+" +
                       std::to_string(q.value().bucket_count) +
                       " after=" + std::to_string(q.value().after_key.size());
            break;
        case Kind::SnapshotReply:
            if (auto q = decode_snapshot_reply(env.body, lim))
                out += " op=" + std::to_string(static_cast<int>(q.value().op)) +
                       " b=" + std::to_string(q.value().first_bucket) + ".." +
                       std::to_string(q.value().last_bucket) +
                       (q.value().last_complete ? "" : "(part)") +
                       " entries=" + std::to_string(q.value().entries.size());
            break;
        case Kind::FetchReply:
            if (auto f = decode_fetch_reply(env.body, lim)) {
                out += " [";
                for (const auto& inner : f.value().envelopes)
                    out += " " + describe(decode_envelope(inner, lim), inner) + ";";
                out += " ]";
            }
            break;
        default:
            break;
    }
    return out;
}

// ---- the state machine seen by the harness ----------------------------------------

/// Forwards to the node's KvMachine and reports every application to the world.
class ObservedMachine final : public StateMachine {
  public:
    using OnApply = std::function<void(const EpochResult&)>;
    using OnBad = std::function<void(std::string)>;
    using OnReload = std::function<void()>;
    ObservedMachine(KvMachine& kv, OnApply on_apply, OnBad on_bad, OnReload on_reload,
                    std::uint32_t extra_work)
        : kv_(kv),
          on_apply_(std::move(on_apply)),
          on_bad_(std::move(on_bad)),
          on_reload_(std::move(on_reload)),
          extra_work_(extra_work) {}

    Epoch last_applied() const override { return kv_.last_applied(); }
    Digest state_digest() const override { return kv_.state_digest(); }
    EpochResult apply_epoch(Epoch epoch, const Digest& output_digest,
                            const std::vector<Request>& ordered) override {
        return apply_epoch_with_digests(epoch, output_digest, ordered, digests_of(ordered));
    }
    EpochResult apply_epoch_with_digests(Epoch epoch, const Digest& output_digest,
                                         const std::vector<Request>& ordered,
                                         const std::vector<Digest>& digests) override {
        if (epoch != kv_.last_applied() + 1) {
            // KvMachine would abort; record it as a violation and keep the process.
            on_bad_("apply_epoch(" + std::to_string(epoch) + ") after " +
                    std::to_string(kv_.last_applied()));
            EpochResult r;
            r.epoch = epoch;
            r.output_digest = output_digest;
            r.state_digest = kv_.state_digest();
            return r;
        }
        EpochResult r = kv_.apply_epoch_with_digests(epoch, output_digest, ordered, digests);
        plant_slowdown(ordered);
        on_apply_(r);
        return r;
    }
    bool committed(const PublicKey& client, Nonce nonce) const override {
        return kv_.committed(client, nonce);
    }
    /// A snapshot was installed underneath: the log jumps (World::on_installed).
    void reload() override {
        kv_.reload();
        on_reload_();
    }

  private:
    /// --plant-extra-work N (test only): N more passes of a byte-wise FNV-1a loop
    /// over every applied operation's value — plain code, not libsodium — a
    /// slowdown for the instruction guard (bench/instructions.py) to catch.
    void plant_slowdown(const std::vector<Request>& ordered) {
        for (const Request& req : ordered)
            for (const Op& op : req.ops)
                for (std::uint32_t k = 0; k < extra_work_; ++k)
                    for (std::uint8_t b : op.value) planted_ = (planted_ ^ b) * 1099511628211ULL;
    }

    KvMachine& kv_;
    OnApply on_apply_;
    OnBad on_bad_;
    OnReload on_reload_;
    std::uint32_t extra_work_;
    std::uint64_t planted_ = 14695981039346656037ULL;
};

// ---- nodes and clients ------------------------------------------------------------

/// What a node's data directory holds: the core's durable records by epoch, in
/// append order within an epoch (the order the daemon's storage returns them in).
struct Disk {
    std::map<Epoch, std::vector<DurableRecord>> by_epoch;
    std::size_t records = 0;

    void append(const DurableRecord& r) {
        by_epoch[r.epoch].push_back(r);
        ++records;
    }
    std::vector<DurableRecord> all() const {
        std::vector<DurableRecord> out;
        out.reserve(records);
        for (const auto& [e, rs] : by_epoch) out.insert(out.end(), rs.begin(), rs.end());
        return out;
    }
    void clear() {
        by_epoch.clear();
        records = 0;
    }
    void prune_below(Epoch e) {
        while (!by_epoch.empty() && by_epoch.begin()->first < e) {
            records -= by_epoch.begin()->second.size();
            by_epoch.erase(by_epoch.begin());
        }
    }
};

/// The simulated node's proof archive: its own durable records, as tobd's
/// StorageProofArchive reads them from RocksDB (consensus/catch_up.h).
class DiskArchive final : public ProofArchive {
  public:
    DiskArchive(const Disk& disk, std::uint32_t t, const Limits& limits)
        : disk_(disk), t_(t), limits_(limits) {}
    std::optional<ArchivedProof> proof(Epoch e) const override {
        auto it = disk_.by_epoch.find(e);
        if (it == disk_.by_epoch.end()) return std::nullopt;
        return proof_from_records(it->second, e, t_ + 1, limits_);
    }

  private:
    const Disk& disk_;
    std::uint32_t t_;
    Limits limits_;
};

struct Node {
    NodeId id = 0;
    bool byzantine = false;
    std::vector<Behaviour> behaviours;
    std::unique_ptr<CryptoSuite> crypto;
    ReplicaConfig config;
    MemoryKvStorage storage;                // the data directory's state (and its views)
    std::unique_ptr<RootedStorage> rooted;  // the state root over it (rebuilt at each start)
    std::unique_ptr<KvMachine> kv;
    std::unique_ptr<ObservedMachine> machine;
    std::unique_ptr<Replica> replica;

    // Durable (survive crashes).
    Disk disk;
    std::unique_ptr<DiskArchive> archive;  // over `disk`, for the node's Replica
    // Digests of every Signed record (kept across reformats), with their epoch.
    std::map<Digest, Epoch> ever_signed;
    std::map<Digest, Epoch> fresh_after_reformat;  // Signed records first written after a reformat
    Epoch high_water = 0;                          // the key-directory file
    Epoch pruned_below = 0;                        // --archive-epochs: records below are gone
    // Epochs of the records written since the last synced step, in write order:
    // the tail a crash may lose (Step::needs_sync).
    std::vector<Epoch> unsynced;

    bool up = true;
    bool held_down = false;      // a long outage: no restart until the fair phase
    bool crash_midstep = false;  // crash inside the next step
    bool dying = false;          // crash-stop: its next step reaches some peers, then down
    bool reformat_on_restart = false;
    std::optional<Epoch> sign_floor;  // set by a reformat: never sign at or below
    std::uint64_t aba_rounds_total = 0, aba_instances = 0, archive_served = 0;
    std::uint64_t snapshots_installed = 0, chunks_rejected = 0, records_pruned = 0;
    ReplicaMemory sizes_max;  // --sizes-every: largest sizes since the last report

    NodeLog log;
    // Batched delivery (SimOptions::batch_ms): messages waiting for the next pass.
    std::vector<std::pair<NodeId, std::shared_ptr<const Bytes>>> inbox;  // (from, bytes)
    bool pass_due = false;
    std::set<Digest> effective;  // request digests that took effect (from the log)

    AdversaryMemory adversary;  // Byzantine nodes: what their behaviours remember

    bool has(Behaviour b) const {
        return std::find(behaviours.begin(), behaviours.end(), b) != behaviours.end();
    }
};

struct Tx {
    std::uint32_t client = 0;
    Request request;
    Digest digest{};
    std::uint64_t submit_at = 0;
    bool submitted = false;
    bool heard = false;
    std::set<NodeId> sent_to;
    NodeId last = 0;
};

struct Client {
    PublicKey pk{};
    std::optional<crypto::SigningKey> key;  // real crypto only
};

enum class EvType : std::uint8_t {
    Deliver,
    Tick,
    Submit,
    Retry,
    Crash,
    Restart,
    Check,
    Outage,
    Pass,
    Stop,  // a crash-stop node goes down for good (index 1: after its partial last step)
};

struct Event {
    std::uint64_t at = 0;
    std::uint64_t seq = 0;
    EvType type = EvType::Tick;
    NodeId from = 0;
    NodeId to = 0;
    std::uint32_t index = 0;
    Shared bytes;
};

struct Later {
    bool operator()(const Event& a, const Event& b) const {
        return std::tie(a.at, a.seq) > std::tie(b.at, b.seq);
    }
};

// A signer's slot (consensus/sign_log.h): (node, slot).
using SlotKey = std::pair<NodeId, Slot>;

// ---- the world ---------------------------------------------------------------------

class World final : public AdversaryWorld {
  public:
    World(const SimOptions& options, std::uint64_t seed)
        : opt_(options),
          seed_(seed),
          master_(seed ^ 0x746f6273696dull),
          net_(master_.fork("network")),
          sched_(master_.fork("schedule")),
          clients_rng_(master_.fork("clients")) {
        report_.seed = seed;
        derive();
        build();
    }

    SeedReport run();

  private:
    // setup
    void derive();
    void build();
    void make_transactions();
    void schedule();
    void start_node(Node& node, bool recovering);

    // events
    void push(EvType type, std::uint64_t at, NodeId from = 0, NodeId to = 0,
              std::uint32_t index = 0, Shared bytes = nullptr) {
        queue_.push(Event{at, next_seq_++, type, from, to, index, std::move(bytes)});
    }
    void handle(const Event& ev);
    void deliver(const Event& ev);
    void pass(Node& node);
    void tick(Node& node);
    /// The member a link authenticates as the sender of bytes it carried (open_envelope).
    NodeId channel_of(NodeId from, const Bytes& bytes) const;
    void submit(std::uint32_t index);
    void crash(Node& node);
    void restart(Node& node);
    void check_progress();
    void sample_sizes();
    void prune_history();
    void begin_fair();
    bool converged() const;

    // network
    std::uint64_t delay(NodeId to);
    bool cut(NodeId from, NodeId to) const;
    void send(NodeId from, std::optional<NodeId> to, const Bytes& bytes) override;
    void send_to(NodeId from, NodeId to, Shared bytes);

    // honest shell
    void execute(Node& node, Step&& step);
    void persist(Node& node, const DurableRecord& record);
    void lose_unsynced_tail(Node& node);
    void check_outgoing(Node& node, const Bytes& bytes, bool nested);
    void check_slots(Node& node, const Envelope& env);
    void claim_slot(Node& node, const SlotClaim& claim);
    void on_apply(Node& node, const EpochResult& result);
    void on_installed(Node& node, const SnapshotInstalled& snap);
    void client_hear(NodeId node, const EpochResult& result);

    // Byzantine nodes (tests/sim/byzantine.h)
    Adversary adversary(Node& b);
    void byz_receive(Node& b, NodeId from, const Shared& bytes);
    void byz_emit(Node& b, Step&& step);
    void byz_tick(Node& b);
    std::vector<NodeId> others(NodeId self) const;

    // AdversaryWorld
    std::uint32_t n() const override { return p_.n; }
    std::uint32_t t() const override { return p_.t; }
    std::uint32_t window() const override { return p_.window; }
    const Digest& chain_id() const override { return chain_id_; }
    const Digest& foreign_chain_id() const override { return foreign_chain_id_; }
    Rng& rng() override { return net_; }
    std::size_t clients() const override { return clients_.size(); }
    const PublicKey& client_key(std::size_t index) const override { return clients_[index].pk; }
    std::vector<NodeId> byzantine_ids() const override {
        std::vector<NodeId> out;
        for (const auto& node : nodes_)
            if (node->byzantine) out.push_back(node->id);
        return out;
    }
    Bytes seal_as(NodeId signer, Epoch e, Kind k, Bytes body) override {
        return seal_envelope(*nodes_[signer]->crypto, chain_id_, signer, e, k, std::move(body));
    }
    void send_shared(NodeId from, NodeId to, Shared bytes) override {
        send_to(from, to, std::move(bytes));
    }

    void violation(std::string check, std::string detail) {
        if (opt_.disabled_checks.count(check)) return;
        if (opt_.trace)
            std::fprintf(stderr, "[%llu] VIOLATION %s: %s\n", static_cast<unsigned long long>(now_),
                         check.c_str(), detail.c_str());
        report_.violations.push_back({std::move(check), std::move(detail)});
        stop_ = true;
    }
    bool honest(NodeId id) const override { return id < nodes_.size() && !nodes_[id]->byzantine; }

    const SimOptions& opt_;
    std::uint64_t seed_;
    Rng master_, net_, sched_, clients_rng_;
    SeedParams p_;
    SeedReport report_;
    Digest chain_id_{};
    Digest foreign_chain_id_{};
    std::shared_ptr<const FastWorld> fast_world_;
    std::shared_ptr<const RealWorld> real_world_;
    std::vector<CryptoCounts> crypto_counts_;  // per node, sized once in build()

    std::vector<std::unique_ptr<Node>> nodes_;
    std::vector<Client> clients_;
    std::vector<Tx> txs_;
    std::map<std::pair<PublicKey, Nonce>, std::uint32_t> tx_by_id_;
    std::set<Digest> submitted_digests_;

    std::priority_queue<Event, std::vector<Event>, Later> queue_;
    std::uint64_t next_seq_ = 0;
    std::size_t reformat_budget_used_ = 0;  // nodes reformatted in this seed
    std::uint64_t now_ = 0;
    bool fair_ = false;
    std::uint64_t fair_start_ = 0;
    bool stop_ = false;
    bool done_ = false;

    // Global invariant state.
    std::map<Epoch, std::map<SlotKey, Digest>> slots_;
    std::map<std::pair<Epoch, NodeId>, Digest> certs_;
    std::map<std::pair<Epoch, NodeId>, std::uint8_t> terms_;
    std::map<Epoch, std::tuple<Digest, Digest, std::optional<Digest>>> commits_;
    std::map<Epoch, AppliedEpoch> applied_;
    Epoch next_sizes_epoch_ = 0;  // --sizes-every: the next epoch to report at
    Epoch pruned_below_ = 0;      // --archive-epochs: checker state below is gone
};

// ---- setup -----------------------------------------------------------------------------

void World::derive() {
    Rng r = master_.fork("params");
    p_.n = opt_.nodes;
    p_.t = max_faulty(opt_.nodes);
    // Byzantine ids and behaviours.
    std::vector<NodeId> ids;
    for (NodeId i = 0; i < p_.n; ++i) ids.push_back(i);
    for (std::size_t i = ids.size(); i > 1; --i) std::swap(ids[i - 1], ids[r.below(i)]);
    // "all" leaves crash-stop out: it is asked for by name (its own sweeps), so that
    // the draws of the established sweeps stay what they were.
    std::vector<Behaviour> menu = opt_.behaviours;
    if (menu.empty()) {
        for (Behaviour b : consensus::byzantine_behaviours(consensus::ByzantineHarness::Tobsim))
            if (b != Behaviour::CrashStop) menu.push_back(b);
    }
    const std::uint32_t f = std::min<std::uint32_t>(opt_.faulty, p_.n);
    std::vector<NodeId> byz(ids.begin(), ids.begin() + f);
    std::sort(byz.begin(), byz.end());
    for (NodeId id : byz) {
        std::vector<Behaviour> bs;
        bs.push_back(menu[r.below(menu.size())]);
        if (menu.size() > 1 && r.chance(0.3)) {
            Behaviour extra = menu[r.below(menu.size())];
            if (extra != bs[0] && extra != Behaviour::Silent && bs[0] != Behaviour::Silent)
                bs.push_back(extra);
        }
        std::sort(bs.begin(), bs.end());
        p_.byzantine.emplace_back(id, bs);
    }
    // Network and faults: each rate is drawn in [0, max] (a quarter of the seeds
    // use the max itself, so the bounds are exercised).
    auto rate = [&r](double max) { return r.chance(0.25) ? max : max * r.unit(); };
    p_.drop = rate(opt_.drop);
    p_.dup = rate(opt_.dup);
    p_.crash = rate(opt_.crash);
    p_.reformat = opt_.crash > 0 ? 0.25 * r.unit() : 0.0;
    p_.delay_ms_max = r.range(2, 60);
    p_.long_delay = 0.1 * r.unit();
    p_.window = static_cast<std::uint32_t>(r.range(2, 6));
    p_.block_timer_ms = r.range(5, 40);
    p_.clients = opt_.clients ? opt_.clients : static_cast<std::uint32_t>(r.range(1, 4));
    p_.safety_ms = r.range(800, 3000);
    if (opt_.safety_ms) p_.safety_ms = opt_.safety_ms;
    // Partition episodes in the safety phase (docs/fault-model.md, row 7): isolate one node,
    // random halves, or a one-way cut; messages across the cut are lost.
    if (opt_.partitions && r.chance(0.5)) {
        const std::uint64_t count = r.range(1, 3);
        for (std::uint64_t k = 0; k < count; ++k) {
            Partition part;
            part.start_ms = r.below(p_.safety_ms);
            part.end_ms = part.start_ms + r.range(100, 800);
            part.one_way = r.chance(0.25);
            part.side.assign(p_.n, false);
            if (r.chance(0.5)) {
                part.side[r.below(p_.n)] = true;
            } else {
                for (std::uint32_t i = 0; i < p_.n; ++i) part.side[i] = r.chance(0.5);
            }
            p_.partitions.push_back(part);
        }
    }
    // Slow nodes (docs/fault-model.md, row 17): everything to them takes longer in the safety
    // phase.
    for (std::uint32_t i = 0; i < p_.n; ++i)
        if (r.chance(0.15)) p_.slow_nodes.push_back(static_cast<NodeId>(i));
    // Checkpoints: small K and R, so that pruning and snapshots happen within a seed;
    // small chunks, so that buckets come in parts.
    if (!opt_.no_checkpoints) {
        p_.checkpoint_interval =
            opt_.checkpoint_interval ? opt_.checkpoint_interval : r.range(2, 8);
        p_.checkpoint_retention = opt_.checkpoint_retention
                                      ? opt_.checkpoint_retention
                                      : r.range(1, 3 * p_.checkpoint_interval);
        p_.chunk_bytes = opt_.snapshot_chunk_bytes ? opt_.snapshot_chunk_bytes : r.range(64, 4096);
    }
    if (opt_.outage > 0 && r.chance(opt_.outage)) {
        std::vector<NodeId> honest_ids;
        for (NodeId i = 0; i < p_.n; ++i) {
            bool faulty = false;
            for (const auto& [id, bs] : p_.byzantine) faulty = faulty || id == i;
            if (!faulty) honest_ids.push_back(i);
        }
        if (!honest_ids.empty()) {
            p_.outage_node = honest_ids[r.below(honest_ids.size())];
            p_.outage_ms = r.range(50, p_.safety_ms / 3 + 50);
            p_.outage_reformat = r.chance(0.5) && p_.byzantine.size() < p_.t;
        }
    }
    // Drawn last, so that the parameters above stay those of each seed without it.
    if (opt_.batch_ms < 0) {
        p_.batch_ms = r.chance(0.5) ? r.range(1, 5) : 0;
    } else {
        p_.batch_ms = static_cast<std::uint64_t>(opt_.batch_ms);
    }
    // Crash-stop nodes: a moment in the safety phase, from a stream of their own.
    Rng stops = master_.fork("crash-stop");
    for (const auto& [id, bs] : p_.byzantine) {
        if (std::find(bs.begin(), bs.end(), Behaviour::CrashStop) != bs.end())
            p_.stops.emplace_back(id, stops.range(20, std::max<std::uint64_t>(21, p_.safety_ms)));
    }
    report_.params = p_;
}

void World::build() {
    crypto::init();
    chain_id_ = crypto::Hasher().field("tobsim-chain").u64(seed_).finish();
    foreign_chain_id_ = crypto::Hasher().field("tobsim-foreign-chain").u64(seed_).finish();
    if (opt_.crypto == CryptoMode::Fast)
        fast_world_ = FastWorld::make(p_.n, p_.t, seed_);
    else if (opt_.crypto == CryptoMode::Real)
        real_world_ = RealWorld::make(p_.n, p_.t, seed_);
    crypto_counts_.assign(p_.n, CryptoCounts{});

    for (NodeId i = 0; i < p_.n; ++i) {
        auto node = std::make_unique<Node>();
        node->id = i;
        for (const auto& [id, bs] : p_.byzantine) {
            if (id == i) {
                node->byzantine = true;
                node->behaviours = bs;
            }
        }
        std::unique_ptr<CryptoSuite> suite;
        if (fast_world_)
            suite = std::make_unique<FastCryptoSuite>(fast_world_, i);
        else if (real_world_)
            suite = real_world_->suite(i);
        else
            suite = std::make_unique<CountedCryptoSuite>(p_.n, p_.t, i);
        node->crypto = std::make_unique<CountingSuite>(std::move(suite), &crypto_counts_[i]);
        ReplicaConfig& c = node->config;
        c.n = p_.n;
        c.t = p_.t;
        c.self = i;
        c.chain_id = chain_id_;
        c.window = p_.window;
        c.block_timer_ms = p_.block_timer_ms;
        c.unsafe_cert_quorum = opt_.unsafe_quorum;
        if (opt_.proof_history_epochs) c.proof_history_epochs = opt_.proof_history_epochs;
        if (opt_.commit_heartbeat_ms) c.commit_heartbeat_ms = *opt_.commit_heartbeat_ms;
        c.checkpoint_interval = p_.checkpoint_interval;
        c.unsafe_trust_snapshot_chunks = opt_.plant == Plant::TrustChunks;
        c.checkpoint_retention = p_.checkpoint_retention;
        if (p_.chunk_bytes) c.snapshot_chunk_bytes = p_.chunk_bytes;
        node->archive = std::make_unique<DiskArchive>(node->disk, p_.t, c.limits);
        node->log.node = i;
        nodes_.push_back(std::move(node));
    }
    for (auto& node : nodes_) {
        if (node->byzantine && node->has(Behaviour::Silent)) {
            node->up = false;  // sends nothing, ever
            continue;
        }
        start_node(*node, false);
    }

    make_transactions();
    schedule();
}

// Clients and their signed transactions, each with its submission time.
void World::make_transactions() {
    for (std::uint32_t c = 0; c < p_.clients; ++c) {
        Client cl;
        if (!real_world_) {
            cl.pk = crypto::Hasher().field("tobsim-client-pk").u64(seed_).u64(c).finish();
        } else {
            cl.key = RealWorld::client_key(seed_, c);
            cl.pk = cl.key->public_key();
        }
        clients_.push_back(std::move(cl));
    }
    std::vector<std::vector<std::uint64_t>> times(p_.clients);
    for (std::uint32_t k = 0; k < opt_.txs; ++k)
        times[k % p_.clients].push_back(clients_rng_.range(0, p_.safety_ms));
    for (std::uint32_t c = 0; c < p_.clients; ++c) {
        std::sort(times[c].begin(), times[c].end());
        Nonce nonce = clients_rng_.range(0, 3);  // clients do not all start at 1
        for (std::uint64_t at : times[c]) {
            nonce += clients_rng_.chance(0.1) ? clients_rng_.range(2, 40) : 1;  // gaps
            Tx tx;
            tx.client = c;
            tx.submit_at = at;
            Request& req = tx.request;
            req.chain_id = chain_id_;
            req.client = clients_[c].pk;
            req.nonce = nonce;
            // Built before the run, so no epoch is known: the longest expiry the
            // cluster accepts from epoch 0 (runs stay far below it).
            req.expires = consensus::kRequestExpiryMaxEpochsDefault;
            const std::uint64_t ops = clients_rng_.chance(0.3) ? clients_rng_.range(2, 4) : 1;
            for (std::uint64_t o = 0; o < ops; ++o) {
                std::string key = "c" + std::to_string(c) + "/n" + std::to_string(nonce) + "/" +
                                  std::to_string(o);
                std::string value = "v" + std::to_string(clients_rng_.next() % 1000000);
                req.ops.push_back(Op{OpType::Put, Bytes(key.begin(), key.end()),
                                     Bytes(value.begin(), value.end()), std::nullopt});
            }
            Bytes payload = request_sign_payload(req);
            if (fast_world_)
                req.sig =
                    FastCryptoSuite::sign_client(*fast_world_, req.client, kRequestTag, payload);
            else if (real_world_)
                req.sig = clients_[c].key->sign(kRequestTag, payload);
            else
                req.sig = CountedCryptoSuite::client_signature(req.client);
            tx.digest = digest_of(encode(req));
            submitted_digests_.insert(tx.digest);
            tx_by_id_[{req.client, req.nonce}] = static_cast<std::uint32_t>(txs_.size());
            txs_.push_back(std::move(tx));
        }
    }
    for (std::uint32_t i = 0; i < txs_.size(); ++i)
        push(EvType::Submit, txs_[i].submit_at, 0, 0, i);
}

// The first ticks and check, and the crash schedule of the safety phase.
void World::schedule() {
    for (NodeId i = 0; i < p_.n; ++i) push(EvType::Tick, 1 + sched_.below(kTickMs), 0, i);
    push(EvType::Check, kCheckMs);
    if (p_.outage_node) push(EvType::Outage, p_.outage_ms, 0, *p_.outage_node);
    for (const auto& [id, at] : p_.stops) push(EvType::Stop, at, 0, id);
    if (p_.crash > 0) {
        for (std::uint64_t at = 100; at < p_.safety_ms; at += 100)
            if (sched_.chance(p_.crash)) push(EvType::Crash, at + sched_.below(100));
    }
}

void World::start_node(Node& node, bool recovering) {
    node.rooted = std::make_unique<RootedStorage>(node.storage);
    node.kv = std::make_unique<KvMachine>(*node.rooted, chain_id_, node.config.limits);
    Node* np = &node;
    node.machine = std::make_unique<ObservedMachine>(
        *node.kv, [this, np](const EpochResult& r) { on_apply(*np, r); },
        [this, np](std::string why) {
            if (!np->byzantine)
                violation("apply-order", "node " + std::to_string(np->id) + ": " + why);
        },
        [this, np]() {
            on_installed(*np, SnapshotInstalled{np->kv->last_applied(), np->kv->state_digest()});
        },
        opt_.plant_extra_work);
    node.replica = std::make_unique<Replica>(node.config, *node.crypto, *node.machine,
                                             node.archive.get(), node.rooted.get());
    node.up = true;
    if (recovering) {
        Recovery rec;
        rec.records = node.disk.all();
        rec.high_water = node.high_water;
        rec.sign_log_ok = true;
        Step step = node.replica->recover(rec, now_);
        execute(node, std::move(step));
    }
}

// ---- running -------------------------------------------------------------------------

SeedReport World::run() {
    while (!queue_.empty() && !stop_ && !done_) {
        Event ev = queue_.top();
        queue_.pop();
        now_ = ev.at;
        handle(ev);
    }
    report_.logical_ms = now_;
    report_.fair_ms = fair_ ? now_ - fair_start_ : 0;

    // Statistics and the end-of-seed checks.
    std::vector<NodeLog> logs;
    std::vector<FinalState> finals;
    std::vector<SubmittedTx> submitted;
    for (const auto& tx : txs_)
        submitted.push_back({tx.request.client, tx.request.nonce, tx.digest});
    for (auto& np : nodes_) {
        Node& node = *np;
        if (node.byzantine) continue;
        logs.push_back(node.log);
        if (node.kv) finals.push_back({node.id, node.kv->last_applied(), node.kv->state_digest()});
        report_.aba_rounds_total += node.aba_rounds_total;
        report_.aba_instances += node.aba_instances;
        report_.archive_proofs_served += node.archive_served;
        report_.snapshots_installed += node.snapshots_installed;
        report_.chunks_rejected += node.chunks_rejected;
        report_.records_pruned += node.records_pruned;
        if (node.replica) {
            report_.aba_rounds_total += node.replica->stats().aba_rounds_total;
            report_.aba_instances += node.replica->stats().aba_instances;
            report_.archive_proofs_served += node.replica->stats().archive_proofs_served;
            report_.snapshots_installed += node.replica->stats().snapshots_installed;
            report_.chunks_rejected += node.replica->stats().snapshot_chunks_rejected;
        }
        report_.epochs = std::max<std::uint64_t>(report_.epochs, node.log.epochs.size());
    }
    if (done_) {
        // The stores themselves, not only their digests, must be equal (user data,
        // dedup table, stored outputs, metadata), as in TigerBeetle's storage checker.
        // The logical state (what RootedStorage holds in its buckets) and the chain
        // metadata; the physical layout may differ (a node that installed a
        // snapshot keeps its state under the other prefix).
        auto state_of = [](const Node& node) {
            std::map<Bytes, Bytes> out;
            node.rooted->for_each_entry([&](ByteView k, ByteView v) {
                out.emplace(Bytes(k.begin(), k.end()), Bytes(v.begin(), v.end()));
                return true;
            });
            for (const auto& [k, v] : node.storage.data())
                if (RootedStorage::is_chain_metadata(k)) out.emplace(k, v);
            return out;
        };
        const Node* first = nullptr;
        std::map<Bytes, Bytes> first_state;
        for (auto& np : nodes_) {
            if (np->byzantine || !np->rooted) continue;
            if (!first) {
                first = np.get();
                first_state = state_of(*np);
            } else if (state_of(*np) != first_state) {
                report_.violations.push_back(
                    {"storage", "nodes " + std::to_string(first->id) + " and " +
                                    std::to_string(np->id) + " hold different KV stores at epoch " +
                                    std::to_string(np->kv ? np->kv->last_applied() : 0)});
                break;
            }
        }
    }
    // Every honest node's incrementally kept state root equals the root recomputed
    // from its entries.
    for (auto& np : nodes_) {
        if (np->byzantine || !np->rooted) continue;
        Manifest fresh(kStateBuckets);
        std::vector<BucketHash> hashes(kStateBuckets);
        np->rooted->for_each_entry([&](ByteView k, ByteView v) {
            hashes[state_bucket(k)].add(k, v);
            return true;
        });
        for (std::uint32_t b = 0; b < kStateBuckets; ++b) fresh[b] = hashes[b].summary();
        if (fresh != np->rooted->manifest()) {
            report_.violations.push_back(
                {"state-root", "node " + std::to_string(np->id) +
                                   ": the kept bucket hashes differ from its entries'"});
        }
    }
    for (auto& v : check_all(logs, submitted, finals, done_))
        if (!opt_.disabled_checks.count(v.check)) report_.violations.push_back(v);
    {
        // A fingerprint of the whole run, to show that a seed replays exactly.
        crypto::Hasher h;
        h.u64(seed_).u64(now_).u64(report_.messages).u64(report_.crashes);
        for (const auto& f : finals) h.u64(f.node).u64(f.last_applied).raw(f.state_digest);
        for (const auto& v : report_.violations) h.field(v.check).field(v.detail);
        report_.fingerprint = h.finish();
    }
    report_.submitted_txs = txs_.size();
    for (const CryptoCounts& c : crypto_counts_) report_.crypto += c;
    for (const auto& tx : txs_) {
        bool everywhere = true;
        for (auto& np : nodes_)
            if (!np->byzantine && !np->effective.count(tx.digest)) everywhere = false;
        if (everywhere) {
            ++report_.committed_txs;
            report_.committed_ops += tx.request.ops.size();
        }
    }
    return std::move(report_);
}

void World::handle(const Event& ev) {
    switch (ev.type) {
        case EvType::Deliver:
            deliver(ev);
            break;
        case EvType::Pass:
            pass(*nodes_[ev.to]);
            break;
        case EvType::Tick: {
            Node& node = *nodes_[ev.to];
            if (node.up) {
                if (node.byzantine)
                    byz_tick(node);
                else
                    tick(node);
            }
            push(EvType::Tick, now_ + kTickMs, 0, ev.to);
            break;
        }
        case EvType::Submit:
        case EvType::Retry:
            submit(ev.index);
            break;
        case EvType::Crash: {
            if (fair_) break;
            std::vector<NodeId> candidates;
            for (auto& np : nodes_)
                if (!np->byzantine && np->up && !np->crash_midstep && !np->held_down)
                    candidates.push_back(np->id);
            if (candidates.empty()) break;
            Node& node = *nodes_[candidates[sched_.below(candidates.size())]];
            // A reformatted node cannot vote at or below its mark until the cluster
            // passes it: it counts against t, with the Byzantine nodes.
            node.reformat_on_restart =
                sched_.chance(p_.reformat) && p_.byzantine.size() + reformat_budget_used_ < p_.t;
            if (node.reformat_on_restart) ++reformat_budget_used_;
            if (sched_.chance(1.0 / 3))
                node.crash_midstep = true;  // crashes inside its next step
            else
                crash(node);
            break;
        }
        case EvType::Restart: {
            Node& node = *nodes_[ev.to];
            if (!node.up && !node.held_down) restart(node);
            break;
        }
        case EvType::Outage: {
            Node& node = *nodes_[ev.to];
            if (fair_ || !node.up || node.crash_midstep) break;
            if (p_.outage_reformat && !node.reformat_on_restart &&
                p_.byzantine.size() + reformat_budget_used_ < p_.t) {
                node.reformat_on_restart = true;
                ++reformat_budget_used_;
            }
            node.held_down = true;
            crash(node);
            break;
        }
        case EvType::Stop: {
            // Half of the time the node dies inside its next step (part of what it
            // sends reaches a random part of the peers), else at once; either way
            // it is down for good within a tick.
            Node& node = *nodes_[ev.to];
            if (ev.index == 0 && sched_.chance(0.5)) {
                node.dying = true;
                push(EvType::Stop, now_ + kTickMs, 0, ev.to, 1);
            } else {
                node.dying = false;
                node.up = false;
            }
            break;
        }
        case EvType::Check:
            check_progress();
            push(EvType::Check, now_ + kCheckMs);
            break;
    }
}

void World::crash(Node& node) {
    if (opt_.trace)
        std::fprintf(stderr, "[%llu] crash node %u%s\n", static_cast<unsigned long long>(now_),
                     node.id, node.reformat_on_restart ? " (reformat on restart)" : "");
    ++report_.crashes;
    if (node.replica) {
        node.aba_rounds_total += node.replica->stats().aba_rounds_total;
        node.aba_instances += node.replica->stats().aba_instances;
        node.archive_served += node.replica->stats().archive_proofs_served;
    }
    if (node.replica) {
        node.snapshots_installed += node.replica->stats().snapshots_installed;
        node.chunks_rejected += node.replica->stats().snapshot_chunks_rejected;
    }
    node.replica.reset();
    node.machine.reset();
    node.kv.reset();
    node.rooted.reset();
    node.storage.drop_unpersisted();  // views lived in the process's memory
    lose_unsynced_tail(node);
    node.inbox.clear();  // received, not yet handled: lost with the process
    node.up = false;
    node.crash_midstep = false;
    push(EvType::Restart, now_ + sched_.range(20, 1500), 0, node.id);
}

void World::restart(Node& node) {
    if (node.reformat_on_restart) {
        // Data directory lost, key directory (and its high-water mark) intact.
        ++report_.reformats;
        node.disk.clear();
        node.unsynced.clear();
        node.storage.clear();
        node.sign_floor = node.high_water;
        node.reformat_on_restart = false;
    }
    if (opt_.plant == Plant::Amnesia) {
        // Checker self-test: the node forgets its sign-log AND its mark, so it may
        // sign other payloads for slots it already filled. Only I5 should notice.
        node.disk.clear();
        node.unsynced.clear();
        node.storage.clear();
        node.high_water = 0;
    }
    if (opt_.trace)
        std::fprintf(stderr, "[%llu] restart node %u (records=%zu high_water=%llu)\n",
                     static_cast<unsigned long long>(now_), node.id, node.disk.records,
                     static_cast<unsigned long long>(node.high_water));
    start_node(node, true);
}

void World::begin_fair() {
    fair_ = true;
    fair_start_ = now_;
    if (opt_.trace)
        std::fprintf(stderr, "[%llu] fair phase\n", static_cast<unsigned long long>(now_));
    if (opt_.plant == Plant::RotState) {
        // Checker self-test: a stored value of the honest node holding the most keys
        // changes behind the state root's back (bit rot, a bad disk); state-root and
        // storage must see it.
        Node* victim = nullptr;
        for (auto& np : nodes_) {
            if (np->byzantine || !np->up) continue;
            if (!victim || np->storage.data().size() > victim->storage.data().size())
                victim = np.get();
        }
        for (const auto& [k, v] : victim ? victim->storage.data() : std::map<Bytes, Bytes>{}) {
            // A user key (the machine's 0x01 prefix inside a bucket): never rewritten.
            if (k.size() < 4 || (k[0] != 0x10 && k[0] != 0x20) || k[3] != 0x01) continue;
            Bytes rotten = v;
            rotten.push_back('!');
            victim->storage.commit({{k, rotten}});
            break;
        }
    }
    for (auto& np : nodes_) {
        Node& node = *np;
        if (node.byzantine) continue;
        if (node.crash_midstep) node.crash_midstep = false;
        node.held_down = false;
        if (!node.up) restart(node);
    }
}

bool World::converged() const {
    for (const auto& tx : txs_)
        if (!tx.submitted) return false;
    std::optional<Epoch> level;
    for (const auto& np : nodes_) {
        const Node& node = *np;
        if (node.byzantine) continue;
        if (!node.up || !node.kv) return false;
        const Epoch e = node.kv->last_applied();
        if (e != node.log.epochs.size()) return false;
        if (level && *level != e) return false;
        level = e;
        for (const auto& tx : txs_)
            if (!node.effective.count(tx.digest)) return false;
    }
    return true;
}

void World::check_progress() {
    sample_sizes();
    prune_history();
    if (!fair_) {
        Epoch best = 0;
        for (auto& np : nodes_)
            if (!np->byzantine) best = std::max<Epoch>(best, np->log.epochs.size());
        if (now_ >= p_.safety_ms || best >= opt_.epochs) begin_fair();
        return;
    }
    if (converged()) {
        done_ = true;
        return;
    }
    if (opt_.safety_only && now_ - fair_start_ > opt_.safety_only_fair_ms) {
        stop_ = true;  // beyond the fault bound: no liveness to wait for
        return;
    }
    if (now_ - fair_start_ > opt_.fair_ms_max) {
        std::size_t missing = 0;
        for (const auto& tx : txs_) {
            for (const auto& np : nodes_) {
                if (!np->byzantine && !np->effective.count(tx.digest)) {
                    ++missing;
                    break;
                }
            }
        }
        std::string levels;
        for (const auto& np : nodes_)
            if (!np->byzantine)
                levels += " " + std::to_string(np->id) + ":" +
                          std::to_string(np->kv ? np->kv->last_applied() : 0);
        violation("liveness", "no convergence " + std::to_string(opt_.fair_ms_max) +
                                  " ms into the fair phase: " + std::to_string(missing) +
                                  " txs not applied everywhere; epochs" + levels);
    }
}

/// --sizes-every N: the largest sizes of each honest node's units since the last
/// report, printed whenever the best honest node passes a multiple of N epochs.
void World::sample_sizes() {
    if (!opt_.sizes_every) return;
    Epoch best = 0;
    for (auto& np : nodes_) {
        Node& node = *np;
        if (node.byzantine || !node.replica) continue;
        best = std::max<Epoch>(best, node.log.epochs.size());
        const ReplicaMemory m = node.replica->memory();
        ReplicaMemory& x = node.sizes_max;
        auto most = [](std::size_t& a, std::size_t b) { a = std::max(a, b); };
        most(x.sign_log_slots, m.sign_log_slots);
        most(x.sign_log_epochs, m.sign_log_epochs);
        most(x.pool_requests, m.pool_requests);
        most(x.pool_bytes, m.pool_bytes);
        most(x.pool_in_flight, m.pool_in_flight);
        most(x.verified_cached, m.verified_cached);
        most(x.blocks, m.blocks);
        most(x.block_bytes, m.block_bytes);
        most(x.broadcast_epochs, m.broadcast_epochs);
        most(x.certs, m.certs);
        most(x.seen_votes, m.seen_votes);
        most(x.agreement_epochs, m.agreement_epochs);
        most(x.aba_instances, m.aba_instances);
        most(x.aba_rounds, m.aba_rounds);
        most(x.commit_epochs, m.commit_epochs);
        most(x.commit_votes, m.commit_votes);
        most(x.proofs, m.proofs);
        most(x.proof_bytes, m.proof_bytes);
        most(x.window_epochs, m.window_epochs);
        most(x.republish_envelopes, m.republish_envelopes);
        most(x.republish_bytes, m.republish_bytes);
    }
    if (next_sizes_epoch_ == 0) next_sizes_epoch_ = opt_.sizes_every;
    if (best < next_sizes_epoch_) return;
    next_sizes_epoch_ = (best / opt_.sizes_every + 1) * opt_.sizes_every;
    for (auto& np : nodes_) {
        Node& node = *np;
        if (node.byzantine || !node.replica) continue;
        const ReplicaMemory& x = node.sizes_max;
        std::printf(
            "sizes seed=%llu epoch=%llu node=%u sign_log=%zu/%zu pool=%zu/%zuB inflight=%zu "
            "verified=%zu blocks=%zu/%zuB bb_epochs=%zu certs=%zu seen=%zu agreements=%zu/%zu/%zu "
            "commits=%zu/%zu proofs=%zu/%zuB window=%zu/%zu/%zuB disk=%zu\n",
            static_cast<unsigned long long>(seed_), static_cast<unsigned long long>(best), node.id,
            x.sign_log_slots, x.sign_log_epochs, x.pool_requests, x.pool_bytes, x.pool_in_flight,
            x.verified_cached, x.blocks, x.block_bytes, x.broadcast_epochs, x.certs, x.seen_votes,
            x.agreement_epochs, x.aba_instances, x.aba_rounds, x.commit_epochs, x.commit_votes,
            x.proofs, x.proof_bytes, x.window_epochs, x.republish_envelopes, x.republish_bytes,
            node.disk.records);
        node.sizes_max = ReplicaMemory{};
    }
    std::fflush(stdout);
}

/// --archive-epochs A: records, and the checkers' per-epoch state, of epochs more
/// than A below the lowest honest applied epoch are dropped (tobd prunes its
/// archive the same way). No honest node can sign there any more: the sign-log
/// refuses epochs at or below delivered − W, and a reformatted node's applied
/// epoch restarts at 0, which holds the pruning back until it caught up.
void World::prune_history() {
    if (!opt_.archive_epochs) return;
    Epoch lowest = ~Epoch{0};
    for (auto& np : nodes_) {
        if (np->byzantine) continue;
        lowest = std::min<Epoch>(lowest, np->kv ? np->kv->last_applied() : 0);
    }
    if (lowest <= opt_.archive_epochs) return;
    const Epoch below = lowest - opt_.archive_epochs;
    if (below < pruned_below_ + 256) return;  // in batches
    pruned_below_ = below;
    for (auto& np : nodes_) {
        Node& node = *np;
        node.disk.prune_below(below);
        std::erase_if(node.unsynced, [below](Epoch e) { return e < below; });
        std::erase_if(node.ever_signed, [below](const auto& kv) { return kv.second < below; });
        std::erase_if(node.fresh_after_reformat,
                      [below](const auto& kv) { return kv.second < below; });
    }
    slots_.erase(slots_.begin(), slots_.lower_bound(below));
    certs_.erase(certs_.begin(), certs_.lower_bound({below, 0}));
    terms_.erase(terms_.begin(), terms_.lower_bound({below, 0}));
    commits_.erase(commits_.begin(), commits_.lower_bound(below));
    applied_.erase(applied_.begin(), applied_.lower_bound(below));
}

// ---- network -------------------------------------------------------------------------

std::uint64_t World::delay(NodeId to) {
    if (fair_) return net_.range(1, std::min<std::uint64_t>(p_.delay_ms_max, 30));
    std::uint64_t extra = 0;
    if (std::find(p_.slow_nodes.begin(), p_.slow_nodes.end(), to) != p_.slow_nodes.end())
        extra = net_.range(0, 4 * p_.delay_ms_max);
    if (net_.chance(p_.long_delay)) return extra + net_.range(p_.delay_ms_max, 1000);
    return extra + net_.range(1, p_.delay_ms_max);
}

bool World::cut(NodeId from, NodeId to) const {
    if (fair_) return false;
    for (const auto& part : p_.partitions) {
        if (now_ < part.start_ms || now_ >= part.end_ms) continue;
        if (part.side[from] == part.side[to]) continue;
        if (part.one_way && !part.side[from]) continue;  // only side -> rest is cut
        return true;
    }
    return false;
}

std::vector<NodeId> World::others(NodeId self) const {
    std::vector<NodeId> out;
    for (NodeId i = 0; i < p_.n; ++i)
        if (i != self) out.push_back(i);
    return out;
}

void World::send_to(NodeId from, NodeId to, Shared bytes) {
    ++report_.messages_sent;
    report_.bytes_sent += bytes->size();
    if (cut(from, to)) return;
    if (!fair_ && net_.chance(p_.drop)) return;
    push(EvType::Deliver, now_ + delay(to), from, to, 0, bytes);
    if (net_.chance(p_.dup)) push(EvType::Deliver, now_ + delay(to), from, to, 0, bytes);
}

void World::send(NodeId from, std::optional<NodeId> to, const Bytes& bytes) {
    auto shared = std::make_shared<const Bytes>(bytes);
    if (to) {
        if (*to < p_.n && *to != from) send_to(from, *to, shared);
        return;
    }
    for (NodeId i : others(from)) send_to(from, i, shared);
}

void World::deliver(const Event& ev) {
    Node& node = *nodes_[ev.to];
    if (!node.up) return;  // lost: the receiver is down
    ++report_.messages;
    if (node.byzantine) {
        byz_receive(node, ev.from, ev.bytes);
        return;
    }
    if (node.replica->halted()) return;
    if (p_.batch_ms > 0) {
        node.inbox.emplace_back(ev.from, ev.bytes);
        if (!node.pass_due) {
            node.pass_due = true;
            push(EvType::Pass, now_ + p_.batch_ms, 0, node.id);
        }
        return;
    }
    Digest body_digest{};
    auto opened = open_envelope(*ev.bytes, *node.crypto, node.config,
                                channel_of(ev.from, *ev.bytes), &body_digest);
    if (opt_.trace_messages)
        std::fprintf(stderr, "[%llu] %u <- %u: %s\n", static_cast<unsigned long long>(now_),
                     node.id, ev.from, describe(opened, *ev.bytes).c_str());
    if (!opened) return;  // dropped and counted by the shell; not evidence
    execute(node, node.replica->handle_envelope(opened.value(), now_, {&body_digest, nullptr}));
}

// One pass of a node's event loop: everything that arrived since the last one, in
// one batch whose agreement messages share a signature (Replica::begin_batch).
void World::pass(Node& node) {
    node.pass_due = false;
    auto inbox = std::move(node.inbox);
    node.inbox.clear();
    if (!node.up || !node.replica || node.replica->halted()) return;
    Step step;
    node.replica->begin_batch();
    for (const auto& [from, bytes] : inbox) {
        Digest body_digest{};
        auto opened = open_envelope(*bytes, *node.crypto, node.config, channel_of(from, *bytes),
                                    &body_digest);
        if (opened)
            step.append(
                node.replica->handle_envelope(opened.value(), now_, {&body_digest, nullptr}));
    }
    step.append(node.replica->end_batch());
    execute(node, std::move(step));
}

// Every simulated link is point to point and knows its sender, like the daemon's
// member ROUTER. The planted bug takes the envelope's word for it instead.
NodeId World::channel_of(NodeId from, const Bytes& bytes) const {
    if (opt_.plant != Plant::TrustAbaSender) return from;
    auto env = decode_envelope(bytes, Limits{});
    return env ? env.value().sender : from;
}

void World::tick(Node& node) {
    if (node.replica->halted()) return;
    execute(node, node.replica->tick(now_));
}

void World::submit(std::uint32_t index) {
    Tx& tx = txs_[index];
    if (tx.heard) return;
    std::vector<NodeId> honest_ids;
    for (auto& np : nodes_)
        if (!np->byzantine && (!tx.submitted || np->id != tx.last || nodes_.size() == 1))
            honest_ids.push_back(np->id);
    if (honest_ids.empty())
        for (auto& np : nodes_)
            if (!np->byzantine) honest_ids.push_back(np->id);
    if (honest_ids.empty()) return;
    NodeId target = honest_ids[clients_rng_.below(honest_ids.size())];
    tx.submitted = true;
    tx.last = target;
    tx.sent_to.insert(target);
    Node& node = *nodes_[target];
    if (opt_.trace)
        std::fprintf(stderr, "[%llu] client %u nonce %llu -> node %u%s\n",
                     static_cast<unsigned long long>(now_), tx.client,
                     static_cast<unsigned long long>(tx.request.nonce), target,
                     node.up ? "" : " (down)");
    if (node.up && !node.replica->halted())
        execute(node, node.replica->handle_request(tx.request, now_));
    push(EvType::Retry, now_ + clients_rng_.range(1000, 2500), 0, 0, index);
}

// ---- the honest shell ------------------------------------------------------------------

void World::execute(Node& node, Step&& step) {
    if (node.crash_midstep) {
        // The process dies inside this step: a prefix of the records reached the
        // disk (the rest is a torn tail; with --atomic-persist all or none of
        // them, as one synced write batch), no message left.
        const std::size_t keep = opt_.atomic_persist
                                     ? (sched_.chance(0.5) ? step.persist.size() : 0)
                                     : sched_.below(step.persist.size() + 1);
        // The prefix of a step that syncs is the torn tail that reached the disk
        // (and, written before it in the one log, the records before it); that
        // of a step that does not sync joins the tail a crash may lose.
        const bool synced = step.needs_sync() && opt_.plant != Plant::SyncNothing;
        for (std::size_t i = 0; i < keep; ++i) {
            persist(node, step.persist[i]);
            if (!synced) node.unsynced.push_back(step.persist[i].epoch);
        }
        if (synced && keep > 0) node.unsynced.clear();
        crash(node);
        return;
    }
    for (const auto& a : step.alarms)
        violation("alarm", "node " + std::to_string(node.id) + " halted: " + a);
    for (const auto& f : step.faults) {
        if (!honest(f.culprit)) ++report_.faults_on_byzantine;
        if (honest(f.culprit))
            violation("honest-blamed", "node " + std::to_string(node.id) + " blamed honest node " +
                                           std::to_string(f.culprit) + " (" + to_string(f.kind) +
                                           "): " + f.detail);
    }
    const bool synced = step.needs_sync() && opt_.plant != Plant::SyncNothing;
    for (const auto& r : step.persist) {
        if (opt_.plant == Plant::SkipPersist && r.type == DurableRecord::Type::Signed &&
            sched_.chance(0.05))
            continue;  // checker self-test: a signature leaves without its log record
        if (opt_.plant == Plant::SkipMark && r.type == DurableRecord::Type::HighWater)
            continue;  // checker self-test: signatures leave above the durable mark
        persist(node, r);
        if (!synced) node.unsynced.push_back(r.epoch);
    }
    if (synced) node.unsynced.clear();  // this write syncs everything before it
    for (const auto& m : step.messages) {
        if (opt_.trace_messages) {
            auto d = decode_envelope(m.envelope, node.config.limits);
            std::fprintf(stderr, "[%llu] %u -> %s: %s\n", static_cast<unsigned long long>(now_),
                         node.id, m.to ? std::to_string(*m.to).c_str() : "all",
                         describe(d, m.envelope).c_str());
        }
        check_outgoing(node, m.envelope, false);
        send(node.id, m.to, m.envelope);
    }
    if (step.prune_below > 0) {
        const std::size_t before = node.disk.records;
        node.disk.prune_below(step.prune_below);
        std::erase_if(node.unsynced, [&](Epoch e) { return e < step.prune_below; });
        node.records_pruned += before - node.disk.records;
    }
    for (const auto& c : step.committed) {
        if (c.epoch == 0 || c.epoch > node.log.epochs.size()) {
            violation("apply-order", "node " + std::to_string(node.id) + " reported epoch " +
                                         std::to_string(c.epoch) + " it never applied");
            continue;
        }
        AppliedEpoch a{c.epoch, c.output_digest, c.state_digest, c.results};
        std::string why;
        if (!same_epoch(node.log.epochs[c.epoch - 1], a, &why))
            violation("agreement", "node " + std::to_string(node.id) + " reported epoch " +
                                       std::to_string(c.epoch) + " unlike it applied it: " + why);
        client_hear(node.id, c);
    }
}

// A crash loses a random suffix of what was written since the last synced step
// (records are appended at the back of their epoch, so each lost one is the last
// of its epoch's list; pruning may have removed it already).
void World::lose_unsynced_tail(Node& node) {
    if (node.unsynced.empty()) return;
    std::size_t lose = sched_.below(node.unsynced.size() + 1);
    for (; lose > 0; --lose) {
        const Epoch e = node.unsynced.back();
        node.unsynced.pop_back();
        auto it = node.disk.by_epoch.find(e);
        if (it == node.disk.by_epoch.end() || it->second.empty()) continue;
        it->second.pop_back();
        --node.disk.records;
        ++report_.unsynced_records_lost;
        if (it->second.empty()) node.disk.by_epoch.erase(it);
    }
    node.unsynced.clear();
}

void World::persist(Node& node, const DurableRecord& record) {
    node.disk.append(record);
    switch (record.type) {
        case DurableRecord::Type::HighWater:
            node.high_water = std::max(node.high_water, record.epoch);
            break;
        case DurableRecord::Type::Signed: {
            const Digest d = digest_of(record.bytes);
            if (node.sign_floor && !node.ever_signed.count(d))
                node.fresh_after_reformat.emplace(d, record.epoch);
            node.ever_signed.emplace(d, record.epoch);
            auto env = decode_envelope(record.bytes, node.config.limits);
            if (!env) {
                violation("sign-log", "node " + std::to_string(node.id) +
                                          " logged undecodable bytes: " + env.error());
                return;
            }
            // The mark follows the signatures of its step (consensus/sign_log.h):
            // a signature above it is checked when it leaves (check_outgoing).
            if (env.value().sender == node.id && slot_kind(env.value().kind))
                check_slots(node, env.value());
            break;
        }
        case DurableRecord::Type::Cert: {
            auto cert = decode_certificate(record.bytes, node.config.limits);
            if (!cert) {
                violation("cert", "node " + std::to_string(node.id) + " stored a bad cert");
                return;
            }
            const auto& c = cert.value();
            auto [it, fresh] = certs_.try_emplace({c.epoch, c.proposer}, c.digest);
            if (!fresh && it->second != c.digest)
                violation("conflicting-certs",
                          "two certificates for (epoch " + std::to_string(c.epoch) + ", proposer " +
                              std::to_string(c.proposer) + "): " + hex_prefix(it->second) +
                              " and " + hex_prefix(c.digest));
            break;
        }
        case DurableRecord::Type::Block:
        case DurableRecord::Type::Proof:
        case DurableRecord::Type::Commit:
        case DurableRecord::Type::Floor:
            break;
    }
}

void World::claim_slot(Node& node, const SlotClaim& claim) {
    auto [it, fresh] =
        slots_[claim.slot.epoch].try_emplace(SlotKey{node.id, claim.slot}, claim.payload);
    if (!fresh && it->second != claim.payload)
        violation("self-equivocation", "node " + std::to_string(node.id) + " signed two " +
                                           to_string(claim.slot.kind) + " payloads for epoch " +
                                           std::to_string(claim.slot.epoch) + " proposer " +
                                           std::to_string(claim.slot.proposer) + " round " +
                                           std::to_string(claim.slot.round));
}

void World::check_slots(Node& node, const Envelope& env) {
    const Epoch e = env.epoch;
    if (node.sign_floor && e <= *node.sign_floor &&
        node.fresh_after_reformat.count(digest_of(encode(env))))
        violation("signed-below-mark", "node " + std::to_string(node.id) + " signed in epoch " +
                                           std::to_string(e) + " after a reformat with mark " +
                                           std::to_string(*node.sign_floor));
    auto claims = slots_of(env, node.config.limits);
    if (!claims) {
        violation("honest-sent-garbage", "node " + std::to_string(node.id) + " signed an " +
                                             "undecodable statement of epoch " + std::to_string(e));
        return;
    }
    for (const auto& c : *claims) claim_slot(node, c);
    // Beyond the slots: honest decisions and COMMIT tuples agree across nodes.
    if (env.kind == Kind::Aba) {
        const auto bundle = decode_aba_bundle(env.body, node.config.limits);
        for (const auto& m : bundle.value().messages) {
            if (m.type != AbaType::Term) continue;
            auto [it, fresh] = terms_.try_emplace({e, m.proposer}, m.value);
            if (!fresh && it->second != m.value)
                violation("aba-agreement", "honest nodes decided differently in ABA(" +
                                               std::to_string(e) + ", " +
                                               std::to_string(m.proposer) + ")");
        }
    }
    if (env.kind == Kind::Commit) {
        auto c = decode_commit(env.body, node.config.limits);
        if (!c) {
            violation("honest-sent-garbage", "node " + std::to_string(node.id) + " COMMIT");
            return;
        }
        auto tuple = std::make_tuple(c.value().output_digest, c.value().state_digest,
                                     c.value().checkpoint_root);
        auto [it, fresh] = commits_.try_emplace(e, tuple);
        if (!fresh && it->second != tuple)
            violation("agreement", "honest COMMITs of epoch " + std::to_string(e) + " differ");
    }
}

void World::check_outgoing(Node& node, const Bytes& bytes, bool nested) {
    auto opened = decode_envelope(bytes, node.config.limits);
    if (!opened) {
        violation("honest-sent-garbage",
                  "node " + std::to_string(node.id) + " sent undecodable bytes: " + opened.error());
        return;
    }
    const Envelope& env = opened.value();
    if (env.sender == node.id && slot_kind(env.kind)) {
        // Bytes this node logged at some point (before a reformat, too) may come
        // back to it from peers and be relayed: that is not a new signature.
        if (needs_log(env, node.config.limits) && !node.ever_signed.count(digest_of(bytes)))
            violation("persist-before-send", "node " + std::to_string(node.id) + " sent a " +
                                                 std::to_string(static_cast<int>(env.kind)) +
                                                 "-envelope of epoch " + std::to_string(env.epoch) +
                                                 (nested ? " (in a fetch reply)" : "") +
                                                 " that is not in its durable sign-log");
        // Every signature that leaves is at or below the durable mark: what a
        // node whose data directory is lost must never sign again.
        if (needs_log(env, node.config.limits) && env.epoch > node.high_water)
            violation("high-water", "node " + std::to_string(node.id) +
                                        " sent a signature of epoch " + std::to_string(env.epoch) +
                                        " above its durable mark " +
                                        std::to_string(node.high_water));
        check_slots(node, env);
    }
    if (env.sender == node.id && env.kind == Kind::Cert) {
        auto cert = decode_certificate(env.body, node.config.limits);
        if (cert) {
            const auto& c = cert.value();
            auto [it, fresh] = certs_.try_emplace({c.epoch, c.proposer}, c.digest);
            if (!fresh && it->second != c.digest)
                violation("conflicting-certs", "honest node " + std::to_string(node.id) +
                                                   " published a second certificate for (" +
                                                   std::to_string(c.epoch) + ", " +
                                                   std::to_string(c.proposer) + ")");
        }
    }
    if (!nested && env.sender == node.id && env.kind == Kind::FetchReply) {
        auto reply = decode_fetch_reply(env.body, node.config.limits);
        if (reply)
            for (const auto& inner : reply.value().envelopes) check_outgoing(node, inner, true);
    }
}

void World::on_apply(Node& node, const EpochResult& r) {
    if (node.byzantine) return;
    AppliedEpoch a{r.epoch, r.output_digest, r.state_digest, r.results};
    auto& log = node.log.epochs;
    std::string why;
    if (r.epoch <= log.size()) {
        // A reformatted node applies its epochs again: they must come out the same.
        if (!same_epoch(log[r.epoch - 1], a, &why))
            violation("agreement", "node " + std::to_string(node.id) + " re-applied epoch " +
                                       std::to_string(r.epoch) + " differently: " + why);
        return;
    }
    if (r.epoch != log.size() + 1) {
        violation("apply-order", "node " + std::to_string(node.id) + " applied epoch " +
                                     std::to_string(r.epoch) + " after " +
                                     std::to_string(log.size()));
        return;
    }
    auto [it, fresh] = applied_.try_emplace(r.epoch, a);
    if (fresh && r.epoch == report_.epoch_marks.size() + 1) {
        EpochMark mark{r.epoch, now_, report_.messages_sent, report_.bytes_sent, {}, 0};
        for (const CryptoCounts& c : crypto_counts_) mark.crypto += c;
        mark.cpu_s = static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
        report_.epoch_marks.push_back(mark);
    }
    if (!fresh && !same_epoch(it->second, a, &why))
        violation("agreement", "node " + std::to_string(node.id) + " applied epoch " +
                                   std::to_string(r.epoch) + " unlike another honest node: " + why);
    for (const auto& res : r.results) {
        if (!submitted_digests_.count(res.request_digest))
            violation("validity", "node " + std::to_string(node.id) + " output request " +
                                      hex_prefix(res.request_digest) + " nobody submitted");
        if (!res.duplicate && !res.malformed && !node.effective.insert(res.request_digest).second)
            violation("validity", "node " + std::to_string(node.id) + " applied request " +
                                      hex_prefix(res.request_digest) + " twice");
    }
    if (opt_.trace)
        std::fprintf(stderr, "[%llu] node %u applied epoch %llu (%zu requests) %s\n",
                     static_cast<unsigned long long>(now_), node.id,
                     static_cast<unsigned long long>(r.epoch), r.results.size(),
                     hex_prefix(r.state_digest).c_str());
    log.push_back(std::move(a));
}

/// A node installed a snapshot of epoch C: its log jumps to C. The epochs it did
/// not apply are filled in from another honest node's application (they are the
/// state it now holds: the root it verified), and the digest must be theirs.
void World::on_installed(Node& node, const SnapshotInstalled& snap) {
    if (node.byzantine) return;
    auto& log = node.log.epochs;
    if (opt_.trace)
        std::fprintf(stderr, "[%llu] node %u installed a snapshot of epoch %llu (%llu bytes)\n",
                     static_cast<unsigned long long>(now_), node.id,
                     static_cast<unsigned long long>(snap.epoch),
                     static_cast<unsigned long long>(snap.bytes));
    auto reference = [&](Epoch e) -> const AppliedEpoch* {
        if (auto it = applied_.find(e); it != applied_.end()) return &it->second;
        for (auto& np : nodes_)
            if (!np->byzantine && np->log.epochs.size() >= e) return &np->log.epochs[e - 1];
        return nullptr;
    };
    const AppliedEpoch* at = reference(snap.epoch);
    if (!at) {
        violation("snapshot", "node " + std::to_string(node.id) + " installed epoch " +
                                  std::to_string(snap.epoch) + " that no honest node applied");
        return;
    }
    if (at->state_digest != snap.state_digest)
        violation("agreement", "node " + std::to_string(node.id) + " installed epoch " +
                                   std::to_string(snap.epoch) + " with another state digest");
    for (Epoch e = log.size() + 1; e <= snap.epoch; ++e) {
        const AppliedEpoch* a = reference(e);
        if (!a) {
            violation("snapshot", "no honest application of epoch " + std::to_string(e));
            return;
        }
        for (const auto& res : a->results)
            if (!res.duplicate && !res.malformed) node.effective.insert(res.request_digest);
        log.push_back(*a);
    }
}

void World::client_hear(NodeId node, const EpochResult& result) {
    for (const auto& r : result.results) {
        auto it = tx_by_id_.find({r.client, r.nonce});
        if (it == tx_by_id_.end()) continue;
        Tx& tx = txs_[it->second];
        if (r.malformed || !tx.sent_to.count(node)) continue;
        tx.heard = true;
    }
}

// ---- Byzantine nodes ---------------------------------------------------------------------

// ---- Byzantine nodes ---------------------------------------------------------------

Adversary World::adversary(Node& b) {
    const Epoch delivered = b.replica ? b.replica->delivered() : 0;
    return Adversary(*this, b.id, b.behaviours, *b.crypto, b.config, delivered, b.adversary);
}

void World::byz_receive(Node& b, NodeId from, const Shared& bytes) {
    auto env = adversary(b).observe(from, bytes);
    if (env && b.replica) byz_emit(b, b.replica->handle_envelope(*env, now_));
}

void World::byz_emit(Node& b, Step&& step) {
    if (!b.up) return;
    if (b.dying) {
        // The crash-stop node's last step: each message to a random part of its
        // receivers, then nothing more, ever.
        for (const auto& m : step.messages) {
            const std::vector<NodeId> targets = m.to ? std::vector<NodeId>{*m.to} : others(b.id);
            for (NodeId to : targets)
                if (net_.chance(0.5)) send(b.id, to, m.envelope);
        }
        if (!step.messages.empty()) {
            b.dying = false;
            b.up = false;
        }
        return;
    }
    for (const auto& m : step.messages) adversary(b).forward(m);
}

void World::byz_tick(Node& b) {
    if (b.replica) byz_emit(b, b.replica->tick(now_));
    adversary(b).act();
}

}  // namespace

SeedReport run_seed(const SimOptions& options, std::uint64_t seed) {
    World world(options, seed);
    return world.run();
}

}  // namespace tob::sim
