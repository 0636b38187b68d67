// CatchUp: see consensus/catch_up.h for the thresholds, the catch-up rules and
// the bounds.

#include "consensus/catch_up.h"

#include <algorithm>

#include "consensus/check.h"
#include "consensus/codec.h"

namespace tob::consensus {

Digest commit_key(const CommitBody& body) { return digest_of(encode(body)); }

Digest output_digest(const Digest& chain_id, Epoch e,
                     const std::vector<std::pair<NodeId, Digest>>& list) {
    crypto::Hasher h;
    h.field(std::string_view("tobd-output-v1")).raw(chain_id).u64(e).u64(list.size());
    for (const auto& [j, d] : list) h.u64(j).raw(d);
    return h.finish();
}

std::optional<ArchivedProof> proof_from_records(const std::vector<DurableRecord>& records, Epoch e,
                                                std::uint32_t needed, const Limits& limits) {
    std::map<Digest, std::map<NodeId, Bytes>> by_tuple;
    std::optional<ArchivedProof> out;
    for (const auto& rec : records) {
        if (rec.epoch != e) continue;
        if (rec.type == DurableRecord::Type::Proof) {
            auto blocks = decode_fetch_reply(rec.bytes, limits);
            if (!blocks) continue;
            if (!out) out.emplace();
            out->blocks = std::move(blocks.value().envelopes);
            continue;
        }
        if (rec.type != DurableRecord::Type::Commit && rec.type != DurableRecord::Type::Signed) {
            continue;
        }
        auto env = decode_envelope(rec.bytes, limits);
        if (!env || env.value().kind != Kind::Commit || env.value().epoch != e) continue;
        auto body = decode_commit(env.value().body, limits);
        if (!body) continue;
        by_tuple[commit_key(body.value())].emplace(env.value().sender, rec.bytes);
    }
    if (!out) return std::nullopt;
    for (auto& [key, signers] : by_tuple) {
        if (signers.size() < needed) continue;
        for (auto& [s, env] : signers) out->commits.push_back(std::move(env));
        return out;
    }
    return std::nullopt;  // not provable from these records
}

CatchUp::CatchUp(const CatchUpParams& params, const CryptoSuite& crypto,
                 const ProofArchive* archive)
    : params_(params), crypto_(crypto), archive_(archive) {}

// ---- this node's results ------------------------------------------------------------------

void CatchUp::keep_proof(Step& step, Epoch e, std::vector<Bytes> blocks, Epoch delivered) {
    step.durable(DurableRecord::Type::Proof, e, encode(FetchReply{blocks}));
    restore_proof(e, std::move(blocks), delivered);
}

bool CatchUp::own_result(Step& step, Epoch e, const CommitBody& result) {
    auto& v = votes_[e];
    const Digest key = commit_key(result);
    if (v.mine && *v.mine != key) {
        step.alarms.push_back("applied epoch " + std::to_string(e) +
                              " differs from this node's earlier COMMIT: nondeterminism");
        return false;
    }
    v.mine = key;
    check_conflicts(step, e);
    return true;
}

void CatchUp::proven_result(Epoch e, const CommitBody& tuple) {
    votes_[e].mine = commit_key(tuple);
    check_stable(e);
}

void CatchUp::signed_commit(Epoch e, const Bytes& envelope) {
    auto& v = votes_[e];
    TOB_CHECK(v.mine.has_value(), "a node signs COMMIT only for its own result");
    count(e, params_.self, *v.mine, envelope);
    check_stable(e);
    if (!latest_ || e >= latest_epoch_) {
        latest_ = envelope;
        latest_epoch_ = e;
    }
}

// ---- peers' COMMITs -----------------------------------------------------------------------

void CatchUp::count(Epoch e, NodeId sender, const Digest& key, const Bytes& envelope) {
    auto& v = votes_[e];
    v.by_sender[sender] = {key, envelope};
    v.by_tuple[key][sender] = envelope;
}

bool CatchUp::on_commit(Step& step, const Envelope& env, const Bytes& raw, const CommitBody& body,
                        Epoch delivered, std::uint64_t now_ms) {
    const Epoch e = env.epoch;
    auto& highest = highest_[env.sender];
    highest = std::max(highest, e);
    if (e + votes_horizon() <= delivered) {
        // A COMMIT older than our history: its signer is far behind (or restarted
        // after a long outage and re-publishes). Tell it how far we can prove.
        send_latest(step, env.sender, now_ms);
        return false;
    }
    if (e > delivered + params_.window + params_.proof_history_epochs) {
        return false;  // the hint above is enough
    }
    const Digest key = commit_key(body);
    auto& v = votes_[e];
    if (auto prev = v.by_sender.find(env.sender); prev != v.by_sender.end()) {
        if (prev->second.first != key) {
            step.fault(env.sender, FaultKind::Equivocation, "two COMMITs for one epoch",
                       {prev->second.second, raw});
        }
        return false;
    }
    count(e, env.sender, key, raw);
    step.durable(DurableRecord::Type::Commit, e, raw);
    check_conflicts(step, e);
    check_stable(e);
    return true;
}

void CatchUp::check_conflicts(Step& step, Epoch e) {
    auto& v = votes_[e];
    std::size_t provable = 0;
    for (const auto& [key, signers] : v.by_tuple) {
        if (signers.size() < params_.t + 1) continue;
        ++provable;
        if (v.mine && *v.mine != key) {
            step.alarms.push_back("t+1 COMMITs for epoch " + std::to_string(e) +
                                  " differ from this node's result: nondeterminism or more "
                                  "than t faults");
            return;
        }
    }
    if (provable > 1) {
        step.alarms.push_back("two provable COMMIT tuples for epoch " + std::to_string(e));
    }
}

void CatchUp::check_stable(Epoch e) {
    auto& v = votes_[e];
    if (v.stable || !v.mine) return;
    auto it = v.by_tuple.find(*v.mine);
    if (it != v.by_tuple.end() && it->second.size() >= params_.stable_quorum) v.stable = true;
}

bool CatchUp::stable(Epoch e) const {
    auto it = votes_.find(e);
    return it != votes_.end() && it->second.stable;
}

std::vector<Bytes> CatchUp::matching_commits(Epoch e) const {
    std::vector<Bytes> out;
    auto v = votes_.find(e);
    if (v == votes_.end() || !v->second.mine) return out;
    auto signers = v->second.by_tuple.find(*v->second.mine);
    if (signers == v->second.by_tuple.end()) return out;
    for (const auto& [s, env] : signers->second) out.push_back(env);
    return out;
}

Epoch CatchUp::highest_peer() const {
    Epoch best = 0;
    for (const auto& [peer, e] : highest_) {
        if (peer != params_.self) best = std::max(best, e);
    }
    return best;
}

// ---- catching up ------------------------------------------------------------------------

void CatchUp::maybe_fetch(Step& step, Epoch delivered, bool own_progress, std::uint64_t now) {
    if (now < fetch_next_ms_) return;
    const Epoch target = delivered + 1;
    // A peer that committed `target` or later can prove it.
    std::vector<NodeId> able;
    Epoch best = 0;
    for (const auto& [peer, e] : highest_) {
        if (peer == params_.self || e < target) continue;
        able.push_back(peer);
        best = std::max(best, e);
    }
    if (able.empty()) return;
    // Let our own agreement finish first unless we are clearly behind.
    if (!behind_since_ || behind_since_->first != target) behind_since_ = {{target, now}};
    if (own_progress && best <= target && now < behind_since_->second + params_.repair_initial_ms) {
        return;
    }
    fetch_next_ms_ = now + params_.repair_initial_ms;
    FetchRequest fr{FetchType::EpochProof, 0, Digest{}};
    Bytes env = seal_envelope(crypto_, params_.chain_id, params_.self, target, Kind::FetchRequest,
                              encode(fr));
    // Rotate among the peers that can answer, so one silent peer cannot stall us.
    const NodeId to =
        able[(now / std::max<std::uint64_t>(1, params_.repair_initial_ms)) % able.size()];
    step.send(to, Kind::FetchRequest, env);
}

std::optional<CatchUp::CheckedProof> CatchUp::check_proof(
    Epoch e, const std::vector<Envelope>& commits,
    const std::vector<std::pair<Envelope, Bytes>>& blocks) const {
    std::map<Digest, std::set<NodeId>> signers;
    std::map<Digest, CommitBody> bodies;
    for (const auto& ce : commits) {
        auto body = decode_commit(ce.body, params_.limits);
        if (!body) continue;
        const Digest key = commit_key(body.value());
        signers[key].insert(ce.sender);
        bodies[key] = body.value();
    }
    const CommitBody* tuple = nullptr;
    for (const auto& [key, who] : signers) {
        if (who.size() >= params_.t + 1) tuple = &bodies[key];
    }
    if (!tuple) return std::nullopt;
    std::map<NodeId, std::size_t> by_proposer;  // index into `blocks`
    for (std::size_t i = 0; i < blocks.size(); ++i) by_proposer[blocks[i].first.sender] = i;
    std::vector<std::pair<NodeId, Digest>> list;
    CheckedProof out;
    out.tuple = *tuple;
    for (std::uint32_t k = 0; k < params_.n; ++k) {
        const auto j = static_cast<NodeId>((e + k) % params_.n);
        auto it = by_proposer.find(j);
        if (it == by_proposer.end()) continue;
        list.push_back({j, digest_of(blocks[it->second].first.body)});
        out.blocks.push_back(blocks[it->second].second);
    }
    if (output_digest(params_.chain_id, e, list) != tuple->output_digest) {
        return std::nullopt;  // incomplete or bogus reply
    }
    for (const auto& [j, d] : list) {
        auto b = decode_block(blocks[by_proposer.at(j)].first.body, params_.limits);
        if (!b) return std::nullopt;
        for (auto& r : b.value().requests) out.ordered.push_back(std::move(r));
    }
    return out;
}

std::vector<Bytes> CatchUp::proof_envelopes(Epoch e, Epoch delivered) {
    std::vector<Bytes> out;
    if (e == 0 || e > delivered) return out;
    auto p = proofs_.find(e);
    if (p != proofs_.end()) {
        auto v = votes_.find(e);
        if (v == votes_.end() || !v->second.mine) return out;
        auto signers = v->second.by_tuple.find(*v->second.mine);
        if (signers == v->second.by_tuple.end() || signers->second.size() < params_.t + 1) {
            return out;  // not provable yet
        }
        for (const auto& [s, env] : signers->second) out.push_back(env);
        for (const auto& b : p->second) out.push_back(b);
        return out;
    }
    if (!archive_) return out;
    auto archived = archive_->proof(e);
    if (!archived || archived->commits.size() < params_.t + 1) return out;
    ++archive_served_;
    out = std::move(archived->commits);
    for (auto& b : archived->blocks) out.push_back(std::move(b));
    return out;
}

// ---- telling others -----------------------------------------------------------------------

void CatchUp::hint(Step& step, NodeId peer, Epoch e, Epoch delivered, std::uint64_t now) {
    if (peer == params_.self) return;
    auto v = votes_.find(e);
    if (v != votes_.end() && v->second.mine) {
        auto& h = hinted_[peer];
        if (h.first == e && now < h.second + params_.repair_max_ms) return;
        h = {e, now};
        auto mine = v->second.by_sender.find(params_.self);
        if (mine != v->second.by_sender.end()) {
            step.send(peer, Kind::Commit, mine->second.second);
        }
        return;
    }
    // Older than the history: our COMMIT for e is gone; the latest one tells the
    // peer that we can prove every epoch up to it (the archive serves them).
    if (e + votes_horizon() <= delivered) send_latest(step, peer, now);
}

void CatchUp::send_latest(Step& step, NodeId peer, std::uint64_t now) {
    if (!latest_ || peer == params_.self || peer >= params_.n) return;
    auto [it, fresh] = hinted_latest_ms_.try_emplace(peer, now);
    if (!fresh) {
        if (now < it->second + params_.repair_max_ms) return;
        it->second = now;
    }
    step.send(peer, Kind::Commit, *latest_);
}

void CatchUp::heartbeat(Step& step, std::uint64_t now) {
    if (params_.commit_heartbeat_ms == 0) return;
    if (next_heartbeat_ms_ == 0) next_heartbeat_ms_ = now + params_.commit_heartbeat_ms;
    if (now < next_heartbeat_ms_) return;
    next_heartbeat_ms_ = now + params_.commit_heartbeat_ms;
    if (latest_) step.broadcast(Kind::Commit, *latest_);
}

// ---- recovery ------------------------------------------------------------------------------

void CatchUp::restore_proof(Epoch e, std::vector<Bytes> blocks, Epoch delivered) {
    auto& slot = proofs_[e];
    for (const auto& b : slot) proof_bytes_ -= b.size();
    for (const auto& b : blocks) proof_bytes_ += b.size();
    slot = std::move(blocks);
    trim_proofs(std::max(delivered, e));
}

void CatchUp::restore_commit(const Bytes& envelope) {
    auto env = decode_envelope(envelope, params_.limits);
    if (!env) return;
    auto body = decode_commit(env.value().body, params_.limits);
    if (!body) return;
    const Epoch e = env.value().epoch;
    const NodeId sender = env.value().sender;
    if (votes_[e].by_sender.count(sender)) return;
    count(e, sender, commit_key(body.value()), envelope);
    auto& highest = highest_[sender];
    highest = std::max(highest, e);
}

void CatchUp::restore_own_commit(Epoch e, const CommitBody& body, const Bytes& envelope) {
    auto& v = votes_[e];
    v.mine = commit_key(body);
    count(e, params_.self, *v.mine, envelope);
    if (!latest_ || e >= latest_epoch_) {
        latest_ = envelope;
        latest_epoch_ = e;
    }
}

void CatchUp::finish_recovery() {
    for (auto& [e, v] : votes_) check_stable(e);
}

// ---- pruning and views --------------------------------------------------------------------

void CatchUp::trim_proofs(Epoch delivered) {
    while (!proofs_.empty() && proofs_.begin()->first + params_.proof_history_epochs <= delivered) {
        for (const auto& b : proofs_.begin()->second) proof_bytes_ -= b.size();
        proofs_.erase(proofs_.begin());
    }
}

void CatchUp::prune(Epoch delivered) {
    while (!votes_.empty() && votes_.begin()->first + votes_horizon() <= delivered) {
        votes_.erase(votes_.begin());
    }
    trim_proofs(delivered);
}

std::size_t CatchUp::commit_votes() const {
    std::size_t n = 0;
    for (const auto& [e, v] : votes_) n += v.by_sender.size();
    return n;
}

}  // namespace tob::consensus
