#include "consensus/sync_tob.h"

namespace tob::consensus {

namespace {

SyncMessage block_message(DsMessage m) {
    SyncMessage out;
    out.kind = SyncMessage::Kind::Block;
    out.block = std::move(m);
    return out;
}

void add_stats(DsStats& sum, const DsStats& s) {
    sum.accepted += s.accepted;
    sum.duplicate += s.duplicate;
    sum.short_chain += s.short_chain;
    sum.out_of_rounds += s.out_of_rounds;
    sum.wrong_session += s.wrong_session;
    sum.invalid += s.invalid;
}

}  // namespace

SyncTobNode::SyncTobNode(const SyncTobParams& params, const CryptoSuite& crypto)
    : p_(params), crypto_(crypto), machine_(params.initial) {}

bool SyncTobNode::learn(const OpRequest& request) {
    if (queued_ids_.count(request.id) || unqueued_.count(request.id)) return false;
    if (unqueued_.size() >= p_.unqueued_max || request.op.size() > kNumericOpBytesMax) {
        ++stats_.unqueued_dropped;
        return false;
    }
    unqueued_.emplace(request.id, request);
    return true;
}

SyncStep SyncTobNode::handle_client(const OpRequest& request) {
    SyncStep step;
    if (learn(request)) step.broadcast.push_back({SyncMessage::Kind::Request, request, {}});
    return step;
}

SyncStep SyncTobNode::handle_message(NodeId from, const SyncMessage& message) {
    SyncStep step;
    if (message.kind == SyncMessage::Kind::Request) {
        // Unscheduled broadcast: relay once, the first time we learn it.
        if (learn(message.request))
            step.broadcast.push_back({SyncMessage::Kind::Request, message.request, {}});
        return step;
    }
    const std::uint64_t session = message.block.session;
    const Epoch next = epoch_ ? *epoch_ + 1 : 0;
    if (epoch_ && session == *epoch_ && ds_) {
        feed(static_cast<std::uint32_t>(*round_ % rounds_per_epoch(p_.t)) + 1, from, message.block,
             step);
    } else if (session == next) {
        // The sender's clock is ahead of ours (drift): keep it for round 1.
        if (pending_.size() < p_.pending_max)
            pending_.emplace_back(from, message.block);
        else
            ++stats_.pending_dropped;
    } else if (epoch_ && session < *epoch_) {
        ++stats_.late;
    } else {
        ++stats_.pending_dropped;
    }
    return step;
}

void SyncTobNode::feed(std::uint32_t ds_round, NodeId from, const DsMessage& m, SyncStep& step) {
    DsStep s = ds_->handle_message(ds_round, from, m);
    for (auto& out : s.broadcast) step.broadcast.push_back(block_message(std::move(out)));
    for (auto& f : s.faults) step.faults.push_back(std::move(f));
}

SyncStep SyncTobNode::on_round(std::uint64_t round) {
    SyncStep step;
    const std::uint64_t first = round_ ? *round_ + 1 : 0;
    for (std::uint64_t g = first; g <= round; ++g) run_round(g, step);
    return step;
}

void SyncTobNode::run_round(std::uint64_t round, SyncStep& step) {
    round_ = round;
    const std::uint32_t per_epoch = rounds_per_epoch(p_.t);
    if (round % per_epoch != 0) return;
    if (ds_) finish_epoch(step);
    start_epoch(round / per_epoch, step);
}

void SyncTobNode::finish_epoch(SyncStep& step) {
    SyncEpochOutcome outcome;
    outcome.epoch = *epoch_;
    outcome.leader = leader(*epoch_, p_.n);
    outcome.accepted = ds_->accepted().size();
    const auto value = ds_->output();
    add_stats(stats_.ds, ds_->stats());
    ds_.reset();
    if (value) {
        outcome.block = true;
        // A block that does not decode is empty on every node alike.
        const auto requests = decode_op_block(*value, p_.block_requests_max);
        for (const auto& r : requests.value_or(std::vector<OpRequest>{})) {
            if (r.op.size() > kNumericOpBytesMax || !queued_ids_.insert(r.id).second) continue;
            unqueued_.erase(r.id);
            queued_.push_back(r);
            machine_.apply(r.op);
            step.applied.push_back(r);
            ++outcome.newly_queued;
        }
    }
    step.finished.push_back(outcome);
}

void SyncTobNode::start_epoch(Epoch epoch, SyncStep& step) {
    epoch_ = epoch;
    DsParams dp;
    dp.n = p_.n;
    dp.t = p_.t;
    dp.self = p_.self;
    dp.sender = leader(epoch, p_.n);
    dp.session = epoch;
    dp.value_bytes_max = 16 + p_.block_requests_max * (9 + kNumericOpBytesMax);
    dp.knobs = p_.knobs;
    ds_ = std::make_unique<DolevStrong>(dp, crypto_);
    if (dp.sender == p_.self && !unqueued_.empty()) {
        std::vector<OpRequest> block;
        for (const auto& [id, r] : unqueued_) {
            if (block.size() >= p_.block_requests_max) break;
            block.push_back(r);
        }
        DsStep s = ds_->propose(encode_op_block(block));
        for (auto& out : s.broadcast) step.broadcast.push_back(block_message(std::move(out)));
    }
    auto pending = std::move(pending_);
    pending_.clear();
    for (const auto& [from, m] : pending) {
        if (m.session == epoch)
            feed(1, from, m, step);
        else
            ++stats_.pending_dropped;
    }
}

}  // namespace tob::consensus
