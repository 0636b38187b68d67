// Replica — asynchronous Byzantine total-order broadcast for one node.
//
// The protocol (DESIGN.md §2), as this file implements it:
//
// Epochs e = 1, 2, ... run while there is work; at most W at once, and a node
// signs only for epochs in (delivered, delivered + W]. A node *joins* epoch e by
// proposing its block B(e, self) (possibly empty); joining e joins every earlier
// epoch first. It joins when it has work and a block is due (full, or the block
// timer fired), or when a valid block, SEEN, CERT or ABA message for e arrives.
//
//  1. Propose: a block from the pool — a quarter of the space reserved for aged
//     requests (uncommitted for more than k delivered epochs, oldest first,
//     round-robin across clients), then requests clients gave to this node, then
//     the rest of the aged ones. Requests learnt only by flooding are proposed
//     once aged (docs/decisions.md: each node carries its own clients' load, the
//     aged rule guarantees nobody is starved).
//  2. Flood: the first valid block of (e, j) is stored, relayed once (the
//     original envelope) and SEEN. Later different blocks of (e, j) are kept as
//     equivocation evidence only — unless a certificate names their digest.
//  3. SEEN(e, j, d) is signed only for the first valid block of (e, j), after the
//     block is durable (the Block record precedes the Signed record in `persist`).
//  4. q = ceil((n+t+1)/2) SEEN signatures on one (e, j, d) form CERT(e, j, d):
//     at least q - t >= t+1 honest signers hold the block; two certificates of one
//     (e, j) would need 2q - n >= t+1 common signers, one of them honest, who
//     never SEENs twice. So each (e, j) has at most one certified digest.
//  5. A certificate makes the node input 1 to ABA(e, j); once n - t ABAs of the
//     epoch decided 1, it inputs 0 to every ABA it has not input to.
//  6. When all n ABAs decided, S = {j : decided 1}; the output is the blocks of S
//     (each exactly the certified digest; fetched from the certificate's signers
//     when missing) in proposer order rotated by e, requests in block order; the
//     state machine skips duplicates. Epochs are delivered strictly in order.
//  7. After applying e the node signs COMMIT(e, output_digest, state_digest).
//     t+1 matching COMMITs make an epoch *provable*: a node behind fetches the
//     blocks and COMMITs, checks them and applies them (catch-up); q matching
//     COMMITs make it *stable*, which ends re-publication for it.
//
// Repair: until an epoch is stable the node re-publishes everything it signed
// for it and every certificate it holds, with exponential backoff capped at
// repair_max_ms. Missing blocks and certificates are fetched. A node that hears
// from a peer still working on an epoch this node has delivered answers with
// its COMMIT for that epoch, which tells the peer to catch up.
//
// Sign-log: every signed payload has a slot (block (e,i), SEEN (e,j), BVAL
// (e,j,r,v), AUX (e,j,r), CONF (e,j,r), TERM (e,j), COMMIT (e)); a slot is
// signed at most once, and re-signing returns the logged bytes. Before the first
// signature in a new epoch the signing high-water mark is raised (a HighWater
// record precedes the Signed record). After a restart the core adopts its
// logged block, SEENs and ABA messages and never signs a different payload;
// with a lost sign-log (reformatted data dir) it signs only above the mark.

#include "consensus/replica.h"

#include <algorithm>
#include <deque>
#include <tuple>

#include "consensus/binary_agreement.h"
#include "consensus/block_broadcast.h"
#include "consensus/check.h"
#include "consensus/codec.h"
#include "consensus/epoch_subset.h"
#include "consensus/request_pool.h"
#include "consensus/sign_log.h"

namespace tob::consensus {

Decoded<Envelope> open_envelope(ByteView bytes, const CryptoSuite& crypto,
                                const ReplicaConfig& config) {
    if (bytes.size() > config.limits.message_bytes_max) {
        return Decoded<Envelope>::fail("envelope larger than message_bytes_max");
    }
    auto env = decode_envelope(bytes, config.limits);
    if (!env) return env;
    const Envelope& e = env.value();
    if (e.chain_id != config.chain_id) return Decoded<Envelope>::fail("foreign chain id");
    if (e.sender >= config.n) return Decoded<Envelope>::fail("sender is not a member");
    if (!crypto.verify(e.sender, kEnvelopeTag,
                       envelope_sign_payload(e.chain_id, e.sender, e.epoch, e.kind, e.body),
                       e.sig)) {
        return Decoded<Envelope>::fail("bad envelope signature");
    }
    return env;
}

namespace {

Digest commit_key(const CommitBody& body) { return digest_of(encode(body)); }

BroadcastParams broadcast_params(const ReplicaConfig& c) {
    BroadcastParams p;
    p.n = c.n;
    p.t = c.t;
    p.self = c.self;
    p.chain_id = c.chain_id;
    p.limits = c.limits;
    p.cert_quorum = c.unsafe_cert_quorum ? c.unsafe_cert_quorum : quorum(c.n, c.t);
    p.repair_initial_ms = c.repair_initial_ms;
    return p;
}

PoolParams pool_params(const ReplicaConfig& c) {
    PoolParams p;
    p.chain_id = c.chain_id;
    p.limits = c.limits;
    p.aged_epochs = c.aged_epochs;
    p.pool_requests_max = c.pool_requests_max;
    p.block_timer_ms = c.block_timer_ms;
    return p;
}

}  // namespace

struct Replica::Impl {
    struct EpochState {
        // Repair.
        std::vector<std::pair<Kind, Bytes>>
            republish;  // what this node signed (and certs it holds)
        std::uint64_t next_republish_ms = 0;
        std::uint64_t backoff_ms = 0;
    };

    struct CommitVotes {
        std::map<Digest, std::map<NodeId, Bytes>> by_body;  // commit_key -> signer -> envelope
        std::map<NodeId, std::pair<Digest, Bytes>> by_sender;
        std::optional<Digest> mine;
        bool stable = false;
    };

    struct Proof {
        std::vector<Bytes> blocks;  // envelopes of S in delivery order
    };
    std::optional<std::pair<Epoch, std::uint64_t>> behind_since;  // (target, first noticed)

    ReplicaConfig cfg;
    const CryptoSuite& crypto;
    StateMachine& sm;
    ReplicaStats& stats;
    std::uint32_t q = 0;

    // The sub-protocols.
    SignLog signer;
    RequestPool pool;
    BlockBroadcast blocks;
    EpochSubset subset;

    std::map<Epoch, EpochState> epochs;
    std::map<Epoch, CommitVotes> commits;
    std::map<Epoch, Proof> proofs;  // delivered epochs, bounded history
    Epoch proposed_upto = 0;

    // Catch-up.
    std::map<NodeId, Epoch> commit_hint;  // highest COMMIT epoch seen per sender
    std::uint64_t catchup_next_ms = 0;
    std::map<NodeId, std::pair<Epoch, std::uint64_t>> hinted;  // peer -> (epoch, when)
    std::uint64_t now = 0;

    static constexpr Epoch kProofHistory = 256;

    Impl(const ReplicaConfig& c, const CryptoSuite& cr, StateMachine& s, ReplicaStats& st)
        : cfg(c),
          crypto(cr),
          sm(s),
          stats(st),
          signer(c.self, c.chain_id, c.limits, cr),
          pool(pool_params(c), cr),
          blocks(broadcast_params(c), cr),
          subset(SubsetParams{c.n, c.t, c.self, c.chain_id, c.max_rounds_ahead}, cr) {
        q = cfg.unsafe_cert_quorum ? cfg.unsafe_cert_quorum : quorum(cfg.n, cfg.t);
        stats.delivered = sm.last_applied();
    }

    Epoch delivered() const { return stats.delivered; }
    bool in_window(Epoch e) const { return e > delivered() && e <= delivered() + cfg.window; }
    bool can_sign(Epoch e) const { return !stats.halted && signer.may_sign(e); }

    void fault(Step& step, NodeId culprit, FaultKind kind, std::string detail,
               std::vector<Bytes> evidence = {}) {
        step.fault(culprit, kind, std::move(detail), std::move(evidence));
    }

    void alarm(Step& step, std::string why) {
        stats.halted = true;
        step.alarms.push_back(std::move(why));
    }

    // ---- signing --------------------------------------------------------------

    /// Signs a statement through the sign-log; nullopt if not allowed.
    std::optional<Bytes> sign(Step& step, Epoch e, Kind kind, Bytes body) {
        if (stats.halted) return std::nullopt;
        return signer.sign(step, e, kind, std::move(body));
    }

    void broadcast(Step& step, Kind kind, const Bytes& env) { step.broadcast(kind, env); }
    void unicast(Step& step, NodeId to, Kind kind, const Bytes& env) {
        if (to != cfg.self) step.send(to, kind, env);
    }

    EpochState& state(Epoch e) {
        auto [it, fresh] = epochs.try_emplace(e);
        if (fresh) {
            it->second.backoff_ms = cfg.repair_initial_ms;
            it->second.next_republish_ms = now + cfg.repair_initial_ms;
        }
        return it->second;
    }

    void remember(Epoch e, Kind kind, const Bytes& env) {
        auto& st = state(e);
        st.republish.push_back({kind, env});
    }

    // ---- requests -------------------------------------------------------------------

    /// Pools a request that arrived by flood or in a block (its signature checked).
    void pool_add(const Request& r, const Digest& d, std::size_t bytes, bool local) {
        pool.add(r, d, bytes, local, delivered(), now, sm);
    }

    // ---- joining and proposing ----------------------------------------------------

    void join_upto(Step& step, Epoch e) {
        e = std::min<Epoch>(e, delivered() + cfg.window);
        for (Epoch x = std::max<Epoch>(proposed_upto, delivered()) + 1; x <= e; ++x) {
            if (!can_sign(x)) continue;
            propose(step, x);
        }
    }

    void ensure_abas(Epoch e) {
        state(e);
        if (!subset.open(e) && can_sign(e)) subset.open_epoch(e);
    }

    void propose(Step& step, Epoch e) {
        Block b;
        b.epoch = e;
        b.proposer = cfg.self;
        b.requests = pool.build_block(delivered());
        Bytes body = encode(b);
        auto env = sign(step, e, Kind::Block, body);
        proposed_upto = std::max(proposed_upto, e);
        if (!env) return;
        pool.proposed(b.requests, now);
        remember(e, Kind::Block, *env);
        broadcast(step, Kind::Block, *env);
        ensure_abas(e);
        auto opened = decode_envelope(*env, cfg.limits);
        TOB_CHECK(opened, "this node's own block envelope decodes");
        on_block(step, opened.value(), *env, /*from_fetch=*/false);
    }

    // ---- blocks, SEEN, certificates (consensus/block_broadcast.h) ---------------------

    void on_block(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch) {
        const Epoch e = env.epoch;
        const NodeId j = env.sender;
        auto block = blocks.parse(step, env, raw);
        if (!block) return;
        const Digest d = digest_of(env.body);
        if (blocks.holds(d)) return;  // already have it
        if (!in_window(e) && !blocks.certified(e, j, d)) {
            if (!from_fetch) ++stats.dropped_out_of_window;
            if (e <= delivered()) hint_commit(step, j, e);
            return;
        }
        std::vector<std::pair<Digest, std::size_t>> digests;
        for (const auto& r : block->requests) {
            Bytes enc = encode(r);
            Digest rd = digest_of(enc);
            if (!pool.valid(r, rd)) {
                step.fault(j, FaultKind::InvalidBlock, "block holds an invalid request", {raw});
                return;
            }
            digests.push_back({rd, enc.size()});
        }
        for (std::size_t i = 0; i < block->requests.size(); ++i) {
            pool_add(block->requests[i], digests[i].first, digests[i].second, /*local=*/false);
        }
        state(e);
        if (blocks.accept(step, env, raw, std::move(*block), d, in_window(e)) ==
            BlockBroadcast::Accept::First) {
            if (j != cfg.self) broadcast(step, Kind::Block, raw);  // relay the original once
            join_upto(step, e);
            send_seen(step, e, j, d);
        }
        try_deliver(step);
    }

    void send_seen(Step& step, Epoch e, NodeId j, const Digest& d) {
        SeenBody sb{j, d};
        auto env = sign(step, e, Kind::Seen, encode(sb));
        if (!env) return;
        remember(e, Kind::Seen, *env);
        broadcast(step, Kind::Seen, *env);
        auto opened = decode_envelope(*env, cfg.limits);
        TOB_CHECK(opened, "this node's own SEEN decodes");
        on_seen(step, opened.value(), *env);
    }

    void on_seen(Step& step, const Envelope& env, const Bytes& raw) {
        const Epoch e = env.epoch;
        auto sb = decode_seen(env.body, cfg.limits);
        if (!sb) {
            step.fault(env.sender, FaultKind::Malformed, "seen: " + sb.error(), {raw});
            return;
        }
        if (sb.value().proposer >= cfg.n) {
            step.fault(env.sender, FaultKind::Malformed, "seen: proposer out of range", {raw});
            return;
        }
        if (!in_window(e)) {
            ++stats.dropped_out_of_window;
            if (e <= delivered()) hint_commit(step, env.sender, e);
            return;
        }
        join_upto(step, e);
        state(e);
        auto cert = blocks.count_seen(step, e, env.sender, sb.value(), env.sig, raw);
        if (cert) adopt_cert(step, *cert, std::nullopt);
    }

    /// A verified certificate: store it, flood it, input 1, fetch the block.
    void adopt_cert(Step& step, const Certificate& c, std::optional<Bytes> relay) {
        state(c.epoch);
        switch (blocks.adopt(step, c)) {
            case BlockBroadcast::Adopt::Known:
                return;
            case BlockBroadcast::Adopt::Conflict:
                alarm(step,
                      "two certificates with different digests for one (epoch, proposer): "
                      "more than t faulty nodes");
                return;
            case BlockBroadcast::Adopt::Adopted:
                break;
        }
        Bytes env =
            relay ? *relay
                  : seal_envelope(crypto, cfg.chain_id, cfg.self, c.epoch, Kind::Cert, encode(c));
        remember(c.epoch, Kind::Cert, env);
        broadcast(step, Kind::Cert, env);
        ensure_abas(c.epoch);
        run_subset(step, c.epoch, subset.input_one(c.epoch, c.proposer));
        if (!blocks.holds(c.digest)) blocks.fetch_block(step, c.epoch, c, now);
        try_deliver(step);
    }

    void on_cert(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch) {
        auto c = decode_certificate(env.body, cfg.limits);
        if (!c) {
            step.fault(env.sender, FaultKind::Malformed, "cert: " + c.error(), {raw});
            return;
        }
        const Certificate& cert = c.value();
        if (cert.epoch != env.epoch) {
            step.fault(env.sender, FaultKind::InvalidCertificate, "cert epoch differs", {raw});
            return;
        }
        if (!in_window(cert.epoch)) {
            if (!from_fetch) ++stats.dropped_out_of_window;
            if (cert.epoch <= delivered()) hint_commit(step, env.sender, cert.epoch);
            return;
        }
        state(cert.epoch);
        if (blocks.certified(cert.epoch, cert.proposer, cert.digest)) return;
        if (!blocks.cert_valid(cert)) {
            step.fault(env.sender, FaultKind::InvalidCertificate,
                       "certificate without a quorum of valid distinct SEENs", {raw});
            return;
        }
        join_upto(step, cert.epoch);
        adopt_cert(step, cert, raw);
    }

    // ---- binary agreement ------------------------------------------------------------

    void on_aba(Step& step, const Envelope& env, const Bytes& raw) {
        const Epoch e = env.epoch;
        auto bundle = decode_aba_bundle(env.body, cfg.limits);
        if (!bundle) {
            step.fault(env.sender, FaultKind::Malformed, "aba: " + bundle.error(), {raw});
            return;
        }
        if (!in_window(e)) {
            ++stats.dropped_out_of_window;
            if (e <= delivered()) hint_commit(step, env.sender, e);
            return;
        }
        for (const auto& m : bundle.value().messages) {
            if (m.proposer >= cfg.n) {
                step.fault(env.sender, FaultKind::Malformed, "aba: proposer out of range", {raw});
                return;
            }
        }
        join_upto(step, e);
        ensure_abas(e);
        if (!subset.open(e)) return;  // not voting in this epoch
        for (const auto& m : bundle.value().messages) {
            run_subset(step, e, subset.handle(e, env.sender, m));
            if (stats.halted) return;
        }
    }

    /// Signs and sends what the agreements produced (one bundle per instance
    /// step); a decision may complete the epoch.
    void run_subset(Step& step, Epoch e, EpochSubset::Progress&& progress) {
        state(e);
        for (auto& f : progress.faults) step.faults.push_back(std::move(f));
        for (auto& [j, messages] : progress.sends) {
            AbaBundle bundle;
            for (auto& m : messages) {
                // A filled slot is never signed again (the restored instance
                // does not produce a different payload for it).
                auto s = aba_slot(e, m);
                if (s && signer.filled(*s)) continue;
                bundle.messages.push_back(std::move(m));
            }
            if (bundle.messages.empty()) continue;
            if (auto env = sign(step, e, Kind::Aba, encode(bundle))) {
                remember(e, Kind::Aba, *env);
                broadcast(step, Kind::Aba, *env);
            }
        }
        if (progress.decisions == 0) return;
        stats.aba_instances += progress.decisions;
        stats.aba_rounds_total += progress.rounds_used;
        try_deliver(step);
    }

    // ---- output ------------------------------------------------------------------------

    Digest output_digest(Epoch e, const std::vector<std::pair<NodeId, Digest>>& list) const {
        crypto::Hasher h;
        h.field(std::string_view("tobd-output-v1")).raw(cfg.chain_id).u64(e).u64(list.size());
        for (const auto& [j, d] : list) h.u64(j).raw(d);
        return h.finish();
    }

    void try_deliver(Step& step) {
        while (!stats.halted) {
            Epoch e = delivered() + 1;
            auto it = epochs.find(e);
            if (it == epochs.end()) return;
            auto order = subset.outcome(e);
            if (!order) return;
            std::vector<std::pair<NodeId, Digest>> list;
            bool missing = false;
            for (NodeId j : *order) {
                const Certificate* c = blocks.cert(e, j);
                if (!c) {
                    missing = true;
                    blocks.fetch_cert(step, e, j, now);
                    continue;
                }
                if (!blocks.holds(c->digest)) {
                    missing = true;
                    blocks.fetch_block(step, e, *c, now);
                    continue;
                }
                list.push_back({j, c->digest});
            }
            if (missing) return;
            deliver(step, e, list);
        }
    }

    void deliver(Step& step, Epoch e, const std::vector<std::pair<NodeId, Digest>>& list) {
        std::vector<Request> ordered;
        Proof proof;
        for (const auto& [j, d] : list) {
            const auto* be = blocks.block(d);
            TOB_CHECK(be != nullptr, "every block of a delivered epoch is held");
            for (const auto& r : be->block.requests) ordered.push_back(r);
            proof.blocks.push_back(be->envelope);
        }
        Digest od = output_digest(e, list);
        EpochResult result = sm.apply_epoch(e, od, ordered);
        stats.delivered = e;
        if (auto mine = blocks.accepted(e, cfg.self)) {
            if (const auto* b = blocks.block(*mine)) pool.release(b->block.requests);
        }
        step.persist.push_back(
            DurableRecord{DurableRecord::Type::Proof, e, encode(FetchReply{proof.blocks})});
        proofs[e] = std::move(proof);
        while (!proofs.empty() && proofs.begin()->first + kProofHistory < e) {
            proofs.erase(proofs.begin());
        }
        pool.remove_committed(sm);
        CommitBody cb{od, result.state_digest, std::nullopt};
        step.committed.push_back(std::move(result));
        auto& votes = commits[e];
        Digest key = commit_key(cb);
        if (votes.mine && *votes.mine != key) {
            alarm(step, "applied epoch " + std::to_string(e) +
                            " differs from this node's earlier COMMIT: nondeterminism");
            return;
        }
        votes.mine = key;
        check_commit_conflicts(step, e);
        auto env = sign(step, e, Kind::Commit, encode(cb));
        if (env) {
            remember(e, Kind::Commit, *env);
            broadcast(step, Kind::Commit, *env);
            votes.by_body[key][cfg.self] = *env;
            votes.by_sender[cfg.self] = {key, *env};
            check_stable(e);
        }
    }

    // ---- COMMIT, stability, catch-up -----------------------------------------------------

    void check_commit_conflicts(Step& step, Epoch e) {
        auto& v = commits[e];
        std::size_t provable = 0;
        for (auto& [k, signers] : v.by_body) {
            if (signers.size() >= cfg.t + 1) {
                ++provable;
                if (v.mine && *v.mine != k) {
                    alarm(step, "t+1 COMMITs for epoch " + std::to_string(e) +
                                    " differ from this node's result: nondeterminism or more "
                                    "than t faults");
                    return;
                }
            }
        }
        if (provable > 1) {
            alarm(step, "two provable COMMIT tuples for epoch " + std::to_string(e));
        }
    }

    void check_stable(Epoch e) {
        auto& v = commits[e];
        if (v.stable || !v.mine) return;
        auto it = v.by_body.find(*v.mine);
        if (it != v.by_body.end() && it->second.size() >= q) v.stable = true;
    }

    void on_commit(Step& step, const Envelope& env, const Bytes& raw) {
        Epoch e = env.epoch;
        auto cb = decode_commit(env.body, cfg.limits);
        if (!cb) {
            fault(step, env.sender, FaultKind::Malformed, "commit: " + cb.error(), {raw});
            return;
        }
        auto& hint = commit_hint[env.sender];
        hint = std::max(hint, e);
        if (e + kProofHistory <= delivered() || e > delivered() + cfg.window + kProofHistory) {
            return;  // outside what we track; the hint above is enough
        }
        auto& v = commits[e];
        Digest key = commit_key(cb.value());
        auto prev = v.by_sender.find(env.sender);
        if (prev != v.by_sender.end()) {
            if (prev->second.first != key) {
                fault(step, env.sender, FaultKind::Equivocation, "two COMMITs for one epoch",
                      {prev->second.second, raw});
            }
            return;
        }
        v.by_sender[env.sender] = {key, raw};
        v.by_body[key][env.sender] = raw;
        step.persist.push_back(DurableRecord{DurableRecord::Type::Commit, e, raw});
        check_commit_conflicts(step, e);
        check_stable(e);
        if (e > delivered()) maybe_catch_up(step);
    }

    /// Tells a peer that is still working on epoch e (which we delivered) to catch up.
    void hint_commit(Step& step, NodeId peer, Epoch e) {
        if (peer == cfg.self) return;
        auto c = commits.find(e);
        if (c == commits.end() || !c->second.mine) return;
        auto& h = hinted[peer];
        if (h.first == e && now < h.second + cfg.repair_max_ms) return;
        h = {e, now};
        auto mine = c->second.by_sender.find(cfg.self);
        if (mine != c->second.by_sender.end())
            unicast(step, peer, Kind::Commit, mine->second.second);
    }

    void maybe_catch_up(Step& step) {
        if (now < catchup_next_ms) return;
        Epoch target = delivered() + 1;
        // A peer that committed `target` or later can prove it.
        std::optional<NodeId> ask;
        Epoch best = 0;
        for (auto& [peer, e] : commit_hint) {
            if (peer != cfg.self && e >= target && e > best) {
                best = e;
                ask = peer;
            }
        }
        if (!ask) return;
        // Let our own agreement finish first unless we are clearly behind.
        if (!behind_since || behind_since->first != target) behind_since = {{target, now}};
        auto st = epochs.find(target);
        bool own_progress = st != epochs.end() && subset.open(target);
        if (own_progress && best <= target && now < behind_since->second + cfg.repair_initial_ms) {
            return;
        }
        catchup_next_ms = now + cfg.repair_initial_ms;
        FetchRequest fr{FetchType::EpochProof, 0, Digest{}};
        Bytes env =
            seal_envelope(crypto, cfg.chain_id, cfg.self, target, Kind::FetchRequest, encode(fr));
        // Rotate among peers that can answer, so one silent peer cannot stall us.
        std::vector<NodeId> able;
        for (auto& [peer, e] : commit_hint) {
            if (peer != cfg.self && e >= target) able.push_back(peer);
        }
        NodeId to = able[(now / std::max<std::uint64_t>(1, cfg.repair_initial_ms)) % able.size()];
        unicast(step, to, Kind::FetchRequest, env);
    }

    void on_fetch_request(Step& step, const Envelope& env) {
        auto fr = decode_fetch_request(env.body, cfg.limits);
        if (!fr) {
            fault(step, env.sender, FaultKind::Malformed, "fetch: " + fr.error());
            return;
        }
        FetchReply reply;
        const auto& req = fr.value();
        switch (req.type) {
            case FetchType::Block: {
                if (auto b = blocks.block_envelope(req.digest)) reply.envelopes.push_back(*b);
                break;
            }
            case FetchType::Cert: {
                if (auto c = blocks.cert_envelope(env.epoch, req.proposer)) {
                    reply.envelopes.push_back(*c);
                }
                break;
            }
            case FetchType::Aba: {
                auto st = epochs.find(env.epoch);
                if (st != epochs.end()) {
                    for (const auto& [k, b] : st->second.republish) reply.envelopes.push_back(b);
                }
                break;
            }
            case FetchType::EpochProof: {
                auto p = proofs.find(env.epoch);
                auto c = commits.find(env.epoch);
                if (p == proofs.end() || c == commits.end() || !c->second.mine) break;
                auto signers = c->second.by_body.find(*c->second.mine);
                if (signers == c->second.by_body.end() || signers->second.size() < cfg.t + 1) {
                    break;  // not provable yet
                }
                for (auto& [s, e] : signers->second) reply.envelopes.push_back(e);
                for (auto& b : p->second.blocks) reply.envelopes.push_back(b);
                break;
            }
        }
        if (reply.envelopes.empty() || reply.envelopes.size() > cfg.limits.fetch_items_max) {
            return;
        }
        Bytes out = seal_envelope(crypto, cfg.chain_id, cfg.self, env.epoch, Kind::FetchReply,
                                  encode(reply));
        if (out.size() > cfg.limits.message_bytes_max) return;
        unicast(step, env.sender, Kind::FetchReply, out);
    }

    void on_fetch_reply(Step& step, const Envelope& env) {
        auto fr = decode_fetch_reply(env.body, cfg.limits);
        if (!fr) {
            fault(step, env.sender, FaultKind::Malformed, "fetch reply: " + fr.error());
            return;
        }
        std::vector<Envelope> commits_in;
        std::vector<std::pair<Envelope, Bytes>> blocks_in;
        for (const auto& raw : fr.value().envelopes) {
            auto inner = open_envelope(raw, crypto, cfg);
            if (!inner) continue;  // cannot blame: the relayer may be honest
            Envelope& ie = inner.value();
            switch (ie.kind) {
                case Kind::Commit:
                    if (ie.epoch == env.epoch) commits_in.push_back(ie);
                    dispatch(step, ie, raw, true);
                    break;
                case Kind::Block:
                    if (ie.epoch == env.epoch && env.epoch == delivered() + 1) {
                        blocks_in.push_back({ie, raw});
                    }
                    dispatch(step, ie, raw, true);
                    break;
                case Kind::Cert:
                case Kind::Aba:
                case Kind::Seen:
                    dispatch(step, ie, raw, true);
                    break;
                default:
                    break;
            }
            if (stats.halted) return;
        }
        if (env.epoch == delivered() + 1 && !commits_in.empty()) {
            apply_proof(step, env.epoch, commits_in, blocks_in);
        }
    }

    /// Catch-up: t+1 matching COMMITs vouch for (output_digest, state_digest); the
    /// blocks must hash to the output digest in delivery order.
    void apply_proof(Step& step, Epoch e, const std::vector<Envelope>& commit_envs,
                     const std::vector<std::pair<Envelope, Bytes>>& block_envs) {
        std::map<Digest, std::set<NodeId>> votes;
        std::map<Digest, CommitBody> bodies;
        for (const auto& ce : commit_envs) {
            auto cb = decode_commit(ce.body, cfg.limits);
            if (!cb) continue;
            Digest k = commit_key(cb.value());
            votes[k].insert(ce.sender);
            bodies[k] = cb.value();
        }
        const CommitBody* tuple = nullptr;
        for (auto& [k, s] : votes) {
            if (s.size() >= cfg.t + 1) tuple = &bodies[k];
        }
        if (!tuple) return;
        std::map<NodeId, std::pair<Digest, const Envelope*>> by_proposer;
        for (const auto& [be, raw] : block_envs) {
            by_proposer[be.sender] = {digest_of(be.body), &be};
        }
        std::vector<std::pair<NodeId, Digest>> list;
        std::vector<Request> ordered;
        for (std::uint32_t k = 0; k < cfg.n; ++k) {
            NodeId j = static_cast<NodeId>((e + k) % cfg.n);
            auto it = by_proposer.find(j);
            if (it == by_proposer.end()) continue;
            list.push_back({j, it->second.first});
        }
        if (output_digest(e, list) != tuple->output_digest) return;  // incomplete or bogus reply
        for (const auto& [j, d] : list) {
            auto b = decode_block(by_proposer.at(j).second->body, cfg.limits);
            if (!b) return;
            for (auto& r : b.value().requests) ordered.push_back(std::move(r));
        }
        EpochResult result = sm.apply_epoch(e, tuple->output_digest, ordered);
        if (result.state_digest != tuple->state_digest) {
            stats.delivered = e;
            alarm(step, "catch-up of epoch " + std::to_string(e) +
                            ": state digest differs from t+1 COMMITs — nondeterminism or more "
                            "than t faults; halting");
            return;
        }
        stats.delivered = e;
        Proof proof;
        for (const auto& [j, d] : list) {
            const auto& [dd, envp] = by_proposer.at(j);
            for (const auto& [be, raw] : block_envs) {
                if (&be == envp) proof.blocks.push_back(raw);
            }
        }
        step.persist.push_back(
            DurableRecord{DurableRecord::Type::Proof, e, encode(FetchReply{proof.blocks})});
        proofs[e] = std::move(proof);
        auto& v = commits[e];
        v.mine = commit_key(*tuple);
        step.committed.push_back(std::move(result));
        pool.remove_committed(sm);
        auto env = sign(step, e, Kind::Commit, encode(*tuple));
        if (env) {
            remember(e, Kind::Commit, *env);
            broadcast(step, Kind::Commit, *env);
            v.by_body[*v.mine][cfg.self] = *env;
            v.by_sender[cfg.self] = {*v.mine, *env};
        }
        check_stable(e);
        catchup_next_ms = 0;
        try_deliver(step);
        maybe_catch_up(step);
    }

    // ---- dispatch, tick, prune ---------------------------------------------------------------

    void dispatch(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch) {
        switch (env.kind) {
            case Kind::Block:
                on_block(step, env, raw, from_fetch);
                break;
            case Kind::Seen:
                on_seen(step, env, raw);
                break;
            case Kind::Cert:
                on_cert(step, env, raw, from_fetch);
                break;
            case Kind::Aba:
                on_aba(step, env, raw);
                break;
            case Kind::Commit:
                on_commit(step, env, raw);
                break;
            case Kind::Requests:
                on_requests(step, env, raw);
                break;
            case Kind::FetchRequest:
                if (!from_fetch) on_fetch_request(step, env);
                break;
            case Kind::FetchReply:
                if (!from_fetch) on_fetch_reply(step, env);
                break;
        }
    }

    void on_requests(Step& step, const Envelope& env, const Bytes& raw) {
        auto batch = decode_request_batch(env.body, cfg.limits);
        if (!batch) {
            fault(step, env.sender, FaultKind::Malformed, "requests: " + batch.error(), {raw});
            return;
        }
        for (const auto& r : batch.value().requests) {
            Bytes enc = encode(r);
            Digest d = digest_of(enc);
            if (!pool.valid(r, d)) {
                fault(step, env.sender, FaultKind::InvalidSignature,
                      "flooded a request with an invalid client signature", {raw});
                continue;
            }
            pool_add(r, d, enc.size(), /*local=*/false);
        }
    }

    void flush_flood(Step& step) {
        auto batch = pool.take_flood();
        if (!batch) return;
        Bytes env =
            seal_envelope(crypto, cfg.chain_id, cfg.self, 0, Kind::Requests, encode(*batch));
        broadcast(step, Kind::Requests, env);
    }

    /// The join rule for new work: a block is due (full, or the block timer ran)
    /// and the window has room for the next epoch.
    void cut_blocks(Step& step) {
        if (!pool.note_work(now)) return;
        Epoch next = std::max(proposed_upto, delivered()) + 1;
        if (next > delivered() + cfg.window) return;
        if (pool.block_due(now, delivered())) join_upto(step, next);
    }

    void republish(Step& step) {
        for (auto& [e, st] : epochs) {
            auto c = commits.find(e);
            bool stable = c != commits.end() && c->second.stable;
            if (stable || st.republish.empty() || now < st.next_republish_ms) continue;
            for (const auto& [kind, env] : st.republish) broadcast(step, kind, env);
            st.backoff_ms = std::min(cfg.repair_max_ms, st.backoff_ms * 2);
            st.next_republish_ms = now + st.backoff_ms;
        }
    }

    void prune() {
        // Nothing is signed below the delivered epoch but its COMMIT and late ABA
        // messages; a margin of W epochs keeps the sign-log bounded by the window.
        if (delivered() > cfg.window) signer.prune_through(delivered() - cfg.window);
        // Epoch states are kept while not stable (re-publication) and not too old.
        auto retire = [this](Epoch e) {
            auto c = commits.find(e);
            bool stable = c != commits.end() && c->second.stable;
            return e <= delivered() && (stable || e + 4 * cfg.window < delivered());
        };
        for (auto it = epochs.begin(); it != epochs.end();) {
            it = retire(it->first) ? epochs.erase(it) : std::next(it);
        }
        // Blocks of pruned epochs go too (the proof history keeps its own copies).
        blocks.prune(retire, [this](Epoch e) { return e > delivered() || epochs.count(e) != 0; });
        subset.prune(retire);
        for (auto it = commits.begin(); it != commits.end();) {
            if (it->first + kProofHistory < delivered()) {
                it = commits.erase(it);
            } else {
                ++it;
            }
        }
    }

    /// Bookkeeping at the end of every input: the stats the shell reads.
    void finish(const Step& step) {
        stats.faults += step.faults.size();
        stats.pool = pool.size();
        stats.highest_joined = proposed_upto;
    }

    Step tick(std::uint64_t t_ms) {
        now = std::max(now, t_ms);
        Step step;
        if (stats.halted) return step;
        prune();  // only here: handlers hold references into `epochs`
        flush_flood(step);
        cut_blocks(step);
        republish(step);
        // Re-request what output is waiting for.
        try_deliver(step);
        maybe_catch_up(step);
        return step;
    }
};

// ---- Replica ----------------------------------------------------------------------------

Replica::Replica(const ReplicaConfig& config, const CryptoSuite& crypto, StateMachine& state)
    : impl_(std::make_unique<Impl>(config, crypto, state, stats_)) {}

Replica::~Replica() = default;

Step Replica::handle_envelope(const Envelope& envelope, std::uint64_t now_ms) {
    Step step;
    auto& im = *impl_;
    im.now = std::max(im.now, now_ms);
    if (stats_.halted) return step;
    if (envelope.sender == im.cfg.self || envelope.sender >= im.cfg.n) return step;
    Bytes raw = encode(envelope);
    im.dispatch(step, envelope, raw, false);
    im.finish(step);
    return step;
}

Step Replica::handle_request(const Request& request, std::uint64_t now_ms) {
    Step step;
    auto& im = *impl_;
    im.now = std::max(im.now, now_ms);
    if (stats_.halted) return step;
    Bytes enc = encode(request);
    Digest d = digest_of(enc);
    if (request.ops.size() > im.cfg.limits.request_ops_max || !im.pool.valid(request, d)) {
        return step;  // the shell answers the client with an error
    }
    if (im.sm.committed(request.client, request.nonce)) return step;
    bool fresh = !im.pool.contains(request.client, request.nonce);
    im.pool_add(request, d, enc.size(), /*local=*/true);
    if (fresh && im.pool.contains(request.client, request.nonce)) {
        if (im.pool.queue_flood(request)) im.flush_flood(step);
    }
    if (im.pool.count_local()) im.cut_blocks(step);
    im.finish(step);
    return step;
}

Step Replica::tick(std::uint64_t now_ms) {
    Step step = impl_->tick(now_ms);
    impl_->finish(step);
    return step;
}

Step Replica::recover(const Recovery& recovery, std::uint64_t now_ms) {
    Step step;
    auto& im = *impl_;
    im.now = now_ms;
    im.signer.raise_mark(recovery.high_water);
    im.signer.set_voting(recovery.sign_log_ok);
    stats_.voting = recovery.sign_log_ok;
    std::map<Epoch, std::map<NodeId, std::vector<AbaMessage>>> aba_sent;
    for (const auto& rec : recovery.records) {
        switch (rec.type) {
            case DurableRecord::Type::HighWater:
                im.signer.raise_mark(rec.epoch);
                break;
            case DurableRecord::Type::Block:
                im.blocks.restore_block(rec.bytes);
                break;
            case DurableRecord::Type::Proof: {
                auto fr = decode_fetch_reply(rec.bytes, im.cfg.limits);
                if (!fr) break;
                im.proofs[rec.epoch] = Impl::Proof{std::move(fr.value().envelopes)};
                while (im.proofs.size() > Impl::kProofHistory) im.proofs.erase(im.proofs.begin());
                break;
            }
            case DurableRecord::Type::Commit: {
                auto env = decode_envelope(rec.bytes, im.cfg.limits);
                if (!env) break;
                auto cb = decode_commit(env.value().body, im.cfg.limits);
                if (!cb) break;
                auto& v = im.commits[env.value().epoch];
                Digest k = commit_key(cb.value());
                if (v.by_sender.count(env.value().sender)) break;
                v.by_sender[env.value().sender] = {k, rec.bytes};
                v.by_body[k][env.value().sender] = rec.bytes;
                auto& hint = im.commit_hint[env.value().sender];
                hint = std::max(hint, env.value().epoch);
                break;
            }
            case DurableRecord::Type::Cert: {
                auto c = decode_certificate(rec.bytes, im.cfg.limits);
                if (!c || c.value().epoch <= stats_.delivered) break;
                im.state(c.value().epoch);
                im.blocks.restore_cert(c.value());
                break;
            }
            case DurableRecord::Type::Signed: {
                auto envd = decode_envelope(rec.bytes, im.cfg.limits);
                if (!envd) break;
                im.signer.adopt(rec.bytes);
                const Envelope& env = envd.value();
                Epoch e = env.epoch;
                Digest bd = digest_of(env.body);
                switch (env.kind) {
                    case Kind::Block: {
                        im.proposed_upto = std::max(im.proposed_upto, e);
                        if (!im.blocks.holds(bd)) im.blocks.restore_block(rec.bytes);
                        if (e > stats_.delivered) {
                            auto& st = im.state(e);
                            im.blocks.restore_own_block(e, bd);
                            st.republish.push_back({Kind::Block, rec.bytes});
                            auto b = decode_block(env.body, im.cfg.limits);
                            if (b) {
                                im.pool.proposed(b.value().requests, im.now);
                            }
                        }
                        break;
                    }
                    case Kind::Seen: {
                        auto sb = decode_seen(env.body, im.cfg.limits);
                        if (!sb) break;
                        if (e > stats_.delivered) {
                            im.state(e).republish.push_back({Kind::Seen, rec.bytes});
                            im.blocks.restore_own_seen(e, sb.value(), env.sig, rec.bytes);
                        }
                        break;
                    }
                    case Kind::Aba: {
                        auto bundle = decode_aba_bundle(env.body, im.cfg.limits);
                        if (!bundle) break;
                        for (const auto& m : bundle.value().messages) {
                            aba_sent[e][m.proposer].push_back(m);
                        }
                        if (e > stats_.delivered)
                            im.state(e).republish.push_back({Kind::Aba, rec.bytes});
                        break;
                    }
                    case Kind::Commit: {
                        auto cb = decode_commit(env.body, im.cfg.limits);
                        if (!cb) break;
                        auto& v = im.commits[e];
                        v.mine = commit_key(cb.value());
                        v.by_body[*v.mine][im.cfg.self] = rec.bytes;
                        v.by_sender[im.cfg.self] = {*v.mine, rec.bytes};
                        if (e + im.cfg.window > stats_.delivered) {
                            im.state(e).republish.push_back({Kind::Commit, rec.bytes});
                        }
                        break;
                    }
                    default:
                        break;
                }
                break;
            }
        }
    }
    // A lost sign-log with an intact key directory: sign only above the mark.
    im.signer.finish_recovery();
    // Rebuild the ABA instances of open epochs from what this node signed.
    for (auto& [e, st] : im.epochs) {
        if (e <= stats_.delivered) continue;
        im.ensure_abas(e);
        im.subset.restore(e, aba_sent[e]);
    }
    // A crash between signing our block and signing its SEEN (a torn step) leaves
    // the block without our SEEN: sign it now (the block itself is durable).
    std::vector<std::pair<Epoch, Digest>> own_unseen;
    for (auto& [e, st] : im.epochs) {
        if (e <= stats_.delivered) continue;
        auto mine = im.blocks.accepted(e, im.cfg.self);
        if (mine && !im.signer.filled(Slot{SlotKind::Seen, e, im.cfg.self, 0, 0})) {
            own_unseen.push_back({e, *mine});
        }
    }
    for (auto& [e, d] : own_unseen) im.send_seen(step, e, im.cfg.self, d);
    for (auto& [e, v] : im.commits) im.check_stable(e);
    std::vector<Epoch> open;
    for (auto& [e, st] : im.epochs) {
        if (e > stats_.delivered) open.push_back(e);
    }
    for (Epoch e : open) {
        for (NodeId j = 0; j < im.cfg.n; ++j) {
            if (im.blocks.cert(e, j)) im.run_subset(step, e, im.subset.input_one(e, j));
        }
    }
    im.pool.remove_committed(im.sm);
    im.finish(step);
    return step;
}

}  // namespace tob::consensus
