// RequestPool: see consensus/request_pool.h for the rules and bounds.

#include "consensus/request_pool.h"

#include <algorithm>

#include "consensus/codec.h"

namespace tob::consensus {

RequestPool::RequestPool(const PoolParams& params, const CryptoSuite& crypto)
    : params_(params), crypto_(crypto) {}

bool RequestPool::valid(const Request& r, const Digest& d) {
    if (verified_.count(d)) return true;
    if (r.chain_id != params_.chain_id || r.ops.empty()) return false;
    if (!crypto_.verify_client(r.client, kRequestTag, request_sign_payload(r), r.sig)) {
        return false;
    }
    verified_.insert(d);
    verified_order_.push_back({delivered_, d});
    while (verified_order_.size() > params_.verified_cache_max) {
        verified_.erase(verified_order_.front().second);
        verified_order_.pop_front();
    }
    return true;
}

void RequestPool::delivered(Epoch delivered) {
    delivered_ = std::max(delivered_, delivered);
    while (!verified_order_.empty() &&
           verified_order_.front().first + params_.verified_epochs < delivered_) {
        verified_.erase(verified_order_.front().second);
        verified_order_.pop_front();
    }
}

bool RequestPool::add(const Request& r, const Digest& d, std::size_t encoded_bytes, bool local,
                      Epoch delivered, std::uint64_t now_ms, const StateMachine& state) {
    if (state.committed(r.client, r.nonce)) return false;
    auto id = std::make_pair(r.client, r.nonce);
    if (auto known = ids_.find(id); known != ids_.end()) {
        if (local) {
            auto it = entries_.find(known->second);
            if (it != entries_.end()) it->second.local = true;
        }
        return false;
    }
    if (entries_.size() >= params_.pool_requests_max) return false;  // bounded; client retries
    ids_[id] = d;
    entries_[d] = Entry{r, encoded_bytes, delivered, local, seq_++};
    bytes_ += encoded_bytes;
    if (!work_since_ms_) work_since_ms_ = now_ms;
    return true;
}

void RequestPool::remove_committed(const StateMachine& state) {
    for (auto it = entries_.begin(); it != entries_.end();) {
        const Request& r = it->second.request;
        if (state.committed(r.client, r.nonce)) {
            ids_.erase({r.client, r.nonce});
            inflight_.erase(it->first);
            bytes_ -= it->second.bytes;
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
}

std::vector<Request> RequestPool::build_block(Epoch delivered) const {
    const std::size_t max_count = params_.limits.block_requests_max;
    const std::size_t max_bytes = params_.limits.block_bytes_max - 1024;  // room for the frame
    std::vector<const Entry*> aged_list, local_list;
    for (const auto& [d, p] : entries_) {
        if (inflight_.count(d)) continue;
        if (aged(p, delivered)) {
            aged_list.push_back(&p);
        } else if (p.local) {
            local_list.push_back(&p);
        }
    }
    auto by_seq = [](const Entry* a, const Entry* b) { return a->seq < b->seq; };
    std::sort(local_list.begin(), local_list.end(), by_seq);
    std::sort(aged_list.begin(), aged_list.end(), by_seq);
    // Round-robin across clients, oldest first within each client.
    std::map<PublicKey, std::vector<const Entry*>> per_client;
    for (const auto* p : aged_list) per_client[p->request.client].push_back(p);
    std::vector<const Entry*> aged_rr;
    for (std::size_t i = 0;; ++i) {
        bool any = false;
        for (const auto& [c, v] : per_client) {
            if (i < v.size()) {
                aged_rr.push_back(v[i]);
                any = true;
            }
        }
        if (!any) break;
    }
    std::vector<Request> out;
    std::size_t bytes = 0;
    auto take = [&](const Entry* p, std::size_t byte_cap) {
        if (out.size() >= max_count || bytes + p->bytes > byte_cap) return false;
        out.push_back(p->request);
        bytes += p->bytes;
        return true;
    };
    std::size_t ai = 0;
    for (; ai < aged_rr.size(); ++ai) {
        if (!take(aged_rr[ai], max_bytes / 4)) break;
    }
    for (const auto* p : local_list) {
        if (!take(p, max_bytes)) break;
    }
    for (; ai < aged_rr.size(); ++ai) {
        if (!take(aged_rr[ai], max_bytes)) break;
    }
    return out;
}

void RequestPool::proposed(const std::vector<Request>& requests, std::uint64_t now_ms) {
    for (const auto& r : requests) inflight_.insert(digest_of(encode(r)));
    local_since_cut_ = 0;
    work_since_ms_.reset();
    if (has_work()) work_since_ms_ = now_ms;
}

void RequestPool::release(const std::vector<Request>& requests) {
    for (const auto& r : requests) inflight_.erase(digest_of(encode(r)));
}

bool RequestPool::has_work() const {
    if (entries_.size() > inflight_.size()) return true;
    for (const auto& [d, p] : entries_) {
        if (!inflight_.count(d)) return true;
    }
    return false;
}

bool RequestPool::note_work(std::uint64_t now_ms) {
    if (!has_work()) return false;
    // The timer is reset by proposed() and may find no work then (everything
    // pooled sits in this node's own in-flight block); when that block is left
    // out of its epoch, release() makes those requests proposable again, and
    // without this nothing would restart the timer until a new request arrived
    // (found by the cluster fault suite: a retried request waited 45 s for an
    // unrelated one).
    if (!work_since_ms_) work_since_ms_ = now_ms;
    return true;
}

bool RequestPool::block_due(std::uint64_t now_ms, Epoch delivered) const {
    std::size_t proposable = 0;
    for (const auto& [d, p] : entries_) {
        if (!inflight_.count(d) && (p.local || aged(p, delivered))) ++proposable;
    }
    if (proposable >= params_.limits.block_requests_max) return true;
    return work_since_ms_ && now_ms >= *work_since_ms_ + params_.block_timer_ms;
}

bool RequestPool::queue_flood(const Request& request) {
    flood_.push_back(request);
    return flood_.size() >= params_.flood_batch_max;
}

std::optional<RequestBatch> RequestPool::take_flood() {
    if (flood_.empty()) return std::nullopt;
    RequestBatch batch;
    batch.requests = std::move(flood_);
    flood_.clear();
    return batch;
}

}  // namespace tob::consensus
