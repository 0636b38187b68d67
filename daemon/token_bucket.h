#pragma once
// TokenBucket: a byte rate with a burst, on the caller's millisecond clock.
//
// The node keeps one per member for the fetch and archive answers it sends
// (issue 11: "fetch and archive answers rate-limited per member in bytes per
// second"): a request is served only while the member's bucket is not empty,
// and the answer's bytes are then charged (the bucket may go negative by one
// answer; the member then waits until it has refilled). A request that finds
// the bucket empty is dropped before the core reads the archive or signs.

#include <algorithm>
#include <cstdint>

namespace tob::daemon {

class TokenBucket {
  public:
    TokenBucket(std::uint64_t bytes_per_s, std::uint64_t burst_bytes)
        : rate_(bytes_per_s), burst_(static_cast<std::int64_t>(burst_bytes)), tokens_(burst_) {}

    /// True while the bucket holds tokens (after refilling up to `now_ms`).
    bool allow(std::uint64_t now_ms) {
        refill(now_ms);
        return tokens_ > 0;
    }
    /// Takes `bytes` (after refilling up to `now_ms`).
    void charge(std::uint64_t bytes, std::uint64_t now_ms) {
        refill(now_ms);
        tokens_ -= static_cast<std::int64_t>(bytes);
    }
    std::int64_t tokens() const { return tokens_; }

  private:
    void refill(std::uint64_t now_ms) {
        if (now_ms <= last_ms_) return;
        const std::uint64_t earned = (now_ms - last_ms_) * rate_ / 1000;
        if (earned == 0) return;  // keep the remainder for the next call
        tokens_ = std::min<std::int64_t>(burst_, tokens_ + static_cast<std::int64_t>(earned));
        last_ms_ = now_ms;
    }

    std::uint64_t rate_;
    std::int64_t burst_;
    std::int64_t tokens_;
    std::uint64_t last_ms_ = 0;
};

}  // namespace tob::daemon
