// The per-member byte rate of fetch and archive answers (daemon/token_bucket.h):
// a member that asks without pause gets at most burst + rate x time bytes.

#include "daemon/token_bucket.h"

#include <gtest/gtest.h>

namespace tob::daemon {
namespace {

TEST(TokenBucket, a_member_asking_without_pause_gets_at_most_burst_plus_rate_times_time) {
    TokenBucket bucket(1'000'000, 2'000'000);  // 1 MB/s, 2 MB burst
    std::uint64_t served = 0;
    for (std::uint64_t now = 0; now <= 10'000; now += 1) {  // 10 s, a request every ms
        if (!bucket.allow(now)) continue;
        bucket.charge(100'000, now);  // each answer 100 kB
        served += 100'000;
    }
    EXPECT_LE(served, 2'000'000u + 10 * 1'000'000u + 100'000u);
    EXPECT_GE(served, 10 * 1'000'000u);  // and it is served at the rate, not starved
}

TEST(TokenBucket, an_empty_bucket_refuses_until_it_has_refilled) {
    TokenBucket bucket(1000, 1000);
    EXPECT_TRUE(bucket.allow(0));
    bucket.charge(5000, 0);  // one large answer: 4000 in debt
    EXPECT_FALSE(bucket.allow(3000));
    EXPECT_FALSE(bucket.allow(4000));
    EXPECT_TRUE(bucket.allow(4001));
    EXPECT_LE(bucket.tokens(), 1000);
}

}  // namespace
}  // namespace tob::daemon
