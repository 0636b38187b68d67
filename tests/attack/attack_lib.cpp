#include "tests/attack/attack_lib.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

namespace tob::attack {

// ---- pacing -------------------------------------------------------------------------

Pacer::Pacer(double rate, double seconds, std::uint64_t count)
    : rate_(rate), count_(count), start_(Clock::now()) {
    end_ = start_ + std::chrono::microseconds(static_cast<std::int64_t>(seconds * 1e6));
}

double Pacer::elapsed() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
}

bool Pacer::expired() const { return Clock::now() >= end_ || (count_ != 0 && done_ >= count_); }

bool Pacer::next() {
    if (expired()) return false;
    if (rate_ > 0) {
        const auto due = start_ + std::chrono::microseconds(static_cast<std::int64_t>(
                                      static_cast<double>(done_) / rate_ * 1e6));
        if (due > end_) return false;
        std::this_thread::sleep_until(due);
    }
    ++done_;
    return true;
}

std::mt19937_64 make_rng(std::uint64_t seed) {
    if (seed == 0) seed = std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32);
    return std::mt19937_64(seed);
}

Bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
    Bytes b(n);
    fill_random(rng, b);
    return b;
}

void fill_random(std::mt19937_64& rng, Bytes& b) {
    const std::size_t n = b.size();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const std::uint64_t v = rng();
        std::memcpy(b.data() + i, &v, 8);
    }
    for (; i < n; ++i) b[i] = static_cast<std::uint8_t>(rng());
}

void report(const std::string& line) { std::cout << "tobattack: " << line << std::endl; }

void sleep_seconds(double seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
}

// ---- identities ---------------------------------------------------------------------

namespace {
[[noreturn]] void die(const std::vector<std::string>& errors, const std::string& what) {
    for (const auto& e : errors) std::cerr << "tobattack: " << e << "\n";
    std::cerr << "tobattack: cannot load " << what << "\n";
    std::exit(2);
}
}  // namespace

daemon::ClusterConfig load_cluster(const std::string& path) {
    auto c = daemon::load_cluster_config(path);
    if (!c.ok()) die(c.errors, path);
    return std::move(*c.value);
}

MemberIdentity load_member(const std::string& node_config) {
    MemberIdentity m;
    auto n = daemon::load_node_config(node_config);
    if (!n.ok()) die(n.errors, node_config);
    m.node = std::move(*n.value);
    m.cluster = load_cluster(m.node.cluster_file.string());
    auto k = daemon::load_node_keys(m.node, m.cluster);
    if (!k.ok()) die(k.errors, "the member's keys");
    m.keys = std::move(*k.value);
    std::vector<consensus::PublicKey> members;
    for (const auto& mem : m.cluster.members) members.push_back(mem.public_key);
    m.suite = std::make_unique<consensus::RealCryptoSuite>(members, m.cluster.coin_public_key(),
                                                           m.keys->signing, m.keys->coin);
    m.rcfg.n = m.cluster.n;
    m.rcfg.t = m.cluster.t;
    m.rcfg.self = m.node.node_id;
    m.rcfg.chain_id = m.cluster.chain_id;
    m.rcfg.limits = m.cluster.limits;
    m.rcfg.window = m.cluster.protocol.window;
    return m;
}

// ---- member sockets -------------------------------------------------------------------

MemberLink::MemberLink(zmq::context_t& ctx, const daemon::ClusterConfig& cluster, NodeId self,
                       const Common& opt)
    : self_(self),
      pub_(ctx, zmq::socket_type::pub),
      sink_(ctx, zmq::socket_type::router),
      deaf_(ctx, zmq::socket_type::sub) {
    pub_.set(zmq::sockopt::linger, 0);
    pub_.set(zmq::sockopt::sndhwm, 100000);
    sink_.set(zmq::sockopt::linger, 0);
    const auto& me = cluster.members.at(self);
    if (!opt.no_pub) {
        try {
            pub_.bind(me.pub_endpoint);
            pub_bound_ = true;
        } catch (const zmq::error_t& e) {
            report(std::string("notice=cannot-bind-pub endpoint=") + me.pub_endpoint + " (" +
                   e.what() + "): point to point only");
        }
    }
    if (opt.sink_router) {
        // Answers to the member (fetch replies, COMMIT hints) arrive here and are never
        // read: the honest nodes' DEALERs fill up towards a receiver that does not read.
        sink_.set(zmq::sockopt::rcvhwm, 1);
        sink_.set(zmq::sockopt::rcvbuf, 4096);
        try {
            sink_.bind(me.router_endpoint);
        } catch (const zmq::error_t& e) {
            report(std::string("notice=cannot-bind-router (") + e.what() + ")");
        }
    }
    deaf_.set(zmq::sockopt::linger, 0);
    for (const auto& m : cluster.members) {
        if (m.id == self) continue;
        zmq::socket_t d(ctx, zmq::socket_type::dealer);
        d.set(zmq::sockopt::linger, 0);
        d.set(zmq::sockopt::sndhwm, 100000);
        d.set(zmq::sockopt::routing_id, "node-" + std::to_string(self));
        d.connect(m.router_endpoint);
        dealers_.emplace_back(m.id, std::move(d));
    }
    // Let the honest SUB sockets (re)connect to the fresh PUB and the DEALERs connect.
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
}

void MemberLink::go_deaf(const daemon::ClusterConfig& cluster) {
    // A member's SUB that takes the flood and never reads it: each honest PUB's
    // queue towards this subscriber fills (libzmq counts it in messages).
    deaf_.set(zmq::sockopt::rcvhwm, 1);
    deaf_.set(zmq::sockopt::rcvbuf, 4096);
    deaf_.set(zmq::sockopt::subscribe, "");
    for (const auto& m : cluster.members)
        if (m.id != self_) deaf_.connect(m.pub_endpoint);
}

void MemberLink::broadcast(ByteView envelope, const std::vector<NodeId>& targets) {
    if (pub_bound_) {
        std::array<std::uint8_t, 10> h{};
        ++seq_;
        h[0] = static_cast<std::uint8_t>(self_ >> 8);
        h[1] = static_cast<std::uint8_t>(self_);
        for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<std::uint8_t>(seq_ >> (56 - 8 * i));
        try {
            if (pub_.send(zmq::buffer(h), zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
                pub_.send(zmq::buffer(envelope.data(), envelope.size()),
                          zmq::send_flags::dontwait)) {
                ++frames_;
                bytes_ += envelope.size();
            } else {
                ++drops_;
            }
        } catch (const zmq::error_t&) {
            ++drops_;
        }
    }
    for (NodeId t : targets) send_to(t, envelope);
}

bool MemberLink::send_to(NodeId peer, ByteView envelope) {
    for (auto& [id, d] : dealers_) {
        if (id != peer) continue;
        const std::uint8_t channel = client::kChannelPeer;
        try {
            if (!d.send(zmq::buffer(&channel, 1),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
                ++drops_;
                return false;
            }
            d.send(zmq::buffer(envelope.data(), envelope.size()), zmq::send_flags::none);
        } catch (const zmq::error_t&) {
            ++drops_;
            return false;
        }
        ++frames_;
        bytes_ += envelope.size();
        return true;
    }
    return false;
}

// ---- client sockets -------------------------------------------------------------------

ClientLink::ClientLink(zmq::context_t& ctx, const daemon::ClusterConfig& cluster, int sndhwm)
    : cluster_(cluster) {
    for (const auto& m : cluster.members) {
        zmq::socket_t s(ctx, zmq::socket_type::dealer);
        s.set(zmq::sockopt::linger, 0);
        s.set(zmq::sockopt::sndhwm, sndhwm);
        s.set(zmq::sockopt::rcvhwm, 100000);
        s.connect(m.client_endpoint);  // the client plane (daemon/transport.h)
        sockets_.push_back(std::move(s));
    }
}

bool ClientLink::send(NodeId node, ByteView body) {
    if (node >= sockets_.size()) return false;
    const std::uint8_t channel = client::kChannelClient;
    try {
        if (!sockets_[node].send(zmq::buffer(&channel, 1),
                                 zmq::send_flags::sndmore | zmq::send_flags::dontwait))
            return false;
        sockets_[node].send(zmq::buffer(body.data(), body.size()), zmq::send_flags::none);
    } catch (const zmq::error_t&) {
        return false;
    }
    bytes_ += body.size();
    return true;
}

std::vector<std::pair<NodeId, client::ClientMessage>> ClientLink::poll(
    std::chrono::milliseconds timeout) {
    std::vector<std::pair<NodeId, client::ClientMessage>> out;
    std::vector<zmq::pollitem_t> items;
    for (auto& s : sockets_) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
    try {
        zmq::poll(items, timeout);
    } catch (const zmq::error_t&) {
        return out;
    }
    for (std::size_t i = 0; i < sockets_.size(); ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        for (;;) {
            std::vector<zmq::message_t> parts;
            for (bool more = true; more;) {
                zmq::message_t m;
                auto got = sockets_[i].recv(m, zmq::recv_flags::dontwait);
                if (!got) break;
                more = m.more();
                parts.push_back(std::move(m));
            }
            if (parts.empty()) break;
            if (parts.size() != 2) continue;
            ByteView body(static_cast<const std::uint8_t*>(parts[1].data()), parts[1].size());
            auto d = client::decode_client_message(body, cluster_.limits);
            if (d) out.emplace_back(static_cast<NodeId>(i), std::move(d.value()));
        }
    }
    return out;
}

std::optional<Epoch> ClientLink::applied(const std::vector<NodeId>& nodes,
                                         std::chrono::milliseconds timeout) {
    const Bytes q = client::encode_client_message(client::StatusQueryMsg{});
    for (NodeId n : nodes) send(n, q);
    std::optional<Epoch> best;
    std::size_t answers = 0;
    const auto end = Clock::now() + timeout;
    while (answers < nodes.size() && Clock::now() < end) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
        for (auto& [from, msg] : poll(left)) {
            if (auto* s = std::get_if<client::StatusMsg>(&msg)) {
                ++answers;
                best = std::max(best.value_or(0), s->applied);
            }
        }
    }
    return best;
}

consensus::Request signed_request(const crypto::SigningKey& key, const Digest& chain_id,
                                  consensus::Nonce nonce, std::vector<consensus::Op> ops,
                                  Epoch expires) {
    consensus::Request r;
    r.chain_id = chain_id;
    r.client = key.public_key();
    r.nonce = nonce;
    r.expires = expires;
    r.ops = std::move(ops);
    r.sig = key.sign(consensus::kRequestTag, consensus::request_sign_payload(r));
    return r;
}

Bytes submit_body(const consensus::Request& request) {
    return client::encode_client_message(client::SubmitMsg{consensus::encode(request)});
}

}  // namespace tob::attack
