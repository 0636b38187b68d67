// ClientService: pending client requests and their signed replies (client_service.h).

#include "daemon/client_service.h"

#include "crypto/hash.h"
#include "daemon/client_access.h"

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
      status_(std::move(status)) {}

void ClientService::reply(const std::string& id, const ClientMessage& m) {
    transport_.send_client(id, encode_client_message(m));
}

void ClientService::sign_and_send(const std::string& id, ReplyMsg& r) {
    r.sig = sign_reply(key_, options_.chain_id, r);
    reply(id, r);
}

void ClientService::on_frame(const std::string& id, const std::string& peer_key,
                             const Bytes& body) {
    auto msg = decode_client_message(body, options_.limits);
    if (!msg) {
        metrics_.client_rejected.inc();
        reply(id, ErrorMsg{ErrorCode::BadRequest, "undecodable message: " + msg.error(), {}});
        return;
    }
    if (auto* submit = std::get_if<SubmitMsg>(&msg.value())) {
        const Digest rd = digest_of(submit->request);
        if (halted_) {
            reply(id, ErrorMsg{ErrorCode::Halted, "node halted with an alarm", rd});
            return;
        }
        if (!pool_.submit_request(id, std::move(submit->request))) {
            metrics_.verify_queue_full.inc();
            reply(id, ErrorMsg{ErrorCode::Overloaded, "verification queue full", rd});
        }
        return;
    }
    if (std::holds_alternative<StatusQueryMsg>(msg.value())) {
        reply(id, status_());
        return;
    }
    if (auto* get = std::get_if<LocalGetMsg>(&msg.value())) {
        if (auto refused =
                local_get_refusal(*get, peer_key, options_.chain_id, options_.permissions)) {
            metrics_.client_rejected.inc();
            reply(id, ErrorMsg{ErrorCode::Forbidden, *refused, {}});
            return;
        }
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
    sign_and_send(id, r);
}

bool ClientService::on_verified(const VerifyResult& r, std::uint64_t now_ms) {
    if (!r.request) {
        metrics_.client_rejected.inc();
        reply(r.routing_id, ErrorMsg{ErrorCode::BadRequest, r.error, digest_of(r.request_bytes)});
        return false;
    }
    const Request& req = *r.request;
    const Digest rd = digest_of(r.request_bytes);
    if (kv_.committed(req.client, req.nonce)) {
        answer_from_table(r.routing_id, req, rd);
        return false;
    }
    const Key key{req.client, req.nonce};
    if (pending_.size() >= options_.pending_max && !pending_.count(key)) {
        reply(r.routing_id,
              ErrorMsg{ErrorCode::Overloaded, "too many requests waiting for their outcome", rd});
        return false;
    }
    auto& p = pending_[key];
    if (p.routing_ids.empty()) {
        p.since_ms = now_ms;
        p.request_digest = rd;
        p.ops = req.ops.size();
    }
    if (p.routing_ids.size() < kRoutingIdsMax) p.routing_ids.push_back(r.routing_id);
    return true;
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
        out.status = ReplyStatus::Malformed;
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
        for (const auto& id : it->second.routing_ids) sign_and_send(id, out);
        pending_.erase(it);
    }
}

void ClientService::expire(std::uint64_t now_ms) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (now_ms - it->second.since_ms > kPendingExpiryMs)
            it = pending_.erase(it);
        else
            ++it;
    }
}

}  // namespace tob::daemon
