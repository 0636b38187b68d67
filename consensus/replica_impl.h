#pragma once
// The Replica's inside, shared by consensus/replica.cpp (routing, the join rule,
// delivery, Step assembly) and consensus/replica_recover.cpp (rebuilding after a
// restart, memory and stall reports). Not part of the library's interface: include
// consensus/replica.h instead. The protocol and the Replica's own rules are in
// the essay of consensus/replica.h; each sub-protocol's in its header.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "consensus/block_broadcast.h"
#include "consensus/catch_up.h"
#include "consensus/epoch_subset.h"
#include "consensus/replica.h"
#include "consensus/request_pool.h"
#include "consensus/sign_log.h"
#include "consensus/state_transfer.h"

namespace tob::consensus {

struct Replica::Impl {
    struct EpochState {
        // Repair.
        std::vector<std::pair<Kind, Bytes>>
            republish;  // what this node signed (and certs it relayed)
        // Proposers whose certificate this node formed: re-published sealed at
        // the time (BlockBroadcast::cert_envelope, every signature checked).
        std::set<NodeId> formed_certs;
        std::uint64_t next_republish_ms = 0;
        std::uint64_t backoff_ms = 0;
    };

    ReplicaConfig cfg;
    const CryptoSuite& crypto;
    StateMachine& sm;
    ReplicaStats& stats;

    // The sub-protocols.
    SignLog signer;
    RequestPool pool;
    BlockBroadcast blocks;
    EpochSubset subset;
    CatchUp catchup;
    StateTransfer transfer;

    std::map<Epoch, EpochState> epochs;
    Epoch proposed_upto = 0;
    /// The join rule: members other than this node heard from (a valid block,
    /// SEEN or agreement message) per epoch of the window.
    std::map<Epoch, std::set<NodeId>> heard;
    /// Delivered epochs whose agreements resume() rebuilt after a restart: on_aba
    /// keeps feeding them while one is undecided (docs/protocol.md, "Repair").
    std::set<Epoch> rejoined;

    std::uint64_t now = 0;
    /// Agreement messages produced during the current input, per epoch: signed and
    /// sent as one bundle per epoch when the input ends (flush_aba).
    std::map<Epoch, std::vector<AbaMessage>> aba_out;
    bool batching = false;  // between begin_batch() and end_batch(): aba_out waits
    /// A signature was made since the last flush_aba: the step it ends is synced
    /// anyway, so held TERMs ride along (flush_aba).
    bool signed_since_flush = false;
    /// A tick came since the last flush_aba: held TERMs leave now whatever else.
    bool terms_due = false;

    Impl(const ReplicaConfig& c, const CryptoSuite& cr, StateMachine& s, ReplicaStats& st,
         const ProofArchive* archive, SnapshotStore* snapshots);

    Epoch delivered() const { return stats.delivered; }
    /// None of this node's blocks is in an undelivered epoch (request_pool.h,
    /// "Work and the block timer").
    bool idle() const { return proposed_upto <= delivered(); }
    Epoch window_end() const { return epoch_add(delivered(), cfg.window); }
    bool in_window(Epoch e) const { return e > delivered() && e <= window_end(); }
    bool can_sign(Epoch e) const { return !stats.halted && signer.may_sign(e); }

    void alarm(Step& step, std::string why) {
        stats.halted = true;
        step.alarms.push_back(std::move(why));
    }

    /// A unit raised an alarm in `step`: the node halts at once (it signs nothing more).
    void sync_halt(const Step& step) {
        if (!step.alarms.empty()) stats.halted = true;
    }

    // ---- signing --------------------------------------------------------------

    /// Signs a statement through the sign-log; nullopt if not allowed.
    std::optional<Bytes> sign(Step& step, Epoch e, Kind kind, Bytes body) {
        if (stats.halted) return std::nullopt;
        auto signed_env = signer.sign(step, e, kind, std::move(body));
        if (signed_env) signed_since_flush = true;
        return signed_env;
    }

    void broadcast(Step& step, Kind kind, const Bytes& env) { step.broadcast(kind, env); }
    void unicast(Step& step, NodeId to, Kind kind, const Bytes& env) {
        if (to != cfg.self) step.send(to, kind, env);
    }

    EpochState& state(Epoch e);
    void remember(Epoch e, Kind kind, const Bytes& env);

    // ---- requests -------------------------------------------------------------------

    /// Pools a request that arrived by flood or in a block (its signature checked).
    Admission pool_add(const Request& r, const Digest& d, std::size_t bytes, bool local,
                       Request* movable = nullptr);

    // ---- joining and proposing ----------------------------------------------------

    void join_upto(Step& step, Epoch e);
    bool joined(Epoch e) const { return proposed_upto >= e; }
    /// A valid block, SEEN or agreement message of epoch e from `sender`: joins
    /// the highest epoch x for which t + 1 distinct members spoke in epochs >= x
    /// (one of them is honest, and an honest node in an epoch >= x joined x).
    void heard_from(Step& step, Epoch e, NodeId sender);
    /// SEENs the blocks of e accepted before this node joined e.
    void seen_accepted(Step& step, Epoch e);
    void ensure_abas(Epoch e);
    void propose(Step& step, Epoch e);

    // ---- blocks, SEEN, certificates (consensus/block_broadcast.h) ---------------------

    void on_block(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch,
                  const Precomputed& pre = {});
    void send_seen(Step& step, Epoch e, NodeId j, const Digest& d);
    void on_seen(Step& step, const Envelope& env, const Bytes& raw);

    /// A verified certificate: store it, flood it, input 1, fetch the block.
    void adopt_cert(Step& step, const Certificate& c, std::optional<Bytes> relay);
    void on_cert(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch);

    // ---- binary agreement ------------------------------------------------------------

    void on_aba(Step& step, const Envelope& env, const Bytes& raw);

    /// Queues what the agreements produced for this input's bundle of epoch e (one
    /// signature for all instances' messages); a decision may complete the epoch.
    void run_subset(Step& step, Epoch e, EpochSubset::Progress&& progress);
    /// Signs and sends the queued agreement messages: one bundle per epoch (split at
    /// aba_bundle_max messages), each message still under its own sign-log slot.
    /// TERMs alone wait for a step that is synced anyway or for the next tick
    /// (docs/protocol.md, "Binary agreement": when TERMs leave).
    void flush_aba(Step& step);

    // ---- output (docs/protocol.md "Output" and "Commit proof") --------------------------

    void try_deliver(Step& step);

    /// Applies epoch e = delivered + 1; this node's own block of e no longer holds
    /// its requests in flight (those left out become proposable again).
    // `digests`: digest_of(encode(r)) of each of `ordered` if the caller holds them
    // (else empty: computed here).
    EpochResult apply(Epoch e, const Digest& od, const std::vector<Request>& ordered,
                      std::vector<Digest> digests = {});
    void deliver(Step& step, Epoch e, const std::vector<std::pair<NodeId, Digest>>& list);
    void sign_commit(Step& step, Epoch e, const CommitBody& cb);

    // ---- COMMIT and catch-up (consensus/catch_up.h) --------------------------------------

    void on_commit(Step& step, const Envelope& env, const Bytes& raw);

    /// Tells a peer that is still working on epoch e (which we delivered) to catch up.
    void hint_commit(Step& step, NodeId peer, Epoch e);
    void maybe_catch_up(Step& step);
    void on_fetch_request(Step& step, const Envelope& env);
    void on_fetch_reply(Step& step, const Envelope& env);

    /// Catch-up: t+1 matching COMMITs vouch for (output_digest, state_digest); the
    /// blocks must hash to the output digest in delivery order.
    void apply_proof(Step& step, Epoch e, CatchUp::CheckedProof&& proof);
    /// Completes the proof in progress of delivered + 1 with blocks this node
    /// holds, and applies it once every block is there.
    void try_proof(Step& step);

    // ---- checkpoints and snapshots (consensus/state_transfer.h) ---------------------------

    void on_snapshot_reply(Step& step, const Envelope& env);
    /// The state jumped to a peer's checkpoint: the core follows it.
    void installed(Step& step, InstalledSnapshot&& snap);

    // ---- dispatch, tick, prune ---------------------------------------------------------------

    void dispatch(Step& step, const Envelope& env, const Bytes& raw, bool from_fetch,
                  const Precomputed& pre = {});
    void on_requests(Step& step, const Envelope& env, const Bytes& raw,
                     const Precomputed& pre = {});
    void flush_flood(Step& step);

    /// The join rule for new work: a block is due (full, or the block timer ran)
    /// and the window has room for the next epoch.
    void cut_blocks(Step& step);
    /// An idle node with work that sees a peer's block for the next epoch joins
    /// that epoch now (request_pool.h, "Work and the block timer").
    void join_next_for_work(Step& step);
    /// The same when the flood of the block's requests arrives after the block.
    void join_next_for_flood(Step& step);
    /// Joins delivered + 1 if the window has room.
    void join_next(Step& step);
    void republish(Step& step);
    void republish_block(Step& step, Epoch e, const Bytes& env);
    void prune();
    /// Checkpoints become servable, pruning, and snapshot transfer (per tick).
    void checkpoints(Step& step);

    // ---- recovery (docs/protocol.md "Safety rules": the sign-log) --------------------------

    using SentAba = std::map<Epoch, std::map<NodeId, std::vector<AbaMessage>>>;
    Step recover(const Recovery& recovery, std::uint64_t now_ms);
    void recover_record(const DurableRecord& rec, SentAba& aba_sent);

    /// Adopts what this node signed: its slots, its block, SEENs, ABA messages and
    /// COMMITs, re-published as they were (never signed anew).
    void recover_signed(const Bytes& raw, SentAba& aba_sent);

    /// After the records: the open epochs' agreements continue where they were.
    void resume(Step& step, SentAba& aba_sent);

    /// The end of every input: the queued agreement messages leave, and the stats
    /// the shell reads.
    void finish(Step& step);
    Step tick(std::uint64_t t_ms);
};

}  // namespace tob::consensus
