// The lecture simulator (see lecture_sim.h for the model).

#include "tests/sim/lecture_sim.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <sstream>
#include <tuple>

#include "consensus/fast_crypto.h"
#include "consensus/naive_broadcast.h"
#include "consensus/sync_tob.h"
#include "tests/sim/rng.h"

namespace tob::sim {

using namespace tob::consensus;

namespace {

constexpr std::pair<LectureByz, const char*> kByzNames[] = {
    {LectureByz::Silent, "silent"},
    {LectureByz::Equivocate, "equivocate"},
    {LectureByz::LateChain, "late-chain"},
    {LectureByz::ForgeChain, "forge-chain"},
};

const char* kOps[] = {"/2", "+1", "*3", "-1"};

struct Event {
    enum class Kind : std::uint8_t { Submit, Deliver, Round, ByzSend };
    std::uint64_t time = 0, seq = 0;
    Kind kind = Kind::Submit;
    NodeId node = 0, from = 0;
    std::uint64_t index = 0;  // request, wire message or round number
    bool operator>(const Event& o) const { return std::tie(time, seq) > std::tie(o.time, o.seq); }
};

}  // namespace

const char* to_string(LectureProtocol p) { return p == LectureProtocol::Naive ? "naive" : "sync"; }
const char* to_string(LectureNetwork n) {
    return n == LectureNetwork::Synchronous ? "synchronous" : "asynchronous";
}
const char* to_string(LectureByz b) {
    for (const auto& [v, name] : kByzNames)
        if (v == b) return name;
    return "?";
}
std::optional<LectureByz> lecture_byz_from_string(const std::string& name) {
    for (const auto& [v, n] : kByzNames)
        if (name == n) return v;
    return std::nullopt;
}

std::string describe_log(const std::vector<OpRequest>& log, std::size_t max_ops) {
    std::ostringstream os;
    for (std::size_t i = 0; i < log.size() && i < max_ops; ++i) os << (i ? " " : "") << log[i].op;
    if (log.size() > max_ops) os << " ... (+" << log.size() - max_ops << ")";
    if (log.empty()) os << "(nothing)";
    return os.str();
}

std::string describe_state(const Rational& r) {
    const auto d = r.decimal();
    return d ? r.str() + " (" + *d + ")" : r.str();
}

std::vector<Violation> check_lecture_logs(const std::vector<LectureNodeResult>& honest,
                                          const std::set<std::uint64_t>& submitted) {
    std::vector<Violation> out;
    for (const auto& a : honest) {
        std::set<std::uint64_t> ids;
        for (const auto& r : a.log) {
            if (!ids.insert(r.id).second)
                out.push_back({"validity", "node " + std::to_string(a.node) + " applied request " +
                                               std::to_string(r.id) + " twice"});
            if (r.id < kByzantineIdBase && !submitted.count(r.id))
                out.push_back({"validity", "node " + std::to_string(a.node) + " applied request " +
                                               std::to_string(r.id) + " that nobody submitted"});
        }
        for (std::uint64_t id : submitted)
            if (!ids.count(id))
                out.push_back({"liveness", "node " + std::to_string(a.node) +
                                               " never applied request " + std::to_string(id)});
    }
    for (std::size_t i = 0; i < honest.size(); ++i) {
        for (std::size_t j = i + 1; j < honest.size(); ++j) {
            const auto &a = honest[i], &b = honest[j];
            const std::size_t common = std::min(a.log.size(), b.log.size());
            std::size_t k = 0;
            while (k < common && a.log[k] == b.log[k]) ++k;
            std::ostringstream os;
            if (k < common) {
                os << "nodes " << a.node << " and " << b.node << " differ at position " << k << ": "
                   << a.log[k].op << " (#" << a.log[k].id << ") vs " << b.log[k].op << " (#"
                   << b.log[k].id << "); states " << describe_state(a.state) << " vs "
                   << describe_state(b.state);
            } else if (a.log.size() == b.log.size() && !(a.state == b.state)) {
                os << "nodes " << a.node << " and " << b.node << " applied the same log but hold "
                   << describe_state(a.state) << " vs " << describe_state(b.state);
            }
            if (!os.str().empty()) out.push_back({"agreement", os.str()});
        }
    }
    return out;
}

namespace {

class LectureWorld {
  public:
    LectureWorld(const LectureOptions& opt, std::uint64_t seed)
        : opt_(opt),
          seed_(seed),
          rng_(seed),
          net_(rng_.fork("network")),
          work_(rng_.fork("workload")),
          byz_rng_(rng_.fork("byzantine")) {}

    LectureReport run();

  private:
    void setup();
    void workload();
    void push(std::uint64_t time, Event::Kind kind, NodeId node, NodeId from, std::uint64_t index);
    std::uint64_t delay();
    void send(NodeId from, NodeId to, SyncMessage m);
    void broadcast(NodeId from, const SyncMessage& m);
    void handle(const Event& ev);
    void deliver(const Event& ev);
    void after_sync(NodeId node, SyncStep step);
    void after_naive(NodeId node, const NaiveStep& step);
    void record_applied(NodeId node, const std::vector<OpRequest>& applied);
    void byz_observe(const SyncMessage& m);
    void byz_round(NodeId b, std::uint64_t round);
    void byz_lead(NodeId b, Epoch e, bool equivocate);
    void byz_late_chain(NodeId b, Epoch e, std::uint32_t ds_round);
    void byz_forge(NodeId b, Epoch e);
    void byz_naive(NodeId b);
    SyncMessage chain_message(Epoch e, const Bytes& value, const std::vector<NodeId>& signers);
    bool all_applied() const;
    void finish(LectureReport& report);
    void summarize_epochs(LectureReport& report);
    bool has(NodeId b, LectureByz behaviour) const;
    NodeId random_honest();

    LectureOptions opt_;
    std::uint64_t seed_;
    Rng rng_, net_, work_, byz_rng_;
    std::uint32_t n_ = 0, t_ = 0;
    std::uint64_t round_ticks_ = 0, end_time_ = 0;
    double late_share_ = 0;
    std::vector<std::uint64_t> drift_;
    std::map<NodeId, std::vector<LectureByz>> byz_;
    std::vector<NodeId> honest_;
    std::shared_ptr<const FastWorld> world_;
    std::vector<std::unique_ptr<FastCryptoSuite>> suites_;
    std::map<NodeId, std::unique_ptr<NaiveNode>> naive_;
    std::map<NodeId, std::unique_ptr<SyncTobNode>> sync_;
    struct Req {
        OpRequest request;
        NodeId to = 0;
        std::uint64_t at = 0;
    };
    std::vector<Req> reqs_;
    std::map<std::uint64_t, std::map<NodeId, std::uint64_t>> applied_at_;
    std::vector<SyncMessage> wire_;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> q_;
    std::uint64_t seq_ = 0, now_ = 0, in_flight_ = 0, messages_ = 0;  // in flight: honest senders'
    bool stopping_ = false;
    std::map<Epoch, std::map<NodeId, SyncEpochOutcome>> outcomes_;
    std::map<std::uint64_t, OpRequest> byz_known_;
    std::vector<DsMessage> byz_seen_;  // chains of recent epochs honest nodes sent
    std::uint64_t byz_next_id_ = kByzantineIdBase;
    std::uint64_t faults_on_byz_ = 0;
    std::vector<Violation> violations_;
};

bool LectureWorld::has(NodeId b, LectureByz behaviour) const {
    auto it = byz_.find(b);
    return it != byz_.end() &&
           std::find(it->second.begin(), it->second.end(), behaviour) != it->second.end();
}

NodeId LectureWorld::random_honest() { return honest_[work_.below(honest_.size())]; }

void LectureWorld::push(std::uint64_t time, Event::Kind kind, NodeId node, NodeId from,
                        std::uint64_t index) {
    q_.push(Event{time, seq_++, kind, node, from, index});
}

std::uint64_t LectureWorld::delay() {
    const std::uint64_t d = opt_.delta_ticks;
    if (opt_.network == LectureNetwork::Asynchronous && net_.chance(late_share_))
        return d + d * (1 + net_.below(std::uint64_t{1} << net_.below(6)));
    return net_.range(1, d);
}

void LectureWorld::send(NodeId from, NodeId to, SyncMessage m) {
    wire_.push_back(std::move(m));
    if (!byz_.count(from)) ++in_flight_;
    push(now_ + delay(), Event::Kind::Deliver, to, from, wire_.size() - 1);
}

void LectureWorld::broadcast(NodeId from, const SyncMessage& m) {
    for (NodeId to = 0; to < n_; ++to)
        if (to != from) send(from, to, m);
}

void LectureWorld::setup() {
    n_ = opt_.nodes;
    t_ = max_faulty(n_);
    round_ticks_ = opt_.delta_ticks + opt_.max_drift_ticks;
    late_share_ = 0.15 + 0.25 * rng_.unit();
    std::vector<LectureByz> pool = opt_.behaviours;
    if (pool.empty())
        pool = {LectureByz::Silent, LectureByz::Equivocate, LectureByz::LateChain,
                LectureByz::ForgeChain};
    std::vector<NodeId> ids(n_);
    for (NodeId i = 0; i < n_; ++i) ids[i] = i;
    for (std::uint32_t k = 0; k < opt_.faulty && k < n_; ++k) {
        const std::size_t pick = k + rng_.below(n_ - k);
        std::swap(ids[k], ids[pick]);
        std::vector<LectureByz> mine{pool[rng_.below(pool.size())]};
        if (pool.size() > 1 && rng_.chance(0.5)) {
            const LectureByz second = pool[rng_.below(pool.size())];
            if (second != mine[0]) mine.push_back(second);
        }
        byz_[ids[k]] = mine;
    }
    world_ = FastWorld::make(n_, t_, seed_);
    for (NodeId i = 0; i < n_; ++i) {
        suites_.push_back(std::make_unique<FastCryptoSuite>(world_, i));
        drift_.push_back(rng_.range(0, opt_.max_drift_ticks));
        if (byz_.count(i)) continue;
        honest_.push_back(i);
        if (opt_.protocol == LectureProtocol::Naive) {
            naive_.emplace(i, std::make_unique<NaiveNode>(i, Rational::integer(1)));
        } else {
            SyncTobParams p;
            p.n = n_;
            p.t = t_;
            p.self = i;
            p.knobs.accept_short_chains = opt_.weak_ds;
            sync_.emplace(i, std::make_unique<SyncTobNode>(p, *suites_[i]));
        }
    }
}

void LectureWorld::workload() {
    const std::uint64_t window = 6 * (t_ + 1) * round_ticks_;
    reqs_.push_back({{1, "/2"}, honest_[0], 0});
    reqs_.push_back({{2, "+1"}, honest_[honest_.size() > 1 ? 1 : 0], 0});
    for (std::uint32_t k = 0; k < opt_.extra_requests; ++k) {
        const OpRequest r{3 + k, kOps[work_.below(4)]};
        reqs_.push_back({r, random_honest(), work_.below(window)});
    }
    for (std::size_t i = 0; i < reqs_.size(); ++i)
        push(reqs_[i].at, Event::Kind::Submit, reqs_[i].to, 0, i);
    const std::uint64_t limit_rounds = window / round_ticks_ + 12 * n_ * (t_ + 1) + 40;
    end_time_ = limit_rounds * round_ticks_;
    for (const auto& [b, behaviours] : byz_) {
        if (opt_.protocol == LectureProtocol::Naive) {
            for (int k = 0; k < 3; ++k) push(byz_rng_.below(window), Event::Kind::ByzSend, b, b, 0);
        } else {
            push(0, Event::Kind::Round, b, b, 0);
        }
    }
    if (opt_.protocol == LectureProtocol::Sync)
        for (NodeId i : honest_) push(drift_[i], Event::Kind::Round, i, i, 0);
}

LectureReport LectureWorld::run() {
    setup();
    workload();
    while (!q_.empty()) {
        const Event ev = q_.top();
        if (ev.time > end_time_) break;
        q_.pop();
        now_ = ev.time;
        handle(ev);
    }
    LectureReport report;
    finish(report);
    return report;
}

void LectureWorld::handle(const Event& ev) {
    switch (ev.kind) {
        case Event::Kind::Submit: {
            const OpRequest& r = reqs_[ev.index].request;
            if (opt_.protocol == LectureProtocol::Naive)
                after_naive(ev.node, naive_.at(ev.node)->handle_client(r));
            else
                after_sync(ev.node, sync_.at(ev.node)->handle_client(r));
            break;
        }
        case Event::Kind::Deliver:
            deliver(ev);
            break;
        case Event::Kind::Round: {
            if (byz_.count(ev.node))
                byz_round(ev.node, ev.index);
            else
                after_sync(ev.node, sync_.at(ev.node)->on_round(ev.index));
            // Once everything is applied everywhere and nothing is in flight,
            // run one more epoch and stop.
            if (!stopping_ && all_applied() && in_flight_ == 0) {
                stopping_ = true;
                end_time_ = std::min(end_time_, now_ + (t_ + 2) * round_ticks_);
            }
            const std::uint64_t next = ev.index + 1;
            push(next * round_ticks_ + (byz_.count(ev.node) ? 0 : drift_[ev.node]),
                 Event::Kind::Round, ev.node, ev.node, next);
            break;
        }
        case Event::Kind::ByzSend:
            byz_naive(ev.node);
            break;
    }
}

void LectureWorld::deliver(const Event& ev) {
    if (!byz_.count(ev.from)) --in_flight_;
    ++messages_;
    const SyncMessage& m = wire_[ev.index];
    if (byz_.count(ev.node)) {
        byz_observe(m);
    } else if (opt_.protocol == LectureProtocol::Naive) {
        after_naive(ev.node, naive_.at(ev.node)->handle_message(ev.from, m.request));
    } else {
        after_sync(ev.node, sync_.at(ev.node)->handle_message(ev.from, m));
    }
    // Free the payload: each wire message is delivered once.
    wire_[ev.index] = SyncMessage{};
}

void LectureWorld::record_applied(NodeId node, const std::vector<OpRequest>& applied) {
    for (const auto& r : applied) applied_at_[r.id][node] = now_;
}

void LectureWorld::after_naive(NodeId node, const NaiveStep& step) {
    record_applied(node, step.applied);
    for (const auto& r : step.broadcast) broadcast(node, {SyncMessage::Kind::Request, r, {}});
}

void LectureWorld::after_sync(NodeId node, SyncStep step) {
    record_applied(node, step.applied);
    for (const auto& o : step.finished) outcomes_[o.epoch][node] = o;
    for (const auto& f : step.faults) {
        if (byz_.count(f.culprit))
            ++faults_on_byz_;
        else
            violations_.push_back({"honest-blamed", "node " + std::to_string(node) + " blamed " +
                                                        std::to_string(f.culprit) + ": " +
                                                        f.detail});
    }
    for (const auto& m : step.broadcast) broadcast(node, m);
}

bool LectureWorld::all_applied() const {
    for (const auto& r : reqs_) {
        auto it = applied_at_.find(r.request.id);
        if (it == applied_at_.end() || it->second.size() < honest_.size()) return false;
    }
    return true;
}

// ---- Byzantine nodes ---------------------------------------------------------------

SyncMessage LectureWorld::chain_message(Epoch e, const Bytes& value,
                                        const std::vector<NodeId>& signers) {
    const NodeId leader = SyncTobNode::leader(e, n_);
    SyncMessage m;
    m.kind = SyncMessage::Kind::Block;
    m.block.session = e;
    m.block.sender = leader;
    m.block.value = value;
    for (NodeId s : signers)
        m.block.chain.push_back(DolevStrong::sign_link(*suites_[s], s, e, leader, value));
    return m;
}

void LectureWorld::byz_observe(const SyncMessage& m) {
    if (m.kind == SyncMessage::Kind::Request) {
        if (byz_known_.size() < 4096) byz_known_.emplace(m.request.id, m.request);
        return;
    }
    if (byz_seen_.size() >= 256) byz_seen_.erase(byz_seen_.begin(), byz_seen_.begin() + 128);
    byz_seen_.push_back(m.block);
}

void LectureWorld::byz_round(NodeId b, std::uint64_t round) {
    if (has(b, LectureByz::Silent)) return;
    const std::uint32_t per = SyncTobNode::rounds_per_epoch(t_);
    const Epoch e = round / per;
    const std::uint32_t ds_round = static_cast<std::uint32_t>(round % per) + 1;
    const bool leads = SyncTobNode::leader(e, n_) == b;
    if (leads && ds_round == 1) byz_lead(b, e, has(b, LectureByz::Equivocate));
    if (leads && has(b, LectureByz::LateChain)) byz_late_chain(b, e, ds_round);
    if (has(b, LectureByz::ForgeChain)) byz_forge(b, e);
}

void LectureWorld::byz_lead(NodeId b, Epoch e, bool equivocate) {
    std::vector<OpRequest> a;
    for (const auto& [id, r] : byz_known_) {
        if (a.size() >= 3) break;
        a.push_back(r);
    }
    if (a.empty()) a.push_back({byz_next_id_++, "+1"});
    const SyncMessage ma = chain_message(e, encode_op_block(a), {b});
    if (!equivocate) {
        broadcast(b, ma);
        return;
    }
    // Two signed blocks: the same requests, and one with a made-up request more.
    std::vector<OpRequest> other = a;
    other.push_back({byz_next_id_++, "*3"});
    const SyncMessage mb = chain_message(e, encode_op_block(other), {b});
    // Both blocks reach someone: a random first node gets one, the others a coin flip.
    const NodeId pivot = static_cast<NodeId>((b + 1 + byz_rng_.below(n_ - 1)) % n_);
    bool other_sent = false;
    for (NodeId to = 0; to < n_; ++to) {
        if (to == b || to == pivot) continue;
        const bool a_side = byz_rng_.chance(0.5);
        other_sent |= !a_side;
        send(b, to, a_side ? ma : mb);
    }
    send(b, pivot, other_sent ? ma : mb);
}

void LectureWorld::byz_late_chain(NodeId b, Epoch e, std::uint32_t ds_round) {
    // All Byzantine nodes collude: the leader first, then the others' links.
    std::vector<NodeId> signers{b};
    for (const auto& [id, behaviours] : byz_)
        if (id != b && signers.size() < t_) signers.push_back(id);
    const Bytes value = encode_op_block({{kByzantineIdBase / 2 + e, "-1"}});
    // Variant 0: a valid chain of t links shown in round t (the latest round it
    // counts) to one honest node, which must relay it to everyone in time.
    // Variant 1: the same chain in round t+1, one signature short.
    static constexpr int kVariants = 2;
    const int variant = static_cast<int>((seed_ * 31 + e) % kVariants);
    const std::uint32_t when = variant == 0 ? t_ : t_ + 1;
    if (ds_round == when) send(b, random_honest(), chain_message(e, value, signers));
}

void LectureWorld::byz_forge(NodeId b, Epoch e) {
    const NodeId leader = SyncTobNode::leader(e, n_);
    const Bytes junk = encode_op_block({{byz_next_id_, "*3"}});
    const DsMessage* current = nullptr;
    const DsMessage* old = nullptr;
    for (const auto& m : byz_seen_) {
        if (m.session == e) current = &m;
        if (m.session < e) old = &m;
    }
    SyncMessage m;
    switch (byz_rng_.below(5)) {
        case 1:  // the leader's link pasted onto another value
            if (current) {
                m = chain_message(e, junk, {});
                m.block.chain = current->chain;
                break;
            }
            [[fallthrough]];
        case 2:  // a seen chain padded with a repeated signer
            if (current) {
                m.kind = SyncMessage::Kind::Block;
                m.block = *current;
                m.block.chain.push_back(current->chain.front());
                break;
            }
            [[fallthrough]];
        case 3:  // a replay of an older epoch's chain
            if (old) {
                m.kind = SyncMessage::Kind::Block;
                m.block = *old;
                break;
            }
            [[fallthrough]];
        case 4:  // a chain not opened by the leader
            if (leader != b) {
                m = chain_message(e, junk, {b});
                break;
            }
            [[fallthrough]];
        default:  // its own signature under another member's id
            m = chain_message(e, junk, {b});
            m.block.chain.front().signer = leader != b ? leader : static_cast<NodeId>((b + 1) % n_);
    }
    send(b, random_honest(), std::move(m));
}

void LectureWorld::byz_naive(NodeId b) {
    const OpRequest r{byz_next_id_++, kOps[byz_rng_.below(4)]};
    for (NodeId to = 0; to < n_; ++to)
        if (to != b && byz_rng_.chance(0.5)) send(b, to, {SyncMessage::Kind::Request, r, {}});
}

// ---- the report --------------------------------------------------------------------

void LectureWorld::summarize_epochs(LectureReport& report) {
    for (const auto& [e, by_node] : outcomes_) {
        if (by_node.size() < honest_.size()) continue;  // not finished everywhere
        ++report.epochs;
        const SyncEpochOutcome& o0 = by_node.begin()->second;
        std::ostringstream es;
        es << "e" << e << " leader " << o0.leader << ": ";
        if (o0.block)
            es << "block, " << o0.newly_queued << " queued";
        else
            es << "⊥" << (o0.accepted >= 2 ? " (two signed blocks)" : "");
        report.epoch_log.push_back(es.str());
        std::vector<NodeId> with_block, bottom;
        std::set<std::size_t> sizes;
        for (const auto& [node, o] : by_node) {
            (o.block ? with_block : bottom).push_back(node);
            if (o.block) sizes.insert(o.newly_queued);
        }
        if (with_block.empty()) ++report.bottom_epochs;
        if (with_block.empty() || bottom.empty()) continue;
        std::ostringstream os;
        os << "epoch " << e << " (leader " << SyncTobNode::leader(e, n_) << "): block at {";
        for (std::size_t i = 0; i < with_block.size(); ++i) os << (i ? "," : "") << with_block[i];
        os << "}, ⊥ at {";
        for (std::size_t i = 0; i < bottom.size(); ++i) os << (i ? "," : "") << bottom[i];
        os << "}";
        report.split_epochs.push_back(os.str());
    }
}

void LectureWorld::finish(LectureReport& report) {
    report.seed = seed_;
    std::ostringstream ps;
    ps << "protocol=" << to_string(opt_.protocol) << " network=" << to_string(opt_.network)
       << " n=" << n_ << " t=" << t_ << " byzantine={";
    bool first = true;
    for (const auto& [b, behaviours] : byz_) {
        ps << (first ? "" : ",") << b << ":";
        for (std::size_t i = 0; i < behaviours.size(); ++i)
            ps << (i ? "+" : "") << to_string(behaviours[i]);
        first = false;
    }
    ps << "} delta=" << opt_.delta_ticks;
    if (opt_.protocol == LectureProtocol::Sync) {
        ps << " max_drift=" << opt_.max_drift_ticks << " round=" << round_ticks_ << " drift={";
        for (NodeId i = 0; i < n_; ++i) ps << (i ? "," : "") << drift_[i];
        ps << "}";
    }
    if (opt_.network == LectureNetwork::Asynchronous) ps << " late_share=" << late_share_;
    ps << " requests=" << reqs_.size() << (opt_.weak_ds ? " WEAK-DOLEV-STRONG" : "");
    report.params = ps.str();

    std::set<std::uint64_t> submitted;
    for (const auto& r : reqs_) submitted.insert(r.request.id);
    for (NodeId i : honest_) {
        LectureNodeResult res;
        res.node = i;
        if (opt_.protocol == LectureProtocol::Naive) {
            res.log = naive_.at(i)->log();
            res.state = naive_.at(i)->machine().state();
        } else {
            res.log = sync_.at(i)->queued();
            res.state = sync_.at(i)->machine().state();
            report.late_chains += sync_.at(i)->stats().late;
        }
        report.honest.push_back(std::move(res));
    }
    report.violations = violations_;
    for (auto& v : check_lecture_logs(report.honest, submitted)) report.violations.push_back(v);
    for (const auto& v : report.violations) {
        if (v.check == "liveness")
            report.liveness = false;
        else
            report.agreement = false;
    }
    report.requests = reqs_.size();
    report.messages = messages_;
    report.faults_on_byzantine = faults_on_byz_;
    double sum = 0;
    for (const auto& r : reqs_) {
        auto it = applied_at_.find(r.request.id);
        if (it == applied_at_.end() || it->second.size() < honest_.size()) continue;
        std::uint64_t last = 0;
        for (const auto& [node, at] : it->second) last = std::max(last, at);
        const double rounds = static_cast<double>(last - r.at) / static_cast<double>(round_ticks_);
        ++report.committed;
        sum += rounds;
        report.latency_rounds_max = std::max(report.latency_rounds_max, rounds);
    }
    if (report.committed) report.latency_rounds_mean = sum / static_cast<double>(report.committed);
    summarize_epochs(report);
}

}  // namespace

LectureReport run_lecture_seed(const LectureOptions& options, std::uint64_t seed) {
    LectureWorld world(options, seed);
    return world.run();
}

}  // namespace tob::sim
