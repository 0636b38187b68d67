// Replica: cutting and re-publishing this node's blocks, and flooding the
// requests clients gave it (docs/protocol.md; the block timer and the idle rule:
// consensus/request_pool.h, "Work and the block timer").

#include "consensus/codec.h"
#include "consensus/replica_impl.h"

namespace tob::consensus {

void Replica::Impl::flush_flood(Step& step) {
    while (auto batch = pool.take_flood()) {
        Bytes env =
            seal_envelope(crypto, cfg.chain_id, cfg.self, 0, Kind::Requests, encode(*batch));
        broadcast(step, Kind::Requests, env);
    }
}

void Replica::Impl::cut_blocks(Step& step) {
    pool.joined(proposed_upto);
    if (!pool.note_work(now)) return;
    Epoch next = std::max(proposed_upto, delivered()) + 1;
    if (next > window_end()) return;
    // Idle: every block this node proposed is in a delivered epoch.
    const bool idle = proposed_upto <= delivered();
    if (pool.block_due(now, delivered(), idle)) join_upto(step, next);
}

void Replica::Impl::join_next_for_work(Step& step) {
    pool.joined(proposed_upto);
    if (proposed_upto > delivered() || !pool.note_work(now)) return;
    const Epoch next = delivered() + 1;
    if (next <= window_end()) join_upto(step, next);
}

void Replica::Impl::republish(Step& step) {
    for (auto& [e, st] : epochs) {
        if (catchup.stable(e) || st.republish.empty() || now < st.next_republish_ms) continue;
        for (const auto& [kind, env] : st.republish) {
            if (kind == Kind::Block)
                republish_block(step, e, env);
            else
                broadcast(step, kind, env);
        }
        st.backoff_ms = std::min(cfg.repair_max_ms, st.backoff_ms * 2);
        st.next_republish_ms = now + st.backoff_ms;
    }
}

// This node's block goes again only to the members whose SEEN for it has not
// arrived: a SEEN says its sender holds the block, so sending it again there
// repairs nothing. With blocks of megabytes and epochs slower than the backoff
// those copies cost every peer a hash of each (docs/attacks.md, pool_flood).
// Depends only on the SEENs received, so the core stays deterministic.
void Replica::Impl::republish_block(Step& step, Epoch e, const Bytes& env) {
    const auto d = blocks.accepted(e, cfg.self);
    std::vector<NodeId> missing;
    for (NodeId p = 0; p < cfg.n; ++p) {
        if (p != cfg.self && !(d && blocks.seen_by(e, cfg.self, p, *d))) missing.push_back(p);
    }
    if (missing.size() + 1 == cfg.n) {
        broadcast(step, Kind::Block, env);
        return;
    }
    for (NodeId p : missing) step.send(p, Kind::Block, env);
}

}  // namespace tob::consensus
