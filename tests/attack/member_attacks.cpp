// tobattack member: a Byzantine member with its real keys (tests/attack/attack_lib.h).
// Every envelope below is correctly signed by the member; what makes it hostile is
// its content (docs/attacks.md lists the findings each attack reproduces).

#include <algorithm>
#include <limits>
#include <thread>

#include "tests/attack/attacks.h"

namespace tob::attack {

using namespace tob::consensus;

namespace {

struct Member {
    MemberIdentity id;
    zmq::context_t ctx{1};
    std::unique_ptr<MemberLink> link;
    std::unique_ptr<ClientLink> status;
    std::vector<NodeId> targets;
    std::mt19937_64 rng;

    Member(const std::string& config, const Common& opt)
        : id(load_member(config)), rng(make_rng(opt.seed)) {
        link = std::make_unique<MemberLink>(ctx, id.cluster, id.node.node_id, opt);
        status = std::make_unique<ClientLink>(ctx, id.cluster);
        targets = opt.targets;
        if (targets.empty()) {
            for (NodeId i = 0; i < id.cluster.n; ++i)
                if (i != id.node.node_id) targets.push_back(i);
        }
    }
    NodeId self() const { return id.node.node_id; }
    const Limits& limits() const { return id.cluster.limits; }
    Bytes seal(Epoch e, Kind k, Bytes body) const {
        return seal_envelope(*id.suite, id.cluster.chain_id, self(), e, k, std::move(body));
    }
    Epoch applied() { return status->applied(targets, std::chrono::milliseconds(800)).value_or(0); }
    void p2p(const Bytes& env) {
        for (NodeId t : targets) link->send_to(t, env);
    }
    std::string totals() const {
        return "frames=" + std::to_string(link->frames()) +
               " bytes=" + std::to_string(link->bytes()) +
               " drops=" + std::to_string(link->drops());
    }
};

// A tiny request that decodes; chain id and signature are whatever the caller sets.
Request junk_request(std::mt19937_64& rng, const Digest& chain, Nonce nonce) {
    Request r;
    r.chain_id = chain;
    r.client = random_array<32>(rng);
    r.nonce = nonce;
    r.ops = {Op{OpType::Get, Bytes{'k'}, {}, std::nullopt}};
    r.sig = random_array<64>(rng);
    return r;
}

// Finding 1: one Requests batch of thousands of requests with a foreign chain id;
// the core records one Fault per request, each holding a copy of the whole envelope.
int bad_chain_batch(Member& m, const Common& opt) {
    const std::size_t per = opt.size ? opt.size : 4000;
    Pacer pace(opt.rate > 0 ? opt.rate : 0.5, opt.seconds, opt.count);
    while (pace.next()) {
        const Digest foreign = random_array<32>(m.rng);
        RequestBatch batch;
        for (std::size_t i = 0; i < per; ++i)
            batch.requests.push_back(junk_request(m.rng, foreign, i + 1));
        const Bytes env = m.seal(0, Kind::Requests, encode(batch));
        m.p2p(env);
        report("sent=batch requests=" + std::to_string(per) + " envelope_bytes=" +
               std::to_string(env.size()) + " at_s=" + std::to_string(pace.elapsed()));
    }
    report("attack=bad-chain-batch " + m.totals());
    return 0;
}

// Finding 3: ABA bundles full of coin shares for far epochs and rounds. Each share is
// a well-formed share of ANOTHER coin name, so each check runs the full DLEQ
// verification and fails (a random 96-byte string would fail cheaply at decoding).
int coin_flood(Member& m, const Common& opt) {
    const std::size_t per = opt.size ? opt.size : m.limits().aba_bundle_max;
    const Bytes share = m.id.suite->coin_share(coin_name(m.id.cluster.chain_id, 1, 0, 1u << 30));
    const Epoch base = m.applied() + 1000;
    Pacer pace(opt.rate > 0 ? opt.rate : 10, opt.seconds, opt.count);
    while (pace.next()) {
        AbaBundle b;
        for (std::size_t i = 0; i < per; ++i) {
            b.messages.push_back(AbaMessage{static_cast<NodeId>(i % m.id.cluster.n),
                                            static_cast<Round>(m.rng() % 1000000), AbaType::Coin, 0,
                                            share});
        }
        m.p2p(m.seal(base + pace.done(), Kind::Aba, encode(b)));
    }
    report("attack=coin-flood shares_per_bundle=" + std::to_string(per) + " " + m.totals());
    return 0;
}

// Finding 3: blocks (or, --variant requests, flooded batches) holding as many
// requests with invalid client signatures as the limits allow. Workers check every
// signature before the core drops the far-future block; a few distinct envelopes are
// re-sent in a cycle (failed checks are not remembered).
int bad_sig_blocks(Member& m, const Common& opt) {
    const bool batches = opt.variant == "requests";
    const std::size_t req_bytes =
        encode(junk_request(m.rng, m.id.cluster.chain_id, 1 << 20)).size();
    std::size_t per = opt.size;
    if (per == 0) {
        per = std::min<std::size_t>(
            batches ? m.limits().batch_requests_max : m.limits().block_requests_max,
            (m.limits().block_bytes_max - 256) / (req_bytes + 1));
    }
    const Epoch base = m.applied() + 1000;
    std::vector<Bytes> envs;
    for (int k = 0; k < 8; ++k) {
        std::vector<Request> reqs;
        for (std::size_t i = 0; i < per; ++i)
            reqs.push_back(junk_request(m.rng, m.id.cluster.chain_id, (1u << 20) + i));
        if (batches) {
            envs.push_back(m.seal(0, Kind::Requests, encode(RequestBatch{std::move(reqs)})));
        } else {
            const Epoch e = base + static_cast<Epoch>(k);
            envs.push_back(m.seal(e, Kind::Block, encode(Block{e, m.self(), std::move(reqs)})));
        }
    }
    report("requests_per_envelope=" + std::to_string(per) +
           " envelope_bytes=" + std::to_string(envs[0].size()));
    Pacer pace(opt.rate > 0 ? opt.rate : 4, opt.seconds, opt.count);
    while (pace.next()) m.p2p(envs[pace.done() % envs.size()]);
    report(std::string("attack=bad-sig-") + (batches ? "batches " : "blocks ") + m.totals());
    return 0;
}

// Finding 3: unsolicited fetch replies whose inner envelopes (validly signed ABA
// bundles) carry coin shares that each cost a full verification and fail.
int fetch_reply_flood(Member& m, const Common& opt) {
    const std::size_t bytes = opt.size ? opt.size : (8u << 20);
    const Bytes share = m.id.suite->coin_share(coin_name(m.id.cluster.chain_id, 1, 0, 1u << 30));
    const Epoch base = m.applied() + 1000;
    std::vector<Bytes> envs;
    std::size_t shares = 0;
    for (int k = 0; k < 4; ++k) {
        FetchReply reply;
        std::size_t total = 0;
        while (total < bytes && reply.envelopes.size() < m.limits().fetch_items_max) {
            AbaBundle b;
            for (std::size_t i = 0; i < 64; ++i) {
                b.messages.push_back(AbaMessage{static_cast<NodeId>(i % m.id.cluster.n),
                                                static_cast<Round>(m.rng() % 1000000),
                                                AbaType::Coin, 0, share});
            }
            reply.envelopes.push_back(m.seal(base + reply.envelopes.size(), Kind::Aba, encode(b)));
            total += reply.envelopes.back().size();
            if (k == 0) shares += 64;
        }
        envs.push_back(
            m.seal(base + 5000 + static_cast<Epoch>(k), Kind::FetchReply, encode(reply)));
    }
    report("inner_coin_shares_per_reply=" + std::to_string(shares) +
           " envelope_bytes=" + std::to_string(envs[0].size()));
    Pacer pace(opt.rate > 0 ? opt.rate : 1, opt.seconds, opt.count);
    while (pace.next()) m.p2p(envs[pace.done() % envs.size()]);
    report("attack=fetch-reply-flood " + m.totals());
    return 0;
}

// Finding 3: fetch requests for committed-epoch proofs, most of them old enough to be
// answered from the on-disk archive (a RocksDB scan and a signature on the event
// loop). 4,096 distinct envelopes are signed once and re-sent in a cycle: their
// signatures then hit the verification cache, but every answer is built and signed
// again (nothing limits fetches per member). --rate 0 sends as fast as the sockets
// take them.
int fetch_request_flood(Member& m, const Common& opt) {
    const Epoch top = m.applied();
    if (top < 2) {
        report("attack=fetch-request-flood error=no-committed-epochs");
        return 1;
    }
    std::vector<Bytes> envs;
    for (int k = 0; k < 4096; ++k) {
        const Epoch e = 1 + m.rng() % (top - 1);
        FetchRequest fr{FetchType::EpochProof, 0, Digest{}};
        if (opt.variant == "aba") fr = FetchRequest{FetchType::Aba, 0, Digest{}};
        envs.push_back(m.seal(e, Kind::FetchRequest, encode(fr)));
    }
    Pacer pace(opt.rate, opt.seconds, opt.count);
    while (pace.next()) {
        const Bytes& env = envs[pace.done() % envs.size()];
        bool full = false;
        for (NodeId t : m.targets) full = !m.link->send_to(t, env) || full;
        if (full) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    report("attack=fetch-request-flood applied=" + std::to_string(top) + " " + m.totals());
    return 0;
}

// Finding 6: one SEEN for epoch applied+W makes honest nodes join (and run, empty,
// fsynced) every epoch up to it; repeated whenever the cluster delivered them.
int join_rule(Member& m, const Common& opt) {
    const Epoch w = m.id.cluster.protocol.window;
    Epoch sent_upto = 0;
    std::uint64_t seens = 0;
    Pacer pace(opt.rate > 0 ? opt.rate : 10, opt.seconds, opt.count);
    while (pace.next()) {
        const Epoch a = m.applied();
        if (a + w <= sent_upto) continue;
        sent_upto = a + w;
        SeenBody sb{m.self(), random_array<32>(m.rng)};
        m.link->broadcast(m.seal(sent_upto, Kind::Seen, encode(sb)), m.targets);
        ++seens;
    }
    report("attack=join-rule seens=" + std::to_string(seens) +
           " last_epoch=" + std::to_string(sent_upto) + " " + m.totals());
    return 0;
}

// Finding 9: a COMMIT for epoch 2^64-1 (and, --variant fetch, a fetch request there).
int commit_max(Member& m, const Common& opt) {
    const Epoch top = std::numeric_limits<Epoch>::max();
    CommitBody cb{random_array<32>(m.rng), random_array<32>(m.rng), std::nullopt};
    const Bytes commit = m.seal(top, Kind::Commit, encode(cb));
    const Bytes fetch =
        m.seal(top, Kind::FetchRequest, encode(FetchRequest{FetchType::EpochProof, 0, Digest{}}));
    Pacer pace(opt.rate > 0 ? opt.rate : 1, opt.seconds, opt.count ? opt.count : 5);
    while (pace.next()) {
        m.link->broadcast(commit, m.targets);
        if (opt.variant == "fetch") m.p2p(fetch);
    }
    report("attack=commit-max epoch=" + std::to_string(top) + " " + m.totals());
    return 0;
}

}  // namespace

int run_member(const std::string& attack, const std::string& config, const Common& opt) {
    Member m(config, opt);
    report("member=" + std::to_string(m.self()) +
           " pub_bound=" + (m.link->pub_bound() ? "1" : "0"));
    if (opt.delay > 0) {
        // Bound early (before the harness's baseline phase): the endpoints of a stopped
        // member may otherwise be taken by the local port of some connection to them.
        sleep_seconds(opt.delay);
    }
    if (opt.deaf_sub) m.link->go_deaf(m.id.cluster);
    if (attack == "deaf") {
        // Nothing but reading nothing (with --deaf-sub and --sink-router): what the
        // honest nodes queue for a member that never reads is bounded in bytes.
        sleep_seconds(opt.seconds);
        report("attack=deaf " + m.totals());
        return 0;
    }
    if (attack == "bad-chain-batch") return bad_chain_batch(m, opt);
    if (attack == "coin-flood") return coin_flood(m, opt);
    if (attack == "bad-sig-blocks") return bad_sig_blocks(m, opt);
    if (attack == "fetch-reply-flood") return fetch_reply_flood(m, opt);
    if (attack == "fetch-request-flood") return fetch_request_flood(m, opt);
    if (attack == "join-rule") return join_rule(m, opt);
    if (attack == "commit-max") return commit_max(m, opt);
    report("error=unknown-member-attack name=" + attack);
    return 2;
}

}  // namespace tob::attack
