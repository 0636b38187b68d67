// tobattack client: hostile clients with valid keys (freshly generated: tobd does not
// register clients, so anyone can make one). docs/attacks.md names the findings.

#include <sys/resource.h>

#include <algorithm>
#include <deque>
#include <map>
#include <thread>

#include "tests/attack/attacks.h"

namespace tob::attack {

using namespace tob::consensus;

namespace {

struct ClientSide {
    daemon::ClusterConfig cluster;
    zmq::context_t ctx{1};
    std::unique_ptr<ClientLink> link;
    std::vector<NodeId> targets;
    std::mt19937_64 rng;
    std::map<std::string, std::uint64_t> outcomes;  // reply status / error code -> count
    Epoch horizon = 0;  // epochs past the applied epoch a request may commit
    Epoch applied = 0;  // the highest applied epoch the targets reported
    Clock::time_point applied_at{};
    std::map<NodeId, std::uint64_t> answered;  // replies and errors per node

    ClientSide(const std::string& path, const Common& opt)
        : cluster(load_cluster(path)), rng(make_rng(opt.seed)) {
        link = std::make_unique<ClientLink>(ctx, cluster);
        targets = opt.targets;
        if (targets.empty())
            for (NodeId i = 0; i < cluster.n; ++i) targets.push_back(i);
        const Epoch h = cluster.protocol.request_expiry_max_epochs;
        horizon = opt.horizon == 0 ? h : std::min<Epoch>(opt.horizon, h);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        refresh();
    }
    void refresh() {
        applied =
            std::max(applied, link->applied(targets, std::chrono::milliseconds(1000)).value_or(0));
        applied_at = Clock::now();
    }
    // The expiry of a request built now: the applied epoch (asked again once a
    // second) plus the horizon; with the default horizon, the longest the cluster
    // accepts.
    Epoch expires() {
        if (Clock::now() - applied_at > std::chrono::seconds(1)) refresh();
        return epoch_add(applied, horizon);
    }
    void submit_all(const Request& r) {
        const Bytes body = submit_body(r);
        for (NodeId t : targets) link->send(t, body);
    }
    // Counts what came back; returns the reply to (client, nonce) if one arrived.
    std::optional<client::ReplyMsg> drain(std::chrono::milliseconds timeout,
                                          const PublicKey* client = nullptr, Nonce nonce = 0) {
        std::optional<client::ReplyMsg> found;
        for (auto& [from, msg] : link->poll(timeout)) {
            ++answered[from];
            if (auto* r = std::get_if<client::ReplyMsg>(&msg)) {
                ++outcomes["reply_" + std::to_string(static_cast<int>(r->status))];
                if (client && r->client == *client && r->nonce == nonce) found = *r;
            } else if (auto* e = std::get_if<client::ErrorMsg>(&msg)) {
                ++outcomes["error_" + std::to_string(static_cast<int>(e->code))];
            }
        }
        return found;
    }
    std::optional<client::ReplyMsg> wait_reply(const PublicKey& client, Nonce nonce,
                                               double seconds) {
        const auto end = Clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
        while (Clock::now() < end) {
            if (auto r = drain(std::chrono::milliseconds(200), &client, nonce)) return r;
        }
        return std::nullopt;
    }
    std::string summary() const {
        std::string s = "sent_bytes=" + std::to_string(link->bytes());
        for (const auto& [k, v] : outcomes) s += " " + k + "=" + std::to_string(v);
        return s;
    }
};

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

// Stores one value of value_bytes_max under `name` with nonce 1 (waits up to 20 s
// for its reply, reported as put=committed or put=no-reply); returns its size.
std::size_t put_largest_value(ClientSide& c, const crypto::SigningKey& key,
                              const std::string& name) {
    const Bytes value = random_bytes(c.rng, c.cluster.limits.value_bytes_max);
    c.submit_all(signed_request(key, c.cluster.chain_id, 1,
                                {Op{OpType::Put, text(name), value, std::nullopt}}, c.expires()));
    auto put = c.wait_reply(key.public_key(), 1, 20);
    report(std::string("put=") + (put ? "committed" : "no-reply"));
    return value.size();
}

// Finding 2: one 256 KiB value, then requests of request_ops_max GETs on it: every
// GET's output carries the whole value, on every node, with no cap.
int big_outputs(ClientSide& c, const Common& opt) {
    const auto key = crypto::SigningKey::generate();
    const std::size_t value_size = put_largest_value(c, key, "amp");
    Nonce nonce = 1;
    std::vector<Op> gets(c.cluster.limits.request_ops_max,
                         Op{OpType::Get, text("amp"), {}, std::nullopt});
    const Bytes probe = encode(signed_request(key, c.cluster.chain_id, 2, gets, c.expires()));
    report("request_bytes=" + std::to_string(probe.size()) +
           " outputs_bytes_per_request=" + std::to_string(gets.size() * value_size));
    Pacer pace(opt.rate > 0 ? opt.rate : 0.5, opt.seconds, opt.count ? opt.count : 8);
    while (pace.next()) {
        c.submit_all(signed_request(key, c.cluster.chain_id, ++nonce, gets, c.expires()));
        c.drain(std::chrono::milliseconds(0));
    }
    c.drain(std::chrono::milliseconds(2000));
    report("attack=big-outputs requests=" + std::to_string(nonce - 1) + " " + c.summary());
    return 0;
}

// A client that never reads its replies: one value of value_bytes_max, then
// requests of as many GETs on it as fit one request's output cap, each sent to
// every target on DEALERs that never read (a 4 KiB receive buffer, a receive high-water mark of 1).
// Each reply carries up to request_output_bytes_max; libzmq's ROUTER queued up to 1,024 of them per
// connection on the node (daemon/client_connections.h, "Replies").
int deaf_outputs(ClientSide& c, const Common& opt) {
    const auto key = crypto::SigningKey::generate();
    const std::size_t value_size = put_largest_value(c, key, "deaf");
    Nonce nonce = 1;
    const std::size_t room = c.cluster.limits.request_output_bytes_max - (16u << 10);
    const std::size_t n_gets = std::max<std::size_t>(1, room / (value_size + 64));
    const std::vector<Op> gets(n_gets, Op{OpType::Get, text("deaf"), {}, std::nullopt});
    report("gets_per_request=" + std::to_string(n_gets) +
           " outputs_bytes_per_request=" + std::to_string(n_gets * value_size));
    // --size K: K connections to each target, each sent every request (a node
    // answers each connection that submitted it).
    std::vector<zmq::socket_t> deaf;
    for (NodeId t : c.targets) {
        for (std::uint64_t k = 0; k < std::max<std::uint64_t>(opt.size, 1); ++k) {
            zmq::socket_t s(c.ctx, zmq::socket_type::dealer);
            s.set(zmq::sockopt::linger, 0);
            s.set(zmq::sockopt::rcvbuf, 4096);
            s.set(zmq::sockopt::rcvhwm, 1);
            s.connect(c.cluster.members[t].client_endpoint);
            deaf.push_back(std::move(s));
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::uint8_t channel = client::kChannelClient;
    std::uint64_t sent = 0;
    Pacer pace(opt.rate > 0 ? opt.rate : 8, opt.seconds, opt.count);
    while (pace.next()) {
        // Each request to every target: each node answers it (the cluster executes
        // it once), so the replies grow with the targets, the cost does not.
        const Bytes body =
            submit_body(signed_request(key, c.cluster.chain_id, ++nonce, gets, c.expires()));
        for (auto& s : deaf) {
            try {
                if (s.send(zmq::buffer(&channel, 1),
                           zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
                    s.send(zmq::buffer(body.data(), body.size()), zmq::send_flags::none))
                    ++sent;
            } catch (const zmq::error_t&) {
            }
        }
    }
    report("attack=deaf-outputs requests=" + std::to_string(sent) + " " + c.summary());
    return 0;
}

// Finding 7: one client key fills the pool with large valid requests (1,024 GETs of
// ~1 KB keys each, ~1 MiB), every one with a fresh nonce, sent to every node.
int pool_flood(ClientSide& c, const Common& opt) {
    const auto key = crypto::SigningKey::generate();
    const std::size_t key_bytes = std::min<std::size_t>(c.cluster.limits.key_bytes_max, 1000);
    std::size_t ops = c.cluster.limits.request_ops_max;
    const std::size_t want = opt.size ? opt.size : c.cluster.limits.request_bytes_max - 8192;
    ops = std::min(ops, want / (key_bytes + 8));
    std::vector<Op> base;
    for (std::size_t i = 0; i < ops; ++i)
        base.push_back(Op{OpType::Get, random_bytes(c.rng, key_bytes), {}, std::nullopt});
    const Bytes probe = encode(signed_request(key, c.cluster.chain_id, 1, base, c.expires()));
    report("request_bytes=" + std::to_string(probe.size()));
    Pacer pace(opt.rate > 0 ? opt.rate : 40, opt.seconds, opt.count);
    while (pace.next()) {
        c.submit_all(signed_request(key, c.cluster.chain_id, pace.done(), base, c.expires()));
        c.drain(std::chrono::milliseconds(0));
    }
    report("attack=pool-flood requests=" + std::to_string(pace.done()) + " " + c.summary());
    return 0;
}

// Finding 10: many client keys, one tiny request each: one dedup entry per key,
// forever.
int dedup_growth(ClientSide& c, const Common& opt) {
    Pacer pace(opt.rate > 0 ? opt.rate : 500, opt.seconds, opt.count ? opt.count : 20000);
    while (pace.next()) {
        const auto key = crypto::SigningKey::generate();
        const Request r =
            signed_request(key, c.cluster.chain_id, 1,
                           {Op{OpType::Get, text("d"), {}, std::nullopt}}, c.expires());
        c.link->send(c.targets[pace.done() % c.targets.size()], submit_body(r));
        c.drain(std::chrono::milliseconds(0));
    }
    c.drain(std::chrono::milliseconds(3000));
    report("attack=dedup-growth keys=" + std::to_string(pace.done()) + " " + c.summary());
    return 0;
}

// Finding 10: a request signed and never delivered (abandoned) is replayed later.
// Before requests expired it still committed as long as its nonce was in the 1,024
// window, overwriting newer writes of the same client. Now it carries the expiry an
// honest client gives it (--horizon epochs past the applied epoch), and the replay
// waits, at least --seconds, until the cluster has applied past that expiry.
int replay(ClientSide& c, const Common& opt) {
    const auto key = crypto::SigningKey::generate();
    const Request stale =
        signed_request(key, c.cluster.chain_id, 1,
                       {Op{OpType::Put, text("replay"), text("stale"), std::nullopt}}, c.expires());
    const auto signed_at = Clock::now();
    int fresh_ok = 0;
    for (Nonce n = 2; n <= 6; ++n) {
        c.submit_all(signed_request(
            key, c.cluster.chain_id, n,
            {Op{OpType::Put, text("replay"), text("fresh-" + std::to_string(n)), std::nullopt}},
            c.expires()));
        if (c.wait_reply(key.public_key(), n, 15)) ++fresh_ok;
    }
    sleep_seconds(opt.seconds);
    const auto wait_end = Clock::now() + std::chrono::seconds(60);
    while (c.applied <= stale.expires && Clock::now() < wait_end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        c.refresh();
    }
    const double age = std::chrono::duration<double>(Clock::now() - signed_at).count();
    c.outcomes.clear();
    c.submit_all(stale);
    auto r = c.wait_reply(key.public_key(), 1, 20);
    std::string outcome = "no-reply";
    if (r) {
        outcome = r->status == client::ReplyStatus::Committed ? "committed"
                  : r->status == client::ReplyStatus::Expired ? "expired"
                                                              : "refused";
    } else if (c.outcomes.count("error_" +
                                std::to_string(static_cast<int>(client::ErrorCode::Expired)))) {
        outcome = "refused-expired";  // the nodes refused it at once
    }
    // What does the key hold now? Read it from the node that answered.
    std::string now = "?";
    const NodeId from = r ? r->node : c.targets[0];
    c.link->send(from, client::encode_client_message(
                           client::make_local_get(key, c.cluster.chain_id, text("replay"))));
    const auto end = Clock::now() + std::chrono::seconds(3);
    while (Clock::now() < end && now == "?") {
        for (auto& [sender, msg] : c.link->poll(std::chrono::milliseconds(200)))
            if (auto* v = std::get_if<client::LocalValueMsg>(&msg))
                now = v->value ? std::string(v->value->begin(), v->value->end()) : "(absent)";
    }
    report("attack=replay fresh_committed=" + std::to_string(fresh_ok) + " replay=" + outcome +
           " age_s=" + std::to_string(static_cast<int>(age)) +
           " expires=" + std::to_string(stale.expires) + " applied=" + std::to_string(c.applied) +
           " value_now=" + now);
    return 0;
}

// Finding 5: bursts of near-limit requests to one node: its next flood batch (up to
// 256 requests, no byte check) is larger than the peers' receive limit.
int big_burst(ClientSide& c, const Common& opt) {
    const auto key = crypto::SigningKey::generate();
    const std::size_t vmax = c.cluster.limits.value_bytes_max;
    const std::size_t per_req = (c.cluster.limits.request_bytes_max - 4096) / vmax;  // values
    std::vector<Op> ops;
    for (std::size_t i = 0; i < per_req; ++i)
        ops.push_back(Op{OpType::Put, text("big" + std::to_string(i)),
                         random_bytes(c.rng, vmax - 64), std::nullopt});
    const std::size_t burst = opt.size ? opt.size : 24;
    // --window W: at most W requests unanswered per target (a request without an
    // answer for 20 s no longer counts), so that the load follows what the cluster
    // commits instead of piling up in its pool when the machine is busy.
    constexpr auto kForget = std::chrono::seconds(20);
    std::map<NodeId, std::deque<Clock::time_point>> unanswered;
    Nonce nonce = 0;
    Pacer pace(opt.rate > 0 ? opt.rate : 0.5, opt.seconds, opt.count);
    while (pace.next()) {
        const auto now = Clock::now();
        for (NodeId t : c.targets) {
            std::size_t n = burst;
            if (opt.window) {
                auto& q = unanswered[t];
                for (std::uint64_t& a = c.answered[t]; a > 0 && !q.empty(); --a) q.pop_front();
                c.answered[t] = 0;
                while (!q.empty() && now - q.front() > kForget) q.pop_front();
                n = q.size() >= opt.window ? 0 : std::min<std::size_t>(n, opt.window - q.size());
                q.insert(q.end(), n, now);
            }
            for (std::size_t i = 0; i < n; ++i) {
                const Request r =
                    signed_request(key, c.cluster.chain_id, ++nonce, ops, c.expires());
                c.link->send(t, submit_body(r));
            }
        }
        c.drain(std::chrono::milliseconds(0));
    }
    c.drain(std::chrono::milliseconds(1000));
    report("attack=big-burst requests=" + std::to_string(nonce) + " " + c.summary());
    return 0;
}

// Connections without end: `count` (default 600) DEALER connections to each target
// node's client ROUTER, from `size` (default 10) source addresses 127.0.0.2 ...
// (one host would meet the per-address limit), each sending one frame of about
// request_bytes_max of junk, all held open for `seconds`. Before the limit a node
// kept every connection and up to its receive high-water mark of frames on each.
int connection_flood(ClientSide& c, const Common& opt) {
    const std::size_t per_node = opt.count ? opt.count : 600;
    const std::size_t addresses = std::clamp<std::size_t>(opt.size ? opt.size : 10, 1, 250);
    rlimit fds{};
    if (getrlimit(RLIMIT_NOFILE, &fds) == 0) {
        fds.rlim_cur = fds.rlim_max;
        setrlimit(RLIMIT_NOFILE, &fds);
    }
    zmq::context_t ctx;
    ctx.set(zmq::ctxopt::max_sockets, static_cast<int>(per_node * c.targets.size() + 64));
    const Bytes junk = random_bytes(c.rng, c.cluster.limits.request_bytes_max - 64);
    const std::uint8_t channel = client::kChannelClient;
    std::vector<zmq::socket_t> held;
    std::uint64_t sent = 0, failed = 0;
    for (std::size_t i = 0; i < per_node; ++i) {
        for (NodeId t : c.targets) {
            const std::string& ep = c.cluster.members[t].client_endpoint;  // tcp://host:port
            const std::string source = "127.0.0." + std::to_string(2 + i % addresses);
            try {
                zmq::socket_t s(ctx, zmq::socket_type::dealer);
                s.set(zmq::sockopt::linger, 0);
                s.connect("tcp://" + source + ":0;" + ep.substr(6));
                if (s.send(zmq::buffer(&channel, 1),
                           zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
                    s.send(zmq::buffer(junk.data(), junk.size()), zmq::send_flags::dontwait))
                    ++sent;
                held.push_back(std::move(s));
            } catch (const zmq::error_t&) {
                ++failed;
            }
        }
    }
    report("connections=" + std::to_string(held.size()) + " frames=" + std::to_string(sent) +
           " failed=" + std::to_string(failed));
    sleep_seconds(opt.seconds);
    held.clear();
    report("attack=connection-flood connections=" + std::to_string(per_node * c.targets.size()) +
           " addresses=" + std::to_string(addresses) + " " + c.summary());
    return 0;
}

}  // namespace

int run_client(const std::string& attack, const std::string& cluster, const Common& opt) {
    ClientSide c(cluster, opt);
    if (attack == "big-outputs") return big_outputs(c, opt);
    if (attack == "pool-flood") return pool_flood(c, opt);
    if (attack == "dedup-growth") return dedup_growth(c, opt);
    if (attack == "replay") return replay(c, opt);
    if (attack == "big-burst") return big_burst(c, opt);
    if (attack == "deaf-outputs") return deaf_outputs(c, opt);
    if (attack == "connection-flood") return connection_flood(c, opt);
    report("error=unknown-client-attack name=" + attack);
    return 2;
}

}  // namespace tob::attack
