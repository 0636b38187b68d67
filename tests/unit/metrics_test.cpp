// The Prometheus registry (daemon/metrics.h). Expected texts are written by hand
// from the text exposition format 0.0.4, not copied from the code's output.

#include "daemon/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tob::daemon {
namespace {

TEST(MetricsTest, render_matches_the_exposition_format_exactly) {
    Registry registry;
    // Registered out of order: families come out sorted by name, series by labels.
    registry.gauge("tobd_peers_connected", "Peers with a live connection").set(3);
    Counter& in_block =
        registry.counter("tobd_messages_in_total", "Messages received", {{"kind", "block"}});
    Counter& in_aba =
        registry.counter("tobd_messages_in_total", "Messages received", {{"kind", "aba"}});
    Histogram& latency =
        registry.histogram("tobd_commit_latency_seconds", "Commit latency", {0.125, 0.5, 1});
    registry.counter("tobd_epochs_delivered_total", "Epochs delivered");

    in_block.inc();
    in_block.inc(2);
    in_aba.inc(0.5);
    latency.observe(0.0625);  // <= 0.125
    latency.observe(0.125);   // a bound is inclusive: <= 0.125
    latency.observe(0.75);    // <= 1
    latency.observe(7);       // only +Inf

    const std::string expected =
        "# HELP tobd_commit_latency_seconds Commit latency\n"
        "# TYPE tobd_commit_latency_seconds histogram\n"
        "tobd_commit_latency_seconds_bucket{le=\"0.125\"} 2\n"
        "tobd_commit_latency_seconds_bucket{le=\"0.5\"} 2\n"
        "tobd_commit_latency_seconds_bucket{le=\"1\"} 3\n"
        "tobd_commit_latency_seconds_bucket{le=\"+Inf\"} 4\n"
        "tobd_commit_latency_seconds_sum 7.9375\n"
        "tobd_commit_latency_seconds_count 4\n"
        "# HELP tobd_epochs_delivered_total Epochs delivered\n"
        "# TYPE tobd_epochs_delivered_total counter\n"
        "tobd_epochs_delivered_total 0\n"
        "# HELP tobd_messages_in_total Messages received\n"
        "# TYPE tobd_messages_in_total counter\n"
        "tobd_messages_in_total{kind=\"aba\"} 0.5\n"
        "tobd_messages_in_total{kind=\"block\"} 3\n"
        "# HELP tobd_peers_connected Peers with a live connection\n"
        "# TYPE tobd_peers_connected gauge\n"
        "tobd_peers_connected 3\n";
    EXPECT_EQ(registry.render(), expected);
}

TEST(MetricsTest, get_or_create_returns_the_same_series_whatever_the_label_order) {
    Registry registry;
    Counter& a =
        registry.counter("tobd_faults_total", "Faults", {{"kind", "equivocation"}, {"peer", "2"}});
    Counter& b =
        registry.counter("tobd_faults_total", "Faults", {{"peer", "2"}, {"kind", "equivocation"}});
    Counter& c =
        registry.counter("tobd_faults_total", "Faults", {{"peer", "3"}, {"kind", "equivocation"}});
    EXPECT_EQ(&a, &b);
    EXPECT_NE(&a, &c);
    a.inc();
    b.inc();
    EXPECT_EQ(a.value(), 2);
    const std::string text = registry.render();
    EXPECT_NE(text.find("tobd_faults_total{kind=\"equivocation\",peer=\"2\"} 2\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("tobd_faults_total{kind=\"equivocation\",peer=\"3\"} 0\n"),
              std::string::npos)
        << text;
    // One HELP and one TYPE line per family, not per series.
    EXPECT_EQ(text.find("# TYPE tobd_faults_total"), text.rfind("# TYPE tobd_faults_total"));
}

TEST(MetricsTest, label_values_and_help_are_escaped) {
    Registry registry;
    registry
        .gauge("weird", "Help with a \\ backslash\nand a newline and \"quotes\"",
               {{"path", "C:\\dir\\\"x\"\nend"}})
        .set(-2.5);
    // Label values escape \ " and newline; HELP escapes only \ and newline.
    const std::string expected =
        "# HELP weird Help with a \\\\ backslash\\nand a newline and \"quotes\"\n"
        "# TYPE weird gauge\n"
        "weird{path=\"C:\\\\dir\\\\\\\"x\\\"\\nend\"} -2.5\n";
    EXPECT_EQ(registry.render(), expected);
}

TEST(MetricsTest, histogram_buckets_are_cumulative_and_labelled) {
    Registry registry;
    Histogram& h = registry.histogram("tobd_aba_rounds", "Rounds per decided instance",
                                      {1, 2, 3, 5}, {{"node", "0"}});
    for (double rounds : {1, 1, 2, 3, 3, 3, 4, 9}) h.observe(rounds);
    h.observe(std::numeric_limits<double>::quiet_NaN());  // ignored
    EXPECT_EQ(h.cumulative_counts(), (std::vector<std::uint64_t>{2, 3, 6, 7, 8}));
    EXPECT_EQ(h.count(), 8u);
    EXPECT_EQ(h.sum(), 26);
    const std::string expected =
        "# HELP tobd_aba_rounds Rounds per decided instance\n"
        "# TYPE tobd_aba_rounds histogram\n"
        "tobd_aba_rounds_bucket{node=\"0\",le=\"1\"} 2\n"
        "tobd_aba_rounds_bucket{node=\"0\",le=\"2\"} 3\n"
        "tobd_aba_rounds_bucket{node=\"0\",le=\"3\"} 6\n"
        "tobd_aba_rounds_bucket{node=\"0\",le=\"5\"} 7\n"
        "tobd_aba_rounds_bucket{node=\"0\",le=\"+Inf\"} 8\n"
        "tobd_aba_rounds_sum{node=\"0\"} 26\n"
        "tobd_aba_rounds_count{node=\"0\"} 8\n";
    EXPECT_EQ(registry.render(), expected);
}

TEST(MetricsTest, default_latency_buckets_render_as_short_decimals) {
    Registry registry;
    registry.histogram("lat_seconds", "Latency", default_latency_buckets());
    const std::string text = registry.render();
    for (const char* le : {"0.001", "0.0025", "0.005", "0.01", "0.25", "1", "2.5", "10", "+Inf"}) {
        EXPECT_NE(text.find(std::string("lat_seconds_bucket{le=\"") + le + "\"} 0\n"),
                  std::string::npos)
            << le << " in\n"
            << text;
    }
    EXPECT_EQ(format_metric_value(1e20), "1e+20");
    EXPECT_EQ(format_metric_value(123456789), "123456789");
    EXPECT_EQ(format_metric_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_metric_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_metric_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricsTest, concurrent_increments_from_four_threads_sum_exactly) {
    Registry registry;
    constexpr int kThreads = 4;
    constexpr int kPerThread = 100000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&registry, t] {
            // Each thread looks the series up itself: get-or-create races too.
            Counter& total = registry.counter("ops_total", "Operations");
            Gauge& depth = registry.gauge("depth", "Depth");
            Histogram& h = registry.histogram("obs", "Observations", {0.5});
            Counter& mine =
                registry.counter("per_thread_total", "Per thread", {{"t", std::to_string(t)}});
            for (int i = 0; i < kPerThread; ++i) {
                total.inc();
                mine.inc();
                depth.inc();
                depth.dec(0.5);
                h.observe(i % 2 == 0 ? 0.25 : 1.0);
                if (i % 10000 == 0) (void)registry.render();  // rendering while writing is safe
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(registry.counter("ops_total", "Operations").value(), kThreads * kPerThread);
    EXPECT_EQ(registry.gauge("depth", "Depth").value(), kThreads * kPerThread * 0.5);
    Histogram& h = registry.histogram("obs", "Observations", {0.5});
    EXPECT_EQ(h.count(), static_cast<std::uint64_t>(kThreads * kPerThread));
    EXPECT_EQ(h.cumulative_counts()[0], static_cast<std::uint64_t>(kThreads * kPerThread / 2));
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(
            registry.counter("per_thread_total", "Per thread", {{"t", std::to_string(t)}}).value(),
            kPerThread);
    }
}

TEST(MetricsTest, a_name_reused_with_another_type_is_a_programming_error) {
    Registry registry;
    registry.counter("tobd_epoch", "Current epoch");
    EXPECT_THROW(registry.gauge("tobd_epoch", "Current epoch"), std::logic_error);
    EXPECT_THROW(registry.histogram("tobd_epoch", "Current epoch", {1}), std::logic_error);
    registry.histogram("h", "H", {1, 2});
    EXPECT_THROW(registry.histogram("h", "H", {1, 3}, {{"a", "b"}}), std::logic_error);
    EXPECT_THROW(registry.counter("h", "H"), std::logic_error);
    // Invalid names, reserved or repeated labels, bad bounds, negative increments.
    EXPECT_THROW(registry.counter("9lives", "x"), std::logic_error);
    EXPECT_THROW(registry.counter("has-dash", "x"), std::logic_error);
    EXPECT_THROW(registry.counter("ok_total", "x", {{"__reserved", "v"}}), std::logic_error);
    EXPECT_THROW(registry.counter("ok_total", "x", {{"a", "1"}, {"a", "2"}}), std::logic_error);
    EXPECT_THROW(registry.histogram("h2", "x", {1}, {{"le", "1"}}), std::logic_error);
    EXPECT_THROW(registry.histogram("h3", "x", {2, 1}), std::logic_error);
    EXPECT_THROW(registry.counter("c_total", "x").inc(-1), std::logic_error);
    // The registry is still usable and holds only what was validly created.
    const std::string text = registry.render();
    EXPECT_EQ(text.find("9lives"), std::string::npos);
    EXPECT_EQ(text.find("h2"), std::string::npos);
    EXPECT_NE(text.find("# TYPE tobd_epoch counter\n"), std::string::npos);
}

TEST(MetricsTest, render_hooks_sample_values_at_scrape_time) {
    Registry registry;
    int scrapes = 0;
    registry.on_render([&] {
        ++scrapes;
        registry.gauge("tobd_rocksdb_size_bytes", "Size").set(1000.0 * scrapes);
    });
    EXPECT_NE(registry.render().find("tobd_rocksdb_size_bytes 1000\n"), std::string::npos);
    EXPECT_NE(registry.render().find("tobd_rocksdb_size_bytes 2000\n"), std::string::npos);
}

}  // namespace
}  // namespace tob::daemon
