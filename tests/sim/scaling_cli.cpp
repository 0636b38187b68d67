// tobsim --scaling (see scaling_cli.h, docs/performance.md).

#include "tests/sim/scaling_cli.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace tob::sim {

namespace {

/// A per-node figure may grow at most like n^kMaxExponent (O(n^2), with room for
/// the fit's noise).
constexpr double kMaxExponent = 2.1;

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

std::string fixed(double v, int digits) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(digits) << v;
    return os.str();
}

bool parse_sizes(const std::string& text, std::vector<std::uint32_t>& out) {
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        try {
            const unsigned long v = std::stoul(item);
            if (v < 1 || v > 1024) return false;
            out.push_back(static_cast<std::uint32_t>(v));
        } catch (...) {
            return false;
        }
    }
    return true;
}

/// One size's run. The figures per node per epoch count what happened between
/// the first honest application of epoch 1 and that of the last epoch (so neither
/// the start nor the quiet end of the run, when every transaction is in and the
/// nodes only wait for each other, is spread over the epochs); with fewer than
/// two epochs, the whole run over its epochs.
struct Row {
    std::uint32_t n = 0;
    CryptoMode crypto = CryptoMode::Real;
    SeedReport report;
    double cpu_s = 0, wall_s = 0;
    EpochMark span;  // counters over the window; span.epoch = epochs in it

    void measure() {
        const auto& m = report.epoch_marks;
        if (m.size() >= 2) {
            const EpochMark& a = m.front();
            const EpochMark& b = m.back();
            span.epoch = b.epoch - a.epoch;
            span.logical_ms = b.logical_ms - a.logical_ms;
            span.messages_sent = b.messages_sent - a.messages_sent;
            span.bytes_sent = b.bytes_sent - a.bytes_sent;
            span.crypto.sign = b.crypto.sign - a.crypto.sign;
            span.crypto.verify = b.crypto.verify - a.crypto.verify;
            span.crypto.verify_client = b.crypto.verify_client - a.crypto.verify_client;
            span.crypto.coin_share = b.crypto.coin_share - a.crypto.coin_share;
            span.crypto.verify_coin_share = b.crypto.verify_coin_share - a.crypto.verify_coin_share;
            span.crypto.combine_coin = b.crypto.combine_coin - a.crypto.combine_coin;
            span.cpu_s = b.cpu_s - a.cpu_s;
        } else {
            span = EpochMark{std::max<std::uint64_t>(1, report.epochs),
                             report.logical_ms,
                             report.messages_sent,
                             report.bytes_sent,
                             report.crypto,
                             cpu_s};
        }
    }
    double per_node_epoch(double total) const {
        return total / n / static_cast<double>(std::max<std::uint64_t>(1, span.epoch));
    }
    double messages() const { return per_node_epoch(static_cast<double>(span.messages_sent)); }
    double bytes() const { return per_node_epoch(static_cast<double>(span.bytes_sent)); }
    double signatures() const {
        return per_node_epoch(static_cast<double>(span.crypto.signature_ops()));
    }
    double coins() const { return per_node_epoch(static_cast<double>(span.crypto.coin_ops())); }
    double cpu_ms() const { return per_node_epoch(span.cpu_s * 1000); }
    double epoch_ms() const {
        return static_cast<double>(span.logical_ms) /
               static_cast<double>(std::max<std::uint64_t>(1, span.epoch));
    }
};

Row run_one(const SimOptions& base, std::uint32_t n, CryptoMode crypto, std::uint64_t seed) {
    SimOptions o = base;
    o.nodes = n;
    o.faulty = 0;
    o.behaviours.clear();
    o.drop = o.dup = o.crash = 0;
    o.partitions = false;
    o.crypto = crypto;
    Row row;
    row.n = n;
    row.crypto = crypto;
    const double cpu0 = cpu_seconds();
    const auto wall0 = std::chrono::steady_clock::now();
    row.report = run_seed(o, seed);
    row.cpu_s = cpu_seconds() - cpu0;
    row.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    row.measure();
    return row;
}

struct Growth {
    const char* name;
    double exponent;
    bool checked;  // counted against kMaxExponent
};

std::vector<Growth> growths(const std::vector<Row>& rows) {
    std::vector<double> x, msgs, bytes, sigs, coins, cpu_real, x_real, cpu_counted, x_counted;
    for (const Row& r : rows) {
        x.push_back(r.n);
        msgs.push_back(r.messages());
        bytes.push_back(r.bytes());
        sigs.push_back(r.signatures());
        coins.push_back(r.coins());
        (r.crypto == CryptoMode::Real ? x_real : x_counted).push_back(r.n);
        (r.crypto == CryptoMode::Real ? cpu_real : cpu_counted).push_back(r.cpu_ms());
    }
    return {{"messages/node/epoch", fitted_exponent(x, msgs), true},
            {"bytes/node/epoch", fitted_exponent(x, bytes), true},
            {"signature ops/node/epoch", fitted_exponent(x, sigs), true},
            {"coin ops/node/epoch", fitted_exponent(x, coins), true},
            {"CPU/node/epoch (real crypto)", fitted_exponent(x_real, cpu_real), false},
            {"CPU/node/epoch (counted crypto)", fitted_exponent(x_counted, cpu_counted), false}};
}

void print_table(const std::vector<Row>& rows, const std::vector<Growth>& grow) {
    std::cout << "    n  crypto   epochs  ms/epoch  msgs/node/ep  KB/node/ep  sig-ops/node/ep  "
                 "coin-ops/node/ep  CPU-ms/node/ep  wall-s  result\n";
    for (const Row& r : rows) {
        std::cout << std::setw(5) << r.n << "  " << std::left << std::setw(7)
                  << (r.crypto == CryptoMode::Real ? "real" : "counted") << std::right
                  << std::setw(8)
                  << (std::to_string(r.span.epoch) + "/" + std::to_string(r.report.epochs))
                  << std::setw(10) << fixed(r.epoch_ms(), 0) << std::setw(14)
                  << fixed(r.messages(), 0) << std::setw(12) << fixed(r.bytes() / 1024, 1)
                  << std::setw(17) << fixed(r.signatures(), 0) << std::setw(18)
                  << fixed(r.coins(), 0) << std::setw(16) << fixed(r.cpu_ms(), 2) << std::setw(8)
                  << fixed(r.wall_s, 1) << "  "
                  << (r.report.violations.empty() ? "ok" : "FAIL " + r.report.violations[0].check)
                  << "\n";
    }
    std::cout << "growth per node with n (fitted exponent b of n^b; O(n^2) allows "
              << fixed(kMaxExponent, 1) << "):\n";
    for (const Growth& g : grow) {
        std::cout << "  " << std::left << std::setw(34) << g.name << std::right
                  << fixed(g.exponent, 2);
        if (g.checked) std::cout << (g.exponent <= kMaxExponent ? "  ok" : "  TOO FAST");
        std::cout << "\n";
    }
}

void print_json(const std::vector<Row>& rows, const std::vector<Growth>& grow) {
    std::cout << "{\"rows\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        const CryptoCounts& c = r.report.crypto;
        std::cout << (i ? ", " : "") << "{\"n\": " << r.n << ", \"crypto\": \""
                  << (r.crypto == CryptoMode::Real ? "real" : "counted")
                  << "\", \"epochs\": " << r.report.epochs
                  << ", \"window_epochs\": " << r.span.epoch
                  << ", \"window_logical_ms\": " << r.span.logical_ms
                  << ", \"committed_txs\": " << r.report.committed_txs
                  << ", \"messages_sent\": " << r.report.messages_sent
                  << ", \"bytes_sent\": " << r.report.bytes_sent << ", \"sign\": " << c.sign
                  << ", \"verify\": " << c.verify << ", \"verify_client\": " << c.verify_client
                  << ", \"coin_share\": " << c.coin_share
                  << ", \"verify_coin_share\": " << c.verify_coin_share
                  << ", \"combine_coin\": " << c.combine_coin
                  << ", \"cpu_s\": " << fixed(r.cpu_s, 3) << ", \"wall_s\": " << fixed(r.wall_s, 3)
                  << ", \"per_node_epoch\": {\"messages\": " << fixed(r.messages(), 1)
                  << ", \"bytes\": " << fixed(r.bytes(), 1)
                  << ", \"signature_ops\": " << fixed(r.signatures(), 1)
                  << ", \"coin_ops\": " << fixed(r.coins(), 1)
                  << ", \"cpu_ms\": " << fixed(r.cpu_ms(), 3)
                  << ", \"logical_ms\": " << fixed(r.epoch_ms(), 1)
                  << "}, \"violations\": " << r.report.violations.size() << "}";
    }
    std::cout << "], \"exponents\": {";
    for (std::size_t i = 0; i < grow.size(); ++i)
        std::cout << (i ? ", " : "") << "\"" << grow[i].name
                  << "\": " << fixed(grow[i].exponent, 3);
    std::cout << "}}\n";
}

}  // namespace

double fitted_exponent(const std::vector<double>& x, const std::vector<double>& y) {
    // Points with a zero figure (no coin operation in a benign run whose agreements
    // all decide in a round with a fixed coin) have no logarithm: they are left out.
    const std::size_t n = std::min(x.size(), y.size());
    std::size_t k = 0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!(x[i] > 0) || !(y[i] > 0)) continue;
        const double lx = std::log(x[i]), ly = std::log(y[i]);
        ++k;
        sx += lx;
        sy += ly;
        sxx += lx * lx;
        sxy += lx * ly;
    }
    const double m = static_cast<double>(k);
    const double den = m * sxx - sx * sx;
    if (k < 2 || std::abs(den) < 1e-12) return 0;
    return (m * sxy - sx * sy) / den;
}

void add_scaling_options(CLI::App& app, ScalingCli& cli) {
    app.add_flag("--scaling", cli.enabled,
                 "benign runs at several cluster sizes and one table of messages, bytes, "
                 "signature and coin operations and CPU per node per epoch "
                 "(docs/performance.md)");
    app.add_option("--scaling-real", cli.real, "--scaling: sizes run with real crypto")
        ->capture_default_str();
    app.add_option("--scaling-counted", cli.counted,
                   "--scaling: sizes run with counted crypto (no cryptography, only counts)")
        ->capture_default_str();
}

int run_scaling_cli(const ScalingCli& cli, const SimOptions& base, const std::string& seeds,
                    bool json) {
    std::vector<std::uint32_t> real, counted;
    if (!parse_sizes(cli.real, real) || !parse_sizes(cli.counted, counted)) {
        std::cerr << "--scaling-real / --scaling-counted: comma-separated sizes 1..1024\n";
        return 2;
    }
    std::uint64_t seed = 1;
    try {
        seed = std::stoull(seeds.substr(0, seeds.find('-')));
    } catch (...) {
        std::cerr << "bad --seeds: " << seeds << "\n";
        return 2;
    }
    SimOptions o = base;
    if (o.clients == 0) o.clients = 4;
    if (o.safety_ms == 0) o.safety_ms = 1000;
    std::vector<Row> rows;
    auto run = [&](std::uint32_t n, CryptoMode mode) {
        rows.push_back(run_one(o, n, mode, seed));
        if (!json) {
            const Row& r = rows.back();
            std::cerr << "scaling: n=" << n << " "
                      << (mode == CryptoMode::Real ? "real" : "counted") << ": epochs "
                      << r.report.epochs << ", " << r.report.messages_sent << " messages, "
                      << fixed(r.cpu_s, 1) << " s CPU" << std::endl;
        }
    };
    for (std::uint32_t n : real) run(n, CryptoMode::Real);
    for (std::uint32_t n : counted) run(n, CryptoMode::Counted);
    const std::vector<Growth> grow = growths(rows);
    if (json)
        print_json(rows, grow);
    else
        print_table(rows, grow);
    bool ok = true;
    for (const Row& r : rows) ok = ok && r.report.violations.empty();
    for (const Growth& g : grow) ok = ok && (!g.checked || g.exponent <= kMaxExponent);
    return ok ? 0 : 1;
}

}  // namespace tob::sim
