// RequestPool (consensus/request_pool.h): validation, aging, the reserved quarter
// with round-robin across clients, in-flight requests, the bound, flood batches.

#include "consensus/request_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "consensus/codec.h"
#include "consensus/fast_crypto.h"

namespace tob::consensus {
namespace {
/// A state machine that only answers committed() from a set, and expired() for
/// requests whose expiry is below `next`.
class Committed final : public StateMachine {
  public:
    Epoch last_applied() const override { return next - 1; }
    Digest state_digest() const override { return {}; }
    EpochResult apply_epoch(Epoch, const Digest&, const std::vector<Request>&) override {
        return {};
    }
    bool committed(const PublicKey& client, Nonce nonce) const override {
        return done.count({client, nonce}) != 0;
    }
    bool expired(const Request& r) const override { return r.expires < next; }
    std::set<std::pair<PublicKey, Nonce>> done;
    Epoch next = 1;
};

class RequestPoolTest : public ::testing::Test {
  protected:
    RequestPoolTest() : world_(FastWorld::make(4, 1, 3)), crypto_(world_, 0) {
        chain_.fill(4);
        params_.chain_id = chain_;
        params_.aged_epochs = 8;
    }

    Request request(std::uint8_t client, Nonce nonce, std::size_t value_bytes = 10) const {
        Request r;
        r.chain_id = chain_;
        r.client.fill(client);
        r.nonce = nonce;
        r.expires = 100;
        r.ops.push_back(Op{OpType::Put, Bytes{'k', client}, Bytes(value_bytes, 'v'), std::nullopt});
        r.sig =
            FastCryptoSuite::sign_client(*world_, r.client, kRequestTag, request_sign_payload(r));
        return r;
    }

    bool add(RequestPool& pool, const Request& r, bool local, Epoch delivered) {
        Bytes enc = encode(r);
        Digest d = digest_of(enc);
        EXPECT_TRUE(pool.valid(r, d));
        return pool.add(r, d, enc.size(), local, delivered, 0, state_) == Admission::Added;
    }

    std::shared_ptr<const FastWorld> world_;
    FastCryptoSuite crypto_;
    Digest chain_{};
    PoolParams params_;
    Committed state_;
};

TEST_F(RequestPoolTest, request_with_a_bad_client_signature_is_refused) {
    RequestPool pool(params_, crypto_);
    Request r = request(1, 1);
    r.sig[0] ^= 1;
    EXPECT_FALSE(pool.valid(r, digest_of(encode(r))));
    Request other_chain = request(1, 2);
    other_chain.chain_id[0] ^= 1;
    EXPECT_FALSE(pool.valid(other_chain, digest_of(encode(other_chain))));
    EXPECT_TRUE(pool.valid(request(1, 3), digest_of(encode(request(1, 3)))));
}

TEST_F(RequestPoolTest, flooded_request_waits_until_aged_local_one_goes_first) {
    RequestPool pool(params_, crypto_);
    ASSERT_TRUE(add(pool, request(1, 1), /*local=*/false, /*delivered=*/0));
    ASSERT_TRUE(add(pool, request(2, 1), /*local=*/true, 0));
    auto block = pool.build_block(/*delivered=*/7);
    ASSERT_EQ(block.size(), 1u);
    EXPECT_EQ(block[0].client[0], 2);
    block = pool.build_block(/*delivered=*/8);  // k = 8 delivered epochs later: aged
    ASSERT_EQ(block.size(), 2u);
    EXPECT_EQ(block[0].client[0], 1);  // aged first
}

TEST_F(RequestPoolTest, aged_requests_share_a_quarter_round_robin_across_clients) {
    params_.limits.block_bytes_max = 1024 + 4000;
    RequestPool pool(params_, crypto_);
    // Client 1 has a deep aged backlog, client 2 one aged request; plenty of local load.
    for (Nonce n = 1; n <= 40; ++n) ASSERT_TRUE(add(pool, request(1, n, 200), false, 0));
    ASSERT_TRUE(add(pool, request(2, 1, 200), false, 0));
    for (Nonce n = 1; n <= 40; ++n) ASSERT_TRUE(add(pool, request(3, n, 200), true, 8));
    auto block = pool.build_block(8);
    std::size_t aged_bytes = 0, i = 0;
    for (; i < block.size() && block[i].client[0] != 3; ++i) aged_bytes += encode(block[i]).size();
    ASSERT_GE(i, 2u);
    EXPECT_EQ(block[0].client[0], 1);
    EXPECT_EQ(block[0].nonce, 1u);     // oldest first within a client
    EXPECT_EQ(block[1].client[0], 2);  // then the next client, not client 1 again
    EXPECT_LE(aged_bytes, 4000u / 4);
    // Local requests fill most of the rest.
    std::size_t local = 0;
    for (const auto& r : block) local += r.client[0] == 3 ? 1 : 0;
    EXPECT_GT(local, 0u);
}

TEST_F(RequestPoolTest, one_clients_local_backlog_leaves_room_for_other_clients) {
    // Issue 11, pool_flood: one client key submits large requests faster than
    // blocks carry them; a client that submits later must still find its request
    // in the very next block, not behind the whole backlog.
    params_.limits.block_bytes_max = 1024 + 4000;
    RequestPool pool(params_, crypto_);
    for (Nonce n = 1; n <= 20; ++n) ASSERT_TRUE(add(pool, request(1, n, 900), true, 0));
    ASSERT_TRUE(add(pool, request(2, 1, 10), true, 0));
    ASSERT_TRUE(add(pool, request(3, 1, 10), true, 0));
    auto block = pool.build_block(0);
    std::set<std::uint8_t> clients;
    std::size_t bytes = 0;
    for (const auto& r : block) {
        clients.insert(r.client[0]);
        bytes += encode(r).size();
    }
    EXPECT_TRUE(clients.count(1));
    EXPECT_TRUE(clients.count(2));
    EXPECT_TRUE(clients.count(3));
    EXPECT_LE(bytes, 4000u);
    // The backlog still gets the rest of the block, oldest first.
    EXPECT_EQ(block[0].client[0], 1);
    EXPECT_EQ(block[0].nonce, 1u);
}

TEST_F(RequestPoolTest, a_flooded_copy_is_recognised_only_with_the_same_signature) {
    RequestPool pool(params_, crypto_);
    const Request r = request(1, 1);
    EXPECT_FALSE(pool.holds_copy(r));
    ASSERT_TRUE(add(pool, r, true, 0));
    EXPECT_TRUE(pool.holds_copy(r));
    Request forged = r;  // same client and nonce, other content: not a copy
    forged.sig[0] ^= 1;
    EXPECT_FALSE(pool.holds_copy(forged));
    EXPECT_FALSE(pool.holds_copy(request(1, 2)));
    EXPECT_FALSE(pool.holds_copy(request(2, 1)));
}

TEST_F(RequestPoolTest, in_flight_request_is_not_proposed_twice) {
    RequestPool pool(params_, crypto_);
    ASSERT_TRUE(add(pool, request(1, 1), true, 0));
    auto first = pool.build_block(0);
    ASSERT_EQ(first.size(), 1u);
    pool.proposed(digests_of(first), 5);
    EXPECT_TRUE(pool.build_block(0).empty());
    EXPECT_FALSE(pool.has_work());
    // Its block's epoch delivered without it: proposable again.
    pool.release(digests_of(first));
    EXPECT_TRUE(pool.has_work());
    EXPECT_EQ(pool.build_block(1).size(), 1u);
}

TEST_F(RequestPoolTest, request_in_another_block_starts_no_timer_until_its_epoch_is_delivered) {
    RequestPool pool(params_, crypto_);
    const Request flooded = request(1, 1);
    ASSERT_TRUE(add(pool, flooded, false, 0));
    ASSERT_TRUE(add(pool, request(2, 1), false, 0));
    EXPECT_TRUE(pool.has_work());
    // Both sit in another node's block of epoch 3 (delivered: 1).
    pool.delivered(1);
    std::vector<std::pair<Digest, std::size_t>> both;
    for (const Request& r : {flooded, request(2, 1)}) {
        const Bytes enc = encode(r);
        both.push_back({digest_of(enc), enc.size()});
    }
    pool.in_block(3, both);
    EXPECT_TRUE(pool.has_work()) << "held back by an epoch this node has not joined";
    pool.joined(3);
    EXPECT_FALSE(pool.has_work());
    EXPECT_FALSE(pool.note_work(10));  // no timer: no empty block for them
    pool.delivered(2);
    EXPECT_FALSE(pool.has_work());
    // Epoch 3 delivered without them: work again (they must age and be proposed).
    pool.delivered(3);
    EXPECT_TRUE(pool.has_work());
    EXPECT_TRUE(pool.note_work(20));
    // A block of an epoch already delivered changes nothing.
    pool.in_block(3, both);
    EXPECT_TRUE(pool.has_work());
}

TEST_F(RequestPoolTest, committed_requests_leave_and_never_enter) {
    RequestPool pool(params_, crypto_);
    Request a = request(1, 1), b = request(1, 2);
    ASSERT_TRUE(add(pool, a, true, 0));
    ASSERT_TRUE(add(pool, b, true, 0));
    const std::size_t bytes = pool.bytes();
    state_.done.insert({a.client, a.nonce});
    pool.remove_committed(state_);
    EXPECT_EQ(pool.size(), 1u);
    EXPECT_EQ(pool.bytes(), bytes - encode(a).size());
    EXPECT_FALSE(add(pool, a, true, 0));
    EXPECT_FALSE(pool.contains(a.client, a.nonce));
}

// Issue 11, finding 10: a request its expiry keeps out of the next epoch never
// enters, and leaves once the epochs pass its expiry.
TEST_F(RequestPoolTest, expired_requests_leave_and_never_enter) {
    RequestPool pool(params_, crypto_);
    Request a = request(1, 1), b = request(1, 2);
    a.expires = 5;
    a.sig = FastCryptoSuite::sign_client(*world_, a.client, kRequestTag, request_sign_payload(a));
    ASSERT_TRUE(add(pool, a, true, 0));
    ASSERT_TRUE(add(pool, b, true, 0));
    state_.next = 6;  // epoch 5 was applied
    pool.remove_committed(state_);
    EXPECT_EQ(pool.size(), 1u);
    EXPECT_FALSE(pool.contains(a.client, a.nonce));
    const Bytes enc = encode(a);
    EXPECT_EQ(pool.add(a, digest_of(enc), enc.size(), true, 5, 0, state_), Admission::Expired);
    EXPECT_TRUE(pool.contains(b.client, b.nonce));
}

// Attack big_outputs: a request the state machine skipped for good (its outputs
// over the cap, malformed, forbidden) leaves the pool and its copies are refused,
// so it is not proposed and applied again in every epoch until it expires; one
// skipped only because its epoch was full stays for a later epoch.
TEST_F(RequestPoolTest, requests_skipped_for_good_leave_and_are_not_proposed_again) {
    params_.verified_epochs = 4;
    RequestPool pool(params_, crypto_);
    const Request over = request(1, 1), full = request(2, 1), bad = request(3, 1),
                  forbidden = request(4, 1), fine = request(5, 1);
    for (const Request& r : {over, full, bad, forbidden, fine}) ASSERT_TRUE(add(pool, r, true, 0));
    auto result = [](const Request& r, Skip skip, bool forbid) {
        RequestResult x;
        x.client = r.client;
        x.nonce = r.nonce;
        x.request_digest = digest_of(encode(r));
        x.malformed = skip != Skip::None;
        x.skip = skip;
        x.forbidden = forbid;
        return x;
    };
    pool.proposed(digests_of(pool.build_block(0)), 0);
    pool.delivered(1);
    pool.settle({result(over, Skip::OutputsOver, false), result(full, Skip::EpochFull, false),
                 result(bad, Skip::Invalid, false), result(forbidden, Skip::None, true),
                 result(fine, Skip::None, false)});
    pool.release(digests_of({over, full, bad, forbidden, fine}));
    EXPECT_FALSE(pool.contains(over.client, over.nonce));
    EXPECT_FALSE(pool.contains(bad.client, bad.nonce));
    EXPECT_FALSE(pool.contains(forbidden.client, forbidden.nonce));
    EXPECT_TRUE(pool.contains(full.client, full.nonce));
    EXPECT_TRUE(pool.contains(fine.client, fine.nonce));  // committed ones go by remove_committed
    std::set<PublicKey> proposed;
    for (const Request& r : pool.build_block(1)) proposed.insert(r.client);
    EXPECT_EQ(proposed, (std::set<PublicKey>{full.client, fine.client}));
    // A flooded copy or a block's copy does not bring it back...
    const Bytes enc = encode(over);
    EXPECT_EQ(pool.add(over, digest_of(enc), enc.size(), false, 1, 0, state_), Admission::Invalid);
    // ... for verified_epochs delivered epochs (the memory is bounded).
    pool.delivered(6);
    EXPECT_EQ(pool.settled(), 0u);
    EXPECT_EQ(pool.add(over, digest_of(enc), enc.size(), false, 6, 0, state_), Admission::Added);
}

TEST_F(RequestPoolTest, pool_is_bounded_and_counts_bytes) {
    params_.pool_requests_max = 3;
    RequestPool pool(params_, crypto_);
    std::size_t expected = 0;
    for (Nonce n = 1; n <= 3; ++n) {
        ASSERT_TRUE(add(pool, request(1, n), false, 0));
        expected += encode(request(1, n)).size();
    }
    EXPECT_FALSE(add(pool, request(1, 4), false, 0));
    EXPECT_EQ(pool.size(), 3u);
    EXPECT_EQ(pool.bytes(), expected);
    // A duplicate (same client and nonce) is not a second entry.
    EXPECT_FALSE(add(pool, request(1, 1), true, 0));
}

// Issue 11, finding 7: bounded in bytes, with a fair share per client and an
// explicit Overloaded outcome instead of a silent drop.
TEST_F(RequestPoolTest, pool_is_bounded_in_bytes_and_fair_among_clients) {
    const std::size_t one = encode(request(1, 1, 1000)).size();
    params_.pool_bytes_max = 10 * one;
    RequestPool pool(params_, crypto_);
    auto offer = [&](std::uint8_t client, Nonce n) {
        const Request r = request(client, n, 1000);
        const Bytes enc = encode(r);
        EXPECT_TRUE(pool.valid(r, digest_of(enc)));
        return pool.add(r, digest_of(enc), enc.size(), true, 0, 0, state_);
    };
    for (Nonce n = 1; n <= 10; ++n) ASSERT_EQ(offer(1, n), Admission::Added);
    // Client 1 alone fills the pool; it may not push further...
    EXPECT_EQ(offer(1, 11), Admission::Overloaded);
    EXPECT_LE(pool.bytes(), params_.pool_bytes_max);
    // ...but another client still gets in: client 1's newest request gives way.
    EXPECT_EQ(offer(2, 1), Admission::Added);
    EXPECT_EQ(pool.evicted(), 1u);
    EXPECT_FALSE(pool.contains(request(1, 10).client, 10));
    EXPECT_TRUE(pool.contains(request(1, 1).client, 1));
    for (Nonce n = 2; n <= 5; ++n) EXPECT_EQ(offer(2, n), Admission::Added);
    // Now both hold 5: neither gives way to the other.
    EXPECT_EQ(pool.client_bytes(request(1, 1).client), 5 * one);
    EXPECT_EQ(pool.client_bytes(request(2, 1).client), 5 * one);
    EXPECT_EQ(offer(2, 6), Admission::Overloaded);
    EXPECT_EQ(offer(1, 12), Admission::Overloaded);
    // A third client gets in at the expense of one of the two.
    EXPECT_EQ(offer(3, 1), Admission::Added);
    EXPECT_LE(pool.bytes(), params_.pool_bytes_max);
    EXPECT_EQ(pool.size(), 10u);
    EXPECT_EQ(offer(2, 1), Admission::Known);
}

TEST_F(RequestPoolTest, requests_in_flight_are_never_evicted) {
    const std::size_t one = encode(request(1, 1, 1000)).size();
    params_.pool_bytes_max = 4 * one;
    RequestPool pool(params_, crypto_);
    for (Nonce n = 1; n <= 4; ++n) ASSERT_TRUE(add(pool, request(1, n, 1000), true, 0));
    pool.proposed(digests_of(pool.build_block(0)), 0);  // all four in this node's own block
    EXPECT_EQ(pool.in_flight(), 4u);
    const Request r = request(2, 1, 1000);
    const Bytes enc = encode(r);
    ASSERT_TRUE(pool.valid(r, digest_of(enc)));
    EXPECT_EQ(pool.add(r, digest_of(enc), enc.size(), true, 0, 0, state_), Admission::Overloaded);
    EXPECT_EQ(pool.size(), 4u);
}

TEST_F(RequestPoolTest,
       block_is_due_at_once_when_idle_after_the_timer_for_others_work_or_when_full) {
    params_.block_timer_ms = 20;
    params_.limits.block_requests_max = 3;
    RequestPool pool(params_, crypto_);
    EXPECT_FALSE(pool.note_work(0));  // no work: no timer
    // Another node's request, learnt by flood: work, but not this node's to propose.
    Bytes enc = encode(request(2, 1));
    ASSERT_EQ(pool.add(request(2, 1), digest_of(enc), enc.size(), false, 0, 100, state_),
              Admission::Added);
    EXPECT_TRUE(pool.note_work(105));
    EXPECT_FALSE(pool.block_due(119, 0));
    EXPECT_TRUE(pool.block_due(120, 0)) << "idle, only others' work: after the timer";
    EXPECT_FALSE(pool.block_due(120, 0, /*idle=*/false)) << "own block in flight: no timer";
    ASSERT_TRUE(add(pool, request(1, 1), true, 0));
    EXPECT_TRUE(pool.block_due(101, 0)) << "idle with a request of its own: at once";
    EXPECT_FALSE(pool.block_due(101, 0, false)) << "in flight: it waits for the epoch";
    ASSERT_TRUE(add(pool, request(1, 2), true, 0));
    ASSERT_TRUE(add(pool, request(1, 3), true, 0));
    EXPECT_TRUE(pool.block_due(101, 0, false)) << "three proposable: a full block, even in flight";
}

// block_due reads counters kept as entries come, go, turn local and enter or leave
// this node's blocks; after every such change in a random history they must agree
// with a scan of the pool, at every delivered epoch around the aging line.
TEST_F(RequestPoolTest, proposable_counters_agree_with_a_scan_through_a_random_history) {
    params_.limits.block_requests_max = 5;
    params_.pool_requests_max = 60;  // evictions too
    RequestPool pool(params_, crypto_);
    std::mt19937_64 rng(7);
    std::vector<Request> known;
    std::vector<std::vector<Request>> blocks;  // proposed, not yet released
    Epoch delivered = 0;
    std::size_t checks = 0, nonzero = 0;
    for (int step = 0; step < 3000; ++step) {
        const auto op = rng() % 10;
        if (op < 4 || known.empty()) {  // a new request, local or flooded
            const Request r = request(static_cast<std::uint8_t>(1 + rng() % 6), 1 + rng() % 400);
            const Bytes enc = encode(r);
            if (pool.valid(r, digest_of(enc))) {
                pool.add(r, digest_of(enc), enc.size(), rng() % 2 == 0, delivered, 0, state_);
                known.push_back(r);
            }
        } else if (op == 4) {  // a copy submitted here: the entry turns local
            const Request& r = known[rng() % known.size()];
            const Bytes enc = encode(r);
            pool.add(r, digest_of(enc), enc.size(), true, delivered, 0, state_);
        } else if (op == 5) {
            auto block = pool.build_block(delivered);
            pool.proposed(digests_of(block), 0);
            blocks.push_back(std::move(block));
        } else if (op == 6 && !blocks.empty()) {  // an own block left out of its epoch
            const std::size_t k = rng() % blocks.size();
            pool.release(digests_of(blocks[k]));
            blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(k));
        } else if (op == 7) {  // some commit
            const Request& r = known[rng() % known.size()];
            state_.done.insert({r.client, r.nonce});
            pool.remove_committed(state_);
        } else {
            delivered += rng() % 2;
        }
        for (Epoch at : {delivered, delivered + 1, delivered + params_.aged_epochs + 1}) {
            const std::size_t scan = pool.proposable_by_scan(at);
            ASSERT_EQ(pool.proposable(at), scan) << "step " << step << " at epoch " << at;
            ++checks;
            nonzero += scan > 0;
        }
    }
    EXPECT_GT(nonzero, checks / 4);  // the history is not trivially empty
    EXPECT_GT(pool.evicted(), 0u);
}

// After an epoch, only the clients with a request in it can have one newly
// committed, and expiry goes by the index: remove_applied must leave exactly what a
// scan of the whole pool (remove_committed) leaves.
TEST_F(RequestPoolTest, pruning_after_an_epoch_matches_a_scan_of_the_pool) {
    std::mt19937_64 rng(11);
    for (int round = 0; round < 40; ++round) {
        RequestPool scanned(params_, crypto_), indexed(params_, crypto_);
        std::vector<Request> all;
        for (int k = 0; k < 200; ++k) {
            Request r = request(static_cast<std::uint8_t>(1 + rng() % 12), 1 + rng() % 1000);
            r.expires = state_.next + rng() % 40;
            r.sig = FastCryptoSuite::sign_client(*world_, r.client, kRequestTag,
                                                 request_sign_payload(r));
            const Bytes enc = encode(r);
            for (auto* pool : {&scanned, &indexed}) {
                ASSERT_TRUE(pool->valid(r, digest_of(enc)));
                pool->add(r, digest_of(enc), enc.size(), rng() % 2 == 0, 0, 0, state_);
            }
            all.push_back(r);
        }
        // An epoch applies some requests of a few clients; some of those clients'
        // other pooled requests commit with them (their nonces are covered).
        std::vector<Request> applied;
        for (int k = 0; k < 15; ++k) applied.push_back(all[rng() % all.size()]);
        for (const auto& r : all) {
            const bool client_applied =
                std::any_of(applied.begin(), applied.end(),
                            [&](const Request& a) { return a.client == r.client; });
            if (client_applied && rng() % 3 == 0) state_.done.insert({r.client, r.nonce});
        }
        for (const auto& r : applied) state_.done.insert({r.client, r.nonce});
        state_.next += 1 + rng() % 15;  // some expire
        scanned.remove_committed(state_);
        indexed.remove_applied(state_, applied);
        ASSERT_EQ(indexed.size(), scanned.size()) << "round " << round;
        ASSERT_EQ(indexed.bytes(), scanned.bytes());
        for (const auto& r : all) {
            ASSERT_EQ(indexed.holds_copy(r), scanned.holds_copy(r)) << "round " << round;
        }
        EXPECT_LT(scanned.size(), 200u);
        state_.done.clear();
    }
}

TEST_F(RequestPoolTest, flood_batches_are_bounded) {
    params_.flood_batch_max = 3;
    RequestPool pool(params_, crypto_);
    EXPECT_FALSE(pool.take_flood());
    EXPECT_FALSE(pool.queue_flood(request(1, 1), 100));
    EXPECT_FALSE(pool.queue_flood(request(1, 2), 100));
    EXPECT_TRUE(pool.queue_flood(request(1, 3), 100));
    auto batch = pool.take_flood();
    ASSERT_TRUE(batch);
    EXPECT_EQ(batch->requests.size(), 3u);
    EXPECT_FALSE(pool.take_flood());
}

// Issue 11, finding 5: a flood batch packed up to flood_batch_max requests of up
// to request_bytes_max each into one envelope, over the peers' receive limit.
TEST_F(RequestPoolTest, flood_batches_fit_in_one_message) {
    params_.limits.message_bytes_max = 64u << 10;
    params_.limits.block_bytes_max = 48u << 10;
    params_.limits.request_bytes_max = 24u << 10;
    RequestPool pool(params_, crypto_);
    std::size_t queued = 0;
    for (Nonce n = 1; n <= 10; ++n) {
        const Request r = request(1, n, 20u << 10);
        ASSERT_LE(encode(r).size(), params_.limits.request_bytes_max);
        pool.queue_flood(r, encode(r).size());
        ++queued;
    }
    std::size_t sent = 0;
    int batches = 0;
    while (auto batch = pool.take_flood()) {
        ++batches;
        ASSERT_FALSE(batch->requests.empty());
        sent += batch->requests.size();
        EXPECT_LE(encode(*batch).size() + kEnvelopeOverhead, params_.limits.message_bytes_max);
        ASSERT_LT(batches, 100);
    }
    EXPECT_EQ(sent, queued);
    EXPECT_GE(batches, 4);
}

TEST_F(RequestPoolTest, verification_cache_is_bounded) {
    params_.verified_cache_max = 4;
    RequestPool pool(params_, crypto_);
    for (Nonce n = 1; n <= 10; ++n)
        ASSERT_TRUE(pool.valid(request(1, n), digest_of(encode(request(1, n)))));
    EXPECT_EQ(pool.verified_cached(), 4u);
}

TEST_F(RequestPoolTest, verification_results_expire_with_delivered_epochs) {
    params_.verified_epochs = 3;
    RequestPool pool(params_, crypto_);
    ASSERT_TRUE(pool.valid(request(1, 1), digest_of(encode(request(1, 1)))));
    pool.delivered(2);
    ASSERT_TRUE(pool.valid(request(1, 2), digest_of(encode(request(1, 2)))));
    pool.delivered(3);
    EXPECT_EQ(pool.verified_cached(), 2u);
    pool.delivered(4);  // the first was checked at epoch 0: 0 + 3 < 4
    EXPECT_EQ(pool.verified_cached(), 1u);
    pool.delivered(6);
    EXPECT_EQ(pool.verified_cached(), 0u);
}

}  // namespace
}  // namespace tob::consensus
