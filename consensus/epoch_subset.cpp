// EpochSubset: see consensus/epoch_subset.h for the input rules and the output.

#include "consensus/epoch_subset.h"

namespace tob::consensus {

EpochSubset::EpochSubset(const SubsetParams& params, const CryptoSuite& crypto)
    : params_(params), crypto_(crypto) {}

void EpochSubset::open_epoch(Epoch e) {
    auto& st = epochs_[e];
    if (!st.aba.empty()) return;
    for (NodeId j = 0; j < params_.n; ++j) {
        AbaParams p;
        p.n = params_.n;
        p.t = params_.t;
        p.self = params_.self;
        p.chain_id = params_.chain_id;
        p.epoch = e;
        p.proposer = j;
        p.max_rounds_ahead = params_.max_rounds_ahead;
        st.aba.emplace(j, std::make_unique<BinaryAgreement>(p, crypto_));
    }
}

/// Takes one instance step: its messages and faults, and on a decision the
/// n − t ones rule (which inputs 0 to the rest, each taken the same way).
void EpochSubset::absorb(Epoch e, Agreements& st, NodeId j, AbaStep&& step, Progress& out) {
    for (auto& f : step.faults) out.faults.push_back(std::move(f));
    if (!step.messages.empty()) out.sends.emplace_back(j, std::move(step.messages));
    if (!step.decision || st.decided.count(j)) return;
    st.decided[j] = *step.decision;
    ++out.decisions;
    out.rounds_used += st.aba.at(j)->rounds_used();
    std::size_t ones = 0;
    for (const auto& [k, v] : st.decided) ones += v ? 1 : 0;
    if (ones < params_.n - params_.t || st.zeros_input) return;
    st.zeros_input = true;
    for (auto& [k, aba] : st.aba) {
        if (!aba->has_input() && !aba->terminated())
            absorb(e, st, k, aba->handle_input(false), out);
    }
}

EpochSubset::Progress EpochSubset::input_one(Epoch e, NodeId j) {
    Progress out;
    auto it = epochs_.find(e);
    if (it == epochs_.end()) return out;
    auto aba = it->second.aba.find(j);
    if (aba == it->second.aba.end() || aba->second->has_input() || aba->second->terminated()) {
        return out;
    }
    absorb(e, it->second, j, aba->second->handle_input(true), out);
    return out;
}

EpochSubset::Progress EpochSubset::handle(Epoch e, NodeId from, const AbaMessage& message) {
    Progress out;
    auto it = epochs_.find(e);
    if (it == epochs_.end()) return out;
    auto aba = it->second.aba.find(message.proposer);
    if (aba == it->second.aba.end()) return out;
    absorb(e, it->second, message.proposer, aba->second->handle_message(from, message), out);
    return out;
}

void EpochSubset::restore(Epoch e, const std::map<NodeId, std::vector<AbaMessage>>& sent) {
    auto it = epochs_.find(e);
    if (it == epochs_.end()) return;
    auto& st = it->second;
    for (auto& [j, aba] : st.aba) {
        if (auto s = sent.find(j); s != sent.end()) aba->restore(s->second);
        if (aba->decision()) st.decided[j] = *aba->decision();
    }
    std::size_t ones = 0;
    for (const auto& [k, v] : st.decided) ones += v ? 1 : 0;
    if (ones >= params_.n - params_.t) st.zeros_input = true;
}

bool EpochSubset::undecided(Epoch e) const {
    auto it = epochs_.find(e);
    if (it == epochs_.end()) return false;
    for (const auto& [j, aba] : it->second.aba) {
        if (!aba->terminated()) return true;
    }
    return false;
}

std::optional<std::vector<NodeId>> EpochSubset::outcome(Epoch e) const {
    auto it = epochs_.find(e);
    if (it == epochs_.end() || it->second.aba.empty()) return std::nullopt;
    const auto& decided = it->second.decided;
    if (decided.size() < params_.n) return std::nullopt;
    std::vector<NodeId> order;
    for (std::uint32_t k = 0; k < params_.n; ++k) {
        const auto j = static_cast<NodeId>((e + k) % params_.n);
        if (decided.at(j)) order.push_back(j);
    }
    return order;
}

void EpochSubset::prune(const std::function<bool(Epoch)>& retire) {
    for (auto it = epochs_.begin(); it != epochs_.end();) {
        it = retire(it->first) ? epochs_.erase(it) : std::next(it);
    }
}

std::size_t EpochSubset::instances() const {
    std::size_t n = 0;
    for (const auto& [e, st] : epochs_) n += st.aba.size();
    return n;
}

std::size_t EpochSubset::rounds_held() const {
    std::size_t n = 0;
    for (const auto& [e, st] : epochs_) {
        for (const auto& [j, aba] : st.aba) n += aba->rounds_held();
    }
    return n;
}

}  // namespace tob::consensus
