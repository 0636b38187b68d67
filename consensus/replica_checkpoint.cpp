// Replica: checkpoints and snapshot installs (docs/protocol.md, "Checkpoints").
// The rules are in consensus/state_transfer.h; here the Replica follows what the
// StateTransfer unit decided.

#include "consensus/check.h"
#include "consensus/replica_impl.h"

namespace tob::consensus {

void Replica::Impl::on_snapshot_reply(Step& step, const Envelope& env) {
    auto snap = transfer.on_reply(step, env, delivered(), now);
    if (snap) installed(step, std::move(*snap));
}

void Replica::Impl::installed(Step& step, InstalledSnapshot&& snap) {
    sm.reload();
    TOB_CHECK(sm.last_applied() == snap.epoch, "an installed snapshot sets last_applied");
    TOB_CHECK(sm.state_digest() == snap.tuple.state_digest,
              "an installed snapshot takes the certificate's state digest");
    stats.delivered = snap.epoch;
    pool.delivered(snap.epoch);
    pool.remove_committed(sm);
    // The certificate's COMMITs count as votes, so the checkpoint can become
    // stable (and servable) here too; no COMMIT is signed for it.
    for (const auto& c : snap.certificate) catchup.restore_commit(c);
    catchup.proven_result(snap.epoch, snap.tuple);
    catchup.applied_proof();
    step.installed.push_back({snap.epoch, snap.tuple.state_digest, snap.bytes, snap.entries});
    try_deliver(step);
    maybe_catch_up(step);
}

void Replica::Impl::checkpoints(Step& step) {
    transfer.tick(step, catchup, now);
    transfer.maybe_start(step, delivered(), catchup.highest_peer(), now);
    transfer.poll(step, now);
}

}  // namespace tob::consensus
