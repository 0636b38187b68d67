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
    RealCryptoSuite verifier() const {
        return RealCryptoSuite(public_keys(), coin.public_key, std::nullopt, std::nullopt);
    }
};

Request signed_request(const crypto::SigningKey& client, const Digest& chain_id, Nonce nonce) {
    Request r;
    r.chain_id = chain_id;
    r.client = client.public_key();
    r.nonce = nonce;
    Op op;
    op.type = OpType::Put;
    op.key = Bytes{'k'};
    op.value = Bytes{static_cast<std::uint8_t>(nonce)};
    r.ops.push_back(op);
    r.sig = client.sign(kRequestTag, request_sign_payload(r));
    return r;
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
    VerifyPool pool(suite, m.config, 4, 10000);

    // 60 good envelopes from node 1 (SEENs of distinct epochs) and every 5th with a
    // flipped signature bit; the raw digest tells them apart in the results.
    const RealCryptoSuite node1 = m.signer(1);
    std::map<Digest, bool> expect_ok;
    for (Epoch e = 1; e <= 60; ++e) {
        Bytes raw = seal_envelope(node1, m.config.chain_id, 1, e, Kind::Seen,
                                  encode(SeenBody{2, Digest{}}));
        const bool forge = e % 5 == 0;
        if (forge) raw[raw.size() - 1] ^= 1;  // the signature is the last field
        const Digest id = digest_of(raw);
        expect_ok[id] = !forge;
        ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::PubSub, std::move(raw), id));
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
    VerifyPool pool(suite, m.config, 3, 10000);

    // Client requests both alone (Submit) and inside a flooded batch envelope.
    const crypto::SigningKey client = crypto::SigningKey::generate();
    RequestBatch batch;
    for (Nonce nonce = 1; nonce <= 20; ++nonce) {
        batch.requests.push_back(signed_request(client, m.config.chain_id, nonce));
    }
    const RealCryptoSuite node2 = m.signer(2);
    Bytes raw = seal_envelope(node2, m.config.chain_id, 2, 0, Kind::Requests, encode(batch));
    const Digest batch_id = digest_of(raw);
    ASSERT_TRUE(pool.submit_envelope(VerifyResult::Source::Peer, std::move(raw), batch_id));
    for (Nonce nonce = 21; nonce <= 30; ++nonce) {
        ASSERT_TRUE(pool.submit_request("client-" + std::to_string(nonce),
                                        encode(signed_request(client, m.config.chain_id, nonce))));
    }
    Request foreign = signed_request(client, Digest{}, 31);  // another chain id
    ASSERT_TRUE(pool.submit_request("foreign", encode(foreign)));
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

    // The core repeats the checks on the loop: every one is answered by the cache.
    const std::uint64_t hits_before = cache.hits();
    for (const Request& r : batch.requests) {
        EXPECT_TRUE(suite.verify_client(r.client, kRequestTag, request_sign_payload(r), r.sig));
    }
    EXPECT_EQ(cache.hits() - hits_before, batch.requests.size());
    // A forged signature is never a hit, and still refused.
    Request forged = batch.requests.front();
    forged.sig[0] ^= 1;
    EXPECT_FALSE(
        suite.verify_client(forged.client, kRequestTag, request_sign_payload(forged), forged.sig));
    EXPECT_EQ(cache.hits() - hits_before, batch.requests.size());
}

}  // namespace
}  // namespace tob::daemon
