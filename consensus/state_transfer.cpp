// StateTransfer: see consensus/state_transfer.h for the rules and the bounds.

#include "consensus/state_transfer.h"

#include <algorithm>

#include "consensus/big_endian.h"
#include "consensus/catch_up.h"
#include "consensus/check.h"
#include "consensus/codec.h"

namespace tob::consensus {

using be::put_u32;
using be::put_u64;

namespace {

// What a bucket costs in a chunk request's budget.
std::uint64_t bucket_cost(const BucketSummary& s) { return s.bytes + 12 * s.count; }

}  // namespace

Bytes encode_held(const HeldCheckpoint& h) {
    Bytes out;
    put_u64(out, h.epoch);
    out.insert(out.end(), h.root.begin(), h.root.end());
    out.insert(out.end(), h.manifest.begin(), h.manifest.end());
    put_u32(out, static_cast<std::uint32_t>(h.certificate.size()));
    for (const auto& c : h.certificate) {
        put_u32(out, static_cast<std::uint32_t>(c.size()));
        out.insert(out.end(), c.begin(), c.end());
    }
    return out;
}

std::optional<HeldCheckpoint> decode_held(ByteView in) {
    const std::size_t head = 8 + 32 + kManifestBytes + 4;
    if (in.size() < head) return std::nullopt;
    HeldCheckpoint h;
    h.epoch = be::get(in, 0, 8);
    std::copy(in.begin() + 8, in.begin() + 40, h.root.begin());
    h.manifest.assign(in.begin() + 40, in.begin() + 40 + kManifestBytes);
    std::size_t at = 40 + kManifestBytes;
    const std::uint64_t count = be::get(in, at, 4);
    at += 4;
    if (count > 4096) return std::nullopt;
    for (std::uint64_t i = 0; i < count; ++i) {
        if (in.size() - at < 4) return std::nullopt;
        const std::uint64_t len = be::get(in, at, 4);
        at += 4;
        if (in.size() - at < len) return std::nullopt;
        h.certificate.emplace_back(in.begin() + at, in.begin() + at + len);
        at += len;
    }
    if (at != in.size()) return std::nullopt;
    return h;
}

std::optional<CommitBody> verify_certificate(Epoch e, const std::vector<Bytes>& certificate,
                                             const CryptoSuite& crypto, std::uint32_t n,
                                             std::uint32_t t, const Digest& chain_id,
                                             const Limits& limits) {
    std::map<Digest, std::set<NodeId>> signers;
    std::map<Digest, CommitBody> bodies;
    for (const auto& raw : certificate) {
        auto env = decode_envelope(raw, limits);
        if (!env) continue;
        const Envelope& c = env.value();
        if (c.chain_id != chain_id || c.kind != Kind::Commit || c.epoch != e || c.sender >= n) {
            continue;
        }
        if (!crypto.verify(c.sender, kEnvelopeTag,
                           envelope_sign_payload(c.chain_id, c.sender, c.epoch, c.kind, c.body),
                           c.sig)) {
            continue;
        }
        auto body = decode_commit(c.body, limits);
        if (!body || !body.value().checkpoint_root) continue;
        const Digest key = digest_of(encode(body.value()));
        signers[key].insert(c.sender);
        bodies[key] = body.value();
    }
    for (const auto& [key, who] : signers) {
        if (who.size() >= t + 1) return bodies[key];
    }
    return std::nullopt;
}

StateTransfer::StateTransfer(const TransferParams& params, const CryptoSuite& crypto,
                             SnapshotStore* store)
    : p_(params), crypto_(crypto), store_(store) {}

// ---- this node's checkpoints ------------------------------------------------------------

std::optional<Digest> StateTransfer::applied(Epoch e) {
    if (!is_checkpoint(e)) return std::nullopt;
    const Digest root = store_->take_checkpoint(e);
    taken_[e] = root;
    while (taken_.size() > kTakenMax) {
        store_->release_checkpoint(taken_.begin()->first);
        taken_.erase(taken_.begin());
    }
    return root;
}

std::optional<Epoch> StateTransfer::newest_servable() const {
    if (!enabled()) return std::nullopt;
    auto all = store_->servable();
    if (all.empty()) return std::nullopt;
    return all.back();
}

void StateTransfer::tick(Step& step, const CatchUp& catchup, std::uint64_t now) {
    if (!enabled()) return;
    for (auto it = taken_.begin(); it != taken_.end();) {
        auto cert =
            catchup.stable(it->first) ? catchup.matching_commits(it->first) : std::vector<Bytes>{};
        if (cert.size() < p_.t + 1) {
            ++it;
            continue;
        }
        store_->checkpoint_stable(it->first, cert);
        it = taken_.erase(it);
    }
    const auto servable = store_->servable();
    if (servable.empty()) return;
    const Epoch newest = servable.back();
    // Taken checkpoints older than a servable one will never be needed.
    while (!taken_.empty() && taken_.begin()->first < newest) {
        store_->release_checkpoint(taken_.begin()->first);
        taken_.erase(taken_.begin());
    }
    for (Epoch e : servable) {
        if (e == newest) break;
        auto served = last_served_ms_.find(e);
        if (served != last_served_ms_.end() && now < served->second + kPinMs) continue;
        store_->release_checkpoint(e);
        last_served_ms_.erase(e);
    }
    // Prune below the oldest checkpoint still served minus the retention.
    const Epoch floor = newest > p_.retention ? newest - p_.retention : 0;
    if (floor > pruned_below_) {
        pruned_below_ = floor;
        step.prune_below = std::max(step.prune_below, floor);
    }
}

// ---- serving ----------------------------------------------------------------------------

void StateTransfer::on_request(Step& step, const Envelope& env, std::uint64_t now) {
    if (!enabled() || env.sender == p_.self) return;
    auto req = decode_snapshot_request(env.body, p_.limits);
    if (!req) {
        step.fault(env.sender, FaultKind::Malformed, "snapshot request: " + req.error());
        return;
    }
    // At most 64 answers per peer per repair_initial_ms: serving is the expensive side
    // (an honest asker has at most kPerPeer chunk requests in flight here).
    auto& [since, count] = served_window_[env.sender];
    if (now >= since + p_.repair_initial_ms) {
        since = now;
        count = 0;
    }
    if (++count > 64) return;
    if (req.value().op == SnapshotOp::Offer) {
        serve_offer(step, env, now);
    } else {
        serve_chunk(step, env, req.value(), now);
    }
}

void StateTransfer::serve_offer(Step& step, const Envelope& env, std::uint64_t) {
    auto newest = newest_servable();
    if (!newest || *newest <= env.epoch) return;  // nothing the asker lacks
    auto held = store_->held(*newest);
    if (!held) return;
    SnapshotReply reply;
    reply.op = SnapshotOp::Offer;
    reply.root = held->root;
    reply.certificate = held->certificate;
    reply.manifest = held->manifest;
    Bytes out =
        seal_envelope(crypto_, p_.chain_id, p_.self, *newest, Kind::SnapshotReply, encode(reply));
    if (out.size() <= p_.limits.message_bytes_max) {
        step.send(env.sender, Kind::SnapshotReply, out);
    }
}

void StateTransfer::serve_chunk(Step& step, const Envelope& env, const SnapshotRequest& req,
                                std::uint64_t now) {
    auto held = store_->held(env.epoch);
    if (!held || held->root != req.root) return;  // not (or no longer) served here
    const std::uint64_t room = p_.limits.message_bytes_max > 4096 + req.after_key.size()
                                   ? p_.limits.message_bytes_max - 4096 - req.after_key.size()
                                   : 0;
    const std::uint64_t budget = std::min<std::uint64_t>(req.bytes_max, room);
    const std::uint32_t count = std::min(req.bucket_count, kStateBuckets - req.first_bucket);
    auto chunk = store_->read_chunk(env.epoch, req.first_bucket, count, req.after_key, budget);
    if (!chunk) return;
    SnapshotReply reply;
    reply.op = SnapshotOp::Chunk;
    reply.root = req.root;
    reply.first_bucket = chunk->first_bucket;
    reply.last_bucket = chunk->last_bucket;
    reply.last_complete = chunk->last_complete;
    reply.after_key = req.after_key;
    reply.entries = std::move(chunk->entries);
    Bytes out =
        seal_envelope(crypto_, p_.chain_id, p_.self, env.epoch, Kind::SnapshotReply, encode(reply));
    if (out.size() > p_.limits.message_bytes_max) return;  // one entry too big to move
    step.send(env.sender, Kind::SnapshotReply, out);
    last_served_ms_[env.epoch] = now;
    ++chunks_served_;
}

// ---- looking for a snapshot ---------------------------------------------------------------

void StateTransfer::maybe_start(Step& step, Epoch delivered, Epoch peers_highest,
                                std::uint64_t now) {
    if (!enabled()) return;
    // The stall clock runs only while a peer is known to be ahead: a node that was cut
    // off (and so saw no progress) gets kStallMs of catch-up by proofs after it hears
    // of newer epochs, before it asks for a snapshot.
    const bool behind = peers_highest > delivered + 1;
    if (delivered != last_delivered_ || !behind || delivered_since_ms_ == 0) {
        last_delivered_ = delivered;
        delivered_since_ms_ = now;
    }
    if (transfer_ && transfer_->epoch <= delivered) {  // caught up some other way
        transfer_.reset();
        progress_ = {};
    }
    const bool far = peers_highest > delivered + std::max<Epoch>(1, p_.retention);
    const bool stalled = behind && now >= delivered_since_ms_ + kStallMs;
    const bool orphaned = transfer_ && transfer_->sources.empty();
    wanted_ = (!transfer_ && (far || stalled)) || orphaned;
    if (!wanted_ && !transfer_) progress_ = {};
    if (!wanted_ || now < next_offer_ms_) return;
    next_offer_ms_ = now + p_.repair_max_ms;
    SnapshotRequest req;  // an offer request
    Bytes env =
        seal_envelope(crypto_, p_.chain_id, p_.self, delivered, Kind::SnapshotRequest, encode(req));
    step.broadcast(Kind::SnapshotRequest, env);
    if (!progress_.active) {
        progress_ = {};
        progress_.active = true;
        progress_.started_ms = now;
    }
}

std::optional<InstalledSnapshot> StateTransfer::on_reply(Step& step, const Envelope& env,
                                                         Epoch delivered, std::uint64_t now) {
    if (!enabled() || env.sender == p_.self) return std::nullopt;
    if (transfer_ && transfer_->epoch <= delivered) {  // caught up by proofs meanwhile
        transfer_.reset();
        progress_ = {};
    }
    auto reply = decode_snapshot_reply(env.body, p_.limits);
    if (!reply) {
        step.fault(env.sender, FaultKind::Malformed, "snapshot reply: " + reply.error());
        return std::nullopt;
    }
    if (reply.value().op == SnapshotOp::Offer) {
        on_offer(step, env, reply.value(), delivered, now);
        return std::nullopt;
    }
    return on_chunk(step, env, reply.value(), now);
}

void StateTransfer::on_offer(Step& step, const Envelope& env, const SnapshotReply& reply,
                             Epoch delivered, std::uint64_t now) {
    if (env.epoch <= delivered || !is_checkpoint(env.epoch)) return;  // nothing for us
    if (!wanted_ && !transfer_) return;
    if (transfer_ && transfer_->liars.count(env.sender)) return;
    auto tuple = verify_certificate(env.epoch, reply.certificate, crypto_, p_.n, p_.t, p_.chain_id,
                                    p_.limits);
    auto manifest = decode_manifest(reply.manifest);
    if (!tuple || tuple->checkpoint_root != reply.root || !manifest ||
        state_root(*manifest) != reply.root) {
        step.fault(env.sender, FaultKind::ProtocolViolation,
                   "snapshot offer for epoch " + std::to_string(env.epoch) +
                       " without t+1 COMMITs on its root, or with a manifest off that root");
        return;
    }
    if (transfer_ && transfer_->epoch == env.epoch && transfer_->root == reply.root) {
        transfer_->sources.try_emplace(env.sender);
        progress_.sources = static_cast<std::uint32_t>(transfer_->sources.size());
        schedule(step, now);
        return;
    }
    if (transfer_ && !transfer_->sources.empty()) return;  // keep the running transfer
    Transfer t;
    t.epoch = env.epoch;
    t.root = reply.root;
    t.tuple = *tuple;
    t.certificate = reply.certificate;
    t.manifest = std::move(*manifest);
    t.sources.try_emplace(env.sender);
    t.done.assign(kStateBuckets, false);
    t.hashes.assign(kStateBuckets, BucketHash{});
    const BucketSummary empty = BucketHash{}.summary();
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        if (t.manifest[b] == empty) t.done[b] = true;  // nothing to fetch
    }
    transfer_ = std::move(t);
    store_->stage_begin();
    progress_ = {};
    progress_.active = true;
    progress_.epoch = env.epoch;
    progress_.started_ms = now;
    progress_.sources = 1;
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        progress_.bytes_total += transfer_->manifest[b].bytes;
        if (transfer_->done[b]) ++progress_.buckets_done;
    }
    schedule(step, now);
}

// ---- chunks ------------------------------------------------------------------------------

void StateTransfer::schedule(Step& step, std::uint64_t now) {
    if (!transfer_) return;
    Transfer& t = *transfer_;
    std::vector<bool> busy(kStateBuckets, false);
    for (const auto& o : t.outstanding) {
        for (std::uint32_t b = o.first; b < o.first + o.count; ++b) busy[b] = true;
    }
    for (const auto& [b, part] : t.partial) busy[b] = true;  // continued by its peer only
    std::uint32_t next = 0;
    for (bool progress = true; progress;) {
        progress = false;
        for (auto& [peer, src] : t.sources) {
            if (src.in_flight >= kPerPeer) continue;
            while (next < kStateBuckets && (t.done[next] || busy[next])) ++next;
            if (next >= kStateBuckets) return;
            Outstanding o{peer, next, 0, {}, now};
            std::uint64_t cost = 0;
            while (next < kStateBuckets && !t.done[next] && !busy[next] &&
                   (o.count == 0 || cost + bucket_cost(t.manifest[next]) <= p_.chunk_bytes)) {
                cost += bucket_cost(t.manifest[next]);
                busy[next] = true;
                ++o.count;
                ++next;
            }
            SnapshotRequest req{SnapshotOp::Chunk,
                                t.root,
                                o.first,
                                o.count,
                                {},
                                static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                    p_.chunk_bytes, p_.limits.message_bytes_max))};
            step.send(peer, Kind::SnapshotRequest,
                      seal_envelope(crypto_, p_.chain_id, p_.self, t.epoch, Kind::SnapshotRequest,
                                    encode(req)));
            ++src.in_flight;
            t.outstanding.push_back(std::move(o));
            progress = true;
        }
    }
}

bool StateTransfer::verify_chunk(const Outstanding& asked, const SnapshotReply& reply, NodeId from,
                                 std::string& why,
                                 std::vector<std::pair<std::uint32_t, BucketHash>>& complete,
                                 std::optional<Partial>& partial) const {
    const Transfer& t = *transfer_;
    if (reply.first_bucket != asked.first || reply.last_bucket >= asked.first + asked.count) {
        why = "buckets outside the request";
        return false;
    }
    if (p_.unsafe_trust_chunks && asked.after_key.empty()) {
        // The planted bug: every bucket of the reply taken as it is.
        std::vector<BucketHash> h(reply.last_bucket - reply.first_bucket + 1);
        for (const auto& e : reply.entries) {
            const std::uint32_t b = state_bucket(e.key);
            if (b >= reply.first_bucket && b <= reply.last_bucket)
                h[b - reply.first_bucket].add(e.key, e.value);
        }
        for (std::uint32_t b = reply.first_bucket; b <= reply.last_bucket; ++b) {
            complete.push_back({b, h[b - reply.first_bucket]});
        }
        return reply.last_complete;
    }
    std::uint32_t cur = asked.first;
    BucketHash hash;
    Bytes prev;
    if (!asked.after_key.empty()) {
        auto it = t.partial.find(cur);
        if (it == t.partial.end() || it->second.peer != from) {
            why = "continuation of a bucket not started with this peer";
            return false;
        }
        hash = it->second.hash;
        prev = asked.after_key;
    }
    auto close = [&](std::uint32_t b, const BucketHash& h) {
        if (!h.matches(t.manifest[b])) {
            why = "bucket " + std::to_string(b) + " does not match the manifest";
            return false;
        }
        complete.push_back({b, h});
        return true;
    };
    bool any_in_last = false;
    for (const auto& e : reply.entries) {
        const std::uint32_t b = state_bucket(e.key);
        if (b < cur || b > reply.last_bucket) {
            why = "entry out of bucket order";
            return false;
        }
        while (cur < b) {
            if (!close(cur, hash)) return false;
            hash = BucketHash{};
            prev.clear();
            ++cur;
        }
        if (!prev.empty() &&
            !std::lexicographical_compare(prev.begin(), prev.end(), e.key.begin(), e.key.end())) {
            why = "keys not strictly increasing in bucket " + std::to_string(b);
            return false;
        }
        hash.add(e.key, e.value);
        if (hash.count > t.manifest[b].count || hash.bytes > t.manifest[b].bytes) {
            why = "bucket " + std::to_string(b) + " larger than the manifest says";
            return false;
        }
        prev = e.key;
        if (b == reply.last_bucket) any_in_last = true;
    }
    while (cur < reply.last_bucket) {
        if (!close(cur, hash)) return false;
        hash = BucketHash{};
        prev.clear();
        ++cur;
    }
    if (reply.last_complete) return close(cur, hash);
    if (!any_in_last || hash.count >= t.manifest[cur].count) {
        why = "a partial bucket without progress";
        return false;
    }
    partial = Partial{from, hash, prev};
    return true;
}

void StateTransfer::requeue(const Outstanding& o) {
    if (!transfer_) return;
    if (!o.after_key.empty() || transfer_->partial.count(o.first)) {
        // The parts of a bucket come from one peer; start it over.
        if (transfer_->partial.erase(o.first)) store_->stage_discard(o.first);
    }
}

void StateTransfer::reject(Step& step, const Envelope& env, const Outstanding& asked,
                           const std::string& why) {
    ++chunks_rejected_;
    step.fault(env.sender, FaultKind::InvalidSnapshot,
               "snapshot chunk of epoch " + std::to_string(env.epoch) + " (buckets " +
                   std::to_string(asked.first) + "+" + std::to_string(asked.count) + "): " + why,
               {encode(env)});
    Transfer& t = *transfer_;
    t.liars.insert(env.sender);
    t.sources.erase(env.sender);
    requeue(asked);
    // Every other request to the liar goes back to the queue.
    for (auto it = t.outstanding.begin(); it != t.outstanding.end();) {
        if (it->peer != env.sender) {
            ++it;
            continue;
        }
        requeue(*it);
        it = t.outstanding.erase(it);
    }
    progress_.sources = static_cast<std::uint32_t>(t.sources.size());
}

std::optional<InstalledSnapshot> StateTransfer::on_chunk(Step& step, const Envelope& env,
                                                         const SnapshotReply& reply,
                                                         std::uint64_t now) {
    if (!transfer_ || env.epoch != transfer_->epoch || reply.root != transfer_->root) {
        return std::nullopt;  // a late answer for an older transfer
    }
    Transfer& t = *transfer_;
    auto it = std::find_if(t.outstanding.begin(), t.outstanding.end(), [&](const Outstanding& o) {
        return o.peer == env.sender && o.first == reply.first_bucket &&
               o.after_key == reply.after_key;
    });
    if (it == t.outstanding.end()) return std::nullopt;  // timed out and re-asked already
    const Outstanding asked = *it;
    t.outstanding.erase(it);
    if (auto src = t.sources.find(env.sender); src != t.sources.end() && src->second.in_flight) {
        --src->second.in_flight;
    }
    std::string why;
    std::vector<std::pair<std::uint32_t, BucketHash>> complete;
    std::optional<Partial> partial;
    if (!verify_chunk(asked, reply, env.sender, why, complete, partial)) {
        reject(step, env, asked, why);
        schedule(step, now);
        return std::nullopt;
    }
    store_->stage(reply.entries);
    for (auto& [b, h] : complete) {
        t.partial.erase(b);
        t.done[b] = true;
        t.hashes[b] = h;
        ++progress_.buckets_done;
    }
    std::uint64_t done = 0;
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        if (t.done[b]) done += t.manifest[b].bytes;
    }
    if (partial) {
        const std::uint32_t b = reply.last_bucket;
        t.partial[b] = *partial;
        Outstanding o{env.sender, b, asked.first + asked.count - b, partial->last_key, now};
        SnapshotRequest req{SnapshotOp::Chunk,
                            t.root,
                            o.first,
                            o.count,
                            o.after_key,
                            static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                p_.chunk_bytes, p_.limits.message_bytes_max))};
        step.send(env.sender, Kind::SnapshotRequest,
                  seal_envelope(crypto_, p_.chain_id, p_.self, t.epoch, Kind::SnapshotRequest,
                                encode(req)));
        if (auto src = t.sources.find(env.sender); src != t.sources.end()) ++src->second.in_flight;
        t.outstanding.push_back(std::move(o));
    }
    for (const auto& [b, part] : t.partial) done += part.hash.bytes;
    progress_.bytes_done = done;
    if (std::all_of(t.done.begin(), t.done.end(), [](bool d) { return d; })) return finish(step);
    schedule(step, now);
    return std::nullopt;
}

std::optional<InstalledSnapshot> StateTransfer::finish(Step&) {
    Transfer& t = *transfer_;
    InstalledSnapshot out;
    out.epoch = t.epoch;
    out.tuple = t.tuple;
    out.certificate = t.certificate;
    for (const auto& s : t.manifest) {
        out.bytes += s.bytes;
        out.entries += s.count;
    }
    store_->install(t.epoch, t.tuple.state_digest, t.hashes);
    taken_[t.epoch] = t.root;
    ++installed_;
    transfer_.reset();
    wanted_ = false;
    progress_ = {};
    return out;
}

void StateTransfer::poll(Step& step, std::uint64_t now) {
    if (!transfer_) return;
    Transfer& t = *transfer_;
    for (auto it = t.outstanding.begin(); it != t.outstanding.end();) {
        if (now < it->sent_ms + kChunkTimeoutMs) {
            ++it;
            continue;
        }
        if (auto src = t.sources.find(it->peer); src != t.sources.end()) {
            if (src->second.in_flight) --src->second.in_flight;
            if (++src->second.strikes >= 3) t.sources.erase(src);
        }
        requeue(*it);
        it = t.outstanding.erase(it);
    }
    progress_.sources = static_cast<std::uint32_t>(t.sources.size());
    schedule(step, now);
}

}  // namespace tob::consensus
