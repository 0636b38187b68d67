// Replica: cutting, proposing and re-publishing this node's blocks, and
// flooding the requests clients gave it (docs/protocol.md, "Blocks"; the block
// timer: consensus/request_pool.h).

#include <algorithm>

#include "consensus/check.h"
#include "consensus/codec.h"
#include "consensus/replica_impl.h"

namespace tob::consensus {

void Replica::Impl::propose(Step& step, Epoch e) {
    Block b;
    b.epoch = e;
    b.proposer = cfg.self;
    b.requests = pool.build_block(delivered());
    Bytes body = encode(b);
    auto env = sign(step, e, Kind::Block, body);
    proposed_upto = std::max(proposed_upto, e);
    pool.joined(proposed_upto);
    if (!env) return;
    // Each request hashed once: for the pool and for on_block (and, kept with the
    // stored block, for the apply and the release at delivery).
    RequestDigests rds;
    std::vector<Digest> ds;
    for (const auto& r : b.requests) {
        rds.push_back(request_digest(r));
        ds.push_back(rds.back().first);
    }
    pool.proposed(ds, now);
    remember(e, Kind::Block, *env);
    broadcast(step, Kind::Block, *env);
    ensure_abas(e);
    auto opened = decode_envelope(*env, cfg.limits);
    TOB_CHECK(opened, "this node's own block envelope decodes");
    // b is what decoding `body` gives (the encoding is canonical): not decoded again.
    on_block(step, opened.value(), *env, /*from_fetch=*/false,
             Precomputed{nullptr, &rds, &b, nullptr});
}

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
    // Pipelining only for full blocks: while an epoch this node joined is still
    // undelivered, only a full block is cut; the work waits and goes into one
    // block when that epoch is delivered. Under a steady stream of small requests
    // this keeps one epoch in flight instead of W, so a request waits for the
    // epoch in flight and then its own, not for W of them (docs/decisions.md,
    // "Pipelining only for full blocks"). An idle node proposes its own work at
    // once (request_pool.h, "Work and the block timer").
    if (pool.block_due(now, delivered(), idle())) join_upto(step, next);
}

void Replica::Impl::join_next_for_work(Step& step) {
    pool.joined(proposed_upto);
    if (idle() && pool.note_work(now)) join_next(step);
}

void Replica::Impl::join_next(Step& step) {
    const Epoch next = epoch_add(delivered(), 1);
    if (next <= window_end()) join_upto(step, next);
}

// A flood that brought new requests after a peer's block for the next epoch
// arrived. The block was dispatched first, so the requests it carries count as
// pending elsewhere and the flood adds no work of this node's own, yet the
// epoch cannot finish until n - t members have blocks in it. Without this the
// node joined only when its block timer ran out: at low load the requester's
// block and its flood race to every peer, and where the block won (about a
// third of the requests) the epoch took a block timer longer. One member's
// block alone still pulls no one in: the flood must carry requests the pool
// holds, which are uncommitted client-signed requests (the pool takes no
// committed one), and the node joins the next epoch once until it is delivered.
void Replica::Impl::join_next_for_flood(Step& step) {
    pool.joined(proposed_upto);
    if (!idle()) return;
    const Epoch next = epoch_add(delivered(), 1);
    for (NodeId p = 0; p < cfg.n; ++p) {
        if (p != cfg.self && blocks.accepted(next, p)) {
            join_next(step);
            return;
        }
    }
}

void Replica::Impl::republish(Step& step) {
    for (auto& [e, st] : epochs) {
        if (catchup.stable(e) || (st.republish.empty() && st.formed_certs.empty()) ||
            now < st.next_republish_ms) {
            continue;
        }
        for (const auto& [kind, env] : st.republish) {
            if (kind == Kind::Block)
                republish_block(step, e, env);
            else
                broadcast(step, kind, env);
        }
        for (NodeId j : st.formed_certs) {
            if (auto env = blocks.cert_envelope(e, j)) broadcast(step, Kind::Cert, *env);
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
