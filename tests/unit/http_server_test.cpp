// The metrics and health endpoint (daemon/http_server.h), fetched with
// httplib::Client over 127.0.0.1.

#include "daemon/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <variant>

#include "daemon/metrics.h"

namespace tob::daemon {
namespace {

std::unique_ptr<HttpServer> must_start(const std::string& address, HttpHandlers handlers) {
    auto started = HttpServer::start(address, std::move(handlers));
    if (auto* error = std::get_if<std::string>(&started)) {
        ADD_FAILURE() << *error;
        return nullptr;
    }
    return std::move(std::get<std::unique_ptr<HttpServer>>(started));
}

// A listening socket on 127.0.0.1, any free port, closed on destruction.
class Listener {
  public:
    Listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(fd_, 4) != 0) {
            ADD_FAILURE() << "cannot listen";
        }
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
    }
    ~Listener() { ::close(fd_); }
    int port() const { return port_; }

  private:
    int fd_ = -1;
    int port_ = 0;
};

TEST(HttpServerTest, serves_metrics_health_and_readiness) {
    Registry registry;
    Counter& scrapes = registry.counter("tobd_test_scrapes_total", "Scrapes served");
    std::atomic<bool> ready{false};
    HttpHandlers handlers;
    handlers.metrics = [&] {
        scrapes.inc();
        return registry.render();
    };
    handlers.ready = [&](std::string& why) {
        if (!ready.load()) why = "catching up: epoch 3 of 7";
        return ready.load();
    };
    auto server = must_start("127.0.0.1:0", handlers);
    ASSERT_NE(server, nullptr);
    ASSERT_GT(server->port(), 0);

    httplib::Client client("127.0.0.1", server->port());
    client.set_connection_timeout(5);
    client.set_read_timeout(5);

    auto metrics = client.Get("/metrics");
    ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
    EXPECT_EQ(metrics->status, 200);
    EXPECT_EQ(metrics->get_header_value("Content-Type"),
              "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(metrics->body.find("# TYPE tobd_test_scrapes_total counter\n"), std::string::npos)
        << metrics->body;
    // The handler runs per request: the second scrape counts itself and the first.
    metrics = client.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("tobd_test_scrapes_total 2\n"), std::string::npos)
        << metrics->body;

    auto health = client.Get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(health->body, "ok\n");

    auto not_ready = client.Get("/readyz");
    ASSERT_TRUE(not_ready);
    EXPECT_EQ(not_ready->status, 503);
    EXPECT_EQ(not_ready->body, "catching up: epoch 3 of 7\n");

    ready = true;
    auto now_ready = client.Get("/readyz");
    ASSERT_TRUE(now_ready);
    EXPECT_EQ(now_ready->status, 200);
    EXPECT_EQ(now_ready->body, "ready\n");

    ready = false;
    auto again = client.Get("/readyz");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 503);

    for (const char* path : {"/", "/metrics/extra", "/health", "/readyz/"}) {
        auto res = client.Get(path);
        ASSERT_TRUE(res) << path;
        EXPECT_EQ(res->status, 404) << path;
        EXPECT_EQ(res->body, "not found\n") << path;
    }
    auto post = client.Post("/metrics", "x", "text/plain");
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 404);

    server->stop();
    server->stop();  // idempotent
    httplib::Client after("127.0.0.1", server->port());
    after.set_connection_timeout(1);
    EXPECT_FALSE(after.Get("/healthz"));
}

TEST(HttpServerTest, oversized_request_bodies_are_refused) {
    auto server = must_start("127.0.0.1:0", HttpHandlers{});
    ASSERT_NE(server, nullptr);
    httplib::Client client("127.0.0.1", server->port());
    client.set_read_timeout(5);
    auto res =
        client.Post("/metrics", std::string(HttpServer::kPayloadBytesMax + 1, 'x'), "text/plain");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 413);
    // Without handlers: no metrics, and readiness is unknown, so not ready.
    auto metrics = client.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 404);
    auto readyz = client.Get("/readyz");
    ASSERT_TRUE(readyz);
    EXPECT_EQ(readyz->status, 503);
}

TEST(HttpServerTest, a_port_in_use_is_an_error_naming_the_address) {
    Listener busy;
    const std::string address = "127.0.0.1:" + std::to_string(busy.port());
    auto started = HttpServer::start(address, HttpHandlers{});
    ASSERT_TRUE(std::holds_alternative<std::string>(started));
    const std::string& error = std::get<std::string>(started);
    EXPECT_NE(error.find(address), std::string::npos) << error;
    EXPECT_NE(error.find("Address already in use"), std::string::npos) << error;

    // A second HttpServer on a port the first one holds fails the same way
    // (no SO_REUSEPORT sharing).
    auto first = must_start("127.0.0.1:0", HttpHandlers{});
    ASSERT_NE(first, nullptr);
    auto second = HttpServer::start("127.0.0.1:" + std::to_string(first->port()), HttpHandlers{});
    EXPECT_TRUE(std::holds_alternative<std::string>(second));
}

TEST(HttpServerTest, bad_addresses_are_errors) {
    for (const char* address : {"", "127.0.0.1", "127.0.0.1:", ":9100", "127.0.0.1:70000",
                                "127.0.0.1:port", "::1:9100", "[::1:9100"}) {
        auto started = HttpServer::start(address, HttpHandlers{});
        ASSERT_TRUE(std::holds_alternative<std::string>(started)) << address;
        EXPECT_NE(std::get<std::string>(started).find("HOST:PORT"), std::string::npos)
            << std::get<std::string>(started);
    }
    auto not_local = HttpServer::start("192.0.2.1:0", HttpHandlers{});  // TEST-NET-1, not ours
    ASSERT_TRUE(std::holds_alternative<std::string>(not_local));
    EXPECT_NE(std::get<std::string>(not_local).find("192.0.2.1:0: cannot listen"),
              std::string::npos)
        << std::get<std::string>(not_local);
}

}  // namespace
}  // namespace tob::daemon
