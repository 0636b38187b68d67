#include "cli/bench_stats.h"

#include <algorithm>
#include <cmath>

namespace tob::cli::bench {

namespace {
constexpr double kGrowth = 1.02;       // bucket i covers (1µs·g^(i-1), 1µs·g^i]
constexpr double kFirstEdgeMs = 1e-3;  // 1 µs
const double kLogGrowth = std::log(kGrowth);
}  // namespace

double due_seconds(std::uint32_t client, std::uint32_t clients, double rate, std::uint64_t k) {
    return (static_cast<double>(client) + static_cast<double>(k) * clients) / rate;
}

std::uint64_t due_count(std::uint32_t client, std::uint32_t clients, double rate, double elapsed) {
    if (rate <= 0 || clients == 0) return 0;
    // Slots (in units of 1/rate) elapsed; the client owns slots client, client + C, ...
    // The small margin keeps a request due exactly at `elapsed` despite rounding in
    // due_seconds (relative error ~1e-16; the margin is 1e-9 of a slot).
    const double slots = elapsed * rate - static_cast<double>(client);
    if (slots < -1e-9) return 0;
    return static_cast<std::uint64_t>(std::floor(slots / clients + 1e-9)) + 1;
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

LatencySummary summarize(std::vector<double>& samples) {
    std::sort(samples.begin(), samples.end());
    LatencySummary s;
    s.count = samples.size();
    if (samples.empty()) return s;
    s.p50 = percentile(samples, 0.50);
    s.p90 = percentile(samples, 0.90);
    s.p99 = percentile(samples, 0.99);
    s.max = samples.back();
    double sum = 0;
    for (double v : samples) sum += v;
    s.mean = sum / static_cast<double>(samples.size());
    return s;
}

std::size_t LatencyHistogram::bucket_of(double ms) {
    if (!(ms > kFirstEdgeMs)) return 0;  // also NaN
    const double i = std::ceil(std::log(ms / kFirstEdgeMs) / kLogGrowth);
    if (i >= static_cast<double>(kBuckets - 1)) return kBuckets - 1;
    auto b = static_cast<std::size_t>(i);
    // Rounding in the logarithm can put an edge value one bucket off either way.
    if (b > 0 && ms <= upper_edge(b - 1)) --b;
    if (b + 1 < kBuckets && ms > upper_edge(b)) ++b;
    return b;
}

double LatencyHistogram::upper_edge(std::size_t bucket) {
    return kFirstEdgeMs * std::pow(kGrowth, static_cast<double>(bucket));
}

void LatencyHistogram::record(double ms) {
    buckets_[bucket_of(ms)].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t LatencyHistogram::count() const {
    std::uint64_t total = 0;
    for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
    return total;
}

double LatencyHistogram::percentile(double p) const {
    std::array<std::uint64_t, kBuckets> snap{};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        snap[i] = buckets_[i].load(std::memory_order_relaxed);
        total += snap[i];
    }
    if (total == 0) return 0;
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        seen += snap[i];
        if (seen >= rank) return upper_edge(i);
    }
    return upper_edge(kBuckets - 1);
}

}  // namespace tob::cli::bench
