// ClientRates: a byte rate per client source (client_rate.h).

#include "daemon/client_rate.h"

#include <algorithm>

namespace tob::daemon {

ClientRates::ClientRates(std::uint64_t bytes_per_s, std::uint64_t burst_bytes,
                         std::size_t entries_max, std::uint64_t frame_cost_min,
                         ClientKeyRate new_keys)
    : rate_(bytes_per_s),
      burst_(burst_bytes),
      entries_max_(entries_max),
      frame_cost_min_(std::max<std::uint64_t>(frame_cost_min, 1)),
      keys_(new_keys) {}

ClientRates::Entry* ClientRates::entry(const std::string& source, std::uint64_t now_ms) {
    auto it = buckets_.find(source);
    if (it != buckets_.end()) return &it->second;
    // A full table is swept at most once per kExpireGapMs: a stream of new
    // sources must not cost a walk of the whole table per frame.
    if (buckets_.size() >= entries_max_ && now_ms >= next_expire_ms_) {
        expire(now_ms);
        next_expire_ms_ = now_ms + kExpireGapMs;
    }
    if (buckets_.size() >= entries_max_) return nullptr;
    Entry fresh{TokenBucket(rate_, burst_), TokenBucket(keys_.per_s, keys_.burst)};
    return &buckets_.emplace(source, fresh).first->second;
}

bool ClientRates::admit(const std::string& source, std::uint64_t bytes, std::uint64_t now_ms) {
    Entry* e = entry(source, now_ms);
    if (!e || !e->bytes.allow(now_ms)) return false;
    e->bytes.charge(std::max(bytes, frame_cost_min_), now_ms);
    return true;
}

bool ClientRates::admit_new_key(const std::string& source, std::uint64_t now_ms) {
    if (keys_.per_s == 0) return true;
    Entry* e = entry(source, now_ms);
    if (!e || !e->keys.allow(now_ms)) return false;
    e->keys.charge(1, now_ms);
    return true;
}

void ClientRates::expire(std::uint64_t now_ms) {
    ++expire_scans_;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        Entry& e = it->second;
        e.bytes.allow(now_ms);  // refills up to now
        e.keys.allow(now_ms);
        if (e.bytes.tokens() >= static_cast<std::int64_t>(burst_) &&
            e.keys.tokens() >= static_cast<std::int64_t>(keys_.burst))
            it = buckets_.erase(it);
        else
            ++it;
    }
}

}  // namespace tob::daemon
