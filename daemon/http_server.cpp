#include "daemon/http_server.h"

#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>

namespace tob::daemon {

namespace {

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextContentType = "text/plain; charset=utf-8";

// "host:port" -> host (brackets of "[v6]" removed) and port 0..65535.
bool parse_address(const std::string& address, std::string& host, int& port) {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
    const std::string port_text = address.substr(colon + 1);
    if (port_text.size() > 5) return false;
    int value = 0;
    for (char c : port_text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + (c - '0');
    }
    if (value > 65535) return false;
    host = address.substr(0, colon);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') return false;
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
        return false;  // an IPv6 address needs brackets: [::1]:9100
    }
    port = value;
    return true;
}

// SO_REUSEADDR (so a restart is not blocked by TIME_WAIT) but not httplib's
// default SO_REUSEPORT, which would let a second server bind the same port.
void socket_options(int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

// httplib reports a failed bind as false only; redo the bind to say why.
std::string bind_failure(const std::string& address, const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
        return address + ": cannot resolve " + host + ": " + ::gai_strerror(rc);
    }
    std::string why = "unknown error";
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            why = std::strerror(errno);
            continue;
        }
        socket_options(fd);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 1) != 0) {
            why = std::strerror(errno);
            if (errno == EADDRINUSE) why += " (another process listens there)";
            if (errno == EADDRNOTAVAIL) why += " (" + host + " is not an address of this machine)";
        }
        ::close(fd);
    }
    ::freeaddrinfo(found);
    return address + ": cannot listen: " + why;
}

}  // namespace

std::variant<std::unique_ptr<HttpServer>, std::string> HttpServer::start(const std::string& address,
                                                                         HttpHandlers handlers) {
    std::string host;
    int port = 0;
    if (!parse_address(address, host, port)) {
        return "\"" + address + "\": expected HOST:PORT (e.g. 127.0.0.1:9100, [::1]:9100)";
    }
    auto server = std::make_unique<httplib::Server>();
    server->set_socket_options(socket_options);
    server->new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
    server->set_payload_max_length(kPayloadBytesMax);
    server->set_read_timeout(std::chrono::seconds(5));
    server->set_write_timeout(std::chrono::seconds(5));
    server->set_keep_alive_timeout(2);
    server->set_keep_alive_max_count(20);

    int bound = port;
    if (port == 0) {
        bound = server->bind_to_any_port(host);
        if (bound < 0) return bind_failure(address, host, port);
    } else if (!server->bind_to_port(host, port)) {
        return bind_failure(address, host, port);
    }
    return std::unique_ptr<HttpServer>(
        new HttpServer(std::move(server), std::move(handlers), bound));
}

HttpServer::HttpServer(std::unique_ptr<httplib::Server> server, HttpHandlers handlers, int port)
    : server_(std::move(server)), handlers_(std::move(handlers)), port_(port) {
    server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        if (!handlers_.metrics) {
            res.status = 404;
            res.set_content("no metrics\n", kTextContentType);
            return;
        }
        try {
            res.set_content(handlers_.metrics(), kMetricsContentType);
        } catch (const std::exception& e) {
            res.status = 500;
            res.set_content(std::string("metrics failed: ") + e.what() + "\n", kTextContentType);
        }
    });
    server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("ok\n", kTextContentType);
    });
    server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
        std::string why;
        bool ready = false;
        if (!handlers_.ready) {
            why = "no readiness check configured";
        } else {
            try {
                ready = handlers_.ready(why);
            } catch (const std::exception& e) {
                why = std::string("readiness check failed: ") + e.what();
            }
        }
        if (ready) {
            res.set_content("ready\n", kTextContentType);
        } else {
            res.status = 503;
            if (why.empty()) why = "not ready";
            if (why.back() != '\n') why += '\n';
            res.set_content(why, kTextContentType);
        }
    });
    server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (res.status == 404 && res.body.empty()) res.set_content("not found\n", kTextContentType);
    });

    // listen_after_bind() runs the accept loop; stop() only takes effect once the
    // loop runs, so wait for that (or for the loop to have ended already).
    auto finished = std::make_shared<std::atomic<bool>>(false);
    thread_ = std::thread([server = server_.get(), finished] {
        server->listen_after_bind();
        finished->store(true);
    });
    while (!server_->is_running() && !finished->load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
    if (!thread_.joinable()) return;
    server_->stop();
    thread_.join();
}

}  // namespace tob::daemon
