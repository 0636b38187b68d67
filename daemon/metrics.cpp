#include "daemon/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace tob::daemon {

namespace {

bool valid_metric_name(std::string_view name) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) return false;
    }
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || name.substr(0, 2) == "__") return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0)) return false;
    }
    return true;
}

// HELP text escapes only backslash and newline.
std::string escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void append_labels(std::string& out, const Labels& labels, std::string_view le = {}) {
    if (labels.empty() && le.empty()) return;
    out += '{';
    bool first = true;
    for (const auto& [name, value] : labels) {
        if (!first) out += ',';
        first = false;
        out += name;
        out += "=\"";
        out += escape_label_value(value);
        out += '"';
    }
    if (!le.empty()) {
        if (!first) out += ',';
        out += "le=\"";
        out += le;
        out += '"';
    }
    out += '}';
}

void add_double(std::atomic<double>& target, double v) {
    target.fetch_add(v, std::memory_order_relaxed);
}

}  // namespace

std::string format_metric_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // Whole numbers below 2^53 are exact as integers: "42", not "42.0" or "4.2e+01".
    if (std::trunc(v) == v && std::fabs(v) < 9007199254740992.0) {
        return std::to_string(static_cast<long long>(v));
    }
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);  // shortest round-trip
    return std::string(buffer, result.ptr);
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

// ---- Counter, Histogram --------------------------------------------------------

void Counter::inc(double v) {
    if (!(v >= 0)) throw std::logic_error("Counter::inc: a counter never decreases");
    add_double(value_, v);
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
    if (!bounds_.empty() && std::isinf(bounds_.back()) && bounds_.back() > 0) bounds_.pop_back();
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        if (!std::isfinite(bounds_[i]))
            throw std::logic_error("Histogram: bucket bounds must be finite");
        if (i > 0 && !(bounds_[i - 1] < bounds_[i]))
            throw std::logic_error("Histogram: bucket bounds must be strictly increasing");
    }
    buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
    for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
    if (std::isnan(v)) return;
    const auto index = static_cast<std::size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    buckets_[index].fetch_add(1, std::memory_order_relaxed);
    add_double(sum_, v);
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
    std::vector<std::uint64_t> out(bounds_.size() + 1);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += buckets_[i].load(std::memory_order_relaxed);
        out[i] = running;
    }
    return out;
}

std::uint64_t Histogram::count() const { return cumulative_counts().back(); }

std::vector<double> default_latency_buckets() {
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> linear_buckets(double start, double width, std::size_t count) {
    if (!(width > 0)) throw std::logic_error("linear_buckets: width must be > 0");
    std::vector<double> out;
    for (std::size_t i = 0; i < count; ++i) out.push_back(start + width * static_cast<double>(i));
    return out;
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
    if (!(start > 0) || !(factor > 1))
        throw std::logic_error("exponential_buckets: need start > 0 and factor > 1");
    std::vector<double> out;
    double bound = start;
    for (std::size_t i = 0; i < count; ++i, bound *= factor) out.push_back(bound);
    return out;
}

// ---- Registry ----------------------------------------------------------------------

struct Registry::Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
};

struct Registry::Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<double> bounds;       // histograms: every series shares them
    std::map<Labels, Series> series;  // canonical (sorted) labels -> series
};

Registry::Registry() = default;
Registry::~Registry() = default;

std::string_view Registry::type_name(Type type) {
    switch (type) {
        case Type::Counter:
            return "counter";
        case Type::Gauge:
            return "gauge";
        case Type::Histogram:
            return "histogram";
    }
    return "untyped";
}

Labels Registry::canonical(const Labels& labels, bool histogram) {
    Labels out = labels;
    std::sort(out.begin(), out.end());
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (!valid_label_name(out[i].first))
            throw std::logic_error("metrics: invalid label name \"" + out[i].first + "\"");
        if (histogram && out[i].first == "le")
            throw std::logic_error("metrics: label \"le\" is reserved in histograms");
        if (i > 0 && out[i - 1].first == out[i].first)
            throw std::logic_error("metrics: label \"" + out[i].first + "\" given twice");
    }
    return out;
}

// Caller holds mutex_.
Registry::Family& Registry::family(std::string_view name, std::string_view help, Type type) {
    auto it = families_.find(name);
    if (it != families_.end()) {
        if (it->second->type != type) {
            throw std::logic_error("metrics: \"" + std::string(name) + "\" is a " +
                                   std::string(type_name(it->second->type)) + ", not a " +
                                   std::string(type_name(type)));
        }
        return *it->second;
    }
    if (!valid_metric_name(name))
        throw std::logic_error("metrics: invalid metric name \"" + std::string(name) + "\"");
    auto created = std::make_unique<Family>();
    created->name = std::string(name);
    created->help = std::string(help);
    created->type = type;
    Family& ref = *created;
    families_.emplace(std::string(name), std::move(created));
    return ref;
}

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
    Labels key = canonical(labels, false);
    std::lock_guard lock(mutex_);
    Series& series = family(name, help, Type::Counter).series[std::move(key)];
    if (!series.counter) series.counter = std::make_unique<Counter>();
    return *series.counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
    Labels key = canonical(labels, false);
    std::lock_guard lock(mutex_);
    Series& series = family(name, help, Type::Gauge).series[std::move(key)];
    if (!series.gauge) series.gauge = std::make_unique<Gauge>();
    return *series.gauge;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::vector<double> upper_bounds, const Labels& labels) {
    Labels key = canonical(labels, true);
    auto made = std::make_unique<Histogram>(std::move(upper_bounds));  // validates the bounds
    std::lock_guard lock(mutex_);
    Family& fam = family(name, help, Type::Histogram);
    if (fam.series.empty()) {
        fam.bounds = made->upper_bounds();
    } else if (fam.bounds != made->upper_bounds()) {
        throw std::logic_error("metrics: histogram \"" + std::string(name) +
                               "\" registered again with other bucket bounds");
    }
    Series& series = fam.series[std::move(key)];
    if (!series.histogram) series.histogram = std::move(made);
    return *series.histogram;
}

void Registry::on_render(std::function<void()> hook) {
    std::lock_guard lock(mutex_);
    hooks_.push_back(std::move(hook));
}

std::string Registry::render() const {
    std::vector<std::function<void()>> hooks;
    {
        std::lock_guard lock(mutex_);
        hooks = hooks_;
    }
    for (const auto& hook : hooks) hook();  // without the lock: hooks may create metrics

    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& [name, fam] : families_) {
        if (fam->series.empty()) continue;
        out += "# HELP " + name + " " + escape_help(fam->help) + "\n";
        out += "# TYPE " + name + " " + std::string(type_name(fam->type)) + "\n";
        for (const auto& [labels, series] : fam->series) {
            if (fam->type != Type::Histogram) {
                const double v =
                    fam->type == Type::Counter ? series.counter->value() : series.gauge->value();
                out += name;
                append_labels(out, labels);
                out += ' ';
                out += format_metric_value(v);
                out += '\n';
                continue;
            }
            const Histogram& h = *series.histogram;
            // Read the buckets once: the +Inf bucket and _count come from the same
            // snapshot, so they always agree even while observations arrive.
            const auto counts = h.cumulative_counts();
            const double sum = h.sum();
            for (std::size_t i = 0; i < counts.size(); ++i) {
                const std::string le =
                    i < h.upper_bounds().size() ? format_metric_value(h.upper_bounds()[i]) : "+Inf";
                out += name + "_bucket";
                append_labels(out, labels, le);
                out += ' ' + std::to_string(counts[i]) + '\n';
            }
            out += name + "_sum";
            append_labels(out, labels);
            out += ' ' + format_metric_value(sum) + '\n';
            out += name + "_count";
            append_labels(out, labels);
            out += ' ' + std::to_string(counts.back()) + '\n';
        }
    }
    return out;
}

}  // namespace tob::daemon
