// CatchUp: see consensus/catch_up.h for the thresholds, the catch-up rules and
// the bounds.

#include "consensus/catch_up.h"

#include <algorithm>
#include <functional>

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
            auto blocks = decode_proof_record(rec.bytes, limits);
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

void CatchUp::keep_proof(Step& step, Epoch e, std::vector<Bytes> blocks, Epoch delivered,
                         std::vector<BlockRef> list) {
    step.durable(DurableRecord::Type::Proof, e, encode(FetchReply{blocks, {}}));
    if (list.size() != blocks.size()) {
        restore_proof(e, std::move(blocks), delivered);
        return;
    }
    auto& slot = proofs_[e];
    for (const auto& b : slot.blocks) proof_bytes_ -= b.size();
    for (const auto& b : blocks) proof_bytes_ += b.size();
    slot.list = std::move(list);
    slot.blocks = std::move(blocks);
    trim_proofs(std::max(delivered, e));
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

void CatchUp::signed_commit(Epoch e, const Bytes& envelope, std::uint64_t now_ms) {
    broadcast_ = {e, now_ms};
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
    if (epoch_add(e, votes_horizon()) <= delivered) {
        // A COMMIT older than our history: its signer is far behind (or restarted
        // after a long outage and re-publishes). Tell it how far we can prove.
        send_latest(step, env.sender, now_ms);
        return false;
    }
    if (e > epoch_add(delivered, epoch_add(params_.window, params_.proof_history_epochs))) {
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
    return checked(std::move(out));
}

std::vector<Bytes> CatchUp::checked(std::vector<Bytes> commits) const {
    std::vector<Bytes> out;
    for (auto& raw : commits) {
        auto env = decode_envelope(raw, params_.limits);
        if (!env) continue;
        const Envelope& c = env.value();
        if (crypto_.verify(c.sender, kEnvelopeTag,
                           envelope_sign_payload(c.chain_id, c.sender, c.epoch, c.kind, c.body),
                           c.sig)) {
            out.push_back(std::move(raw));
        }
    }
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
    // Rotate among the peers that can answer, so one silent peer cannot stall us.
    const NodeId to =
        able[(now / std::max<std::uint64_t>(1, params_.repair_initial_ms)) % able.size()];
    auto ask = [&](const FetchRequest& fr) {
        step.send(to, Kind::FetchRequest,
                  seal_envelope(crypto_, params_.chain_id, params_.self, target, Kind::FetchRequest,
                                encode(fr)));
    };
    // A proof in progress lacks blocks that did not fit in its first reply: ask
    // for them by digest, each answered in a message of its own.
    if (auto missing = missing_blocks(target); !missing.empty()) {
        for (const auto& ref : missing)
            ask(FetchRequest{FetchType::Block, ref.proposer, ref.digest});
        return;
    }
    ask(FetchRequest{FetchType::EpochProof, 0, Digest{}});
}

std::optional<CommitBody> CatchUp::proven_tuple(const std::vector<Envelope>& commits) const {
    std::map<Digest, std::set<NodeId>> signers;
    std::map<Digest, CommitBody> bodies;
    for (const auto& ce : commits) {
        auto body = decode_commit(ce.body, params_.limits);
        if (!body) continue;
        const Digest key = commit_key(body.value());
        signers[key].insert(ce.sender);
        bodies[key] = body.value();
    }
    for (const auto& [key, who] : signers) {
        if (who.size() >= params_.t + 1) return bodies[key];
    }
    return std::nullopt;
}

bool CatchUp::list_matches(Epoch e, const CommitBody& tuple,
                           const std::vector<BlockRef>& list) const {
    if (list.empty() || list.size() > params_.n) return false;
    std::vector<std::pair<NodeId, Digest>> pairs;
    for (const auto& r : list) pairs.push_back({r.proposer, r.digest});
    return output_digest(params_.chain_id, e, pairs) == tuple.output_digest;
}

std::optional<CatchUp::CheckedProof> CatchUp::assemble(const PendingProof& p) const {
    CheckedProof out;
    out.tuple = p.tuple;
    for (const auto& ref : p.list) {
        auto raw = p.blocks.find(ref.digest);
        if (raw == p.blocks.end()) return std::nullopt;
        auto env = decode_envelope(raw->second, params_.limits);
        if (!env || digest_of(env.value().body) != ref.digest) return std::nullopt;
        auto b = decode_block(env.value().body, params_.limits);
        if (!b) return std::nullopt;
        for (auto& r : b.value().requests) out.ordered.push_back(std::move(r));
        out.blocks.push_back(raw->second);
    }
    return out;
}

std::optional<CatchUp::CheckedProof> CatchUp::check_proof(
    Epoch e, const std::vector<Envelope>& commits,
    const std::vector<std::pair<Envelope, Bytes>>& blocks) const {
    auto tuple = proven_tuple(commits);
    if (!tuple) return std::nullopt;
    // The list in delivery order: S rotated by e.
    std::map<NodeId, std::size_t> by_proposer;  // index into `blocks`
    for (std::size_t i = 0; i < blocks.size(); ++i) by_proposer[blocks[i].first.sender] = i;
    PendingProof p;
    p.epoch = e;
    p.tuple = *tuple;
    for (std::uint32_t k = 0; k < params_.n; ++k) {
        const auto j = static_cast<NodeId>((e + k) % params_.n);
        auto it = by_proposer.find(j);
        if (it == by_proposer.end()) continue;
        const Digest d = digest_of(blocks[it->second].first.body);
        p.list.push_back({j, d});
        p.blocks[d] = blocks[it->second].second;
    }
    if (!list_matches(e, p.tuple, p.list)) return std::nullopt;  // incomplete or bogus
    return assemble(p);
}

bool CatchUp::proof_reply(Epoch e, const std::vector<Envelope>& commits,
                          const std::vector<BlockRef>& list,
                          const std::vector<std::pair<Envelope, Bytes>>& blocks) {
    if (pending_ && pending_->epoch == e) return true;
    if (list.empty()) {
        auto whole = check_proof(e, commits, blocks);
        if (!whole) return false;
        PendingProof p;
        p.epoch = e;
        p.tuple = whole->tuple;
        for (const auto& raw : whole->blocks) {
            auto env = decode_envelope(raw, params_.limits);
            const Digest d = digest_of(env.value().body);
            p.list.push_back({env.value().sender, d});
            p.blocks[d] = raw;
        }
        pending_ = std::move(p);
        return true;
    }
    auto tuple = proven_tuple(commits);
    if (!tuple || !list_matches(e, *tuple, list)) return false;
    pending_ = PendingProof{e, *tuple, list, {}};
    for (const auto& [env, raw] : blocks) offer_block(e, digest_of(env.body), raw);
    return true;
}

void CatchUp::offer_block(Epoch e, const Digest& digest, const Bytes& raw) {
    if (!pending_ || pending_->epoch != e) return;
    for (const auto& r : pending_->list) {
        if (r.digest == digest) {
            pending_->blocks.emplace(digest, raw);
            return;
        }
    }
}

std::vector<BlockRef> CatchUp::missing_blocks(Epoch e) const {
    std::vector<BlockRef> out;
    if (!pending_ || pending_->epoch != e) return out;
    for (const auto& r : pending_->list) {
        if (!pending_->blocks.count(r.digest)) out.push_back(r);
    }
    return out;
}

std::optional<CatchUp::CheckedProof> CatchUp::take_proof(Epoch delivered) {
    if (!pending_ || pending_->epoch != delivered + 1) return std::nullopt;
    if (!missing_blocks(pending_->epoch).empty()) return std::nullopt;
    auto out = assemble(*pending_);
    pending_.reset();  // a proof whose blocks do not decode is dropped and fetched again
    return out;
}

namespace {

/// The list of blocks (proposer, digest) of stored block envelopes.
std::vector<BlockRef> list_of_blocks(const std::vector<Bytes>& blocks, const Limits& limits) {
    std::vector<BlockRef> list;
    for (const auto& raw : blocks) {
        auto env = decode_envelope(raw, limits);
        if (!env) return {};
        list.push_back({env.value().sender, digest_of(env.value().body)});
    }
    return list;
}

}  // namespace

std::optional<ArchivedProof> CatchUp::archived(Epoch e) const {
    if (!archive_) return std::nullopt;
    auto a = archive_->proof(e);
    if (!a || a->commits.size() < params_.t + 1) return std::nullopt;
    return a;
}

std::optional<FetchReply> CatchUp::proof_reply_for(Epoch e, Epoch delivered) {
    if (e == 0 || e > delivered) return std::nullopt;
    std::vector<Bytes> commits;
    const std::vector<Bytes>* blocks = nullptr;
    std::vector<BlockRef> list;
    std::optional<ArchivedProof> from_archive;
    if (auto p = proofs_.find(e); p != proofs_.end()) {
        auto v = votes_.find(e);
        if (v == votes_.end() || !v->second.mine) return std::nullopt;
        auto signers = v->second.by_tuple.find(*v->second.mine);
        if (signers == v->second.by_tuple.end() || signers->second.size() < params_.t + 1) {
            return std::nullopt;  // not provable yet
        }
        for (const auto& [s, env] : signers->second) commits.push_back(env);
        blocks = &p->second.blocks;
        list = p->second.list;
    } else {
        from_archive = archived(e);
        if (!from_archive) return std::nullopt;
        ++archive_served_;
        commits = std::move(from_archive->commits);
        blocks = &from_archive->blocks;
        list = list_of_blocks(*blocks, params_.limits);
    }
    commits = checked(std::move(commits));
    if (list.empty() || commits.size() < params_.t + 1) return std::nullopt;
    // What fits in one message: every COMMIT and the list always (the config
    // check guarantees room for them), then the blocks in order while they fit.
    std::size_t used = kEnvelopeOverhead + 16 + list.size() * 40;
    FetchReply reply;
    for (auto& c : commits) {
        used += c.size() + 5;
        reply.envelopes.push_back(std::move(c));
    }
    reply.blocks = std::move(list);
    for (const auto& b : *blocks) {
        if (used + b.size() + 5 > params_.limits.message_bytes_max) break;
        if (reply.envelopes.size() >= params_.limits.fetch_items_max) break;
        used += b.size() + 5;
        reply.envelopes.push_back(b);
    }
    return reply;
}

std::optional<Bytes> CatchUp::proof_block(Epoch e, const Digest& digest, Epoch delivered) const {
    if (e == 0 || e > delivered) return std::nullopt;
    if (auto p = proofs_.find(e); p != proofs_.end()) {
        for (std::size_t i = 0; i < p->second.list.size(); ++i) {
            if (p->second.list[i].digest == digest) return p->second.blocks[i];
        }
        return std::nullopt;
    }
    auto a = archived(e);
    if (!a) return std::nullopt;
    for (const auto& raw : a->blocks) {
        auto env = decode_envelope(raw, params_.limits);
        if (env && digest_of(env.value().body) == digest) return raw;
    }
    return std::nullopt;
}

// ---- telling others -----------------------------------------------------------------------

void CatchUp::hint(Step& step, NodeId peer, Epoch e, Epoch delivered, std::uint64_t now) {
    if (peer == params_.self) return;
    auto v = votes_.find(e);
    if (v != votes_.end() && v->second.mine) {
        // Just broadcast: the peer gets that copy (see "hint" in the header).
        if (broadcast_ && broadcast_->first == e &&
            now < broadcast_->second + params_.repair_initial_ms) {
            return;
        }
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
    if (epoch_add(e, votes_horizon()) <= delivered) send_latest(step, peer, now);
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
    for (const auto& b : slot.blocks) proof_bytes_ -= b.size();
    for (const auto& b : blocks) proof_bytes_ += b.size();
    slot.list = list_of_blocks(blocks, params_.limits);
    slot.blocks = std::move(blocks);
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
        for (const auto& b : proofs_.begin()->second.blocks) proof_bytes_ -= b.size();
        proofs_.erase(proofs_.begin());
    }
}

void CatchUp::prune(Epoch delivered) {
    if (pending_ && pending_->epoch <= delivered) pending_.reset();
    while (!votes_.empty() && votes_.begin()->first + votes_horizon() <= delivered) {
        votes_.erase(votes_.begin());
    }
    trim_proofs(delivered);
}

Epoch CatchUp::peers_epoch() const {
    std::vector<Epoch> claims;
    for (const auto& [peer, e] : highest_) {
        if (peer != params_.self) claims.push_back(e);
    }
    if (claims.size() < params_.t + 1) return 0;
    std::sort(claims.begin(), claims.end(), std::greater<>());
    return claims[params_.t];
}

std::size_t CatchUp::commit_votes() const {
    std::size_t n = 0;
    for (const auto& [e, v] : votes_) n += v.by_sender.size();
    return n;
}

}  // namespace tob::consensus
