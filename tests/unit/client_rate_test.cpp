// The byte rate per client source at the client ROUTER (daemon/client_rate.h):
// one source sending without pause gets at most its burst plus rate x time,
// other sources are not charged for it, and the table of sources stays bounded.

#include "daemon/client_rate.h"

#include <gtest/gtest.h>

namespace tob::daemon {
namespace {

constexpr std::uint64_t kMiB = 1u << 20;

TEST(ClientRates, a_flooding_source_gets_at_most_burst_plus_rate_times_time) {
    ClientRates rates(2 * kMiB, 2 * kMiB, 100);
    const std::uint64_t frame = kMiB + 1024;  // a request of request_bytes_max
    std::uint64_t taken = 0;
    for (std::uint64_t now = 1; now <= 10'000; now += 25) {  // 40 frames/s for 10 s
        if (rates.admit("flood", frame, now)) taken += frame;
    }
    // At most burst + 10 s of rate + the one frame the bucket may owe.
    EXPECT_LE(taken, 2 * kMiB + 10 * 2 * kMiB + frame);
    // And it is served at its rate, not starved.
    EXPECT_GE(taken, 10 * 2 * kMiB - frame);
}

TEST(ClientRates, tiny_frames_are_charged_the_floor_so_the_frame_rate_is_bounded_too) {
    // 256 KiB/s with a 1 KiB floor: at most 256 frames a second after the burst,
    // however small the frames are.
    constexpr std::uint64_t kRate = 256 * 1024, kFloor = 1024, kBurst = 2 * kMiB;
    ClientRates rates(kRate, kBurst, 100, kFloor);
    EXPECT_EQ(rates.frames_per_s(), 256u);
    std::uint64_t taken = 0;
    for (std::uint64_t now = 1; now <= 10'000; now += 1) {  // 1,000 frames/s of 100 bytes
        if (rates.admit("tiny", 100, now)) ++taken;
    }
    // burst / floor + 10 s x 256 frames/s, plus the one frame the bucket may owe.
    EXPECT_LE(taken, kBurst / kFloor + 10 * 256 + 1);
    EXPECT_GE(taken, 10 * 256 - 1);
    // Without a floor the same stream fits the byte rate (100 kB/s) and all pass.
    ClientRates bytes_only(kRate, kBurst, 100);
    std::uint64_t all = 0;
    for (std::uint64_t now = 1; now <= 10'000; now += 1) all += bytes_only.admit("tiny", 100, now);
    EXPECT_EQ(all, 10'000u);
}

TEST(ClientRates, new_client_keys_are_limited_per_source_to_burst_plus_rate_times_time) {
    ClientRates rates(kMiB, kMiB, 100, 1, ClientKeyRate{16, 64});
    std::uint64_t taken = 0, other = 0;
    for (std::uint64_t now = 1; now <= 10'000; now += 2) {  // 500 new keys/s for 10 s
        taken += rates.admit_new_key("churn", now);
        if (now % 1000 == 1) other += rates.admit_new_key("steady", now);  // 1 a second
    }
    EXPECT_LE(taken, 64u + 10 * 16 + 1);
    EXPECT_GE(taken, 10 * 16 - 1);
    EXPECT_EQ(other, 10u);  // another source is not charged for it
    // The frame rate is a separate bucket: the churning source may still send.
    EXPECT_TRUE(rates.admit("churn", 100, 10'000));
    // 0 = no limit.
    ClientRates open(kMiB, kMiB, 100);
    for (int i = 0; i < 10'000; ++i) ASSERT_TRUE(open.admit_new_key("any", 1));
}

TEST(ClientRates, one_sources_flood_does_not_charge_another_source) {
    ClientRates rates(1 * kMiB, 1 * kMiB, 100);
    std::uint64_t quiet_refused = 0;
    for (std::uint64_t now = 1; now <= 5'000; now += 10) {
        rates.admit("flood", kMiB, now);
        if (!rates.admit("quiet", 200, now)) ++quiet_refused;  // 20 kB/s
    }
    EXPECT_EQ(quiet_refused, 0u);
    EXPECT_FALSE(rates.admit("flood", kMiB, 5'000));
}

TEST(ClientRates, a_full_table_refuses_new_sources_until_buckets_refill) {
    ClientRates rates(1000, 1000, 3);
    for (const char* s : {"a", "b", "c"}) EXPECT_TRUE(rates.admit(s, 5000, 1));  // in debt
    EXPECT_EQ(rates.size(), 3u);
    EXPECT_FALSE(rates.admit("d", 10, 2));  // every entry still in use
    EXPECT_EQ(rates.size(), 3u);
    // 6 s later every bucket has refilled: they are forgotten and "d" gets one.
    EXPECT_TRUE(rates.admit("d", 10, 6'001));
    EXPECT_EQ(rates.size(), 1u);
}

TEST(ClientRates, a_stream_of_new_sources_sweeps_a_full_table_once_per_gap) {
    ClientRates rates(1000, 1000, 3);
    for (const char* s : {"a", "b", "c"}) EXPECT_TRUE(rates.admit(s, 5000, 1));  // in debt
    const std::uint64_t before = rates.expire_scans();
    for (int i = 0; i < 1000; ++i) EXPECT_FALSE(rates.admit("new-" + std::to_string(i), 10, 2));
    EXPECT_EQ(rates.expire_scans() - before, 1u);  // one sweep, not one per new source
    EXPECT_FALSE(rates.admit("late", 10, 2 + ClientRates::kExpireGapMs));
    EXPECT_EQ(rates.expire_scans() - before, 2u);
}

TEST(ClientRates, expire_forgets_only_sources_whose_bucket_has_refilled) {
    ClientRates rates(1000, 1000, 10);
    rates.admit("old", 1500, 1);         // owes 500: full again at about 1.5 s
    rates.admit("recent", 3000, 1'000);  // owes 2000 until about 3 s
    rates.expire(1'600);
    EXPECT_EQ(rates.size(), 1u);
    EXPECT_FALSE(rates.admit("recent", 1, 1'600));  // still in debt: not forgotten
}

}  // namespace
}  // namespace tob::daemon
