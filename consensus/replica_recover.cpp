// Replica: rebuilding after a restart from the durable records (docs/protocol.md,
// "Safety rules": the sign-log), and the memory and stall reports.

#include "consensus/codec.h"
#include "consensus/replica_impl.h"

namespace tob::consensus {

Step Replica::Impl::recover(const Recovery& recovery, std::uint64_t now_ms) {
    Step step;
    now = now_ms;
    signer.raise_mark(recovery.high_water);
    signer.set_voting(recovery.sign_log_ok);
    stats.voting = recovery.sign_log_ok;
    SentAba aba_sent;
    for (const auto& rec : recovery.records) recover_record(rec, aba_sent);
    // A lost sign-log with an intact key directory: sign only above the mark,
    // and keep that floor durable before anything is signed (the first record of
    // this step, persisted before any message leaves).
    if (auto floor = signer.finish_recovery()) {
        step.durable(DurableRecord::Type::Floor, *floor, {});
    }
    catchup.finish_recovery();
    resume(step, aba_sent);
    pool.remove_committed(sm);
    finish(step);
    return step;
}

void Replica::Impl::recover_record(const DurableRecord& rec, SentAba& aba_sent) {
    switch (rec.type) {
        case DurableRecord::Type::HighWater:
            signer.raise_mark(rec.epoch);
            break;
        case DurableRecord::Type::Floor:
            signer.raise_floor(rec.epoch);
            break;
        case DurableRecord::Type::Block:
            if (auto d = blocks.restore_block(rec.bytes)) {
                const auto* b = blocks.block(*d);
                if (b->epoch > delivered()) blocks.restore_accepted(b->epoch, b->proposer, *d);
            }
            break;
        case DurableRecord::Type::Proof:
            if (auto fr = decode_proof_record(rec.bytes, cfg.limits)) {
                catchup.restore_proof(rec.epoch, std::move(fr.value().envelopes), delivered());
            }
            break;
        case DurableRecord::Type::Commit:
            catchup.restore_commit(rec.bytes);
            break;
        case DurableRecord::Type::Cert: {
            auto c = decode_certificate(rec.bytes, cfg.limits);
            if (!c || c.value().epoch <= delivered()) break;
            state(c.value().epoch);
            blocks.restore_cert(c.value());
            break;
        }
        case DurableRecord::Type::Signed:
            recover_signed(rec.bytes, aba_sent);
            break;
    }
}

void Replica::Impl::recover_signed(const Bytes& raw, SentAba& aba_sent) {
    auto decoded = decode_envelope(raw, cfg.limits);
    if (!decoded) return;
    signer.adopt(raw);
    const Envelope& env = decoded.value();
    const Epoch e = env.epoch;
    const bool open = e > delivered();
    // Re-published as before the restart: the open epochs, and delivered ones that
    // may not be stable yet (prune() keeps those for up to 4W epochs and drops the
    // stable ones at the next tick). Peers that have not finished such an epoch may
    // need exactly these messages: without them, a node that delivered an epoch and
    // restarted left the others unable to finish it when another node could not
    // sign there (a reformatted one) — found by tobsim --crash 0.3, seed 91.
    const bool kept = open || epoch_add(e, 4 * Epoch{cfg.window}) >= delivered();
    switch (env.kind) {
        case Kind::Block: {
            const Digest d = digest_of(env.body);
            proposed_upto = std::max(proposed_upto, e);
            if (!blocks.holds(d)) blocks.restore_block(raw);
            if (kept) remember(e, Kind::Block, raw);
            if (!open) break;
            blocks.restore_own_block(e, d);
            if (auto b = decode_block(env.body, cfg.limits)) {
                pool.proposed(digests_of(b.value().requests), now);  // in flight again
            }
            break;
        }
        case Kind::Seen:
            if (auto sb = decode_seen(env.body, cfg.limits); sb && kept) {
                remember(e, Kind::Seen, raw);
                if (open) blocks.restore_own_seen(e, sb.value(), env.sig, raw);
            }
            break;
        case Kind::Aba:
            if (auto bundle = decode_aba_bundle(env.body, cfg.limits)) {
                for (const auto& m : bundle.value().messages) {
                    aba_sent[e][m.proposer].push_back(m);
                }
                if (kept) remember(e, Kind::Aba, raw);
            }
            break;
        case Kind::Commit:
            if (auto cb = decode_commit(env.body, cfg.limits)) {
                catchup.restore_own_commit(e, cb.value(), raw);
                if (kept) remember(e, Kind::Commit, raw);
            }
            break;
        default:
            break;
    }
}

void Replica::Impl::resume(Step& step, SentAba& aba_sent) {
    std::vector<Epoch> open;
    std::vector<Epoch> kept;
    for (const auto& [e, st] : epochs) {
        (e > delivered() ? open : kept).push_back(e);
    }
    // Rebuild the ABA instances of open epochs from what this node signed.
    for (Epoch e : open) {
        ensure_abas(e);
        subset.restore(e, aba_sent[e]);
    }
    // And those of the delivered epochs still re-published (not stable). The state
    // machine's write of an epoch is durable on its own, before the step's records:
    // a crash in between leaves the epoch applied while the agreement messages that
    // step signed last (AUX, TERM) and its COMMIT are lost, never sent. Such an
    // instance is undecided here, and on_aba keeps feeding it until it decides
    // again, so that peers which need this node's votes can finish the epoch (with
    // a crash-stopped peer, nobody else can give them the n - t AUX or the t + 1
    // COMMITs). An instance whose TERM is logged stays decided and silent.
    for (Epoch e : kept) {
        ensure_abas(e);
        subset.restore(e, aba_sent[e]);
        if (subset.undecided(e)) rejoined.insert(e);
    }
    // Blocks accepted before this node joined e were not SEENed then. (Its own
    // block needs no SEEN: the block is its vote, restored with the block.)
    for (Epoch e : open) {
        if (joined(e)) seen_accepted(step, e);
    }
    for (Epoch e : open) {
        for (NodeId j = 0; j < cfg.n; ++j) {
            if (blocks.cert(e, j)) run_subset(step, e, subset.input_one(e, j));
        }
    }
}

Step Replica::recover(const Recovery& recovery, std::uint64_t now_ms) {
    return impl_->recover(recovery, now_ms);
}

ReplicaMemory Replica::memory() const {
    const Impl& im = *impl_;
    ReplicaMemory m;
    m.sign_log_slots = im.signer.slots();
    m.sign_log_epochs = im.signer.epochs();
    m.pool_requests = im.pool.size();
    m.pool_bytes = im.pool.bytes();
    m.pool_in_flight = im.pool.in_flight();
    m.verified_cached = im.pool.verified_cached();
    m.blocks = im.blocks.blocks();
    m.block_bytes = im.blocks.bytes();
    m.broadcast_epochs = im.blocks.epochs();
    m.certs = im.blocks.certs();
    m.seen_votes = im.blocks.seen_votes();
    m.agreement_epochs = im.subset.epochs();
    m.aba_instances = im.subset.instances();
    m.aba_rounds = im.subset.rounds_held();
    m.commit_epochs = im.catchup.commit_epochs();
    m.commit_votes = im.catchup.commit_votes();
    m.proofs = im.catchup.proofs();
    m.proof_bytes = im.catchup.proof_bytes();
    m.window_epochs = im.epochs.size();
    for (const auto& [e, st] : im.epochs) {
        m.republish_envelopes += st.republish.size();
        for (const auto& [kind, env] : st.republish) m.republish_bytes += env.size();
    }
    return m;
}

}  // namespace tob::consensus
