#include "daemon/transport.h"

#include <zmq_addon.hpp>

#include "cli/client/protocol.h"
#include "crypto/hash.h"
#include "daemon/memory_budget.h"

// libzmq (4.2.2 and later) implements ZMQ_ZAP_ENFORCE_DOMAIN but declares it only
// for draft builds; setup_server reads it back, so a library without it refuses to
// start rather than run without the enforcement.
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

namespace tob::daemon {

using client::kChannelClient;
using client::kChannelPeer;
using consensus::Bytes;
using consensus::ByteView;
using consensus::NodeId;

namespace {

constexpr std::size_t kHeaderBytes = 10;
// A stranger that opens a connection and says nothing holds it this long at most.
constexpr int kHandshakeMs = 5000;
constexpr auto kZapProbeTimeout = std::chrono::milliseconds(2000);
constexpr auto kMonitorDrainPeriod = std::chrono::milliseconds(20);

// "tcp://host:port" with port + offset (test-only twin); unchanged if offset is 0
// or the endpoint has no port.
std::string shift_port(const std::string& endpoint, std::uint32_t offset) {
    if (offset == 0) return endpoint;
    auto colon = endpoint.rfind(':');
    if (colon == std::string::npos) return endpoint;
    try {
        const unsigned long port = std::stoul(endpoint.substr(colon + 1));
        return endpoint.substr(0, colon + 1) + std::to_string(port + offset);
    } catch (const std::exception&) {
        return endpoint;
    }
}

void put_header(std::array<std::uint8_t, kHeaderBytes>& h, NodeId sender, std::uint64_t seq) {
    h[0] = static_cast<std::uint8_t>(sender >> 8);
    h[1] = static_cast<std::uint8_t>(sender);
    for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<std::uint8_t>(seq >> (56 - 8 * i));
}

Bytes to_bytes(const zmq::message_t& m) {
    const auto* p = static_cast<const std::uint8_t*>(m.data());
    return Bytes(p, p + m.size());
}

// Without Curve (test only) the member ROUTER has no authenticated name for a
// connection: the envelope's sender field is read instead (canonical encoding:
// fixarray 6, bin8 of 32 bytes, then the sender as a msgpack uint), unverified.
NodeId peek_envelope_sender(const zmq::message_t& m) {
    const auto* p = static_cast<const std::uint8_t*>(m.data());
    const std::size_t n = m.size();
    if (n < 36 || p[0] != 0x96 || p[1] != 0xc4 || p[2] != 32) return Inbound::kUnknownMember;
    const std::uint8_t tag = p[35];
    if (tag < 0x80) return tag;
    if (tag == 0xcc && n > 36) return p[36];
    if (tag == 0xcd && n > 37) return static_cast<NodeId>((p[36] << 8) | p[37]);
    return Inbound::kUnknownMember;
}

void set_raw(zmq::socket_t& s, int option, const void* value, std::size_t size) {
    if (zmq_setsockopt(s.handle(), option, value, size) != 0) throw zmq::error_t();
}

}  // namespace

Transport::Transport(TransportOptions options)
    : opt_(std::move(options)),
      pub_(ctx_, zmq::socket_type::pub),
      sub_(ctx_, zmq::socket_type::sub),
      router_(ctx_, zmq::socket_type::router),
      client_(ctx_, zmq::socket_type::router),
      client_connections_(opt_.client_connections_max, opt_.client_connections_per_address_max),
      rng_(opt_.faults.seed) {}

Transport::~Transport() {
    // Close every socket (linger 0 everywhere), then the ZAP handler, before the
    // context terminates.
    outboxes_.clear();
    dealers_.clear();
    monitors_.clear();
    pub_.close();
    sub_.close();
    router_.close();
    client_.close();
    zap_.reset();
}

std::optional<std::string> Transport::start_zap() {
    ZapPolicy policy;
    for (const auto& m : opt_.members) policy.members.emplace(m.curve_key, m.id);
    policy.clients_open = opt_.clients_open;
    policy.clients = opt_.client_keys;
    if (!opt_.test_skip_zap) {
        auto started = ZapHandler::start(ctx_, std::move(policy));
        if (auto* error = std::get_if<std::string>(&started)) return "ZAP handler: " + *error;
        zap_ = std::move(std::get<std::unique_ptr<ZapHandler>>(started));
    }
    if (!ZapHandler::probe(ctx_, kZapProbeTimeout)) {
        return std::string("no ZAP handler answers at ") + std::string(kZapEndpoint) +
               ": refusing to bind any socket without authentication (fail closed)";
    }
    return std::nullopt;
}

void Transport::setup_server(zmq::socket_t& s, std::string_view domain) {
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::handshake_ivl, kHandshakeMs);
    if (!opt_.curve) return;
    const int one = 1;
    set_raw(s, ZMQ_CURVE_SERVER, &one, sizeof one);
    set_raw(s, ZMQ_CURVE_SECRETKEY, opt_.curve->secret_key().data(), 32);
    s.set(zmq::sockopt::zap_domain, std::string(domain));
    // No handler answering = no connection (libzmq would otherwise let CURVE
    // clients in unauthenticated when the handler is missing).
    set_raw(s, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one);
    int enforced = 0;
    std::size_t size = sizeof enforced;
    if (zmq_getsockopt(s.handle(), ZMQ_ZAP_ENFORCE_DOMAIN, &enforced, &size) != 0 ||
        enforced != 1) {
        throw zmq::error_t();  // refuse to bind a socket that would admit without ZAP
    }
}

void Transport::setup_client(zmq::socket_t& s, const crypto::CurvePublicKey& server_key) {
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::handshake_ivl, kHandshakeMs);
    if (!opt_.curve) return;
    set_raw(s, ZMQ_CURVE_SERVERKEY, server_key.data(), 32);
    set_raw(s, ZMQ_CURVE_PUBLICKEY, opt_.curve->public_key().data(), 32);
    set_raw(s, ZMQ_CURVE_SECRETKEY, opt_.curve->secret_key().data(), 32);
}

std::variant<std::unique_ptr<Transport>, std::string> Transport::open(TransportOptions options) {
    std::unique_ptr<Transport> t(new Transport(std::move(options)));
    const auto& opt = t->opt_;
    if (opt.self >= opt.members.size()) return std::string("node id is not a member");
    const auto& me = opt.members[opt.self];
    const std::int64_t max_frame = static_cast<std::int64_t>(opt.message_bytes_max) + 64;
    std::string where;
    try {
        // Fail closed: the handler answers before any socket binds.
        if (opt.curve) {
            if (auto error = t->start_zap()) return *error;
        }
        t->setup_server(t->pub_, kZapDomainMember);
        t->setup_server(t->router_, kZapDomainMember);
        t->setup_server(t->client_, kZapDomainClient);
        t->sub_.set(zmq::sockopt::linger, 0);
        t->pub_.set(zmq::sockopt::sndhwm, opt.pub_send_hwm);
        t->sub_.set(zmq::sockopt::rcvhwm, opt.recv_hwm);
        t->sub_.set(zmq::sockopt::maxmsgsize, max_frame);
        t->sub_.set(zmq::sockopt::subscribe, "");
        for (auto* r : {&t->router_, &t->client_}) r->set(zmq::sockopt::router_mandatory, 1);
        t->router_.set(zmq::sockopt::maxmsgsize, max_frame);
        t->client_.set(zmq::sockopt::maxmsgsize,
                       opt.client_frame_max != 0 ? static_cast<std::int64_t>(opt.client_frame_max)
                                                 : max_frame);
        t->router_.set(zmq::sockopt::rcvhwm, opt.recv_hwm);
        t->router_.set(zmq::sockopt::sndhwm, 2);  // the member ROUTER sends nothing
        t->client_.set(zmq::sockopt::rcvhwm, opt.client_hwm);
        t->client_.set(zmq::sockopt::sndhwm, opt.client_send_hwm);

        where = "socket monitors";
        t->add_monitor(t->pub_, MonitorRole::Server, ServerSocket::MemberPub, 0);
        t->add_monitor(t->router_, MonitorRole::Server, ServerSocket::MemberRouter, 0);
        t->add_monitor(t->client_, MonitorRole::Server, ServerSocket::Client, 0);
        t->add_monitor(t->sub_, MonitorRole::Sub, ServerSocket::MemberPub, 0);

        where = shift_port(me.pub_endpoint, opt.twin_port_offset);
        t->pub_.bind(where);
        where = shift_port(me.router_endpoint, opt.twin_port_offset);
        t->router_.bind(where);
        where = shift_port(me.client_endpoint, opt.twin_port_offset);
        t->client_.bind(where);

        for (const auto& m : opt.members) {
            if (m.id == opt.self) continue;
            where = m.router_endpoint;
            zmq::socket_t dealer(t->ctx_, zmq::socket_type::dealer);
            t->setup_client(dealer, m.curve_key);
            dealer.set(zmq::sockopt::immediate, 1);
            dealer.set(zmq::sockopt::sndhwm, opt.peer_send_hwm);
            t->add_monitor(dealer, MonitorRole::Dealer, ServerSocket::MemberRouter, m.id);
            t->dealers_.emplace(m.id, std::move(dealer));
            t->pub_endpoint_to_peer_[m.pub_endpoint] = m.id;
            for (auto [role, endpoint] : {std::pair{MonitorRole::Sub, &m.pub_endpoint},
                                          std::pair{MonitorRole::Dealer, &m.router_endpoint}}) {
                Link& link = t->links_[{role, m.id}];
                link.kind = role;
                link.peer = m.id;
                link.endpoint = *endpoint;
            }
        }
        where = "peers";
        t->connect_peers();
    } catch (const zmq::error_t& e) {
        return where + ": " + e.what();
    }
    return t;
}

std::vector<bool> Transport::wait(std::chrono::milliseconds timeout, const std::vector<int>& fds) {
    // Every ZeroMQ socket in a zmq_poll costs two system calls per call (libzmq
    // checks its command mailbox before and after the poll), and the loop polls
    // some thousands of times a second under load. So only the sockets that carry
    // work are polled, plus the client server's monitor (connection accounting
    // must keep up with a connection flood); the link and member-server monitors
    // report redials and refused handshakes, which can wait kMonitorDrainPeriod.
    std::vector<zmq::pollitem_t> items;
    items.push_back({sub_.handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({router_.handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({client_.handle(), 0, ZMQ_POLLIN, 0});
    const std::size_t first_monitor = items.size();
    std::vector<Monitor*> polled;
    for (const auto& m : monitors_) {
        if (m->role == MonitorRole::Server && m->server == ServerSocket::Client) {
            items.push_back({m->socket.handle(), 0, ZMQ_POLLIN, 0});
            polled.push_back(m.get());
        }
    }
    const std::size_t first_fd = items.size();
    for (int fd : fds) items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
    // The DEALERs whose outbox waits for room in libzmq's queue.
    const std::size_t first_outbox = items.size();
    std::vector<NodeId> waiting;
    for (const auto& [peer, box] : outboxes_) {
        if (box.frames.empty()) continue;
        items.push_back({dealers_.at(peer).handle(), 0, ZMQ_POLLOUT, 0});
        waiting.push_back(peer);
    }
    if (!held_.empty()) {
        auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
            held_.front().release - std::chrono::steady_clock::now());
        if (until < timeout) timeout = std::max(until, std::chrono::milliseconds(0));
    }
    timeout = until_next_redial(timeout);
    try {
        zmq::poll(items, timeout);
    } catch (const zmq::error_t&) {
        // EINTR (a signal): the caller checks its stop flag and comes back.
        for (auto& item : items) item.revents = ZMQ_POLLIN;  // read everything once
    }
    for (std::size_t i = 0; i < waiting.size(); ++i) {
        if (items[first_outbox + i].revents & ZMQ_POLLOUT) flush_outbox(waiting[i]);
    }
    for (std::size_t i = 0; i < readable_.size(); ++i) readable_[i] = items[i].revents & ZMQ_POLLIN;
    for (std::size_t i = 0; i < polled.size(); ++i) {
        if (items[first_monitor + i].revents & ZMQ_POLLIN) drain_monitor(*polled[i]);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_monitor_drain_) {
        next_monitor_drain_ = now + kMonitorDrainPeriod;
        for (const auto& m : monitors_) {
            if (std::find(polled.begin(), polled.end(), m.get()) == polled.end()) drain_monitor(*m);
        }
    }
    redial_due();
    std::vector<bool> ready(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i)
        ready[i] = items[first_fd + i].revents & ZMQ_POLLIN;
    return ready;
}

bool Transport::recv_multipart(zmq::socket_t& socket, std::vector<zmq::message_t>& parts) {
    parts.clear();
    for (;;) {
        zmq::message_t msg;
        auto got =
            socket.recv(msg, parts.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
        if (!got) return !parts.empty();
        const bool more = msg.more();
        if (parts.size() < 8) parts.push_back(std::move(msg));
        if (!more) return true;
    }
}

void Transport::admit(Inbound in, std::vector<Inbound>& out) {
    const auto& f = opt_.faults;
    if (in.source == Inbound::Source::Client || !f.enabled()) {
        out.push_back(std::move(in));
        return;
    }
    std::uniform_real_distribution<double> u(0, 1);
    if (u(rng_) < f.drop) {
        ++stats_.fault_dropped;
        return;
    }
    int copies = u(rng_) < f.duplicate ? 2 : 1;
    if (copies == 2) ++stats_.fault_duplicated;
    for (int c = 0; c < copies; ++c) {
        if (f.delay_ms_max > 0 && u(rng_) < f.delay) {
            ++stats_.fault_delayed;
            std::uniform_int_distribution<std::uint32_t> d(1, f.delay_ms_max);
            Held h{std::chrono::steady_clock::now() + std::chrono::milliseconds(d(rng_)), in};
            auto pos = std::upper_bound(held_.begin(), held_.end(), h.release,
                                        [](const auto& t, const Held& x) { return t < x.release; });
            held_.insert(pos, std::move(h));
        } else {
            out.push_back(in);
        }
    }
}

bool Transport::receive_sub(std::vector<zmq::message_t>& parts, std::vector<Inbound>& out) {
    if (!recv_multipart(sub_, parts)) return false;
    ++stats_.frames_in;
    if (parts.size() != 2 || parts[0].size() != kHeaderBytes) {
        ++stats_.bad_frames;
        ++stats_.frames_dropped[static_cast<std::size_t>(ServerSocket::MemberPub)];
        return true;
    }
    const auto* h = static_cast<const std::uint8_t*>(parts[0].data());
    NodeId sender = static_cast<NodeId>((h[0] << 8) | h[1]);
    std::uint64_t seq = 0;
    for (int i = 0; i < 8; ++i) seq = (seq << 8) | h[2 + i];
    auto& last = last_seq_[sender];
    if (seq > last + 1 && last != 0) stats_.pubsub_gaps += seq - last - 1;
    last = seq;  // a restarted sender starts again at 1: resync
    stats_.bytes_in += parts[1].size();
    admit(Inbound{Inbound::Source::PubSub, {}, {}, to_bytes(parts[1]), sender}, out);
    return true;
}

bool Transport::receive_router(std::vector<zmq::message_t>& parts, std::vector<Inbound>& out) {
    if (!recv_multipart(router_, parts)) return false;
    ++stats_.frames_in;
    if (parts.size() != 3 || parts[1].size() != 1 ||
        *static_cast<const std::uint8_t*>(parts[1].data()) != kChannelPeer) {
        ++stats_.bad_frames;
        ++stats_.frames_dropped[static_cast<std::size_t>(ServerSocket::MemberRouter)];
        return true;
    }
    stats_.bytes_in += parts[2].size();
    // The ZAP handler names a member's connection "member-<id>" (daemon/zap.cpp).
    NodeId from = opt_.curve ? Inbound::kUnknownMember : peek_envelope_sender(parts[2]);
    const char* user = zmq_msg_gets(parts[2].handle(), "User-Id");
    if (user != nullptr && std::string_view(user).rfind("member-", 0) == 0) {
        try {
            from = static_cast<NodeId>(std::stoul(std::string(user + 7)));
        } catch (const std::exception&) {
            from = Inbound::kUnknownMember;
        }
    }
    admit(Inbound{Inbound::Source::Peer, {}, {}, to_bytes(parts[2]), from}, out);
    return true;
}

bool Transport::receive_client(std::vector<zmq::message_t>& parts, std::vector<Inbound>& out) {
    if (!recv_multipart(client_, parts)) return false;
    ++stats_.frames_in;
    if (parts.size() != 3 || parts[1].size() != 1 ||
        *static_cast<const std::uint8_t*>(parts[1].data()) != kChannelClient) {
        ++stats_.bad_frames;
        ++stats_.frames_dropped[static_cast<std::size_t>(ServerSocket::Client)];
        return true;
    }
    stats_.bytes_in += parts[2].size();
    // The connection's descriptor, so that an admitted request can earn it its
    // slot (daemon/client_connections.h).
    const int fd = zmq_msg_get(parts[2].handle(), ZMQ_SRCFD);
    if (fd >= 0) client_connections_.on_frame(fd, parts[0].to_string());
    // The ZAP handler's user id for this connection: the client's Curve key.
    const char* user = zmq_msg_gets(parts[2].handle(), "User-Id");
    out.push_back(Inbound{Inbound::Source::Client, parts[0].to_string(),
                          user != nullptr ? std::string(user) : std::string(), to_bytes(parts[2])});
    return true;
}

std::vector<Inbound> Transport::receive(std::size_t max) {
    std::vector<Inbound> out;
    const auto now = std::chrono::steady_clock::now();
    while (!held_.empty() && held_.front().release <= now && out.size() < max) {
        out.push_back(std::move(held_.front().in));
        held_.pop_front();
    }
    std::vector<zmq::message_t> parts;
    // One frame of each socket in turn: a busy client connection cannot starve
    // the members, nor the reverse. Only the sockets the last wait() found
    // readable; one that runs dry is not asked again in this pass (each empty
    // read is two system calls in libzmq).
    auto [sub, router, client] = readable_;
    while (out.size() < max && (sub || router || client)) {
        if (sub) sub = receive_sub(parts, out);
        if (router && out.size() < max) router = receive_router(parts, out);
        if (client && out.size() < max) client = receive_client(parts, out);
    }
    return out;
}

void Transport::broadcast(ByteView envelope) {
    if (envelope.size() > opt_.pub_frame_max) {
        // Too large for the PUB's queues (counted in messages): to each peer on its
        // DEALER, through its outbox.
        ++stats_.broadcasts_point_to_point;
        send_to_each(envelope);
        return;
    }
    std::array<std::uint8_t, kHeaderBytes> header;
    put_header(header, opt_.self, ++seq_);
    try {
        if (!pub_.send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
            !pub_.send(zmq::buffer(envelope.data(), envelope.size()), zmq::send_flags::dontwait)) {
            ++stats_.send_drops;
            return;
        }
    } catch (const zmq::error_t&) {
        ++stats_.send_drops;
        return;
    }
    ++stats_.frames_out;
    stats_.bytes_out += envelope.size();
    if (opt_.twin_port_offset != 0) {
        for (const auto& [peer, dealer] : dealers_) send_to(peer, envelope);
    }
}

void Transport::send_to_each(ByteView envelope) {
    // One buffer, shared by the copies.
    zmq::message_t body(envelope.data(), envelope.size());
    for (const auto& [peer, dealer] : dealers_) {
        zmq::message_t copy;
        copy.copy(body);
        queue_to(peer, std::move(copy));
    }
}

void Transport::send_to(NodeId peer, ByteView envelope) {
    queue_to(peer, zmq::message_t(envelope.data(), envelope.size()));
}

bool Transport::try_send_peer(zmq::socket_t& dealer, zmq::message_t& body) {
    const std::uint8_t channel = kChannelPeer;
    // libzmq checks the high-water mark on a message's first frame only: once the
    // channel byte is taken, so is the body.
    if (!dealer.send(zmq::buffer(&channel, 1),
                     zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return false;
    }
    dealer.send(body, zmq::send_flags::none);
    return true;
}

void Transport::queue_to(NodeId peer, zmq::message_t body) {
    auto it = dealers_.find(peer);
    if (it == dealers_.end()) return;
    Outbox& box = outboxes_[peer];
    const std::size_t size = body.size();
    if (box.frames.empty()) {
        try {
            if (try_send_peer(it->second, body)) {
                ++stats_.frames_out;
                stats_.bytes_out += size;
                return;
            }
        } catch (const zmq::error_t&) {
            ++stats_.send_drops;
            return;
        }
    }
    if (box.bytes + size > opt_.outbox_bytes) {
        ++stats_.send_drops;
        ++stats_.outbox_drops;
        return;
    }
    box.bytes += size;
    stats_.outbox_bytes += size;
    stats_.outbox_bytes_max_seen = std::max(stats_.outbox_bytes_max_seen, box.bytes);
    box.frames.push_back(std::move(body));
}

void Transport::flush_outbox(NodeId peer) {
    Outbox& box = outboxes_[peer];
    zmq::socket_t& dealer = dealers_.at(peer);
    while (!box.frames.empty()) {
        zmq::message_t& front = box.frames.front();
        const std::size_t size = front.size();
        try {
            if (!try_send_peer(dealer, front)) return;  // full again: wait() polls for room
            ++stats_.frames_out;
            stats_.bytes_out += size;
        } catch (const zmq::error_t&) {
            ++stats_.send_drops;
        }
        box.bytes -= size;
        stats_.outbox_bytes -= size;
        box.frames.pop_front();
    }
}

void Transport::send_client(const std::string& routing_id, ByteView body) {
    const std::uint8_t channel = kChannelClient;
    // What libzmq holds for this connection stays within its share
    // (daemon/client_connections.h, "Replies").
    const std::uint64_t bytes = body.size() + kFrameOverhead;  // with ZeroMQ's framing
    if (opt_.client_send_each_bytes != 0 &&
        !client_connections_.may_send(routing_id, bytes, opt_.client_send_each_bytes,
                                      tcp_bytes_taken)) {
        ++stats_.client_reply_drops;
        return;
    }
    try {
        if (!client_.send(zmq::buffer(routing_id),
                          zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            ++stats_.send_drops;
            return;
        }
        client_.send(zmq::buffer(&channel, 1), zmq::send_flags::sndmore);
        client_.send(zmq::buffer(body.data(), body.size()), zmq::send_flags::none);
    } catch (const zmq::error_t&) {
        // EHOSTUNREACH: the client went away.
        ++stats_.send_drops;
        return;
    }
    client_connections_.sent(routing_id, bytes);
    ++stats_.frames_out;
    stats_.bytes_out += body.size();
}

}  // namespace tob::daemon
