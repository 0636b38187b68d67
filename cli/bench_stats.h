#pragma once
// The arithmetic of `tobctl bench` (cli/bench.cpp), kept free of sockets and
// clocks so that unit tests can check it (tests/unit/bench_stats_test.cpp):
//
//  - the open-loop schedule (--rate R): C clients share R requests per second;
//    client c's k-th request (k = 0, 1, ...) is due (c + k·C) / R seconds after
//    the start, so the clients' requests together are evenly spaced 1/R apart and
//    no client drifts, however long the run. A request's latency is counted from
//    the time it was due, not from when it left: when the cluster (or the load
//    generator) falls behind, the queueing shows in the latency instead of being
//    hidden by sending later ("coordinated omission");
//  - latency summaries: exact percentiles over all samples at the end, and a
//    lock-free log-bucketed histogram for the progress line while clients run.

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

namespace tob::cli::bench {

/// Seconds after the start at which client `client` (of `clients`) is due to send
/// its k-th request when all of them together send `rate` requests per second.
double due_seconds(std::uint32_t client, std::uint32_t clients, double rate, std::uint64_t k);

/// How many of client `client`'s requests are due `elapsed` seconds after the
/// start: the number of k with due_seconds(client, clients, rate, k) <= elapsed.
std::uint64_t due_count(std::uint32_t client, std::uint32_t clients, double rate, double elapsed);

/// The p-quantile (0 < p <= 1) of ascending `sorted` by the nearest-rank rule:
/// the smallest sample with at least p of all samples at or below it; 0 when empty.
double percentile(const std::vector<double>& sorted, double p);

struct LatencySummary {
    std::uint64_t count = 0;
    double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

/// Sorts `samples` and summarises them.
LatencySummary summarize(std::vector<double>& samples);

/// Latencies in milliseconds, recorded concurrently by many threads, read by one
/// (the progress line). Buckets grow by 2 % from 1 µs up to about 1,000 s, so a
/// percentile read from it is within 2 % of the exact one; values outside the
/// range land in the first or last bucket.
class LatencyHistogram {
  public:
    static constexpr std::size_t kBuckets = 1050;

    void record(double ms);
    std::uint64_t count() const;
    /// The upper edge of the bucket holding the p-quantile (nearest rank); 0 when
    /// nothing was recorded.
    double percentile(double p) const;
    /// The bucket a latency falls in, and the upper edge of a bucket (ms).
    static std::size_t bucket_of(double ms);
    static double upper_edge(std::size_t bucket);

  private:
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
};

}  // namespace tob::cli::bench
