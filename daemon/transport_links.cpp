// The transport's socket monitors: refused handshakes on the server sockets,
// connected peers, and the links (SUB -> peer PUB, DEALER -> peer ROUTER) that
// libzmq gave up on and the transport dials again (daemon/transport.h).

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <linux/tcp.h>  // tcp_info with tcpi_bytes_acked (glibc's is older)
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "daemon/metrics.h"
#include "daemon/transport.h"

namespace tob::daemon {

using consensus::NodeId;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kRedialFirst = std::chrono::milliseconds(500);
constexpr auto kRedialMax = std::chrono::milliseconds(2000);
constexpr int kServerEvents = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                              ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
constexpr int kLinkEvents = kServerEvents | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                            ZMQ_EVENT_CONNECT_RETRIED;

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
            .count());
}

bool handshake_failed(std::uint16_t event) {
    return event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
           event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
}

constexpr int kClientEvents = kServerEvents | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED;

// The remote address of a connected TCP socket ("" when it is not one).
std::string remote_address(int fd) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return {};
    char text[INET6_ADDRSTRLEN] = {};
    if (sa.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&sa)->sin_addr, text, sizeof text);
    } else if (sa.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&sa)->sin6_addr, text, sizeof text);
    } else {
        return "local";  // ipc: one address for every local peer
    }
    return text;
}

// The local TCP port of socket `fd` (-1 when it is not a TCP socket).
int local_port(int fd) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return -1;
    if (sa.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port);
    if (sa.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port);
    return -1;
}

// The port of a "tcp://host:port" endpoint (-1 otherwise).
int endpoint_port(const std::string& endpoint) {
    const auto colon = endpoint.rfind(':');
    if (endpoint.rfind("tcp://", 0) != 0 || colon == std::string::npos) return -1;
    try {
        return std::stoi(endpoint.substr(colon + 1));
    } catch (const std::exception&) {
        return -1;
    }
}

std::chrono::milliseconds redial_delay(unsigned failures) {
    auto d = kRedialFirst * (1u << std::min(failures, 4u));
    return std::min<std::chrono::milliseconds>(d, kRedialMax);
}

}  // namespace

void Transport::add_monitor(zmq::socket_t& socket, MonitorRole role, ServerSocket server,
                            NodeId peer) {
    const std::string endpoint = "inproc://tobd-monitor-" + std::to_string(monitors_.size());
    const int events = role != MonitorRole::Server      ? kLinkEvents
                       : server == ServerSocket::Client ? kClientEvents
                                                        : kServerEvents;
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), events) != 0) throw zmq::error_t();
    auto m = std::make_unique<Monitor>(
        Monitor{zmq::socket_t(ctx_, zmq::socket_type::pair), role, server, peer});
    m->socket.set(zmq::sockopt::linger, 0);
    m->socket.connect(endpoint);
    monitors_.push_back(std::move(m));
}

void Transport::connect_peers() {
    for (auto& [key, link] : links_) {
        const auto& member = opt_.members[link.peer];
        if (link.kind == MonitorRole::Sub) {
            // The server key is a socket option read at connect time: set it for
            // each peer just before dialling that peer.
            setup_client(sub_, member.curve_key);
            sub_.connect(link.endpoint);
        } else {
            dealers_.at(link.peer).connect(link.endpoint);
        }
    }
}

void Transport::drain_monitor(Monitor& monitor) {
    for (;;) {
        std::vector<zmq::message_t> parts;
        if (!recv_multipart(monitor.socket, parts)) return;
        if (parts.size() != 2 || parts[0].size() < 6) continue;
        std::uint16_t event = 0;
        std::memcpy(&event, parts[0].data(), sizeof event);
        if (monitor.role == MonitorRole::Server) {
            if (monitor.server == ServerSocket::Client &&
                (event == ZMQ_EVENT_ACCEPTED || event == ZMQ_EVENT_DISCONNECTED)) {
                std::int32_t fd = -1;
                std::memcpy(&fd, static_cast<const char*>(parts[0].data()) + 2, sizeof fd);
                on_client_connection(event, fd);
                continue;
            }
            if (handshake_failed(event))
                ++stats_.handshakes_refused[static_cast<std::size_t>(monitor.server)];
            continue;
        }
        NodeId peer = monitor.peer;
        if (monitor.role == MonitorRole::Sub) {
            auto it = pub_endpoint_to_peer_.find(parts[1].to_string());
            if (it == pub_endpoint_to_peer_.end()) continue;
            peer = it->second;
        }
        auto link = links_.find({monitor.role, peer});
        if (link != links_.end()) on_link_event(link->second, event);
    }
}

void Transport::on_client_connection(std::uint16_t event, int fd) {
    if (event == ZMQ_EVENT_DISCONNECTED) {
        client_connections_.on_disconnected(fd);
        stats_.client_connections = client_connections_.open();
        return;
    }
    const auto accepted = client_connections_.on_accepted(fd, remote_address(fd), now_ms());
    // Over a limit, or a held connection giving way: end its stream; libzmq drops
    // the connection (and reports DISCONNECTED, which frees the slot). shutdown()
    // does not close the descriptor, so it cannot hit a file libzmq has not closed
    // itself. The descriptor is checked to still be a connection to the client
    // port: libzmq may have closed it and the number may name another socket now.
    const int port = client_port();
    if (!accepted.held) {
        ++stats_.client_connections_refused;
        if (port > 0 && local_port(fd) == port) ::shutdown(fd, SHUT_RDWR);
    }
    if (accepted.evicted >= 0) {
        ++stats_.client_connections_evicted;
        if (port > 0 && local_port(accepted.evicted) == port)
            ::shutdown(accepted.evicted, SHUT_RDWR);
    }
    stats_.client_connections = client_connections_.open();
}

void Transport::credit_client(const std::string& routing_id) {
    client_connections_.credit(routing_id, now_ms());
}

int Transport::client_port() {
    // Read once the socket is bound (no client connection is accepted before).
    if (client_port_ <= 0) client_port_ = endpoint_port(client_.get(zmq::sockopt::last_endpoint));
    return client_port_;
}

std::optional<std::uint64_t> tcp_bytes_taken(int fd) {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked)
        return std::nullopt;
    int queued = 0;  // not yet acknowledged by the peer, sent or not
    if (ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0) return std::nullopt;
    return info.tcpi_bytes_acked + static_cast<std::uint64_t>(queued);
}

void Transport::reconcile_client_connections() {
    const int port = client_port();
    if (port <= 0) return;
    // Still a connection to the client port, from the address it was accepted
    // from (a refused one: any address).
    stats_.client_connections_reconciled +=
        client_connections_.reconcile([port](int fd, const std::string& address) {
            return local_port(fd) == port && (address.empty() || remote_address(fd) == address);
        });
    stats_.client_connections = client_connections_.open();
    // Once a second (publish): what the client connections' replies hold now.
    stats_.client_replies_held = client_connections_.replies_held(tcp_bytes_taken);
}

void Transport::on_link_event(Link& link, std::uint16_t event) {
    const auto now = Clock::now();
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        link.up = true;
        link.failures = 0;
        link.redial_at.reset();
        if (link.kind == MonitorRole::Sub) connected_.insert(link.peer);
        return;
    }
    if (event == ZMQ_EVENT_CONNECT_RETRIED) {
        // libzmq dials again by itself (the peer went away after a good handshake,
        // or is not listening): nothing to do.
        link.redial_at.reset();
        return;
    }
    if (handshake_failed(event)) ++stats_.link_handshake_failures;
    if (event == ZMQ_EVENT_DISCONNECTED || handshake_failed(event)) {
        link.up = false;
        if (link.kind == MonitorRole::Sub) connected_.erase(link.peer);
        // Unless a CONNECT_RETRIED follows at once, libzmq has given up on this
        // endpoint (a failed handshake): dial it again ourselves.
        if (!link.redial_at) link.redial_at = now + redial_delay(link.failures);
    }
}

void Transport::redial(Link& link) {
    ++stats_.link_redials;
    ++link.failures;
    link.redial_at.reset();
    zmq::socket_t& socket = link.kind == MonitorRole::Sub ? sub_ : dealers_.at(link.peer);
    try {
        socket.disconnect(link.endpoint);
    } catch (const zmq::error_t&) {
        // ENOENT: libzmq already forgot the endpoint.
    }
    try {
        if (link.kind == MonitorRole::Sub) setup_client(sub_, opt_.members[link.peer].curve_key);
        socket.connect(link.endpoint);
    } catch (const zmq::error_t&) {
        link.redial_at = Clock::now() + redial_delay(link.failures);
    }
}

void Transport::redial_due() {
    const auto now = Clock::now();
    for (auto& [key, link] : links_) {
        if (link.redial_at && *link.redial_at <= now) redial(link);
    }
}

std::chrono::milliseconds Transport::until_next_redial(std::chrono::milliseconds cap) const {
    const auto now = Clock::now();
    for (const auto& [key, link] : links_) {
        if (!link.redial_at) continue;
        auto d = std::chrono::duration_cast<std::chrono::milliseconds>(*link.redial_at - now);
        cap = std::min(cap, std::max(d, std::chrono::milliseconds(0)));
    }
    return cap;
}

void Transport::publish(Registry& registry) {
    reconcile_client_connections();
    static constexpr const char* kSocket[kServerSockets] = {"member_pub", "member_router",
                                                            "client"};
    for (std::size_t i = 0; i < kServerSockets; ++i) {
        registry
            .counter("tobd_handshakes_refused_total",
                     "Handshakes a server socket refused (ZAP denial, another mechanism or socket "
                     "type, junk)",
                     {{"socket", kSocket[i]}})
            .inc(static_cast<double>(stats_.handshakes_refused[i] -
                                     published_.handshakes_refused[i]));
        registry
            .counter("tobd_frames_dropped_total",
                     "Frames of the wrong shape or channel dropped before decoding",
                     {{"socket", kSocket[i]}})
            .inc(static_cast<double>(stats_.frames_dropped[i] - published_.frames_dropped[i]));
    }
    registry
        .counter("tobd_link_handshake_failures_total",
                 "Handshakes of this node's outgoing links (to peers) that failed")
        .inc(static_cast<double>(stats_.link_handshake_failures -
                                 published_.link_handshake_failures));
    registry
        .counter("tobd_client_connections_refused_total",
                 "Client connections shut down on arrival: over limits.client_connections_max "
                 "or client_connections_per_address_max")
        .inc(static_cast<double>(stats_.client_connections_refused -
                                 published_.client_connections_refused));
    registry
        .counter("tobd_client_connections_evicted_total",
                 "Client connections shut down to make room for a new one: all slots were taken "
                 "and this one had no request admitted recently")
        .inc(static_cast<double>(stats_.client_connections_evicted -
                                 published_.client_connections_evicted));
    registry
        .counter("tobd_client_connections_reconciled_total",
                 "Client connections found gone without their DISCONNECTED monitor event")
        .inc(static_cast<double>(stats_.client_connections_reconciled -
                                 published_.client_connections_reconciled));
    registry.gauge("tobd_client_connections", "Connections the client ROUTER holds")
        .set(static_cast<double>(stats_.client_connections));
    registry
        .counter("tobd_link_redials_total",
                 "Outgoing links dialled again after libzmq gave up on them")
        .inc(static_cast<double>(stats_.link_redials - published_.link_redials));
    registry
        .counter("tobd_client_replies_dropped_total",
                 "Replies not sent: the client connection held its share of unsent reply bytes")
        .inc(static_cast<double>(stats_.client_reply_drops - published_.client_reply_drops));
    published_ = stats_;
    if (!zap_) return;
    const auto& c = zap_->counts();
    const std::array<std::uint64_t, 5> now{c.member_accepted.load(), c.member_denied.load(),
                                           c.client_accepted.load(), c.client_denied.load(),
                                           c.other_denied.load()};
    static constexpr std::array<std::pair<const char*, const char*>, 5> kLabels{
        {{"member", "accepted"},
         {"member", "denied"},
         {"client", "accepted"},
         {"client", "denied"},
         {"other", "denied"}}};
    for (std::size_t i = 0; i < now.size(); ++i) {
        registry
            .counter("tobd_zap_requests_total", "Curve handshakes the ZAP handler answered",
                     {{"domain", kLabels[i].first}, {"result", kLabels[i].second}})
            .inc(static_cast<double>(now[i] - zap_published_[i]));
    }
    zap_published_ = now;
}

}  // namespace tob::daemon
