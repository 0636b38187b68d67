// The signature-verification workers (daemon/verify_pool.h): several threads
// verify at once, every submitted frame comes back once with the right verdict,
// a forgery is refused, and what the workers verified is a cache hit when the
// core checks it again on the loop. Run under ThreadSanitizer by `make tsan`.

#include "daemon/verify_pool.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/coin.h"
#include "crypto/sign.h"

namespace tob::daemon {
namespace {

using namespace tob::consensus;

// Four members' keys and a verify-only suite for the pool, as node 0 runs it.
struct Members {
    std::vector<crypto::SigningKey> keys;
    crypto::DealtCoin coin = crypto::deal_coin(4, 1);
    ReplicaConfig config;

    Members() {
        crypto::init();
        for (int i = 0; i < 4; ++i) keys.push_back(crypto::SigningKey::generate());
        config.n = 4;
        config.t = 1;
        config.chain_id = crypto::blake2b256(crypto::view(std::string_view("verify-pool-test")));
    }
    std::vector<PublicKey> public_keys() const {
        std::vector<PublicKey> out;
        for (const auto& k : keys) out.push_back(k.public_key());
        return out;
    }
    RealCryptoSuite signer(NodeId i) const {
        return RealCryptoSuite(public_keys(), coin.public_key, keys[i], coin.shares[i]);
    }
    // A FETCH_REQUEST envelope of epoch e signed by member i: a small signed frame
    // whose signature is checked on arrival from any connection (a SEEN's or a
    // COMMIT's is not when it comes on its sender's own: consensus/messages.h,
    // verified_on_use).
    Bytes signed_frame(NodeId i, Epoch e) const {
        return seal_envelope(signer(i), config.chain_id, i, e, Kind::FetchRequest,
                             encode(FetchRequest{FetchType::Cert, 2, Digest{}}));
    }
    Bytes commit(NodeId i, Epoch e) const {
        return seal_envelope(signer(i), config.chain_id, i, e, Kind::Commit,
                             encode(CommitBody{Digest{}, Digest{}, std::nullopt}));
    }
    Bytes real_seen(NodeId i, Epoch e) const {
        return seal_envelope(signer(i), config.chain_id, i, e, Kind::Seen,
                             encode(SeenBody{2, Digest{}}));
    }
    RealCryptoSuite verifier() const {
        return RealCryptoSuite(public_keys(), coin.public_key, std::nullopt, std::nullopt);
    }
};

Request signed_request(const crypto::SigningKey& client, const Digest& chain_id, Nonce nonce) {
    Request r;
    r.chain_id = chain_id;
    r.client = client.public_key();
    r.nonce = nonce;
    r.expires = 10'000;
    Op op;
    op.type = OpType::Put;
    op.key = Bytes{'k'};
    op.value = Bytes{static_cast<std::uint8_t>(nonce)};
    r.ops.push_back(op);
    r.sig = client.sign(kRequestTag, request_sign_payload(r));
    return r;
}

Bytes submit(const Request& r) {
    return client::encode_client_message(client::SubmitMsg{encode(r)});
}

// Waits on the pool's eventfd and collects results until `count` arrived (or 20 s).
std::vector<VerifyResult> collect(VerifyPool& pool, std::size_t count) {
    std::vector<VerifyResult> all;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (all.size() < count && std::chrono::steady_clock::now() < deadline) {
        pollfd p{pool.wake_fd(), POLLIN, 0};
        ::poll(&p, 1, 100);
        for (auto& r : pool.take_results()) all.push_back(std::move(r));
    }
    return all;
}

TEST(VerifyPool, every_frame_comes_back_once_with_its_verdict_from_many_workers) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 4, VerifyPoolBounds{});

    // 60 good envelopes from node 1 (SEENs of distinct epochs) and every 5th with a
    // flipped signature bit; the raw digest tells them apart in the results.
    std::map<Digest, bool> expect_ok;
    for (Epoch e = 1; e <= 60; ++e) {
        Bytes raw = m.signed_frame(1, e);
        const bool forge = e % 5 == 0;
        if (forge) raw[raw.size() - 1] ^= 1;  // the signature is the last field
        const Digest id = digest_of(raw);
        expect_ok[id] = !forge;
        ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::PubSub, 1, std::move(raw)));
    }
    const auto results = collect(pool, expect_ok.size());
    ASSERT_EQ(results.size(), expect_ok.size());
    std::set<Digest> seen;
    for (const auto& r : results) {
        ASSERT_TRUE(expect_ok.count(r.raw_digest));
        EXPECT_TRUE(seen.insert(r.raw_digest).second) << "a frame came back twice";
        EXPECT_EQ(r.envelope.has_value(), expect_ok[r.raw_digest]) << r.error;
        if (!expect_ok[r.raw_digest]) {
            EXPECT_EQ(r.error, "bad envelope signature");
        }
    }
    EXPECT_EQ(pool.queue_depth(), 0u);
}

TEST(VerifyPool, requests_the_workers_verified_are_cache_hits_for_the_core) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 3, VerifyPoolBounds{});

    // Client requests both alone (Submit) and inside a flooded batch envelope.
    const crypto::SigningKey client = crypto::SigningKey::generate();
    RequestBatch batch;
    for (Nonce nonce = 1; nonce <= 20; ++nonce) {
        batch.requests.push_back(signed_request(client, m.config.chain_id, nonce));
    }
    const RealCryptoSuite node2 = m.signer(2);
    Bytes raw = seal_envelope(node2, m.config.chain_id, 2, 0, Kind::Requests, encode(batch));
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 2, std::move(raw)));
    for (Nonce nonce = 21; nonce <= 30; ++nonce) {
        ASSERT_TRUE(pool.submit_client("client-" + std::to_string(nonce), "",
                                       submit(signed_request(client, m.config.chain_id, nonce))));
    }
    Request foreign = signed_request(client, Digest{}, 31);  // another chain id
    ASSERT_TRUE(pool.submit_client("foreign", "", submit(foreign)));
    const auto results = collect(pool, 12);
    ASSERT_EQ(results.size(), 12u);
    for (const auto& r : results) {
        if (r.routing_id == "foreign") {
            EXPECT_FALSE(r.request.has_value());
            EXPECT_NE(r.error.find("chain id"), std::string::npos) << r.error;
        } else {
            EXPECT_TRUE(r.envelope.has_value() || r.request.has_value()) << r.error;
        }
    }

    // The core repeats the checks on the loop (RequestPool::valid, keyed by the
    // request's digest): every one is answered by the cache, the flooded ones and
    // the submitted ones alike.
    const std::uint64_t hits_before = cache.hits();
    for (const Request& r : batch.requests) {
        EXPECT_TRUE(suite.verify_request(r, digest_of(encode(r))));
    }
    for (Nonce nonce = 21; nonce <= 30; ++nonce) {
        const Request r = signed_request(client, m.config.chain_id, nonce);
        EXPECT_TRUE(suite.verify_request(r, digest_of(encode(r))));
    }
    EXPECT_EQ(cache.hits() - hits_before, batch.requests.size() + 10);
    // A forged signature or changed operations are never a hit, and still refused.
    Request forged = batch.requests.front();
    forged.sig[0] ^= 1;
    EXPECT_FALSE(suite.verify_request(forged, digest_of(encode(forged))));
    Request changed = batch.requests.front();
    changed.ops.front().value.push_back(1);
    EXPECT_FALSE(suite.verify_request(changed, digest_of(encode(changed))));
    EXPECT_EQ(cache.hits() - hits_before, batch.requests.size() + 10);
}

}  // namespace
}  // namespace tob::daemon

namespace tob::daemon {
namespace {

using namespace tob::consensus;

// An ABA bundle of `count` coin shares of node `from` for `epoch`, rounds 1..count,
// every share a real share of another coin name (well-formed, fails its check).
Bytes coin_bundle(const Members& m, NodeId from, Epoch epoch, std::size_t count) {
    const RealCryptoSuite node = m.signer(from);
    AbaBundle bundle;
    for (std::size_t i = 1; i <= count; ++i) {
        AbaMessage msg;
        msg.proposer = 0;
        msg.round = static_cast<Round>(i);
        msg.type = AbaType::Coin;
        msg.coin_share = node.coin_share(coin_name(Digest{}, epoch, 0, msg.round));
        bundle.messages.push_back(msg);
    }
    return seal_envelope(node, m.config.chain_id, from, epoch, Kind::Aba, encode(bundle));
}

TEST(VerifyPool, a_members_queue_is_bounded_in_bytes_until_the_loop_takes_its_results) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPoolBounds bounds;
    bounds.member_bytes = 1000;
    VerifyPool pool(suite, m.config, 2, bounds);
    auto msg = [&](Epoch e) { return m.signed_frame(1, e); };
    std::size_t accepted = 0;
    for (Epoch e = 1; e <= 40; ++e)
        accepted += pool.submit_envelope(VerifyResult::Source::Peer, 1, msg(e));
    const std::size_t frame = msg(1).size();
    EXPECT_EQ(accepted, 1000 / frame);  // the rest refused, although the workers are idle
    EXPECT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 2, msg(50)))
        << "another member's queue is its own";
    EXPECT_EQ(collect(pool, accepted + 1).size(), accepted + 1);
    EXPECT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, msg(60)))
        << "taking the results frees the bytes";
}

// At low load the hand-off to a worker and back (two thread switches and a
// pass of the loop per frame) cost more than the check: a small frame reaching
// an idle pool is checked on the caller's thread, and its result is waiting
// when submit returns. The frames of one pass are checked so, up to
// kInlinePerPass of them (one synced write for the pass, not one per frame);
// the rest go to the workers, so a burst still spreads.
TEST(VerifyPool, small_frames_reaching_an_idle_pool_are_checked_at_once_up_to_a_cap_per_pass) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 1, VerifyPoolBounds{});
    auto msg = [&](Epoch e) { return m.signed_frame(1, e); };
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, msg(1)));
    EXPECT_EQ(pool.inline_checked(), 1u);
    auto now = pool.take_results();
    ASSERT_EQ(now.size(), 1u) << "the result is ready when submit returns";
    ASSERT_TRUE(now[0].envelope.has_value()) << now[0].error;
    EXPECT_EQ(now[0].envelope->epoch, 1u);

    Bytes forged = msg(2);
    forged.back() ^= 1;
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, forged));
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, msg(3)));
    EXPECT_EQ(pool.inline_checked(), 3u) << "the second frame of the pass is checked at once too";
    auto both = pool.take_results();
    ASSERT_EQ(both.size(), 2u) << "both results are ready in the same pass";
    std::size_t refused = 0, opened = 0;
    for (const auto& r : both) (r.envelope ? opened : refused) += 1;
    EXPECT_EQ(refused, 1u) << "a forgery checked at once is refused like any other";
    EXPECT_EQ(opened, 1u);

    // A burst: kInlinePerPass frames at once, the rest to the worker.
    const std::size_t burst = VerifyPool::kInlinePerPass + 3;
    for (std::size_t k = 0; k < burst; ++k)
        ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, msg(10 + k)));
    EXPECT_EQ(pool.inline_checked(), 3u + VerifyPool::kInlinePerPass)
        << "more than the cap of one pass was checked on the caller's thread";
    EXPECT_EQ(collect(pool, burst).size(), burst);

    pool.set_paused(true);
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, msg(4)));
    EXPECT_EQ(pool.inline_checked(), 3u + VerifyPool::kInlinePerPass)
        << "a paused pool checks nothing, not even at once";
    EXPECT_TRUE(pool.take_results().empty());
    pool.set_paused(false);
    EXPECT_EQ(collect(pool, 1).size(), 1u);
}

TEST(VerifyPool, the_kind_of_an_envelope_is_read_without_decoding_it) {
    const Members m;
    const RealCryptoSuite node1 = m.signer(1);
    for (Epoch e : {Epoch{0}, Epoch{7}, Epoch{300}, Epoch{1} << 20, ~Epoch{0}}) {
        for (Kind k : {Kind::Block, Kind::Seen, Kind::Requests, Kind::SnapshotReply}) {
            const Bytes raw = seal_envelope(node1, m.config.chain_id, 1, e, k, Bytes{1, 2, 3});
            EXPECT_EQ(peek_envelope_kind(raw), k) << "epoch " << e;
        }
    }
    EXPECT_EQ(peek_envelope_kind(Bytes{}), std::nullopt);
    EXPECT_EQ(peek_envelope_kind(Bytes(64, 0x96)), std::nullopt);
}

TEST(VerifyPool, a_members_request_batches_neither_fill_its_queue_nor_go_first) {
    // Issue 11, pool_flood: a client's flood, relayed by an honest member in
    // request batches, must not crowd that member's SEENs, blocks and agreement
    // messages out of its queue, nor delay them.
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    const RealCryptoSuite node1 = m.signer(1);
    const crypto::SigningKey client = crypto::SigningKey::generate();
    auto batch = [&](Nonce first) {
        RequestBatch b;
        for (Nonce n = first; n < first + 200; ++n)  // ~15 ms of checks per batch
            b.requests.push_back(signed_request(client, m.config.chain_id, n));
        return seal_envelope(node1, m.config.chain_id, 1, 0, Kind::Requests, encode(b));
    };
    auto seen = [&](Epoch e) {
        return seal_envelope(node1, m.config.chain_id, 1, e, Kind::Seen,
                             encode(SeenBody{2, Digest{}}));
    };
    VerifyPoolBounds bounds;
    bounds.member_bytes = 8 * batch(1).size();
    VerifyPool pool(suite, m.config, 1, bounds);
    std::vector<Bytes> batch_frames, seen_frames;  // signed first: submitted at once
    for (Nonce n = 1; n < 2000; n += 200) batch_frames.push_back(batch(n));
    for (Epoch e = 1; e <= 4; ++e) seen_frames.push_back(seen(e));
    std::size_t batches = 0;
    for (auto& f : batch_frames)
        batches += pool.submit_envelope(VerifyResult::Source::PubSub, 1, std::move(f));
    EXPECT_GE(batches, 1u);
    EXPECT_LE(batches, 5u) << "request batches took more than half of the member's bytes";
    std::size_t seens = 0;
    for (auto& f : seen_frames)
        seens += pool.submit_envelope(VerifyResult::Source::PubSub, 1, std::move(f));
    EXPECT_EQ(seens, 4u) << "the member's SEENs were refused behind its request batches";
    std::vector<VerifyResult> order;
    while (order.size() < batches + seens) {
        auto got = collect(pool, 1);
        ASSERT_FALSE(got.empty());
        for (auto& r : got) order.push_back(std::move(r));
    }
    std::size_t last_seen = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
        ASSERT_TRUE(order[i].envelope) << order[i].error;
        if (order[i].envelope->kind == Kind::Seen) last_seen = i;
    }
    // One batch may be in a worker's hands already; the SEENs come next.
    EXPECT_LE(last_seen, seens) << "the SEENs waited behind the request batches";
}

TEST(VerifyPool, a_flooding_client_delays_neither_a_member_nor_another_client) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 1, VerifyPoolBounds{});
    const crypto::SigningKey flooder = crypto::SigningKey::generate();
    const crypto::SigningKey other = crypto::SigningKey::generate();
    // The flooder's 60 requests first, then one of another client and one
    // envelope of member 1: both come back among the first results.
    std::vector<Bytes> flood;
    for (Nonce nonce = 1; nonce <= 60; ++nonce)
        flood.push_back(submit(signed_request(flooder, m.config.chain_id, nonce)));
    Bytes lone = submit(signed_request(other, m.config.chain_id, 1));
    const RealCryptoSuite node1 = m.signer(1);
    Bytes env =
        seal_envelope(node1, m.config.chain_id, 1, 1, Kind::Seen, encode(SeenBody{2, Digest{}}));
    // Everything is queued before the worker takes its first job (otherwise the
    // order depends on how fast this thread submits).
    pool.set_paused(true);
    for (auto& f : flood) ASSERT_TRUE(pool.submit_client("flood", "flooder-key", std::move(f)));
    ASSERT_TRUE(pool.submit_client("other", "other-key", std::move(lone)));
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, std::move(env)));
    pool.set_paused(false);
    std::vector<VerifyResult> order;
    while (order.size() < 62) {
        auto got = collect(pool, 1);
        ASSERT_FALSE(got.empty());
        for (auto& r : got) order.push_back(std::move(r));
    }
    std::size_t member_at = 0, other_at = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
        if (order[i].source == VerifyResult::Source::Peer) member_at = i;
        if (order[i].routing_id == "other") other_at = i;
    }
    EXPECT_LE(member_at, 5u) << "the member waited behind the client's flood";
    EXPECT_LE(other_at, 6u) << "the other client waited behind the flood";
}

TEST(VerifyPool, coin_shares_outside_the_window_or_over_the_cap_are_not_checked) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 1, VerifyPoolBounds{});
    pool.set_applied(10);
    // Epoch 1000: far beyond the window; nothing is checked (an agreement bundle
    // has no envelope signature: its connection names its sender).
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, coin_bundle(m, 1, 1000, 200)));
    ASSERT_EQ(collect(pool, 1).size(), 1u);
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(cache.failed().size(), 0u);
    EXPECT_GE(pool.totals().checks_skipped, 1u);
    // Epoch 11 (in the window): at most 2n of its 200 failing shares are checked.
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, coin_bundle(m, 1, 11, 200)));
    ASSERT_EQ(collect(pool, 1).size(), 1u);
    EXPECT_GE(cache.failed().size(), 1u);
    EXPECT_LE(cache.failed().size(), 2u * m.config.n);
}

// Agreement bundles carry no signature: the pool takes one only from the
// connection its sender's key authenticated (a member's point-to-point link), and
// a bundle refused for its connection is not remembered as failed, so a member
// that sends another's bundle first cannot bar the real one.
TEST(VerifyPool, an_agreement_bundle_is_taken_only_from_its_senders_connection) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 1, VerifyPoolBounds{});
    const Bytes bundle = coin_bundle(m, 1, 1, 1);
    auto result = [&](VerifyResult::Source source, NodeId from, const Bytes& frame) {
        EXPECT_TRUE(pool.submit_envelope(source, from, frame));
        auto got = collect(pool, 1);
        EXPECT_EQ(got.size(), 1u);
        return got.empty() ? VerifyResult{} : std::move(got[0]);
    };
    // Node 2's link, then the flood plane (whose header names node 1 unchecked).
    for (auto [source, from] : {std::pair{VerifyResult::Source::Peer, NodeId{2}},
                                std::pair{VerifyResult::Source::PubSub, NodeId{1}}}) {
        VerifyResult r = result(source, from, bundle);
        EXPECT_FALSE(r.envelope.has_value());
        EXPECT_TRUE(is_channel_refusal(r.error)) << r.error;
    }
    VerifyResult ok = result(VerifyResult::Source::Peer, 1, bundle);
    ASSERT_TRUE(ok.envelope.has_value()) << ok.error;
    EXPECT_EQ(ok.envelope->sender, 1);
    EXPECT_EQ(pool.totals().failed_repeats, 0u);

    // A signature where none belongs is refused for the bytes.
    auto env = decode_envelope(coin_bundle(m, 1, 1, 2), m.config.limits).value();
    env.sig[0] = 1;
    VerifyResult signed_one = result(VerifyResult::Source::Peer, 1, encode(env));
    EXPECT_FALSE(signed_one.envelope.has_value());
    EXPECT_FALSE(is_channel_refusal(signed_one.error));
}

TEST(VerifyPool, a_failed_frame_resent_costs_no_second_check) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 1, VerifyPoolBounds{});
    const RealCryptoSuite node1 = m.signer(1);
    Bytes forged = m.signed_frame(1, 3);
    forged.back() ^= 1;
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, forged));
    ASSERT_EQ(collect(pool, 1).size(), 1u);
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, forged));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (pool.totals().failed_repeats < 5 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(pool.totals().failed_repeats, 5u);
    EXPECT_TRUE(pool.take_results().empty()) << "a remembered failure is dropped, not re-checked";

    // The suite remembers failed signatures too: the core's repeat is refused from memory.
    const crypto::SigningKey client = crypto::SigningKey::generate();
    Request bad = signed_request(client, m.config.chain_id, 1);
    bad.sig[0] ^= 1;
    EXPECT_FALSE(suite.verify_client(bad.client, kRequestTag, request_sign_payload(bad), bad.sig));
    const std::size_t failed = cache.failed().size();
    EXPECT_FALSE(suite.verify_client(bad.client, kRequestTag, request_sign_payload(bad), bad.sig));
    EXPECT_EQ(cache.failed().size(), failed);
}

TEST(VerifyPool, blocks_with_an_invalid_request_are_refused_only_inside_the_window) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 1, VerifyPoolBounds{});
    const crypto::SigningKey client = crypto::SigningKey::generate();
    Block block;
    for (Nonce nonce = 1; nonce <= 50; ++nonce) {
        Request r = signed_request(client, m.config.chain_id, nonce);
        r.sig[0] ^= 1;
        block.requests.push_back(r);
    }
    const RealCryptoSuite node1 = m.signer(1);
    // Far beyond the window: no client signature is checked (the core drops it).
    ASSERT_TRUE(pool.submit_envelope(
        VerifyResult::Source::Peer, 1,
        seal_envelope(node1, m.config.chain_id, 1, 500, Kind::Block, encode(block))));
    auto far = collect(pool, 1);
    ASSERT_EQ(far.size(), 1u);
    EXPECT_TRUE(far[0].envelope.has_value());
    EXPECT_EQ(cache.failed().size(), 0u);
    // In the window: refused at the first invalid request (one check, not 50).
    ASSERT_TRUE(pool.submit_envelope(
        VerifyResult::Source::Peer, 1,
        seal_envelope(node1, m.config.chain_id, 1, 1, Kind::Block, encode(block))));
    auto near = collect(pool, 1);
    ASSERT_EQ(near.size(), 1u);
    EXPECT_FALSE(near[0].envelope.has_value());
    EXPECT_EQ(cache.failed().size(), 1u);
}

TEST(VerifyPool, inner_envelopes_of_a_fetch_reply_are_checked_only_when_solicited) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 1, VerifyPoolBounds{});
    pool.set_applied(0);
    const RealCryptoSuite node1 = m.signer(1);
    FetchReply reply;
    for (Epoch e = 1; e <= 20; ++e) reply.envelopes.push_back(m.signed_frame(1, e));
    const Bytes raw =
        seal_envelope(node1, m.config.chain_id, 1, 1, Kind::FetchReply, encode(reply));
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, 1, raw));
    ASSERT_EQ(collect(pool, 1).size(), 1u);
    EXPECT_EQ(cache.size(), 1u) << "only the outer envelope of an unsolicited reply";
    pool.solicit(1, 10000);
    EXPECT_TRUE(pool.solicited(1));
    EXPECT_FALSE(pool.solicited(2));
    ASSERT_TRUE(pool.submit_envelope(
        VerifyResult::Source::PubSub, 1,
        seal_envelope(node1, m.config.chain_id, 1, 2, Kind::FetchReply, encode(reply))));
    ASSERT_EQ(collect(pool, 1).size(), 1u);
    EXPECT_EQ(cache.size(), 22u);
}

// A SEEN's or COMMIT's signature is checked only when the statement leaves the
// node, in a certificate or a proof (consensus/messages.h, verified_on_use): on its sender's own
// authenticated connection it is taken as it is, since that connection names
// its sender. Anywhere else it is checked on arrival.
TEST(VerifyPool, a_seen_or_commit_is_taken_unchecked_only_on_its_senders_own_connection) {
    const Members m;
    VerifyCache cache;
    const CachingCryptoSuite suite(m.verifier(), cache);
    VerifyPool pool(suite, m.config, 1, VerifyPoolBounds{});
    auto result = [&](VerifyResult::Source source, NodeId from, Bytes raw) {
        EXPECT_TRUE(pool.submit_envelope(source, from, std::move(raw)));
        auto got = collect(pool, 1);
        EXPECT_EQ(got.size(), 1u);
        return got.empty() ? VerifyResult{} : got[0];
    };
    Bytes bad = m.real_seen(1, 3);
    bad.back() ^= 1;
    const VerifyResult own = result(VerifyResult::Source::Peer, 1, bad);
    ASSERT_TRUE(own.envelope.has_value()) << own.error;
    EXPECT_EQ(own.envelope->sender, 1);
    EXPECT_EQ(cache.size(), 0u) << "nothing was verified";
    Bytes bad2 = m.real_seen(1, 4);
    bad2.back() ^= 1;
    EXPECT_FALSE(result(VerifyResult::Source::Peer, 2, bad2).envelope.has_value())
        << "another member's connection does not vouch for member 1";
    Bytes bad3 = m.real_seen(1, 5);
    bad3.back() ^= 1;
    EXPECT_FALSE(result(VerifyResult::Source::PubSub, 1, bad3).envelope.has_value())
        << "the flood plane names no sender";
    EXPECT_TRUE(result(VerifyResult::Source::PubSub, 1, m.real_seen(1, 6)).envelope.has_value());
    // A COMMIT is a statement too; any other signed kind is checked on its
    // sender's connection as well.
    Bytes commit = m.commit(1, 7);
    commit.back() ^= 1;
    EXPECT_TRUE(result(VerifyResult::Source::Peer, 1, commit).envelope.has_value());
    Bytes commit2 = m.commit(1, 8);
    commit2.back() ^= 1;
    EXPECT_FALSE(result(VerifyResult::Source::PubSub, 1, commit2).envelope.has_value());
    Bytes other = m.signed_frame(1, 9);
    other.back() ^= 1;
    EXPECT_FALSE(result(VerifyResult::Source::Peer, 1, other).envelope.has_value());
}

}  // namespace
}  // namespace tob::daemon
