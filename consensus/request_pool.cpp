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
    if (!crypto_.verify_request(r, d)) {
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
    for (auto it = in_others_.begin(); it != in_others_.end();)
        it = it->second <= delivered_ ? in_others_.erase(it) : std::next(it);
    while (!verified_order_.empty() &&
           verified_order_.front().first + params_.verified_epochs < delivered_) {
        verified_.erase(verified_order_.front().second);
        verified_order_.pop_front();
    }
    while (!settled_order_.empty() &&
           settled_order_.front().first + params_.verified_epochs < delivered_) {
        settled_.erase(settled_order_.front().second);
        settled_order_.pop_front();
    }
}

void RequestPool::settle(const std::vector<RequestResult>& results) {
    for (const auto& r : results) {
        const bool final_skip = r.forbidden || (r.malformed && r.skip != Skip::EpochFull &&
                                                r.skip != Skip::None && !r.duplicate);
        if (!final_skip) continue;
        if (auto it = entries_.find(r.request_digest); it != entries_.end()) erase(it);
        if (!settled_.insert(r.request_digest).second) continue;
        settled_order_.push_back({delivered_, r.request_digest});
        while (settled_order_.size() > params_.verified_cache_max) {
            settled_.erase(settled_order_.front().second);
            settled_order_.pop_front();
        }
    }
}

const char* to_string(Admission a) {
    switch (a) {
        case Admission::Added:
            return "added";
        case Admission::Known:
            return "known";
        case Admission::Committed:
            return "committed";
        case Admission::Overloaded:
            return "overloaded";
        case Admission::Invalid:
            return "invalid";
        case Admission::Expired:
            return "expired";
    }
    return "?";
}

Admission RequestPool::add(const Request& r, const Digest& d, std::size_t encoded_bytes, bool local,
                           Epoch delivered, std::uint64_t now_ms, const StateMachine& state,
                           Request* movable) {
    if (state.committed(r.client, r.nonce)) return Admission::Committed;
    if (state.expired(r)) return Admission::Expired;
    if (settled_.count(d)) return Admission::Invalid;  // skipped for good (settle())
    auto id = std::make_pair(r.client, r.nonce);
    if (auto known = ids_.find(id); known != ids_.end()) {
        if (local) {
            auto it = entries_.find(known->second);
            if (it != entries_.end() && !it->second.local) {
                count_ready(it->first, it->second, -1);
                it->second.local = true;
                count_ready(it->first, it->second, +1);
            }
        }
        return Admission::Known;
    }
    if (!make_room(r.client, encoded_bytes)) return Admission::Overloaded;
    ids_[id] = d;
    const std::uint64_t seq = seq_++;
    const auto& entry = entries_[d] =
        Entry{movable ? std::move(*movable) : r, encoded_bytes, delivered, local, seq};
    const Request& kept = entry.request;  // `r` may have been moved from
    count_ready(d, entry, +1);
    by_expiry_.emplace(kept.expires, d);
    bytes_ += encoded_bytes;
    auto& use = clients_[kept.client];
    by_use_.erase({use.bytes, kept.client});
    use.bytes += encoded_bytes;
    use.by_seq.emplace(seq, d);
    by_use_.insert({use.bytes, kept.client});
    if (!work_since_ms_) work_since_ms_ = now_ms;
    return Admission::Added;
}

bool RequestPool::holds_copy(const Request& r) const {
    auto id = ids_.find({r.client, r.nonce});
    if (id == ids_.end()) return false;
    auto it = entries_.find(id->second);
    return it != entries_.end() && it->second.request.sig == r.sig;
}

std::size_t RequestPool::client_bytes(const PublicKey& client) const {
    auto it = clients_.find(client);
    return it == clients_.end() ? 0 : it->second.bytes;
}

bool RequestPool::make_room(const PublicKey& client, std::size_t bytes) {
    auto fits = [&] {
        return entries_.size() < params_.pool_requests_max &&
               bytes_ + bytes <= params_.pool_bytes_max;
    };
    if (bytes > params_.pool_bytes_max) return false;
    const std::size_t mine = client_bytes(client) + bytes;
    while (!fits()) {
        // The biggest holder that holds more than `client` would, and has an
        // entry that is not in flight (those are in this node's own blocks).
        std::optional<std::map<Digest, Entry>::iterator> victim;
        for (auto it = by_use_.rbegin(); it != by_use_.rend() && it->first > mine; ++it) {
            const auto& seqs = clients_.at(it->second).by_seq;
            for (auto s = seqs.rbegin(); s != seqs.rend(); ++s) {
                if (!inflight_.count(s->second)) {
                    victim = entries_.find(s->second);
                    break;
                }
            }
            if (victim) break;
        }
        if (!victim) return false;
        erase(*victim);
        ++evicted_;
    }
    return true;
}

void RequestPool::erase(std::map<Digest, Entry>::iterator it) {
    const Request& r = it->second.request;
    auto use = clients_.find(r.client);
    by_use_.erase({use->second.bytes, r.client});
    use->second.bytes -= it->second.bytes;
    use->second.by_seq.erase(it->second.seq);
    if (use->second.by_seq.empty()) {
        clients_.erase(use);
    } else {
        by_use_.insert({use->second.bytes, r.client});
    }
    ids_.erase({r.client, r.nonce});
    count_ready(it->first, it->second, -1);
    by_expiry_.erase({r.expires, it->first});
    inflight_.erase(it->first);
    bytes_ -= it->second.bytes;
    entries_.erase(it);
}

namespace {

// Committed, or expired: it can no longer commit in the next epoch.
bool settled_in(const StateMachine& state, const Request& r) {
    return state.committed(r.client, r.nonce) || state.expired(r);
}

}  // namespace

void RequestPool::remove_committed(const StateMachine& state) {
    for (auto it = entries_.begin(); it != entries_.end();) {
        auto next = std::next(it);
        if (settled_in(state, it->second.request)) erase(it);
        it = next;
    }
}

void RequestPool::remove_applied(const StateMachine& state, const std::vector<Request>& applied) {
    std::set<PublicKey> touched;
    for (const auto& r : applied) touched.insert(r.client);
    for (const auto& client : touched) {
        auto use = clients_.find(client);
        if (use == clients_.end()) continue;
        std::vector<Digest> drop;
        for (const auto& [seq, d] : use->second.by_seq) {
            if (settled_in(state, entries_.at(d).request)) drop.push_back(d);
        }
        for (const auto& d : drop) erase(entries_.find(d));
    }
    while (!by_expiry_.empty()) {
        auto it = entries_.find(by_expiry_.begin()->second);
        if (!state.expired(it->second.request)) break;
        erase(it);
    }
}

// Round-robin across clients (each client's requests oldest first; clients in
// the order of their oldest request): the i-th round takes every client's i-th
// request. `list` is sorted by seq.
std::vector<const RequestPool::Entry*> RequestPool::round_robin(
    const std::vector<const Entry*>& list) {
    std::map<PublicKey, std::vector<const Entry*>> per_client;
    std::vector<const std::vector<const Entry*>*> order;  // by each client's oldest
    for (const auto* p : list) {
        auto [it, fresh] = per_client.try_emplace(p->request.client);
        if (fresh) order.push_back(&it->second);
        it->second.push_back(p);
    }
    std::vector<const Entry*> out;
    out.reserve(list.size());
    for (std::size_t i = 0; out.size() < list.size(); ++i) {
        for (const auto* v : order) {
            if (i < v->size()) out.push_back((*v)[i]);
        }
    }
    return out;
}

std::vector<Request> RequestPool::build_block(Epoch delivered) const {
    const std::size_t max_count = params_.limits.block_requests_max;
    const std::size_t max_bytes = params_.limits.block_bytes_max > kBlockOverhead
                                      ? params_.limits.block_bytes_max - kBlockOverhead
                                      : 0;  // room for the block's own fields
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
    const std::vector<const Entry*> aged_rr = round_robin(aged_list);
    const std::vector<const Entry*> local_rr = round_robin(local_list);
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
    // Local requests: one client's backlog must not push the others' requests
    // out of the block, so one that does not fit is passed over, not an end.
    for (const auto* p : local_rr) {
        if (out.size() >= max_count) break;
        take(p, max_bytes);
    }
    for (; ai < aged_rr.size(); ++ai) {
        if (!take(aged_rr[ai], max_bytes)) break;
    }
    return out;
}

void RequestPool::proposed(const std::vector<Digest>& digests, std::uint64_t now_ms) {
    for (const Digest& d : digests) {
        auto it = entries_.find(d);
        if (it != entries_.end()) count_ready(d, it->second, -1);
        inflight_.insert(d);
    }
    local_since_cut_ = 0;
    work_since_ms_.reset();
    if (has_work()) work_since_ms_ = now_ms;
}

void RequestPool::release(const std::vector<Digest>& digests) {
    for (const Digest& d : digests) {
        if (inflight_.erase(d) == 0) continue;
        auto it = entries_.find(d);
        if (it != entries_.end()) count_ready(d, it->second, +1);
    }
}

void RequestPool::count_ready(const Digest& d, const Entry& e, int sign) {
    if (inflight_.count(d)) return;  // in flight: in neither count
    std::size_t& n = e.local ? local_ready_ : young_ready_[e.added_at];
    n = sign > 0 ? n + 1 : n - 1;
    if (!e.local && n == 0) young_ready_.erase(e.added_at);
}

std::size_t RequestPool::proposable(Epoch delivered, std::size_t enough) const {
    std::size_t n = local_ready_;
    for (const auto& [added_at, count] : young_ready_) {
        if (n >= enough || delivered < added_at + params_.aged_epochs) break;
        n += count;
    }
    return n;
}

std::size_t RequestPool::proposable_by_scan(Epoch delivered) const {
    std::size_t n = 0;
    for (const auto& [d, p] : entries_) {
        if (!inflight_.count(d) && (p.local || aged(p, delivered))) ++n;
    }
    return n;
}

void RequestPool::in_block(Epoch e, const std::vector<std::pair<Digest, std::size_t>>& requests) {
    if (e <= delivered_) return;
    for (const auto& [d, bytes] : requests) {
        Epoch& at = in_others_[d];
        at = std::max(at, e);
    }
}

bool RequestPool::has_work() const {
    // A request that is not work is in one of the two sets (stale digests there
    // only make this bound looser).
    if (entries_.size() > inflight_.size() + in_others_.size()) return true;
    for (const auto& [d, p] : entries_) {
        if (!inflight_.count(d) && !pending_elsewhere(d)) return true;
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

bool RequestPool::block_due(std::uint64_t now_ms, Epoch delivered, bool idle) const {
    const std::size_t proposable = this->proposable(delivered, params_.limits.block_requests_max);
    if (proposable >= params_.limits.block_requests_max) return true;
    if (!idle) return false;  // this node's block is in flight: only a full block
    if (proposable > 0) return true;
    return work_since_ms_ && now_ms >= *work_since_ms_ + params_.block_timer_ms;
}

std::size_t RequestPool::flood_budget() const {
    // The batch's own array headers take at most 6 bytes.
    const std::size_t room = kEnvelopeOverhead + 16;
    return params_.limits.message_bytes_max > room ? params_.limits.message_bytes_max - room : 0;
}

bool RequestPool::queue_flood(const Request& request, std::size_t encoded_bytes) {
    flood_.push_back({request, encoded_bytes});
    flood_bytes_ += encoded_bytes;
    return flood_.size() >= params_.flood_batch_max || flood_bytes_ >= flood_budget();
}

std::optional<RequestBatch> RequestPool::take_flood() {
    if (flood_.empty()) return std::nullopt;
    RequestBatch batch;
    std::size_t bytes = 0;
    std::size_t taken = 0;
    for (; taken < flood_.size() && batch.requests.size() < params_.flood_batch_max; ++taken) {
        const std::size_t b = flood_[taken].second;
        // One request always goes (request_bytes_max fits in a message: the
        // config check); more only while the batch stays under the budget.
        if (!batch.requests.empty() && bytes + b > flood_budget()) break;
        bytes += b;
        batch.requests.push_back(std::move(flood_[taken].first));
    }
    flood_.erase(flood_.begin(), flood_.begin() + static_cast<std::ptrdiff_t>(taken));
    flood_bytes_ -= bytes;
    return batch;
}

}  // namespace tob::consensus
