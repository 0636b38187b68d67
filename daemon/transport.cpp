#include "daemon/transport.h"

#include <zmq_addon.hpp>

#include "cli/client/protocol.h"

namespace tob::daemon {

using client::kChannelClient;
using client::kChannelPeer;
using consensus::Bytes;
using consensus::ByteView;
using consensus::NodeId;

namespace {

constexpr std::size_t kHeaderBytes = 10;
constexpr const char* kMonitorEndpoint = "inproc://tobd-sub-monitor";

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

}  // namespace

Transport::Transport(TransportOptions options)
    : opt_(std::move(options)),
      pub_(ctx_, zmq::socket_type::pub),
      sub_(ctx_, zmq::socket_type::sub),
      router_(ctx_, zmq::socket_type::router),
      monitor_(ctx_, zmq::socket_type::pair),
      rng_(opt_.faults.seed) {}

Transport::~Transport() {
    // Close every socket before the context terminates (linger 0 everywhere).
    dealers_.clear();
    monitor_.close();
    pub_.close();
    sub_.close();
    router_.close();
}

std::variant<std::unique_ptr<Transport>, std::string> Transport::open(TransportOptions options) {
    std::unique_ptr<Transport> t(new Transport(std::move(options)));
    const auto& opt = t->opt_;
    if (opt.self >= opt.members.size()) return std::string("node id is not a member");
    const auto& me = opt.members[opt.self];
    const std::int64_t max_frame = static_cast<std::int64_t>(opt.message_bytes_max) + 64;
    std::string where;
    try {
        for (auto* s : {&t->pub_, &t->sub_, &t->router_}) s->set(zmq::sockopt::linger, 0);
        t->pub_.set(zmq::sockopt::sndhwm, opt.send_hwm);
        t->sub_.set(zmq::sockopt::rcvhwm, opt.recv_hwm);
        t->sub_.set(zmq::sockopt::maxmsgsize, max_frame);
        t->sub_.set(zmq::sockopt::subscribe, "");
        t->router_.set(zmq::sockopt::maxmsgsize, max_frame);
        t->router_.set(zmq::sockopt::rcvhwm, opt.recv_hwm);
        t->router_.set(zmq::sockopt::sndhwm, opt.send_hwm);
        t->router_.set(zmq::sockopt::router_mandatory, 1);
        where = shift_port(me.pub_endpoint, opt.twin_port_offset);
        t->pub_.bind(where);
        where = shift_port(me.router_endpoint, opt.twin_port_offset);
        t->router_.bind(where);

        where = kMonitorEndpoint;
        if (zmq_socket_monitor(t->sub_.handle(), kMonitorEndpoint,
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0) {
            throw zmq::error_t();
        }
        t->monitor_.set(zmq::sockopt::linger, 0);
        t->monitor_.connect(kMonitorEndpoint);

        for (const auto& m : opt.members) {
            if (m.id == opt.self) continue;
            where = m.pub_endpoint;
            t->pub_endpoint_to_peer_[m.pub_endpoint] = m.id;
            t->sub_.connect(m.pub_endpoint);
            zmq::socket_t dealer(t->ctx_, zmq::socket_type::dealer);
            dealer.set(zmq::sockopt::linger, 0);
            dealer.set(zmq::sockopt::immediate, 1);
            dealer.set(zmq::sockopt::sndhwm, opt.send_hwm);
            dealer.set(zmq::sockopt::routing_id, "node-" + std::to_string(opt.self));
            where = m.router_endpoint;
            dealer.connect(m.router_endpoint);
            t->dealers_.emplace(m.id, std::move(dealer));
        }
    } catch (const zmq::error_t& e) {
        return where + ": " + e.what();
    }
    return t;
}

std::vector<bool> Transport::wait(std::chrono::milliseconds timeout, const std::vector<int>& fds) {
    std::vector<zmq::pollitem_t> items;
    items.push_back({sub_.handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({router_.handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({monitor_.handle(), 0, ZMQ_POLLIN, 0});
    for (int fd : fds) items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
    if (!held_.empty()) {
        auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
            held_.front().release - std::chrono::steady_clock::now());
        if (until < timeout) timeout = std::max(until, std::chrono::milliseconds(0));
    }
    try {
        zmq::poll(items, timeout);
    } catch (const zmq::error_t&) {
        // EINTR (a signal): the caller checks its stop flag and comes back.
    }
    if (items[2].revents & ZMQ_POLLIN) drain_monitor();
    std::vector<bool> ready(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) ready[i] = items[3 + i].revents & ZMQ_POLLIN;
    return ready;
}

void Transport::drain_monitor() {
    for (;;) {
        std::vector<zmq::message_t> parts;
        if (!recv_multipart(monitor_, parts)) return;
        if (parts.size() != 2 || parts[0].size() < 6) continue;
        std::uint16_t event;
        std::memcpy(&event, parts[0].data(), sizeof event);
        auto it = pub_endpoint_to_peer_.find(parts[1].to_string());
        if (it == pub_endpoint_to_peer_.end()) continue;
        if (event == ZMQ_EVENT_CONNECTED) connected_.insert(it->second);
        if (event == ZMQ_EVENT_DISCONNECTED) connected_.erase(it->second);
    }
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

std::vector<Inbound> Transport::receive(std::size_t max) {
    std::vector<Inbound> out;
    const auto now = std::chrono::steady_clock::now();
    while (!held_.empty() && held_.front().release <= now && out.size() < max) {
        out.push_back(std::move(held_.front().in));
        held_.pop_front();
    }
    std::vector<zmq::message_t> parts;
    bool progress = true;
    while (out.size() < max && progress) {
        progress = false;
        if (recv_multipart(sub_, parts)) {
            progress = true;
            ++stats_.frames_in;
            if (parts.size() != 2 || parts[0].size() != kHeaderBytes) {
                ++stats_.bad_frames;
            } else {
                const auto* h = static_cast<const std::uint8_t*>(parts[0].data());
                NodeId sender = static_cast<NodeId>((h[0] << 8) | h[1]);
                std::uint64_t seq = 0;
                for (int i = 0; i < 8; ++i) seq = (seq << 8) | h[2 + i];
                auto& last = last_seq_[sender];
                if (seq > last + 1 && last != 0) stats_.pubsub_gaps += seq - last - 1;
                last = seq;  // a restarted sender starts again at 1: resync
                stats_.bytes_in += parts[1].size();
                admit(Inbound{Inbound::Source::PubSub, {}, to_bytes(parts[1])}, out);
            }
        }
        if (out.size() >= max) break;
        if (recv_multipart(router_, parts)) {
            progress = true;
            ++stats_.frames_in;
            if (parts.size() != 3 || parts[1].size() != 1) {
                ++stats_.bad_frames;
                continue;
            }
            const std::uint8_t channel = *static_cast<const std::uint8_t*>(parts[1].data());
            stats_.bytes_in += parts[2].size();
            if (channel == kChannelPeer) {
                admit(Inbound{Inbound::Source::Peer, {}, to_bytes(parts[2])}, out);
            } else if (channel == kChannelClient) {
                out.push_back(
                    Inbound{Inbound::Source::Client, parts[0].to_string(), to_bytes(parts[2])});
            } else {
                ++stats_.bad_frames;
            }
        }
    }
    return out;
}

void Transport::broadcast(ByteView envelope) {
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

void Transport::send_to(NodeId peer, ByteView envelope) {
    auto it = dealers_.find(peer);
    if (it == dealers_.end()) return;
    const std::uint8_t channel = kChannelPeer;
    try {
        if (!it->second.send(zmq::buffer(&channel, 1),
                             zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            ++stats_.send_drops;
            return;
        }
        it->second.send(zmq::buffer(envelope.data(), envelope.size()), zmq::send_flags::none);
    } catch (const zmq::error_t&) {
        ++stats_.send_drops;
        return;
    }
    ++stats_.frames_out;
    stats_.bytes_out += envelope.size();
}

void Transport::send_client(const std::string& routing_id, ByteView body) {
    const std::uint8_t channel = kChannelClient;
    try {
        if (!router_.send(zmq::buffer(routing_id),
                          zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            ++stats_.send_drops;
            return;
        }
        router_.send(zmq::buffer(&channel, 1), zmq::send_flags::sndmore);
        router_.send(zmq::buffer(body.data(), body.size()), zmq::send_flags::none);
    } catch (const zmq::error_t&) {
        // EHOSTUNREACH: the client went away.
        ++stats_.send_drops;
        return;
    }
    ++stats_.frames_out;
    stats_.bytes_out += body.size();
}

}  // namespace tob::daemon
