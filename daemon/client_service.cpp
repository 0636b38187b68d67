// ClientService: pending client requests and their replies (client_service.h).

#include "daemon/client_service.h"

#include "crypto/hash.h"
#include "daemon/client_access.h"
#include "daemon/memory_budget.h"

namespace tob::daemon {

using namespace tob::consensus;
using namespace tob::client;

namespace {

// A pending request nobody answered within this long is forgotten.
constexpr std::uint64_t kPendingExpiryMs = 300'000;
// Client connections remembered per pending request (retries of one request).
constexpr std::size_t kRoutingIdsMax = 16;

}  // namespace

ClientService::ClientService(Options options, const crypto::SigningKey& key, kv::KvMachine& kv,
                             Transport& transport, VerifyPool& pool, NodeMetrics& metrics,
                             const std::atomic<bool>& halted, std::function<StatusMsg()> status)
    : options_(std::move(options)),
      key_(key),
      kv_(kv),
      transport_(transport),
      pool_(pool),
      metrics_(metrics),
      halted_(halted),
      status_(std::move(status)),
      rates_(options_.client_bytes_per_s, options_.client_burst_bytes, options_.client_rate_entries,
             options_.client_frame_cost_min,
             {options_.client_new_keys_per_s, options_.client_new_keys_burst}) {}

namespace {
// The rate source of a client frame: its Curve key, or its connection without Curve.
std::string source_of(const std::string& routing_id, const std::string& peer_key) {
    return peer_key.empty() ? "id:" + routing_id : peer_key;
}
}  // namespace

bool ClientService::new_client(const PublicKey& client) const {
    auto it = pending_.lower_bound(Key{client, 0});
    if (it != pending_.end() && it->first.client == client) return false;
    return !kv_.dedup_expiry(client).has_value();
}

void ClientService::reply(const std::string& id, const ClientMessage& m) {
    transport_.send_client(id, encode_client_message(m));
}

void ClientService::send_reply(const std::string& id, ReplyMsg& r) {
    if (options_.sign_replies) r.sig = sign_reply(key_, options_.chain_id, r);
    reply(id, r);
}

void ClientService::on_frame(const std::string& id, const std::string& peer_key, Bytes body,
                             std::uint64_t now_ms) {
    // The source's byte rate first: a frame over it costs no decoding, hashing
    // or check (daemon/client_rate.h).
    const std::string source = source_of(id, peer_key);
    if (!rates_.admit(source, body.size(), now_ms)) {
        metrics_.client_rate_limited.inc();
        reply(id, ErrorMsg{ErrorCode::Overloaded,
                           "this client's rate (" + std::to_string(rates_.bytes_per_s()) +
                               " bytes/s, " + std::to_string(rates_.frames_per_s()) +
                               " requests/s at this node) is used up: retry later",
                           {}});
        return;
    }
    // Decoding and checking happen on the verification workers, in this
    // client's own bounded queue; a full queue is answered, not dropped.
    if (!pool_.submit_client(id, peer_key, std::move(body))) {
        metrics_.verify_queue_full.inc();
        reply(id, ErrorMsg{ErrorCode::Overloaded,
                           "this client's verification queue is full: retry later",
                           {}});
    }
}

void ClientService::on_message(const std::string& id, const std::string& peer_key,
                               const ClientMessage& msg) {
    if (std::holds_alternative<StatusQueryMsg>(msg)) {
        reply(id, status_());
        return;
    }
    if (auto* get = std::get_if<LocalGetMsg>(&msg)) {
        if (auto refused =
                local_get_refusal(*get, peer_key, options_.chain_id, options_.permissions)) {
            metrics_.client_rejected.inc();
            reply(id, ErrorMsg{ErrorCode::Forbidden, *refused, {}});
            return;
        }
        transport_.credit_client(id);
        reply(id, LocalValueMsg{kv_.last_applied(), kv_.read(get->key)});
        return;
    }
    metrics_.client_rejected.inc();
    reply(id, ErrorMsg{ErrorCode::BadRequest, "not a client-to-node message", {}});
}

void ClientService::answer_from_table(const std::string& id, const Request& req, const Digest& rd) {
    ReplyMsg r;
    r.node = options_.self;
    r.client = req.client;
    r.nonce = req.nonce;
    r.request_digest = rd;
    auto outs = kv_.stored_outputs(req.client, req.nonce);
    r.status = outs ? ReplyStatus::Committed : ReplyStatus::Duplicate;
    if (outs) r.outputs = std::move(*outs);
    send_reply(id, r);
}

bool ClientService::on_verified(const VerifyResult& r, std::uint64_t now_ms) {
    if (r.message) {
        on_message(r.routing_id, r.peer_key, *r.message);
        return false;
    }
    if (!r.request) {
        metrics_.client_rejected.inc();
        reply(r.routing_id, ErrorMsg{ErrorCode::BadRequest, r.error, r.raw_digest});
        return false;
    }
    const Request& req = *r.request;
    const Digest rd = r.raw_digest;  // digest of the request bytes (verify_pool.cpp)
    if (halted_) {
        reply(r.routing_id, ErrorMsg{ErrorCode::Halted, "node halted with an alarm", rd});
        return false;
    }
    if (kv_.committed(req.client, req.nonce)) {
        transport_.credit_client(r.routing_id);
        answer_from_table(r.routing_id, req, rd);
        return false;
    }
    if (kv_.expired(req)) {  // the pool would drop it: say so now
        reply(r.routing_id, ErrorMsg{ErrorCode::Expired,
                                     "request expires at epoch " + std::to_string(req.expires) +
                                         ", outside what may commit after epoch " +
                                         std::to_string(kv_.last_applied()) + " here",
                                     rd});
        return false;
    }
    const Key key{req.client, req.nonce};
    const bool known = pending_.count(key) > 0;
    if (!known && new_client(req.client) &&
        !rates_.admit_new_key(source_of(r.routing_id, r.peer_key), now_ms)) {
        metrics_.client_new_keys_limited.inc();
        reply(r.routing_id, ErrorMsg{ErrorCode::Overloaded,
                                     "this connection brings new client keys faster than " +
                                         std::to_string(rates_.new_keys_per_s()) +
                                         " a second at this node: retry later, or keep the key",
                                     rd});
        return false;
    }
    const std::uint64_t cost = (known ? 0 : kPendingEntryBytes) + r.routing_id.size();
    if (!known && (pending_.size() >= options_.pending_max ||
                   pending_bytes_ + cost > options_.pending_bytes_max)) {
        reply(r.routing_id,
              ErrorMsg{ErrorCode::Overloaded, "too many requests waiting for their outcome", rd});
        return false;
    }
    auto& p = pending_[key];
    if (!known) {
        p.since_ms = now_ms;
        p.request_digest = rd;
        p.ops = req.ops.size();
        pending_bytes_ += kPendingEntryBytes;
    }
    if (p.routing_ids.size() < kRoutingIdsMax &&
        pending_bytes_ + r.routing_id.size() <= options_.pending_bytes_max) {
        p.routing_ids.push_back(r.routing_id);
        pending_bytes_ += r.routing_id.size();
    }
    transport_.credit_client(r.routing_id);  // the connection earned its slot
    return true;
}

void ClientService::on_overloaded(const Request& req) {
    auto it = pending_.find(Key{req.client, req.nonce});
    if (it == pending_.end()) return;
    for (const auto& id : it->second.routing_ids) {
        reply(id, ErrorMsg{ErrorCode::Overloaded, "pool full: this client holds its share",
                           it->second.request_digest});
    }
    pending_.erase(it);
}

ReplyMsg ClientService::committed_reply(const EpochResult& epoch, const RequestResult& r,
                                        const Pending& p, std::uint64_t now_ms) {
    ReplyMsg out;
    out.node = options_.self;
    out.client = r.client;
    out.nonce = r.nonce;
    out.request_digest = r.request_digest;
    out.epoch = epoch.epoch;
    out.position = r.position;
    if (r.malformed) {
        out.status = r.skip == Skip::OutputsOver     ? ReplyStatus::OutputsOver
                     : r.skip == Skip::EpochFull     ? ReplyStatus::EpochFull
                     : r.skip == Skip::Expired       ? ReplyStatus::Expired
                     : r.skip == Skip::ExpiresTooFar ? ReplyStatus::ExpiresTooFar
                                                     : ReplyStatus::Malformed;
    } else if (r.forbidden) {
        out.status = ReplyStatus::Forbidden;
    } else if (r.duplicate) {
        // A retry's second copy was ordered: answer with the stored outcome of the
        // first, exactly as a node answering from its dedup table would.
        auto outs = kv_.stored_outputs(r.client, r.nonce);
        out.status = outs ? ReplyStatus::Committed : ReplyStatus::Duplicate;
        out.epoch = 0;
        out.position = 0;
        if (outs) out.outputs = std::move(*outs);
    } else {
        out.status = ReplyStatus::Committed;
        out.outputs = r.outputs;
        metrics_.commit_latency.observe(static_cast<double>(now_ms - p.since_ms) / 1000.0);
    }
    return out;
}

void ClientService::on_committed(const EpochResult& epoch, std::uint64_t now_ms) {
    for (const auto& r : epoch.results) {
        auto it = pending_.find(Key{r.client, r.nonce});
        if (it == pending_.end()) continue;
        ReplyMsg out = committed_reply(epoch, r, it->second, now_ms);
        for (const auto& id : it->second.routing_ids) send_reply(id, out);
        forget(it);
    }
}

std::map<ClientService::Key, ClientService::Pending>::iterator ClientService::forget(
    std::map<Key, Pending>::iterator it) {
    std::uint64_t cost = kPendingEntryBytes;
    for (const auto& id : it->second.routing_ids) cost += id.size();
    pending_bytes_ -= std::min(cost, pending_bytes_);
    return pending_.erase(it);
}

void ClientService::expire(std::uint64_t now_ms) {
    rates_.expire(now_ms);
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (now_ms - it->second.since_ms > kPendingExpiryMs)
            it = forget(it);
        else
            ++it;
    }
}

}  // namespace tob::daemon
