// BlockBroadcast: see consensus/block_broadcast.h for the rules and bounds.

#include "consensus/block_broadcast.h"

#include <algorithm>

#include "consensus/codec.h"

namespace tob::consensus {

BlockBroadcast::BlockBroadcast(const BroadcastParams& params, const CryptoSuite& crypto)
    : params_(params), crypto_(crypto) {}

const BlockBroadcast::EpochState* BlockBroadcast::find(Epoch e) const {
    auto it = epochs_.find(e);
    return it == epochs_.end() ? nullptr : &it->second;
}

// ---- blocks ------------------------------------------------------------------------

std::optional<Block> BlockBroadcast::parse(Step& step, const Envelope& env, const Bytes& raw,
                                           Block* decoded) const {
    const NodeId j = env.sender;
    if (env.body.size() > params_.limits.block_bytes_max) {
        step.fault(j, FaultKind::InvalidBlock, "block over block_bytes_max", {raw});
        return std::nullopt;
    }
    std::optional<Block> block;
    if (decoded) {
        block = std::move(*decoded);
    } else {
        auto d = decode_block(env.body, params_.limits);
        if (!d) {
            step.fault(j, FaultKind::Malformed, "block: " + d.error(), {raw});
            return std::nullopt;
        }
        block = std::move(d.value());
    }
    if (block->epoch != env.epoch || block->proposer != j) {
        step.fault(j, FaultKind::InvalidBlock, "block epoch/proposer differ from envelope", {raw});
        return std::nullopt;
    }
    return block;
}

void BlockBroadcast::store(Step* step, const Digest& d, const Bytes& env, const Signature& sig,
                           Block&& block, Epoch e) {
    if (blocks_.count(d)) return;
    if (step) step->durable(DurableRecord::Type::Block, e, env);
    const NodeId j = block.proposer;
    bytes_ += env.size();
    blocks_[d] = StoredBlock{env, std::move(block), e, j, sig, {}};
}

BlockBroadcast::Accept BlockBroadcast::accept(Step& step, const Envelope& env, const Bytes& raw,
                                              Block&& block, const Digest& d, bool in_window) {
    const Epoch e = env.epoch;
    const NodeId j = env.sender;
    auto& st = state(e);
    auto acc = st.accepted.find(j);
    if (acc != st.accepted.end() && acc->second != d) {
        // Equivocation: evidence only; stored only if certified.
        std::vector<Bytes> evidence{raw};
        if (auto other = blocks_.find(acc->second); other != blocks_.end()) {
            evidence.push_back(other->second.envelope);
        }
        step.fault(j, FaultKind::Equivocation, "two blocks for one (epoch, proposer)",
                   std::move(evidence));
        if (certified(e, j, d)) store(&step, d, raw, env.sig, std::move(block), e);
        return Accept::Equivocation;
    }
    const bool first = acc == st.accepted.end();
    store(&step, d, raw, env.sig, std::move(block), e);
    if (first && in_window) {
        st.accepted[j] = d;
        return Accept::First;
    }
    return Accept::Stored;
}

void BlockBroadcast::note_request_digests(const Digest& digest,
                                          std::vector<Digest> request_digests) {
    auto it = blocks_.find(digest);
    if (it == blocks_.end() || it->second.block.requests.size() != request_digests.size()) return;
    it->second.request_digests = std::move(request_digests);
}

const BlockBroadcast::StoredBlock* BlockBroadcast::block(const Digest& digest) const {
    auto it = blocks_.find(digest);
    return it == blocks_.end() ? nullptr : &it->second;
}

std::optional<Digest> BlockBroadcast::accepted(Epoch e, NodeId j) const {
    const auto* st = find(e);
    if (!st) return std::nullopt;
    auto it = st->accepted.find(j);
    if (it == st->accepted.end()) return std::nullopt;
    return it->second;
}

// ---- SEEN and certificates ------------------------------------------------------------

bool BlockBroadcast::seen_by(Epoch e, NodeId j, NodeId sender, const Digest& digest) const {
    const EpochState* st = find(e);
    if (st == nullptr) return false;
    auto it = st->seen_from.find({j, sender});
    return it != st->seen_from.end() && it->second.first == digest;
}

std::optional<Certificate> BlockBroadcast::count_seen(Step& step, Epoch e, NodeId sender,
                                                      const SeenBody& seen, const Signature& sig,
                                                      const Bytes& raw) {
    return count_vote(step, e, seen.proposer, sender, seen.digest, sig, raw, false);
}

std::optional<Certificate> BlockBroadcast::count_block(Step& step, Epoch e, NodeId j,
                                                       const Digest& digest, const Signature& sig,
                                                       const Bytes& raw) {
    return count_vote(step, e, j, j, digest, sig, raw, true);
}

std::optional<Certificate> BlockBroadcast::count_vote(Step& step, Epoch e, NodeId j, NodeId sender,
                                                      const Digest& d, const Signature& sig,
                                                      const Bytes& raw, bool block_vote) {
    auto& st = state(e);
    const auto key = std::make_pair(j, sender);
    if (auto prev = st.seen_from.find(key); prev != st.seen_from.end()) {
        if (prev->second.first != d) {
            // A block vote keeps no copy of its envelope: the stored block is it.
            const bool with_block = block_vote || prev->second.second.empty();
            std::vector<Bytes> evidence;
            if (!prev->second.second.empty()) {
                evidence.push_back(prev->second.second);
            } else if (const auto* b = block(prev->second.first)) {
                evidence.push_back(b->envelope);
            }
            evidence.push_back(raw);
            step.fault(sender, FaultKind::Equivocation,
                       with_block ? "a block and a SEEN of its proposer name different digests"
                                  : "two SEENs for one (epoch, proposer)",
                       std::move(evidence));
        }
        return std::nullopt;
    }
    st.seen_from[key] = {d, block_vote ? Bytes{} : raw};
    auto& sigs = st.seen[{j, d}];
    sigs[sender] = sig;
    if (sigs.size() < params_.cert_quorum || st.certs.count(j)) return std::nullopt;
    Certificate c;
    c.epoch = e;
    c.proposer = j;
    c.digest = d;
    for (const auto& [s, sg] : sigs) c.sigs.push_back({s, sg});  // std::map: increasing ids
    return c;
}

bool cert_signature_valid(const CryptoSuite& crypto, const Digest& chain_id, const Certificate& c,
                          const SignerSig& s) {
    if (s.signer == c.proposer &&
        crypto.verify(s.signer, kEnvelopeTag,
                      envelope_sign_payload_of(chain_id, s.signer, c.epoch, Kind::Block, c.digest),
                      s.sig)) {
        return true;
    }
    return crypto.verify(s.signer, kEnvelopeTag,
                         envelope_sign_payload(chain_id, s.signer, c.epoch, Kind::Seen,
                                               encode(SeenBody{c.proposer, c.digest})),
                         s.sig);
}

bool BlockBroadcast::cert_valid(const Certificate& c) const {
    if (c.proposer >= params_.n || c.sigs.size() < params_.cert_quorum) return false;
    NodeId last = 0;
    bool first = true;
    for (const auto& s : c.sigs) {
        if (s.signer >= params_.n || (!first && s.signer <= last)) return false;
        first = false;
        last = s.signer;
        if (!cert_signature_valid(crypto_, params_.chain_id, c, s)) return false;
    }
    return true;
}

BlockBroadcast::Adopt BlockBroadcast::adopt(Step& step, const Certificate& c) {
    auto& st = state(c.epoch);
    if (auto existing = st.certs.find(c.proposer); existing != st.certs.end()) {
        return existing->second.digest == c.digest ? Adopt::Known : Adopt::Conflict;
    }
    st.certs[c.proposer] = c;
    step.durable(DurableRecord::Type::Cert, c.epoch, encode(c));
    return Adopt::Adopted;
}

const Certificate* BlockBroadcast::cert(Epoch e, NodeId j) const {
    const auto* st = find(e);
    if (!st) return nullptr;
    auto it = st->certs.find(j);
    return it == st->certs.end() ? nullptr : &it->second;
}

bool BlockBroadcast::certified(Epoch e, NodeId j, const Digest& d) const {
    const auto* c = cert(e, j);
    return c && c->digest == d;
}

// ---- repair ------------------------------------------------------------------------------

void BlockBroadcast::fetch_block(Step& step, Epoch e, const Certificate& c, std::uint64_t now) {
    auto& next = state(e).block_fetch_next_ms[c.digest];
    if (now < next) return;
    next = now + params_.repair_initial_ms;
    FetchRequest fr{FetchType::Block, c.proposer, c.digest};
    Bytes env =
        seal_envelope(crypto_, params_.chain_id, params_.self, e, Kind::FetchRequest, encode(fr));
    // Ask t+1 signers in turn (at least one honest signer holds it); rotate by time.
    const std::size_t k =
        (now / std::max<std::uint64_t>(1, params_.repair_initial_ms)) % c.sigs.size();
    for (std::size_t i = 0; i < std::min<std::size_t>(params_.t + 1, c.sigs.size()); ++i) {
        const NodeId to = c.sigs[(k + i) % c.sigs.size()].signer;
        if (to != params_.self) step.send(to, Kind::FetchRequest, env);
    }
}

void BlockBroadcast::fetch_cert(Step& step, Epoch e, NodeId j, std::uint64_t now) {
    auto& st = state(e);
    if (now < st.cert_fetch_next_ms) return;
    st.cert_fetch_next_ms = now + params_.repair_initial_ms;
    FetchRequest fr{FetchType::Cert, j, Digest{}};
    step.broadcast(Kind::FetchRequest, seal_envelope(crypto_, params_.chain_id, params_.self, e,
                                                     Kind::FetchRequest, encode(fr)));
}

std::optional<Bytes> BlockBroadcast::block_envelope(const Digest& digest) const {
    const auto* b = block(digest);
    if (!b) return std::nullopt;
    return b->envelope;
}

std::optional<Bytes> BlockBroadcast::cert_envelope(Epoch e, NodeId j) const {
    auto c = servable_cert(e, j);
    if (!c) return std::nullopt;
    return seal_envelope(crypto_, params_.chain_id, params_.self, e, Kind::Cert, encode(*c));
}

std::optional<Certificate> BlockBroadcast::servable_cert(Epoch e, NodeId j) const {
    const auto* c = cert(e, j);
    if (!c) return std::nullopt;
    if (cert_valid(*c)) return *c;
    Certificate rebuilt{c->epoch, c->proposer, c->digest, {}};
    const EpochState* st = find(e);
    auto votes = st->seen.find({j, c->digest});
    if (votes == st->seen.end()) return std::nullopt;
    for (const auto& [signer, sig] : votes->second) {  // std::map: increasing ids
        const SignerSig entry{signer, sig};
        if (cert_signature_valid(crypto_, params_.chain_id, rebuilt, entry)) {
            rebuilt.sigs.push_back(entry);
        }
        if (rebuilt.sigs.size() == params_.cert_quorum) return rebuilt;
    }
    return std::nullopt;
}

// ---- recovery ---------------------------------------------------------------------------------

std::optional<Digest> BlockBroadcast::restore_block(const Bytes& envelope) {
    auto env = decode_envelope(envelope, params_.limits);
    if (!env) return std::nullopt;
    auto b = decode_block(env.value().body, params_.limits);
    if (!b) return std::nullopt;
    const Digest d = digest_of(env.value().body);
    if (auto old = blocks_.find(d); old != blocks_.end()) {
        bytes_ -= old->second.envelope.size();
        blocks_.erase(old);
    }
    store(nullptr, d, envelope, env.value().sig, std::move(b.value()), env.value().epoch);
    return d;
}

void BlockBroadcast::restore_block_vote(Epoch e, NodeId j, const Digest& d) {
    const auto* b = block(d);
    if (b == nullptr || b->proposer != j) return;
    auto& st = state(e);
    if (!st.seen_from.try_emplace({j, j}, d, Bytes{}).second) return;
    st.seen[{j, d}][j] = b->sig;
}

void BlockBroadcast::restore_accepted(Epoch e, NodeId j, const Digest& digest) {
    if (state(e).accepted.try_emplace(j, digest).second) restore_block_vote(e, j, digest);
}

void BlockBroadcast::restore_cert(const Certificate& cert) {
    state(cert.epoch).certs[cert.proposer] = cert;
}

void BlockBroadcast::restore_own_block(Epoch e, const Digest& digest) {
    state(e).accepted[params_.self] = digest;
    restore_block_vote(e, params_.self, digest);
}

void BlockBroadcast::restore_own_seen(Epoch e, const SeenBody& seen, const Signature& sig,
                                      const Bytes& raw) {
    auto& st = state(e);
    st.accepted[seen.proposer] = seen.digest;
    st.seen_from[{seen.proposer, params_.self}] = {seen.digest, raw};
    st.seen[{seen.proposer, seen.digest}][params_.self] = sig;
}

// ---- pruning and views ---------------------------------------------------------------------

void BlockBroadcast::prune(const std::function<bool(Epoch)>& retire,
                           const std::function<bool(Epoch)>& keep_block) {
    for (auto it = epochs_.begin(); it != epochs_.end();) {
        it = retire(it->first) ? epochs_.erase(it) : std::next(it);
    }
    for (auto it = blocks_.begin(); it != blocks_.end();) {
        if (keep_block(it->second.epoch)) {
            ++it;
        } else {
            bytes_ -= it->second.envelope.size();
            it = blocks_.erase(it);
        }
    }
}

std::size_t BlockBroadcast::certs() const {
    std::size_t n = 0;
    for (const auto& [e, st] : epochs_) n += st.certs.size();
    return n;
}

std::size_t BlockBroadcast::seen_votes() const {
    std::size_t n = 0;
    for (const auto& [e, st] : epochs_) n += st.seen_from.size();
    return n;
}

}  // namespace tob::consensus
