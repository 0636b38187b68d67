// Replica: routing inputs to the sub-protocols, the window and join rule,
// delivery, repair and Step assembly. The rules are in consensus/replica.h.

#include "consensus/replica.h"

#include <algorithm>

#include "consensus/check.h"
#include "consensus/codec.h"
#include "consensus/replica_impl.h"

namespace tob::consensus {

namespace {
constexpr const char* kChannelRefusal = "agreement message not from its sender's connection";
}

bool is_channel_refusal(const std::string& error) { return error == kChannelRefusal; }

Decoded<Envelope> open_envelope(ByteView bytes, const CryptoSuite& crypto,
                                const ReplicaConfig& config, NodeId channel, Digest* body_digest) {
    if (bytes.size() > config.limits.message_bytes_max) {
        return Decoded<Envelope>::fail("envelope larger than message_bytes_max");
    }
    auto env = decode_envelope(bytes, config.limits);
    if (!env) return env;
    const Envelope& e = env.value();
    if (e.chain_id != config.chain_id) return Decoded<Envelope>::fail("foreign chain id");
    if (e.sender >= config.n) return Decoded<Envelope>::fail("sender is not a member");
    if (channel_authenticated(e.kind)) {
        // One encoding per message: a signature field that is not zero is refused.
        if (e.sig != Signature{})
            return Decoded<Envelope>::fail("agreement message with a signature");
        if (channel != e.sender) return Decoded<Envelope>::fail(kChannelRefusal);
        if (body_digest) *body_digest = digest_of(e.body);
        return env;
    }
    if (verified_on_use(e.kind) && channel == e.sender) {
        // Its sender's own connection: the signature is checked only if the
        // statement leaves this node (in a certificate; consensus/messages.h).
        if (body_digest) *body_digest = digest_of(e.body);
        return env;
    }
    const Digest d = digest_of(e.body);
    if (!crypto.verify(e.sender, kEnvelopeTag,
                       envelope_sign_payload_of(e.chain_id, e.sender, e.epoch, e.kind, d), e.sig)) {
        return Decoded<Envelope>::fail("bad envelope signature");
    }
    if (body_digest) *body_digest = d;
    return env;
}

namespace {

CatchUpParams catch_up_params(const ReplicaConfig& c) {
    CatchUpParams p;
    p.n = c.n;
    p.t = c.t;
    p.self = c.self;
    p.chain_id = c.chain_id;
    p.limits = c.limits;
    p.window = c.window;
    p.stable_quorum = c.unsafe_cert_quorum ? c.unsafe_cert_quorum : quorum(c.n, c.t);
    p.repair_initial_ms = c.repair_initial_ms;
    p.repair_max_ms = c.repair_max_ms;
    p.proof_history_epochs = std::max<Epoch>(1, c.proof_history_epochs);
    p.commit_heartbeat_ms = c.commit_heartbeat_ms;
    return p;
}

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

TransferParams transfer_params(const ReplicaConfig& c) {
    TransferParams p;
    p.n = c.n;
    p.t = c.t;
    p.self = c.self;
    p.chain_id = c.chain_id;
    p.limits = c.limits;
    p.checkpoint_interval = c.checkpoint_interval;
    p.retention = c.checkpoint_retention;
    p.repair_initial_ms = c.repair_initial_ms;
    p.repair_max_ms = c.repair_max_ms;
    p.chunk_bytes = std::max<std::uint64_t>(1, c.snapshot_chunk_bytes);
    p.unsafe_trust_chunks = c.unsafe_trust_snapshot_chunks;
    return p;
}

PoolParams pool_params(const ReplicaConfig& c) {
    PoolParams p;
    p.chain_id = c.chain_id;
    p.limits = c.limits;
    p.aged_epochs = c.aged_epochs;
    p.pool_requests_max = c.pool_requests_max;
    p.pool_bytes_max = c.pool_bytes_max;
    p.block_timer_ms = c.block_timer_ms;
    p.verified_epochs = Epoch{c.aged_epochs} + 2 * Epoch{c.window};
    return p;
}

}  // namespace

Replica::Impl::Impl(const ReplicaConfig& c, const CryptoSuite& cr, StateMachine& s,
                    ReplicaStats& st, const ProofArchive* archive, SnapshotStore* snapshots)
    : cfg(c),
      crypto(cr),
      sm(s),
      stats(st),
      signer(c.self, c.chain_id, c.limits, cr),
      pool(pool_params(c), cr),
      blocks(broadcast_params(c), cr),
      subset(SubsetParams{c.n, c.t, c.self, c.chain_id, c.max_rounds_ahead}, cr),
      catchup(catch_up_params(c), cr, archive),
      transfer(transfer_params(c), cr, snapshots) {
    stats.delivered = sm.last_applied();
    pool.delivered(stats.delivered);
}

Replica::Impl::EpochState& Replica::Impl::state(Epoch e) {
    auto [it, fresh] = epochs.try_emplace(e);
    if (fresh) {
        it->second.backoff_ms = cfg.repair_initial_ms;
        it->second.next_republish_ms = now + cfg.repair_initial_ms;
    }
    return it->second;
}

void Replica::Impl::remember(Epoch e, Kind kind, const Bytes& env) {
    auto& st = state(e);
    st.republish.push_back({kind, env});
}

Admission Replica::Impl::pool_add(const Request& r, const Digest& d, std::size_t bytes, bool local,
                                  Request* movable) {
    return pool.add(r, d, bytes, local, delivered(), now, sm, movable);
}

void Replica::Impl::join_upto(Step& step, Epoch e) {
    e = std::min<Epoch>(e, window_end());
    for (Epoch x = std::max<Epoch>(proposed_upto, delivered()) + 1; x <= e; ++x) {
        if (!can_sign(x)) continue;
        propose(step, x);
        seen_accepted(step, x);
    }
}

void Replica::Impl::heard_from(Step& step, Epoch e, NodeId sender) {
    if (sender == cfg.self || sender >= cfg.n || !in_window(e)) return;
    if (!heard[e].insert(sender).second || joined(e)) return;
    std::set<NodeId> speakers;
    for (auto it = heard.rbegin(); it != heard.rend(); ++it) {
        if (it->first <= delivered()) break;
        speakers.insert(it->second.begin(), it->second.end());
        if (speakers.size() >= cfg.t + 1) {
            join_upto(step, it->first);
            return;
        }
    }
}

void Replica::Impl::seen_accepted(Step& step, Epoch e) {
    for (NodeId j = 0; j < cfg.n; ++j) {
        if (j == cfg.self || signer.filled(Slot{SlotKind::Seen, e, j, 0, 0})) continue;
        if (auto d = blocks.accepted(e, j)) send_seen(step, e, j, *d);
    }
}

void Replica::Impl::ensure_abas(Epoch e) {
    state(e);
    if (!subset.open(e) && can_sign(e)) subset.open_epoch(e);
}

void Replica::Impl::on_block(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch,
                             const Precomputed& pre) {
    const Epoch e = env.epoch;
    const NodeId j = env.sender;
    auto block = blocks.parse(step, env, raw, pre.block);
    if (!block) return;
    const Digest d = pre.body_digest ? *pre.body_digest : digest_of(env.body);
    if (blocks.holds(d)) return;  // already have it
    if (!in_window(e) && !blocks.certified(e, j, d)) {
        if (!from_fetch) ++stats.dropped_out_of_window;
        if (e <= delivered()) hint_commit(step, j, e);
        return;
    }
    RequestDigests digests;
    const bool known = pre.requests && pre.requests->size() == block->requests.size();
    for (std::size_t i = 0; i < block->requests.size(); ++i) {
        const Request& r = block->requests[i];
        auto [rd, size] = known ? (*pre.requests)[i] : request_digest(r);
        if (!pool.valid(r, rd)) {
            step.fault(j, FaultKind::InvalidBlock, "block holds an invalid request", {raw});
            return;
        }
        digests.push_back({rd, size});
    }
    state(e);
    const auto accepted = blocks.accept(step, env, raw, std::move(*block), d, in_window(e));
    // Only after the equivocation check: a second block of (e, j) brings nothing
    // into the pool (issue 11, finding 7), unless a certificate names it.
    if (const auto* stored = blocks.block(d); stored != nullptr) {
        for (std::size_t i = 0; i < stored->block.requests.size(); ++i) {
            pool_add(stored->block.requests[i], digests[i].first, digests[i].second,
                     /*local=*/false);
        }
        if (stored->request_digests.empty() && !digests.empty()) {
            std::vector<Digest> rds;
            rds.reserve(digests.size());
            for (const auto& [rd, size] : digests) rds.push_back(rd);
            blocks.note_request_digests(d, std::move(rds));
        }
    }
    if (accepted == BlockBroadcast::Accept::First) {
        // Not relayed: the SEEN that follows announces its digest, and a member
        // that lacks a certified block pulls it from the certificate's signers
        // (adopt_cert, try_deliver; docs/protocol.md, "Flood").
        // SEEN only in an epoch this node joined (the join rule): otherwise one
        // member's empty block for a far epoch would get certified and pull every
        // honest node into it. seen_accepted() SEENs it on joining — heard_from()
        // may have just done so, and a second SEEN would be the same bytes again.
        // The block is its proposer's vote for d (docs/protocol.md, "Certify"):
        // a proposer signs no SEEN for its own block.
        if (j != cfg.self) pool.in_block(e, digests);  // in flight elsewhere: not work
        heard_from(step, e, j);
        if (j != cfg.self && joined(e) && !signer.filled(Slot{SlotKind::Seen, e, j, 0, 0})) {
            send_seen(step, e, j, d);
        }
        if (auto cert = blocks.count_block(step, e, j, d, env.sig, raw)) {
            adopt_cert(step, *cert, std::nullopt);
        }
    }
    try_deliver(step);
}

void Replica::Impl::send_seen(Step& step, Epoch e, NodeId j, const Digest& d) {
    SeenBody sb{j, d};
    auto env = sign(step, e, Kind::Seen, encode(sb));
    if (!env) return;
    remember(e, Kind::Seen, *env);
    broadcast(step, Kind::Seen, *env);
    auto opened = decode_envelope(*env, cfg.limits);
    TOB_CHECK(opened, "this node's own SEEN decodes");
    on_seen(step, opened.value(), *env);
}

void Replica::Impl::on_seen(Step& step, const Envelope& env, const Bytes& raw) {
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
    state(e);
    heard_from(step, e, env.sender);
    auto cert = blocks.count_seen(step, e, env.sender, sb.value(), env.sig, raw);
    if (cert) adopt_cert(step, *cert, std::nullopt);
}

void Replica::Impl::adopt_cert(Step& step, const Certificate& c, std::optional<Bytes> relay) {
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
    join_upto(step, c.epoch);  // a certificate: q SEENs, so honest nodes are in c.epoch
    // A certificate this node formed is not broadcast now: every member receives
    // the same SEENs and forms it too. Repair re-publishes it with the rest of the
    // epoch for a member that missed SEENs (docs/decisions.md), sealed then, once
    // its signatures are checked (some SEENs were counted unchecked:
    // BlockBroadcast::servable_cert). One received from a peer was needed by
    // someone: it is relayed once.
    if (relay) {
        remember(c.epoch, Kind::Cert, *relay);
        broadcast(step, Kind::Cert, *relay);
    } else {
        state(c.epoch).formed_certs.insert(c.proposer);
    }
    ensure_abas(c.epoch);
    run_subset(step, c.epoch, subset.input_one(c.epoch, c.proposer));
    if (!blocks.holds(c.digest)) blocks.fetch_block(step, c.epoch, c, now);
    try_deliver(step);
}

void Replica::Impl::on_cert(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch) {
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
    adopt_cert(step, cert, raw);
}

void Replica::Impl::on_aba(Step& step, const Envelope& env, const Bytes& raw) {
    const Epoch e = env.epoch;
    auto bundle = decode_aba_bundle(env.body, cfg.limits);
    if (!bundle) {
        step.fault(env.sender, FaultKind::Malformed, "aba: " + bundle.error(), {raw});
        return;
    }
    // A delivered epoch whose agreements a restart left undecided (the crash lost
    // the last agreement messages of the step that applied it: resume()) still
    // takes these messages, so that peers that need its votes can finish.
    const bool late = e <= delivered() && rejoined.count(e) && subset.undecided(e) && can_sign(e);
    if (!in_window(e) && !late) {
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
    if (late) {
        hint_commit(step, env.sender, e);
    } else {
        heard_from(step, e, env.sender);
        ensure_abas(e);
        if (!subset.open(e)) return;  // not voting in this epoch
    }
    for (const auto& m : bundle.value().messages) {
        run_subset(step, e, subset.handle(e, env.sender, m));
        if (stats.halted) return;
    }
}

void Replica::Impl::run_subset(Step& step, Epoch e, EpochSubset::Progress&& progress) {
    state(e);
    for (auto& f : progress.faults) step.add_fault(std::move(f));
    for (auto& [j, messages] : progress.sends) {
        auto& out = aba_out[e];
        for (auto& m : messages) out.push_back(std::move(m));
    }
    if (progress.decisions == 0) return;
    stats.aba_instances += progress.decisions;
    stats.aba_rounds_total += progress.rounds_used;
    try_deliver(step);
}

void Replica::Impl::flush_aba(Step& step) {
    // Everything the instances produced during one input leaves under one signature
    // per epoch: the ABA traffic of an epoch is many small messages, produced a few
    // at a time, and a signature per instance step cost more than the rest of the
    // agreement (docs/performance.md).
    //
    // TERMs alone are held: a decision's TERM only helps a peer that has not
    // decided by its own AUX quorum, and a bundle of TERMs alone cost a pass a
    // synced write and a frame to every peer (about a quarter of the agreement
    // bundles at low load). They leave with the next step that signs anything
    // (its write is synced anyway; the epoch's delivery signs its COMMIT, so the
    // last decisions' TERMs leave with it) or at the next tick, whichever is first:
    // a delay of at most one tick, which an asynchronous network may add anyway.
    const bool rides = signed_since_flush || terms_due;
    signed_since_flush = false;
    terms_due = false;
    const bool only_terms = std::all_of(aba_out.begin(), aba_out.end(), [](const auto& q) {
        return std::all_of(q.second.begin(), q.second.end(),
                           [](const AbaMessage& m) { return m.type == AbaType::Term; });
    });
    if (only_terms && !rides) return;
    auto queued = std::move(aba_out);
    aba_out.clear();
    for (auto& [epoch, messages] : queued) {
        const Epoch e = epoch;  // a structured binding is not captured by clang 14
        AbaBundle bundle;
        auto send = [&] {
            if (bundle.messages.empty()) return;
            if (auto env = sign(step, e, Kind::Aba, encode(bundle))) {
                remember(e, Kind::Aba, *env);
                broadcast(step, Kind::Aba, *env);
            }
            bundle.messages.clear();
        };
        for (auto& m : messages) {
            // A filled slot is never signed again (the restored instance does not
            // produce a different payload for it).
            auto s = aba_slot(e, m);
            if (s && signer.filled(*s)) continue;
            bundle.messages.push_back(std::move(m));
            if (bundle.messages.size() >= cfg.limits.aba_bundle_max) send();
        }
        send();
    }
    signed_since_flush = false;  // the bundles just signed belong to this step, not the next
}

void Replica::Impl::dispatch(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch,
                             const Precomputed& pre) {
    switch (env.kind) {
        case Kind::Block:
            on_block(step, env, raw, from_fetch, pre);
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
            on_requests(step, env, raw, pre);
            break;
        case Kind::FetchRequest:
            if (!from_fetch) on_fetch_request(step, env);
            break;
        case Kind::FetchReply:
            if (!from_fetch) on_fetch_reply(step, env);
            break;
        case Kind::SnapshotRequest:
            if (!from_fetch) transfer.on_request(step, env, now);
            break;
        case Kind::SnapshotReply:
            if (!from_fetch) on_snapshot_reply(step, env);
            break;
    }
}

void Replica::Impl::on_requests(Step& step, const Envelope& env, const Bytes& raw,
                                const Precomputed& pre) {
    std::optional<RequestBatch> batch;
    if (pre.batch) {
        batch = std::move(*pre.batch);  // decoded by the shell (Precomputed)
    } else {
        auto decoded = decode_request_batch(env.body, cfg.limits);
        if (!decoded) {
            step.fault(env.sender, FaultKind::Malformed, "requests: " + decoded.error(), {raw});
            return;
        }
        batch = std::move(decoded.value());
    }
    // One fault per envelope, however many of its requests are bad: the
    // evidence is the envelope, once (issue 11, finding 1).
    std::size_t invalid = 0;
    std::size_t pooled = 0;            // requests of the flood the pool holds
    auto& requests = batch->requests;  // each moved into the pool if it keeps it
    const bool known = pre.requests && pre.requests->size() == requests.size();
    for (std::size_t i = 0; i < requests.size(); ++i) {
        Request& r = requests[i];
        // A copy of a request this pool holds (same client, nonce and signature)
        // costs no encoding and hashing: every honest node floods what its
        // clients send, so each request arrives once per member (issue 11,
        // pool_flood: a client's 1 MiB requests kept the loop busy hashing copies).
        if (pool.holds_copy(r)) {
            ++pooled;
            continue;
        }
        const auto [d, size] = known ? (*pre.requests)[i] : request_digest(r);
        if (!pool.valid(r, d)) {
            ++invalid;
            continue;
        }
        const Admission a = pool_add(r, d, size, /*local=*/false, &r);
        if (a == Admission::Added || a == Admission::Known) ++pooled;
    }
    if (invalid > 0) {
        step.fault(env.sender, FaultKind::InvalidSignature,
                   "flooded " + std::to_string(invalid) + " of " + std::to_string(requests.size()) +
                       " requests with a foreign chain id or an invalid client signature",
                   {raw});
    }
    // The flood may come after a peer's block for the next epoch (replica_propose.cpp).
    if (pooled > 0) join_next_for_flood(step);
}

void Replica::Impl::prune() {
    // Nothing is signed below the delivered epoch but its COMMIT and late ABA
    // messages; a margin of W epochs keeps the sign-log bounded by the window.
    if (delivered() > cfg.window) signer.prune_through(delivered() - cfg.window);
    // Epoch states are kept while not stable (re-publication) and not too old.
    auto retire = [this](Epoch e) {
        return e <= delivered() &&
               (catchup.stable(e) || epoch_add(e, 4 * Epoch{cfg.window}) < delivered());
    };
    for (auto it = epochs.begin(); it != epochs.end();) {
        it = retire(it->first) ? epochs.erase(it) : std::next(it);
    }
    // Blocks of pruned epochs go too (the proof history keeps its own copies).
    blocks.prune(retire, [this](Epoch e) { return e > delivered() || epochs.count(e) != 0; });
    subset.prune(retire);
    std::erase_if(rejoined, retire);
    catchup.prune(delivered());
    heard.erase(heard.begin(), heard.upper_bound(delivered()));
}

void Replica::Impl::finish(Step& step) {
    if (!batching) flush_aba(step);
    stats.faults += step.faults.size() + step.faults_dropped;
    stats.pool = pool.size();
    stats.highest_joined = proposed_upto;
    stats.archive_proofs_served = catchup.archive_served();
    stats.peers_epoch = catchup.peers_epoch();
    stats.checkpoint_servable = transfer.newest_servable().value_or(0);
    stats.pruned_below = transfer.pruned_below();
    stats.snapshot = transfer.progress();
    stats.snapshot_chunks_rejected = transfer.chunks_rejected();
    stats.snapshot_chunks_served = transfer.chunks_served();
    stats.snapshots_installed = transfer.installed();
}

Step Replica::Impl::tick(std::uint64_t t_ms) {
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
    catchup.heartbeat(step, now);
    checkpoints(step);
    terms_due = true;  // held TERMs leave with this tick's step (or its batch's)
    return step;
}

// ---- Replica ----------------------------------------------------------------------------

Replica::Replica(const ReplicaConfig& config, const CryptoSuite& crypto, StateMachine& state,
                 const ProofArchive* archive, SnapshotStore* snapshots)
    : impl_(std::make_unique<Impl>(config, crypto, state, stats_, archive, snapshots)) {}

Replica::~Replica() = default;

Step Replica::handle_envelope(const Envelope& envelope, std::uint64_t now_ms, Precomputed pre) {
    Step step;
    auto& im = *impl_;
    im.now = std::max(im.now, now_ms);
    if (stats_.halted) return step;
    if (envelope.sender == im.cfg.self || envelope.sender >= im.cfg.n) return step;
    // An idle node that already has work (requests it learnt by flood) and sees a
    // peer's block for the next epoch joins that epoch now, not when its block
    // timer runs out (request_pool.h). The block's own requests do not count (one
    // member's block alone must not pull a node into an epoch: the join rule), and
    // a flood alone does not either: the requester's block may still be waiting
    // for its previous epoch.
    const bool join_for_work = envelope.kind == Kind::Block &&
                               envelope.epoch == epoch_add(im.delivered(), 1) && im.idle() &&
                               im.pool.has_work();
    Bytes raw = encode(envelope);
    im.dispatch(step, envelope, raw, false, pre);
    if (join_for_work && !stats_.halted) im.join_next_for_work(step);
    im.finish(step);
    return step;
}

Step Replica::handle_request(const Request& request, std::uint64_t now_ms, Admission* admission) {
    Step step;
    auto& im = *impl_;
    im.now = std::max(im.now, now_ms);
    Admission dummy = Admission::Invalid;
    Admission& out = admission ? *admission : dummy;
    out = Admission::Invalid;
    if (stats_.halted) return step;
    Bytes enc = encode(request);
    Digest d = digest_of(enc);
    if (request.ops.size() > im.cfg.limits.request_ops_max || !im.pool.valid(request, d)) {
        return step;  // the shell answers the client with an error
    }
    out = im.pool_add(request, d, enc.size(), /*local=*/true);
    if (out == Admission::Added) {
        if (im.pool.queue_flood(request, enc.size())) im.flush_flood(step);
    }
    // A block's worth arrived, or the node is idle (a lone request is proposed at
    // once rather than at the next tick; its flood goes first, so that the peers
    // hold it as work when the block arrives and join the epoch at once).
    const bool full = im.pool.count_local();
    const bool idle = im.idle();
    if (idle) im.flush_flood(step);
    if (full || idle) im.cut_blocks(step);
    im.finish(step);
    return step;
}

Step Replica::tick(std::uint64_t now_ms) {
    Step step = impl_->tick(now_ms);
    impl_->finish(step);
    return step;
}

void Replica::begin_batch() { impl_->batching = true; }

Step Replica::end_batch() {
    Step step;
    impl_->batching = false;
    impl_->finish(step);
    return step;
}

std::optional<Bytes> Replica::latest_commit() const { return impl_->catchup.latest_commit(); }

bool Replica::holds_block(const Digest& body_digest) const {
    return impl_->blocks.holds(body_digest);
}

}  // namespace tob::consensus
