#pragma once
// A small thread-safe Prometheus registry: counters, gauges and histograms, and
// their rendering in the Prometheus text exposition format 0.0.4 (what
// GET /metrics serves, daemon/http_server.h).
//
// Metrics are grouped in families: one name, one help text, one type, and any
// number of series told apart by their labels. The registry hands out
// references that stay valid for its lifetime, so hot paths look a series up
// once and then only touch atomics:
//
//   Registry registry;
//   Counter& delivered = registry.counter("tobd_epochs_delivered_total", "Epochs delivered");
//   delivered.inc();                                      // lock-free
//   registry.counter("tobd_messages_in_total", "Messages received", {{"kind", "block"}}).inc();
//
// Get-or-create: asking again for the same name and labels returns the same
// object. Asking for a name with another type (or a histogram with other
// bucket bounds), or for an invalid metric or label name, is a programming
// error and throws std::logic_error. Label order does not matter: labels are
// held (and rendered) sorted by name.
//
// render() writes every family in name order, its series in label order:
//
//   # HELP tobd_commit_latency_seconds Time from request arrival to commit
//   # TYPE tobd_commit_latency_seconds histogram
//   tobd_commit_latency_seconds_bucket{le="0.001"} 0
//   ...
//   tobd_commit_latency_seconds_bucket{le="+Inf"} 12
//   tobd_commit_latency_seconds_sum 0.84
//   tobd_commit_latency_seconds_count 12
//
// Values that are whole numbers (below 2^53) are written without a fraction
// ("42"), others in the shortest form that reads back exactly ("0.0025").

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tob::daemon {

using Labels = std::vector<std::pair<std::string, std::string>>;

/// A value that only goes up (reset only by a restart). Lock-free.
class Counter {
  public:
    /// Adds v; v must be >= 0 (a negative v throws std::logic_error).
    void inc(double v = 1);
    double value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0};
};

/// A value that goes up and down. Lock-free.
class Gauge {
  public:
    void set(double v) { value_.store(v, std::memory_order_relaxed); }
    void inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
    void dec(double v = 1) { value_.fetch_sub(v, std::memory_order_relaxed); }
    double value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0};
};

/// Observations counted in buckets with fixed upper bounds (inclusive: a value
/// equal to a bound counts in that bound's bucket), plus their sum and count.
/// The +Inf bucket is implicit. Lock-free; a NaN observation is ignored.
class Histogram {
  public:
    /// `upper_bounds` must be finite and strictly increasing (std::logic_error
    /// otherwise); a trailing +Inf is accepted and dropped.
    explicit Histogram(std::vector<double> upper_bounds);
    void observe(double v);

    const std::vector<double>& upper_bounds() const { return bounds_; }
    /// Cumulative counts, one per upper bound and a last one for +Inf (== count()).
    std::vector<std::uint64_t> cumulative_counts() const;
    std::uint64_t count() const;
    double sum() const { return sum_.load(std::memory_order_relaxed); }

  private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
    std::atomic<double> sum_{0};
};

/// Bounds for latencies in seconds: 1 ms .. 10 s.
std::vector<double> default_latency_buckets();
/// count bounds: start, start + width, ...
std::vector<double> linear_buckets(double start, double width, std::size_t count);
/// count bounds: start, start * factor, ... (start > 0, factor > 1)
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

class Registry {
  public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Get-or-create; references stay valid for the registry's lifetime; thread-safe.
    Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
    Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
    Histogram& histogram(std::string_view name, std::string_view help,
                         std::vector<double> upper_bounds, const Labels& labels = {});

    /// Runs `hook` at the start of every render(), before anything is read: for
    /// values that are cheaper to sample at scrape time than to track (a
    /// database's size). Hooks may create and set metrics; they must not call
    /// render().
    void on_render(std::function<void()> hook);

    /// The text exposition format 0.0.4: "# HELP" and "# TYPE" once per
    /// family, families sorted by name, series sorted by labels, label values
    /// escaped (\\ \" \n), histograms as cumulative _bucket{le=...} including
    /// +Inf, then _sum and _count.
    std::string render() const;

  private:
    enum class Type { Counter, Gauge, Histogram };
    struct Series;
    struct Family;
    Family& family(std::string_view name, std::string_view help, Type type);
    static Labels canonical(const Labels& labels, bool histogram);
    static std::string_view type_name(Type type);

    mutable std::mutex mutex_;  // guards families_ and hooks_ (not the values)
    std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
    std::vector<std::function<void()>> hooks_;
};

/// The exposition format's number formatting (also used for le="...").
std::string format_metric_value(double v);
/// A label value with \ " and newline escaped.
std::string escape_label_value(std::string_view value);

}  // namespace tob::daemon
