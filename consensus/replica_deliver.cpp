// Replica: delivery — an epoch whose subset and blocks are all known is applied
// in order, its proof kept and its COMMIT signed (docs/protocol.md, "Output",
// "Commit proof"). The rules are in consensus/replica.h.

#include <utility>

#include "consensus/check.h"
#include "consensus/codec.h"
#include "consensus/replica_impl.h"

namespace tob::consensus {

void Replica::Impl::try_deliver(Step& step) {
    while (!stats.halted) {
        const Epoch e = delivered() + 1;
        if (!epochs.count(e)) return;
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

EpochResult Replica::Impl::apply(Epoch e, const Digest& od, const std::vector<Request>& ordered,
                                 std::vector<Digest> digests) {
    TOB_CHECK(e == delivered() + 1, "epochs are delivered strictly in order");
    if (digests.size() != ordered.size()) digests = digests_of(ordered);
    EpochResult result = sm.apply_epoch_with_digests(e, od, ordered, digests);
    if (stats.voting && sm.damage()) {
        // Damaged stored state: this node's results may differ from the cluster's,
        // so it signs nothing from here on (the shell raises the alarm).
        signer.set_voting(false);
        stats.voting = false;
    }
    result.checkpoint_root = transfer.applied(e);
    stats.delivered = e;
    pool.delivered(e);
    if (auto mine = blocks.accepted(e, cfg.self)) {
        if (const auto* b = blocks.block(*mine)) {
            const bool known = b->request_digests.size() == b->block.requests.size();
            pool.release(known ? b->request_digests : digests_of(b->block.requests));
        }
    }
    return result;
}

void Replica::Impl::deliver(Step& step, Epoch e,
                            const std::vector<std::pair<NodeId, Digest>>& list) {
    std::vector<Request> ordered;
    std::vector<Digest> digests;  // of each request, as on_block computed them
    std::vector<Bytes> proof;
    std::vector<BlockRef> refs;  // the proof's list: the blocks are known by their digests
    for (const auto& [j, d] : list) {
        const auto* be = blocks.block(d);
        TOB_CHECK(be != nullptr, "every block of a delivered epoch is held");
        const bool known = be->request_digests.size() == be->block.requests.size();
        for (std::size_t i = 0; i < be->block.requests.size(); ++i) {
            const Request& r = be->block.requests[i];
            ordered.push_back(r);
            digests.push_back(known ? be->request_digests[i] : digest_of(encode(r)));
        }
        proof.push_back(be->envelope);
        refs.push_back({j, d});
    }
    const Digest od = output_digest(cfg.chain_id, e, list);
    EpochResult result = apply(e, od, ordered, std::move(digests));
    catchup.keep_proof(step, e, std::move(proof), e, std::move(refs));
    pool.remove_applied(sm, ordered);
    pool.settle(result.results);
    CommitBody cb{od, result.state_digest, result.checkpoint_root};
    step.committed.push_back(std::move(result));
    const bool ok = catchup.own_result(step, e, cb);
    sync_halt(step);
    if (ok) sign_commit(step, e, cb);
}

void Replica::Impl::sign_commit(Step& step, Epoch e, const CommitBody& cb) {
    auto env = sign(step, e, Kind::Commit, encode(cb));
    if (!env) return;
    remember(e, Kind::Commit, *env);
    broadcast(step, Kind::Commit, *env);
    catchup.signed_commit(e, *env, now);
}

}  // namespace tob::consensus
