// tobattack stranger: someone on the network with no key at all, only the public
// cluster file (docs/attacks.md names the findings).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <utility>

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
    // Unpaced attacks: a round in which a send would block waits a millisecond.
    // Against Curve no pipe ever forms and every send fails at once, so waiting
    // only every 64th refusal spun the attacker at up to half a core of the two
    // the nodes share (attacker_cpu_s 11.3 in one suite run).
    void pause_if_refused(const Common& opt, std::uint64_t full_before) const {
        if (opt.rate <= 0 && full > full_before)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
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
        const std::uint64_t full_before = s.full;
        for (std::size_t i = 0; i < s.routers.size(); ++i)
            s.send(i, client::kChannelPeer, envs[(pace.done() + i) % envs.size()]);
        s.pause_if_refused(opt, full_before);
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
        const std::uint64_t full_before = s.full;
        const auto k = pace.done();
        for (std::size_t i = 0; i < s.routers.size(); ++i) {
            if (opt.variant != "client") s.send(i, client::kChannelPeer, bigs[k % bigs.size()]);
            if (opt.variant != "peer")
                s.send(i, client::kChannelClient, submits[k % submits.size()]);
            const Bytes small = random_bytes(s.rng, 1 + s.rng() % 300);
            s.send(i, (k & 1) ? client::kChannelPeer : client::kChannelClient, small);
        }
        s.pause_if_refused(opt, full_before);
    }
    report("attack=junk " + s.totals());
    return 0;
}

// One ZMTP 3.0 SUB peer spoken by hand over a plain TCP socket: the greeting (NULL
// mechanism), READY with Socket-Type SUB, then subscription messages (a 1 byte and
// the prefix). A libzmq XSUB would keep every prefix it sends in its own trie and
// spend the shared cores on that (0.6 of a core at this rate), which the suite would
// then count against the nodes; this costs the attacker a write per frame.
class RawSub {
  public:
    explicit RawSub(std::string endpoint) : endpoint_(std::move(endpoint)) {}
    ~RawSub() { close_fd(); }
    RawSub(const RawSub&) = delete;
    RawSub& operator=(const RawSub&) = delete;
    RawSub(RawSub&& o) noexcept
        : endpoint_(std::move(o.endpoint_)),
          fd_(std::exchange(o.fd_, -1)),
          next_dial_(o.next_dial_) {}

    enum class Sent { ok, would_block, down };
    // Sends one subscription; dials (at most ten times a second) when not connected.
    Sent subscribe(ByteView prefix) {
        if (fd_ < 0 && !dial()) return Sent::down;
        std::uint8_t head[10];
        const std::uint64_t size = prefix.size() + 1;
        std::size_t h = 0;
        if (size <= 255) {
            head[h++] = 0x00;
            head[h++] = static_cast<std::uint8_t>(size);
        } else {
            head[h++] = 0x02;
            for (int i = 7; i >= 0; --i) head[h++] = static_cast<std::uint8_t>(size >> (8 * i));
        }
        head[h++] = 1;  // subscribe
        iovec iov[2] = {{head, h}, {const_cast<std::uint8_t*>(prefix.data()), prefix.size()}};
        msghdr m{};
        m.msg_iov = iov;
        m.msg_iovlen = 2;
        // A frame is written whole or not at all as far as the count goes: a partial
        // write leaves the stream mid-frame, so the connection is dropped and redialled.
        const ssize_t n = ::sendmsg(fd_, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(h + prefix.size())) return Sent::ok;
        if (n < 0 && errno == EAGAIN) return Sent::would_block;
        close_fd();
        ++drops;
        return Sent::down;
    }
    std::uint64_t dials = 0, drops = 0;

  private:
    bool dial() {
        const auto now = std::chrono::steady_clock::now();
        if (now < next_dial_) return false;
        next_dial_ = now + std::chrono::milliseconds(100);
        const auto colon = endpoint_.rfind(':');
        const auto host_at = endpoint_.find("://");
        if (colon == std::string::npos || host_at == std::string::npos) return false;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint_.substr(colon + 1))));
        if (::inet_pton(AF_INET, endpoint_.substr(host_at + 3, colon - host_at - 3).c_str(),
                        &addr.sin_addr) != 1)
            return false;
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) return false;
        ++dials;
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            close_fd();
            return false;
        }
        // Greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
        std::uint8_t greet[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0};
        std::memcpy(greet + 12, "NULL", 4);
        // READY with one property, Socket-Type = SUB.
        const std::string ready = std::string("\x05READY") + "\x0bSocket-Type" +
                                  std::string("\x00\x00\x00\x03", 4) + "SUB";
        Bytes out(greet, greet + sizeof greet);
        out.push_back(0x04);  // a short command frame
        out.push_back(static_cast<std::uint8_t>(ready.size()));
        out.insert(out.end(), ready.begin(), ready.end());
        if (::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
            close_fd();
            return false;
        }
        return true;
    }
    void close_fd() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    std::string endpoint_;
    int fd_ = -1;
    std::chrono::steady_clock::time_point next_dial_{};
};

// New (found while building the suite): a SUB-side peer may send subscriptions to a
// node's PUB; ZeroMQ keeps every distinct prefix in a trie, unbounded, since the PUB
// socket has no ZMQ_MAXMSGSIZE and nothing limits subscriptions. Against Curve the
// node refuses the NULL greeting and closes; the attacker redials ten times a second.
int sub_flood(Stranger& s, const Common& opt) {
    std::vector<RawSub> subs;
    for (NodeId t : s.targets) subs.emplace_back(s.cluster.members[t].pub_endpoint);
    const std::size_t len = opt.size ? opt.size : 4096;
    Pacer pace(opt.rate > 0 ? opt.rate : 2000, opt.seconds, opt.count);
    Bytes prefix(len);
    while (pace.next()) {
        fill_random(s.rng, prefix);  // a fresh prefix, no allocation per frame
        for (auto& x : subs) {
            switch (x.subscribe(prefix)) {
                case RawSub::Sent::ok:
                    ++s.frames;
                    s.bytes += prefix.size() + 1;
                    break;
                case RawSub::Sent::would_block:
                    ++s.full;
                    break;
                case RawSub::Sent::down:
                    break;
            }
        }
    }
    std::uint64_t dials = 0, drops = 0;
    for (const auto& x : subs) {
        dials += x.dials;
        drops += x.drops;
    }
    report("attack=sub-flood prefix_bytes=" + std::to_string(len) + " " + s.totals() +
           " dials=" + std::to_string(dials) + " dropped=" + std::to_string(drops));
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
