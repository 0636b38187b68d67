// Replica: commit proofs — COMMITs from peers, fetch requests and replies, and
// catch-up by proofs that may arrive in parts (docs/protocol.md, "Commit proof",
// "Repair"). The rules are in consensus/replica.h and consensus/catch_up.h.

#include <string>

#include "consensus/codec.h"
#include "consensus/replica_impl.h"

namespace tob::consensus {

void Replica::Impl::on_commit(Step& step, const Envelope& env, const Bytes& raw) {
    auto cb = decode_commit(env.body, cfg.limits);
    if (!cb) {
        step.fault(env.sender, FaultKind::Malformed, "commit: " + cb.error(), {raw});
        return;
    }
    const bool counted = catchup.on_commit(step, env, raw, cb.value(), delivered(), now);
    sync_halt(step);
    if (counted && env.epoch > delivered()) maybe_catch_up(step);
}

void Replica::Impl::hint_commit(Step& step, NodeId peer, Epoch e) {
    catchup.hint(step, peer, e, delivered(), now);
}

void Replica::Impl::maybe_catch_up(Step& step) {
    const Epoch target = delivered() + 1;
    catchup.maybe_fetch(step, delivered(), epochs.count(target) && subset.open(target), now);
}

void Replica::Impl::on_fetch_request(Step& step, const Envelope& env) {
    auto fr = decode_fetch_request(env.body, cfg.limits);
    if (!fr) {
        step.fault(env.sender, FaultKind::Malformed, "fetch: " + fr.error());
        return;
    }
    FetchReply reply;
    const auto& req = fr.value();
    switch (req.type) {
        case FetchType::Block:
            if (auto b = blocks.block_envelope(req.digest)) {
                reply.envelopes.push_back(*b);
            } else if (auto p = catchup.proof_block(env.epoch, req.digest, delivered())) {
                reply.envelopes.push_back(*p);  // a block of a proof too large for one reply
            }
            break;
        case FetchType::Cert:
            if (auto c = blocks.cert_envelope(env.epoch, req.proposer)) {
                reply.envelopes.push_back(*c);
            }
            break;
        case FetchType::Aba:
            if (auto st = epochs.find(env.epoch); st != epochs.end()) {
                for (const auto& [k, b] : st->second.republish) reply.envelopes.push_back(b);
            }
            break;
        case FetchType::EpochProof:
            if (auto r = catchup.proof_reply_for(env.epoch, delivered())) reply = std::move(*r);
            break;
    }
    if (reply.envelopes.empty() || reply.envelopes.size() > cfg.limits.fetch_items_max) {
        return;
    }
    Bytes out =
        seal_envelope(crypto, cfg.chain_id, cfg.self, env.epoch, Kind::FetchReply, encode(reply));
    if (out.size() > cfg.limits.message_bytes_max) return;
    unicast(step, env.sender, Kind::FetchReply, out);
}

void Replica::Impl::on_fetch_reply(Step& step, const Envelope& env) {
    auto fr = decode_fetch_reply(env.body, cfg.limits);
    if (!fr) {
        step.fault(env.sender, FaultKind::Malformed, "fetch reply: " + fr.error());
        return;
    }
    std::vector<Envelope> commits_in;
    std::vector<std::pair<Envelope, Bytes>> blocks_in;
    std::vector<Digest> block_digests;
    for (const auto& raw : fr.value().envelopes) {
        // The reply is signed by its sender, so its own agreement messages inside
        // are authenticated as if its connection had carried them.
        Digest d{};
        auto inner = open_envelope(raw, crypto, cfg, env.sender, &d);
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
                    block_digests.push_back(d);
                }
                dispatch(step, ie, raw, true, Precomputed{&d, nullptr});
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
    if (env.epoch != delivered() + 1) return;
    if (!commits_in.empty())
        catchup.proof_reply(env.epoch, commits_in, fr.value().blocks, blocks_in);
    for (std::size_t i = 0; i < blocks_in.size(); ++i)
        catchup.offer_block(env.epoch, block_digests[i], blocks_in[i].second);
    try_proof(step);
}

void Replica::Impl::try_proof(Step& step) {
    const Epoch e = delivered() + 1;
    for (const auto& ref : catchup.missing_blocks(e)) {
        if (const auto* held = blocks.block(ref.digest)) {
            catchup.offer_block(e, ref.digest, held->envelope);
        }
    }
    if (auto proof = catchup.take_proof(delivered())) apply_proof(step, e, std::move(*proof));
}

void Replica::Impl::apply_proof(Step& step, Epoch e, CatchUp::CheckedProof&& proof_in) {
    CatchUp::CheckedProof* proof = &proof_in;
    EpochResult result = apply(e, proof->tuple.output_digest, proof->ordered);
    if (result.state_digest != proof->tuple.state_digest ||
        result.checkpoint_root != proof->tuple.checkpoint_root) {
        alarm(step, "catch-up of epoch " + std::to_string(e) +
                        ": state digest or checkpoint root differs from t+1 COMMITs — "
                        "nondeterminism or more than t faults; halting");
        return;
    }
    catchup.keep_proof(step, e, std::move(proof->blocks), e);
    catchup.proven_result(e, proof->tuple);
    pool.remove_committed(sm);
    pool.settle(result.results);
    step.committed.push_back(std::move(result));
    sign_commit(step, e, proof->tuple);
    catchup.applied_proof();
    try_deliver(step);
    maybe_catch_up(step);
}

}  // namespace tob::consensus
