// The arithmetic of tobctl bench (cli/bench_stats.h): the open-loop schedule and
// the latency summaries.

#include "cli/bench_stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>
#include <vector>

namespace tob::cli::bench {
namespace {

TEST(BenchSchedule, ClientsTogetherSendEvenlySpacedAtTheRate) {
    // 3 clients at 100 requests/s: merged, request m is due at m / 100 s.
    std::vector<double> merged;
    for (std::uint32_t c = 0; c < 3; ++c)
        for (std::uint64_t k = 0; k < 50; ++k) merged.push_back(due_seconds(c, 3, 100, k));
    std::sort(merged.begin(), merged.end());
    ASSERT_EQ(merged.size(), 150u);
    for (std::size_t m = 0; m < merged.size(); ++m)
        EXPECT_NEAR(merged[m], static_cast<double>(m) / 100.0, 1e-12) << m;
}

TEST(BenchSchedule, DueCountAgreesWithDueTimesAtAndBetweenDeadlines) {
    const double rates[] = {1.0, 7.0, 333.3, 12500.0, 100000.0};
    for (double rate : rates) {
        for (std::uint32_t clients : {1u, 4u, 16u}) {
            for (std::uint32_t c = 0; c < clients; ++c) {
                EXPECT_EQ(due_count(c, clients, rate, -1.0), 0u);
                for (std::uint64_t k : {0ull, 1ull, 2ull, 999ull, 123456ull}) {
                    const double at = due_seconds(c, clients, rate, k);
                    // Exactly at its time, request k is due (k + 1 of them) ...
                    EXPECT_EQ(due_count(c, clients, rate, at), k + 1)
                        << "rate " << rate << " c " << c << "/" << clients << " k " << k;
                    // ... and half a slot of this client earlier it is not.
                    const double before = at - 0.5 * clients / rate;
                    EXPECT_EQ(due_count(c, clients, rate, before), k)
                        << "rate " << rate << " c " << c << "/" << clients << " k " << k;
                }
            }
        }
    }
}

TEST(BenchSchedule, NoDriftOverAnHourAtHighRate) {
    // 16 clients at 100,000 requests/s for an hour: 360,000,000 requests in total.
    std::uint64_t total = 0;
    for (std::uint32_t c = 0; c < 16; ++c) total += due_count(c, 16, 100000, 3600.0 - 1e-7);
    EXPECT_EQ(total, 360000000u);
}

TEST(BenchLatency, PercentilesUseTheNearestRank) {
    std::vector<double> v;
    for (int i = 100; i >= 1; --i) v.push_back(i);  // 1..100, unsorted
    LatencySummary s = summarize(v);
    EXPECT_EQ(s.count, 100u);
    EXPECT_EQ(s.p50, 50);
    EXPECT_EQ(s.p90, 90);
    EXPECT_EQ(s.p99, 99);
    EXPECT_EQ(s.max, 100);
    EXPECT_DOUBLE_EQ(s.mean, 50.5);
    std::vector<double> one{7.5};
    EXPECT_EQ(summarize(one).p50, 7.5);
    EXPECT_EQ(summarize(one).p99, 7.5);
    std::vector<double> none;
    EXPECT_EQ(summarize(none).count, 0u);
    EXPECT_EQ(summarize(none).p99, 0);
}

TEST(BenchLatency, OpenLoopLatencyShowsAStallThatClosedLoopHides) {
    // A server answers in 1 ms but stalls from t = 1 s to t = 2 s. Open loop at
    // 1000 requests/s over 3 s: requests due during the stall wait for its end,
    // so latency counted from the due time grows to ~1 s, and more than a
    // quarter of the requests see over 100 ms. A closed loop with one request in
    // flight would have seen a single slow request.
    std::vector<double> open;
    const double rate = 1000;
    for (std::uint64_t k = 0; k < 3000; ++k) {
        const double due = due_seconds(0, 1, rate, k);
        const double start = (due >= 1.0 && due < 2.0) ? 2.0 : due;
        open.push_back((start + 0.001 - due) * 1000.0);
    }
    LatencySummary s = summarize(open);
    EXPECT_NEAR(s.max, 1001.0, 1e-6);
    EXPECT_GT(s.p90, 500.0);
    EXPECT_NEAR(s.p50, 1.0, 1e-6);
    // What a closed loop with one in flight records: one request of ~1 s,
    // the rest 1 ms; its p99 does not see the stall at all.
    std::vector<double> closed;
    double t = 0;
    while (t < 3.0) {
        const double start = (t >= 1.0 && t < 2.0) ? 2.0 : t;
        closed.push_back((start + 0.001 - t) * 1000.0);
        t = start + 0.001;
    }
    EXPECT_NEAR(summarize(closed).p99, 1.0, 1e-6);
}

TEST(BenchHistogram, PercentilesWithinTwoPercentOfExact) {
    std::mt19937_64 rng(7);
    std::lognormal_distribution<double> dist(3.0, 1.2);  // median ~20 ms, long tail
    LatencyHistogram h;
    std::vector<double> exact;
    for (int i = 0; i < 20000; ++i) {
        const double ms = dist(rng);
        exact.push_back(ms);
        h.record(ms);
    }
    std::sort(exact.begin(), exact.end());
    EXPECT_EQ(h.count(), 20000u);
    for (double p : {0.5, 0.9, 0.99, 1.0}) {
        const double want = percentile(exact, p);
        const double got = h.percentile(p);
        EXPECT_GE(got, want) << p;  // the upper edge of the bucket holding it
        EXPECT_LE(got, want * 1.02 + 1e-9) << p;
    }
}

TEST(BenchHistogram, BucketEdgesAndOutOfRangeValues) {
    for (std::size_t b = 1; b < LatencyHistogram::kBuckets; b += 37) {
        const double edge = LatencyHistogram::upper_edge(b);
        EXPECT_EQ(LatencyHistogram::bucket_of(edge), b) << b;
        EXPECT_EQ(LatencyHistogram::bucket_of(edge * 1.0001), b + 1) << b;
    }
    EXPECT_EQ(LatencyHistogram::bucket_of(0), 0u);
    EXPECT_EQ(LatencyHistogram::bucket_of(-5), 0u);
    EXPECT_EQ(LatencyHistogram::bucket_of(1e12), LatencyHistogram::kBuckets - 1);
    LatencyHistogram empty;
    EXPECT_EQ(empty.percentile(0.5), 0);
}

TEST(BenchHistogram, ConcurrentRecordsAreAllCounted) {
    LatencyHistogram h;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&h, t] {
            for (int i = 0; i < 10000; ++i) h.record(1.0 + t);
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(h.count(), 40000u);
    EXPECT_NEAR(h.percentile(0.25), 1.0, 0.02);
    EXPECT_NEAR(h.percentile(1.0), 4.0, 0.08);
}

}  // namespace
}  // namespace tob::cli::bench
