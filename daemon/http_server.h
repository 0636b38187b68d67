#pragma once
// The metrics and health endpoint: a small HTTP server (cpp-httplib) on its own
// threads, off the event loop.
//
//   GET /metrics  200, the Prometheus text format
//                 (Content-Type: text/plain; version=0.0.4; charset=utf-8)
//   GET /healthz  200 "ok\n" while the process runs (liveness)
//   GET /readyz   200 "ready\n" when handlers.ready says so, else 503 and the reason
//                 (readiness: caught up and voting)
//   anything else 404
//
// The handlers run on the server's threads, so they must be thread-safe (a
// metrics::Registry is; a readiness callback should read atomics). Resource
// bounds: a fixed pool of worker threads, request bodies capped at 4 KiB, read
// and write timeouts of 5 s. The address is meant to be local (127.0.0.1 by
// default in the docs): there is no authentication.

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <variant>

namespace httplib {
class Server;
}

namespace tob::daemon {

struct HttpHandlers {
    std::function<std::string()> metrics;         // body of /metrics; unset = 404
    std::function<bool(std::string& why)> ready;  // true = ready; else `why` says why; unset = 503
};

class HttpServer {
  public:
    /// Worker threads serving requests.
    static constexpr std::size_t kThreads = 4;
    /// Largest accepted request body.
    static constexpr std::size_t kPayloadBytesMax = 4096;

    /// Binds "host:port" ("[::1]:9100" for IPv6; port 0 = any free port, then
    /// port() tells which) and serves until stop(). Returns an error string
    /// naming the address on failure (bad address, port in use, host not local).
    static std::variant<std::unique_ptr<HttpServer>, std::string> start(const std::string& address,
                                                                        HttpHandlers handlers);

    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;
    ~HttpServer();  // stop()

    /// The bound port.
    int port() const { return port_; }
    /// Stops accepting, finishes requests in progress and joins the threads. Idempotent.
    void stop();

  private:
    HttpServer(std::unique_ptr<httplib::Server> server, HttpHandlers handlers, int port);

    std::unique_ptr<httplib::Server> server_;
    HttpHandlers handlers_;
    int port_ = 0;
    std::thread thread_;
};

}  // namespace tob::daemon
