// tobattack stranger: someone on the network with no key at all, only the public
// cluster file (docs/attacks.md names the findings).

#include <thread>

#include "tests/attack/attacks.h"

namespace tob::attack {

using namespace tob::consensus;

namespace {

struct Stranger {
    daemon::ClusterConfig cluster;
    zmq::context_t ctx{1};
    std::vector<NodeId> targets;
    std::vector<zmq::socket_t> routers;  // a DEALER per target ROUTER
    std::mt19937_64 rng;
    std::uint64_t frames = 0, bytes = 0, full = 0;

    Stranger(const std::string& path, const Common& opt)
        : cluster(load_cluster(path)), rng(make_rng(opt.seed)) {
        targets = opt.targets;
        if (targets.empty())
            for (NodeId i = 0; i < cluster.n; ++i) targets.push_back(i);
    }
    void connect_routers() {
        for (NodeId t : targets) {
            zmq::socket_t s(ctx, zmq::socket_type::dealer);
            s.set(zmq::sockopt::linger, 0);
            s.set(zmq::sockopt::sndhwm, 1000);
            s.connect(cluster.members[t].router_endpoint);
            routers.push_back(std::move(s));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    // [channel][body] without blocking.
    bool send(std::size_t i, std::uint8_t channel, ByteView body) {
        try {
            if (!routers[i].send(zmq::buffer(&channel, 1),
                                 zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
                ++full;
                return false;
            }
            routers[i].send(zmq::buffer(body.data(), body.size()), zmq::send_flags::none);
        } catch (const zmq::error_t&) {
            ++full;
            return false;
        }
        ++frames;
        bytes += body.size();
        return true;
    }
    std::string totals() const {
        return "frames=" + std::to_string(frames) + " bytes=" + std::to_string(bytes) +
               " would_block=" + std::to_string(full);
    }
};

// Finding 4: envelopes that name a member as sender, with the right chain id and a
// random signature: each costs the loop a hash of the frame and a worker a decode and
// a signature check over the whole body; being forged, they are never remembered.
int forged(Stranger& s, const Common& opt) {
    s.connect_routers();
    const std::size_t body = opt.size ? opt.size : (4u << 20);
    std::vector<Bytes> envs;
    for (int k = 0; k < 8; ++k) {
        Envelope e;
        e.chain_id = s.cluster.chain_id;
        e.sender = static_cast<NodeId>(k % s.cluster.n);
        e.epoch = 1 + static_cast<Epoch>(k);
        e.kind = Kind::Block;
        e.body = random_bytes(s.rng, body);
        e.sig = random_array<64>(s.rng);
        envs.push_back(encode(e));
    }
    Pacer pace(opt.rate, opt.seconds, opt.count);
    while (pace.next()) {
        for (std::size_t i = 0; i < s.routers.size(); ++i)
            s.send(i, client::kChannelPeer, envs[(pace.done() + i) % envs.size()]);
        if (opt.rate <= 0 && s.full > 0 && s.full % 64 == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    report("attack=forged envelope_bytes=" + std::to_string(envs[0].size()) + " " + s.totals());
    return 0;
}

// Finding 4: junk of every size on the ROUTER: frames at the receive limit on the
// peer channel, client Submits of near-limit requests with bad signatures (decoded
// and checked by the workers), and small garbage.
int junk(Stranger& s, const Common& opt) {
    s.connect_routers();
    const std::size_t big = opt.size ? opt.size : s.cluster.limits.message_bytes_max - 1024;
    std::vector<Bytes> bigs;
    for (int k = 0; k < 4; ++k) bigs.push_back(random_bytes(s.rng, big));
    Request r;
    r.chain_id = s.cluster.chain_id;
    r.client = random_array<32>(s.rng);
    r.nonce = 1;
    const std::size_t vmax = s.cluster.limits.value_bytes_max;
    for (std::size_t i = 0; i + 1 < s.cluster.limits.request_bytes_max / vmax; ++i)
        r.ops.push_back(Op{OpType::Put, Bytes{'j'}, random_bytes(s.rng, vmax), std::nullopt});
    std::vector<Bytes> submits;
    for (int k = 0; k < 8; ++k) {
        r.nonce = static_cast<Nonce>(k + 1);
        r.sig = random_array<64>(s.rng);
        submits.push_back(submit_body(r));
    }
    Pacer pace(opt.rate, opt.seconds, opt.count);
    while (pace.next()) {
        const auto k = pace.done();
        for (std::size_t i = 0; i < s.routers.size(); ++i) {
            if (opt.variant != "client") s.send(i, client::kChannelPeer, bigs[k % bigs.size()]);
            if (opt.variant != "peer")
                s.send(i, client::kChannelClient, submits[k % submits.size()]);
            const Bytes small = random_bytes(s.rng, 1 + s.rng() % 300);
            s.send(i, (k & 1) ? client::kChannelPeer : client::kChannelClient, small);
        }
        if (opt.rate <= 0 && s.full > 0 && s.full % 64 == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    report("attack=junk " + s.totals());
    return 0;
}

// New (found while building the suite): a SUB-side peer may send subscriptions to a
// node's PUB; ZeroMQ keeps every distinct prefix in a trie, unbounded, since the PUB
// socket has no ZMQ_MAXMSGSIZE and nothing limits subscriptions.
int sub_flood(Stranger& s, const Common& opt) {
    std::vector<zmq::socket_t> xsubs;
    for (NodeId t : s.targets) {
        zmq::socket_t x(s.ctx, zmq::socket_type::xsub);
        x.set(zmq::sockopt::linger, 0);
        x.set(zmq::sockopt::sndhwm, 10000);
        x.set(zmq::sockopt::rcvhwm, 1);
        x.connect(s.cluster.members[t].pub_endpoint);
        xsubs.push_back(std::move(x));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::size_t len = opt.size ? opt.size : 4096;
    Pacer pace(opt.rate > 0 ? opt.rate : 2000, opt.seconds, opt.count);
    Bytes msg(len + 1);
    while (pace.next()) {
        msg = random_bytes(s.rng, len + 1);
        msg[0] = 1;  // subscribe
        for (auto& x : xsubs) {
            try {
                if (x.send(zmq::buffer(msg), zmq::send_flags::dontwait)) {
                    ++s.frames;
                    s.bytes += msg.size();
                } else {
                    ++s.full;
                }
            } catch (const zmq::error_t&) {
                ++s.full;
            }
        }
    }
    report("attack=sub-flood prefix_bytes=" + std::to_string(len) + " " + s.totals());
    return 0;
}

// Finding 12: a socket of another type (a PUB) bound on a stopped member's ROUTER
// endpoint for a while; it sends nothing.
int squat(Stranger& s, const Common& opt) {
    zmq::socket_t pub(s.ctx, zmq::socket_type::pub);
    pub.set(zmq::sockopt::linger, 0);
    std::string ep = opt.endpoint;
    if (ep.empty() && !s.targets.empty()) ep = s.cluster.members[s.targets[0]].router_endpoint;
    try {
        pub.bind(ep);
    } catch (const zmq::error_t& e) {
        report(std::string("attack=squat error=cannot-bind endpoint=") + ep + " (" + e.what() +
               ")");
        return 1;
    }
    report("squatting=" + ep);
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(opt.seconds * 1000)));
    pub.close();
    report("attack=squat endpoint=" + ep + " seconds=" + std::to_string(opt.seconds));
    return 0;
}

}  // namespace

int run_stranger(const std::string& attack, const std::string& cluster, const Common& opt) {
    Stranger s(cluster, opt);
    if (attack == "forged") return forged(s, opt);
    if (attack == "junk") return junk(s, opt);
    if (attack == "sub-flood") return sub_flood(s, opt);
    if (attack == "squat") return squat(s, opt);
    report("error=unknown-stranger-attack name=" + attack);
    return 2;
}

}  // namespace tob::attack
