#include "tests/sim/checker.h"

#include <set>
#include <utility>

#include "crypto/hash.h"

namespace tob::sim {

namespace {

using consensus::RequestResult;

std::string node_pair(NodeId a, NodeId b) {
    return "nodes " + std::to_string(a) + " and " + std::to_string(b);
}

bool takes_effect(const RequestResult& r) { return !r.duplicate && !r.malformed && !r.forbidden; }

}  // namespace

std::string hex_prefix(const Digest& d) { return crypto::to_hex(consensus::ByteView(d.data(), 6)); }

bool same_epoch(const AppliedEpoch& a, const AppliedEpoch& b, std::string* why) {
    auto say = [&](std::string s) {
        if (why) *why = std::move(s);
        return false;
    };
    if (a.epoch != b.epoch) return say("epoch numbers differ");
    if (a.output_digest != b.output_digest)
        return say("output digests differ (" + hex_prefix(a.output_digest) + " vs " +
                   hex_prefix(b.output_digest) + ")");
    if (a.state_digest != b.state_digest)
        return say("state digests differ (" + hex_prefix(a.state_digest) + " vs " +
                   hex_prefix(b.state_digest) + ")");
    if (a.results.size() != b.results.size())
        return say("result counts differ (" + std::to_string(a.results.size()) + " vs " +
                   std::to_string(b.results.size()) + ")");
    for (std::size_t i = 0; i < a.results.size(); ++i) {
        const auto& x = a.results[i];
        const auto& y = b.results[i];
        if (x.request_digest != y.request_digest || x.client != y.client || x.nonce != y.nonce ||
            x.position != y.position || x.duplicate != y.duplicate || x.malformed != y.malformed ||
            x.forbidden != y.forbidden || x.outputs != y.outputs)
            return say("result " + std::to_string(i) + " differs");
    }
    return true;
}

std::vector<Violation> check_agreement(const std::vector<NodeLog>& logs) {
    std::vector<Violation> out;
    for (const auto& log : logs) {
        for (std::size_t i = 0; i < log.epochs.size(); ++i) {
            if (log.epochs[i].epoch != i + 1) {
                out.push_back({"agreement", "node " + std::to_string(log.node) +
                                                " log is not contiguous at position " +
                                                std::to_string(i) + " (epoch " +
                                                std::to_string(log.epochs[i].epoch) + ")"});
                break;
            }
        }
    }
    for (std::size_t a = 0; a < logs.size(); ++a) {
        for (std::size_t b = a + 1; b < logs.size(); ++b) {
            const auto& la = logs[a].epochs;
            const auto& lb = logs[b].epochs;
            const std::size_t common = std::min(la.size(), lb.size());
            for (std::size_t i = 0; i < common; ++i) {
                std::string why;
                if (!same_epoch(la[i], lb[i], &why)) {
                    out.push_back({"agreement", node_pair(logs[a].node, logs[b].node) +
                                                    " diverge at epoch " +
                                                    std::to_string(la[i].epoch) + ": " + why});
                    break;
                }
            }
        }
    }
    return out;
}

std::vector<Violation> check_total_order(const std::vector<NodeLog>& logs) {
    std::vector<Violation> out;
    std::vector<std::vector<Digest>> seqs;
    for (const auto& log : logs) {
        std::vector<Digest> s;
        for (const auto& e : log.epochs)
            for (const auto& r : e.results)
                if (takes_effect(r)) s.push_back(r.request_digest);
        seqs.push_back(std::move(s));
    }
    for (std::size_t a = 0; a < logs.size(); ++a) {
        for (std::size_t b = a + 1; b < logs.size(); ++b) {
            const std::size_t common = std::min(seqs[a].size(), seqs[b].size());
            for (std::size_t i = 0; i < common; ++i) {
                if (seqs[a][i] != seqs[b][i]) {
                    out.push_back({"total-order", node_pair(logs[a].node, logs[b].node) +
                                                      " order transactions differently at " +
                                                      "position " + std::to_string(i)});
                    break;
                }
            }
        }
    }
    return out;
}

std::vector<Violation> check_validity(const std::vector<NodeLog>& logs,
                                      const std::vector<SubmittedTx>& submitted) {
    std::vector<Violation> out;
    std::set<Digest> known;
    for (const auto& s : submitted) known.insert(s.digest);
    for (const auto& log : logs) {
        std::set<Digest> effective;
        std::set<std::pair<consensus::PublicKey, consensus::Nonce>> ids;
        bool reported = false;
        for (const auto& e : log.epochs) {
            for (const auto& r : e.results) {
                if (reported) break;
                if (!known.count(r.request_digest)) {
                    out.push_back({"validity", "node " + std::to_string(log.node) +
                                                   " output a request nobody submitted (" +
                                                   hex_prefix(r.request_digest) + ", epoch " +
                                                   std::to_string(e.epoch) + ")"});
                    reported = true;
                    break;
                }
                if (!takes_effect(r)) continue;
                if (!effective.insert(r.request_digest).second ||
                    !ids.insert({r.client, r.nonce}).second) {
                    out.push_back({"validity", "node " + std::to_string(log.node) +
                                                   " applied a transaction twice (nonce " +
                                                   std::to_string(r.nonce) + ", epoch " +
                                                   std::to_string(e.epoch) + ")"});
                    reported = true;
                    break;
                }
            }
        }
    }
    return out;
}

std::vector<Violation> check_liveness(const std::vector<NodeLog>& logs,
                                      const std::vector<SubmittedTx>& submitted) {
    std::vector<Violation> out;
    for (const auto& log : logs) {
        std::set<Digest> effective;
        for (const auto& e : log.epochs)
            for (const auto& r : e.results)
                if (takes_effect(r)) effective.insert(r.request_digest);
        std::size_t missing = 0;
        const SubmittedTx* first = nullptr;
        for (const auto& s : submitted) {
            if (!effective.count(s.digest)) {
                if (!first) first = &s;
                ++missing;
            }
        }
        if (missing > 0) {
            out.push_back({"liveness", "node " + std::to_string(log.node) + " lacks " +
                                           std::to_string(missing) + " of " +
                                           std::to_string(submitted.size()) +
                                           " transactions (first: nonce " +
                                           std::to_string(first->nonce) + ")"});
        }
    }
    return out;
}

std::vector<Violation> check_digests(const std::vector<FinalState>& finals) {
    std::vector<Violation> out;
    for (std::size_t a = 0; a < finals.size(); ++a) {
        for (std::size_t b = a + 1; b < finals.size(); ++b) {
            const auto& x = finals[a];
            const auto& y = finals[b];
            if (x.last_applied != y.last_applied) {
                out.push_back({"digests", node_pair(x.node, y.node) + " ended at epochs " +
                                              std::to_string(x.last_applied) + " and " +
                                              std::to_string(y.last_applied)});
            } else if (x.state_digest != y.state_digest) {
                out.push_back({"digests", node_pair(x.node, y.node) +
                                              " have different state digests at epoch " +
                                              std::to_string(x.last_applied)});
            }
        }
    }
    return out;
}

std::vector<Violation> check_all(const std::vector<NodeLog>& logs,
                                 const std::vector<SubmittedTx>& submitted,
                                 const std::vector<FinalState>& finals, bool liveness) {
    std::vector<Violation> out;
    auto add = [&out](std::vector<Violation> v) {
        for (auto& x : v) out.push_back(std::move(x));
    };
    add(check_agreement(logs));
    add(check_total_order(logs));
    add(check_validity(logs, submitted));
    if (liveness) {
        add(check_liveness(logs, submitted));
        add(check_digests(finals));
    }
    return out;
}

}  // namespace tob::sim
