// Stall reports (Replica::describe_pending): what tobd logs when no epoch has been
// applied for a while, one unit's view at a time. Read-only; nothing here reaches
// the protocol's output.

#include <cstdio>
#include <string>

#include "consensus/binary_agreement.h"
#include "consensus/block_broadcast.h"
#include "consensus/epoch_subset.h"
#include "consensus/replica_impl.h"

namespace tob::consensus {

std::string BinaryAgreement::describe() const {
    auto opt = [](const std::optional<bool>& b) { return b ? std::string(*b ? "1" : "0") : "-"; };
    std::string out = "r" + std::to_string(round_) + " in=" + opt(input_) + " est=" + opt(est_) +
                      " dec=" + opt(decision_);
    auto it = rounds_.find(round_);
    if (it != rounds_.end()) {
        const RoundState& rs = it->second;
        // Sender masks: bit i set when sender i's message is counted.
        std::uint64_t bval[2] = {0, 0}, aux[2] = {0, 0}, conf = 0;
        for (NodeId i = 0; i < rs.votes.size() && i < 64; ++i) {
            for (int b = 0; b < 2; ++b) {
                if (rs.votes[i].bval & (1u << b)) bval[b] |= std::uint64_t{1} << i;
                if (rs.votes[i].aux & (1u << b)) aux[b] |= std::uint64_t{1} << i;
            }
            if (rs.votes[i].conf) conf |= std::uint64_t{1} << i;
        }
        auto hex = [](std::uint64_t v) {
            char text[17];
            std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(v));
            return std::string(text);
        };
        out += " bin=" + std::to_string(rs.bin_values) +
               " sent(bval=" + std::to_string(rs.bval_sent) +
               " aux=" + std::to_string(rs.aux_sent) + " conf=" + std::to_string(rs.conf_sent) +
               ") bval0=" + hex(bval[0]) + " bval1=" + hex(bval[1]) + " aux0=" + hex(aux[0]) +
               " aux1=" + hex(aux[1]) + " conf=" + hex(conf) + " vals=" + std::to_string(rs.vals) +
               " conf_done=" + (rs.conf_done ? "1" : "0") +
               " shares=" + std::to_string(rs.shares_valid.size()) + "+" +
               std::to_string(rs.shares_pending.size()) + " coin=" + opt(rs.coin);
    }
    out += " term=" + std::to_string(term_count_[0]) + "/" + std::to_string(term_count_[1]);
    return out;
}

std::string BlockBroadcast::describe(Epoch e) const {
    const auto* st = find(e);
    if (!st) return " (no block state)";
    std::string out;
    for (NodeId j = 0; j < params_.n; ++j) {
        out += " p" + std::to_string(j) + "[";
        auto acc = st->accepted.find(j);
        out += acc == st->accepted.end() ? "-" : (holds(acc->second) ? "B" : "b");
        std::uint64_t mask = 0;
        for (const auto& [key, votes] : st->seen) {
            if (key.first != j) continue;
            for (const auto& [sender, sig] : votes) {
                if (sender < 64) mask |= std::uint64_t{1} << sender;
            }
        }
        out += " seen=" + std::to_string(mask);
        auto c = st->certs.find(j);
        if (c != st->certs.end()) out += holds(c->second.digest) ? " C" : " C-noblock";
        out += "]";
    }
    return out;
}

std::string EpochSubset::describe(Epoch e) const {
    auto it = epochs_.find(e);
    if (it == epochs_.end()) return {};
    std::string out;
    for (const auto& [j, aba] : it->second.aba) {
        if (aba->terminated()) {
            out += " aba" + std::to_string(j) + "=" + (*aba->decision() ? "1" : "0");
        } else {
            out += "\n  aba" + std::to_string(j) + ": " + aba->describe();
        }
    }
    if (it->second.zeros_input) out += " (zeros input)";
    return out;
}

std::string Replica::describe_pending() const {
    const auto& im = *impl_;
    std::string out;
    for (Epoch e = im.delivered() + 1; e <= im.proposed_upto && e <= im.window_end(); ++e) {
        out += "epoch " + std::to_string(e) + ":" + im.blocks.describe(e);
        auto h = im.heard.find(e);
        if (h != im.heard.end()) {
            out += " heard=";
            for (NodeId i : h->second) out += std::to_string(i) + ",";
        }
        out += im.subset.open(e) ? im.subset.describe(e) : " (no agreements)";
        out += "\n";
    }
    return out;
}

}  // namespace tob::consensus
