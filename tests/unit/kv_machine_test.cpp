// KvMachine: operation semantics, the dedup table, malformed requests, the state
// digest, and reload from storage.

#include "consensus/kv/kv_machine.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tob::consensus::kv {
namespace {

Bytes b(const std::string& s) { return Bytes(s.begin(), s.end()); }

Digest chain() {
    Digest d{};
    d[0] = 0xc1;
    return d;
}

PublicKey client(std::uint8_t id) {
    PublicKey pk{};
    pk[0] = id;
    return pk;
}

Op put(const std::string& k, const std::string& v) { return Op{OpType::Put, b(k), b(v), {}}; }
Op del(const std::string& k) { return Op{OpType::Del, b(k), {}, {}}; }
Op get(const std::string& k) { return Op{OpType::Get, b(k), {}, {}}; }
Op cas(const std::string& k, std::optional<std::string> expected, const std::string& v) {
    Op op{OpType::Cas, b(k), b(v), {}};
    if (expected) op.expected = b(*expected);
    return op;
}

Request req(std::uint8_t c, Nonce nonce, std::vector<Op> ops) {
    Request r;
    r.chain_id = chain();
    r.client = client(c);
    r.nonce = nonce;
    r.ops = std::move(ops);
    return r;
}

Digest od(Epoch e) {
    Digest d{};
    d[0] = static_cast<std::uint8_t>(e);
    d[1] = 0x0d;
    return d;
}

struct Fixture {
    MemoryKvStorage storage;
    KvMachine kv{storage, chain()};
    EpochResult apply(std::vector<Request> ordered) {
        return kv.apply_epoch(kv.last_applied() + 1, od(kv.last_applied() + 1), ordered);
    }
};

OpOutput out(bool ok, std::optional<std::string> v) {
    OpOutput o;
    o.ok = ok;
    if (v) o.value = b(*v);
    return o;
}

TEST(KvMachine, put_get_del_cas_outputs) {
    Fixture f;
    auto r = f.apply({req(1, 1, {put("a", "1")}), req(1, 2, {get("a")}), req(1, 3, {put("a", "2")}),
                      req(1, 4, {cas("a", "1", "x")}),             // fails: current is "2"
                      req(1, 5, {cas("a", "2", "3")}),             // swaps
                      req(1, 6, {cas("b", std::nullopt, "new")}),  // absent -> swaps
                      req(1, 7, {del("a")}), req(1, 8, {get("a"), del("zz")})});
    ASSERT_EQ(r.results.size(), 8u);
    EXPECT_EQ(r.epoch, 1u);
    EXPECT_EQ(r.results[0].outputs, (std::vector{out(true, std::nullopt)}));
    EXPECT_EQ(r.results[1].outputs, (std::vector{out(true, "1")}));
    EXPECT_EQ(r.results[2].outputs, (std::vector{out(true, "1")}));
    EXPECT_EQ(r.results[3].outputs, (std::vector{out(false, "2")}));
    EXPECT_EQ(r.results[4].outputs, (std::vector{out(true, "2")}));
    EXPECT_EQ(r.results[5].outputs, (std::vector{out(true, std::nullopt)}));
    EXPECT_EQ(r.results[6].outputs, (std::vector{out(true, "3")}));
    EXPECT_EQ(r.results[7].outputs,
              (std::vector{out(true, std::nullopt), out(true, std::nullopt)}));
    for (std::uint32_t i = 0; i < 8; ++i) {
        EXPECT_EQ(r.results[i].position, i);
        EXPECT_FALSE(r.results[i].duplicate);
        EXPECT_FALSE(r.results[i].malformed);
    }
    EXPECT_EQ(f.kv.read(b("a")), std::nullopt);
    EXPECT_EQ(f.kv.read(b("b")), b("new"));
    EXPECT_EQ(f.kv.last_applied(), 1u);
    EXPECT_EQ(f.storage.commits(), 1u);  // one batch per epoch
}

TEST(KvMachine, multi_op_request_applies_in_order_and_cas_failure_does_not_abort) {
    Fixture f;
    auto r = f.apply({req(1, 1,
                          {put("k", "v1"), get("k"), cas("k", "nope", "x"), put("k", "v2"),
                           cas("k", "v2", "v3"), get("k")})});
    ASSERT_EQ(r.results.size(), 1u);
    EXPECT_EQ(r.results[0].outputs,
              (std::vector{out(true, std::nullopt), out(true, "v1"), out(false, "v1"),
                           out(true, "v1"), out(true, "v2"), out(true, "v3")}));
    EXPECT_EQ(f.kv.read(b("k")), b("v3"));
}

TEST(KvMachine, user_keys_cannot_touch_metadata) {
    Fixture f;
    std::string meta("\x00tob/last_applied", 17);
    (void)f.apply({req(1, 1, {put(meta, "evil")})});
    EXPECT_EQ(f.kv.last_applied(), 1u);
    KvMachine reloaded(f.storage, chain());
    EXPECT_EQ(reloaded.last_applied(), 1u);
    EXPECT_EQ(reloaded.read(b(meta)), b("evil"));
}

TEST(KvMachine, dedup_same_nonce_across_epochs_returns_stored_outputs) {
    Fixture f;
    auto r1 = f.apply({req(1, 7, {put("a", "1"), get("a")})});
    auto r2 = f.apply({req(1, 7, {put("a", "2")})});  // same nonce, other ops
    ASSERT_EQ(r2.results.size(), 1u);
    EXPECT_TRUE(r2.results[0].duplicate);
    EXPECT_EQ(r2.results[0].outputs, r1.results[0].outputs);
    EXPECT_EQ(f.kv.read(b("a")), b("1"));
    EXPECT_TRUE(f.kv.committed(client(1), 7));
    EXPECT_FALSE(f.kv.committed(client(1), 8));
    EXPECT_FALSE(f.kv.committed(client(2), 7));
}

TEST(KvMachine, dedup_within_one_epoch) {
    Fixture f;
    auto r = f.apply(
        {req(1, 3, {put("a", "1")}), req(2, 3, {put("b", "1")}), req(1, 3, {put("a", "2")})});
    ASSERT_EQ(r.results.size(), 3u);
    EXPECT_FALSE(r.results[0].duplicate);
    EXPECT_FALSE(r.results[1].duplicate);  // another client's nonce 3
    EXPECT_TRUE(r.results[2].duplicate);
    EXPECT_EQ(r.results[2].outputs, r.results[0].outputs);
    EXPECT_EQ(r.results[2].position, 2u);
    EXPECT_EQ(f.kv.read(b("a")), b("1"));
}

TEST(KvMachine, nonce_older_than_window_is_skipped) {
    Fixture f;
    (void)f.apply({req(1, 5000, {put("a", "1")})});
    // 5000 - 1024 = 3976: at or below is too old, above is inside the window.
    auto r = f.apply({req(1, 3976, {put("old", "x")}), req(1, 3977, {put("edge", "y")})});
    EXPECT_TRUE(r.results[0].duplicate);
    EXPECT_TRUE(r.results[0].outputs.empty());
    EXPECT_FALSE(r.results[1].duplicate);
    EXPECT_EQ(f.kv.read(b("old")), std::nullopt);
    EXPECT_EQ(f.kv.read(b("edge")), b("y"));
    EXPECT_TRUE(f.kv.committed(client(1), 10));  // too old counts as committed
}

TEST(KvMachine, out_of_order_nonces_inside_window_both_apply) {
    Fixture f;
    auto r1 = f.apply({req(1, 10, {put("x", "10")}), req(1, 4, {put("y", "4")})});
    EXPECT_FALSE(r1.results[0].duplicate);
    EXPECT_FALSE(r1.results[1].duplicate);
    auto r2 = f.apply({req(1, 6, {put("z", "6")}), req(1, 4, {put("y", "again")}),
                       req(1, 10, {put("x", "again")})});
    EXPECT_FALSE(r2.results[0].duplicate);
    EXPECT_TRUE(r2.results[1].duplicate);
    EXPECT_EQ(r2.results[1].outputs, r1.results[1].outputs);
    EXPECT_TRUE(r2.results[2].duplicate);
    EXPECT_EQ(f.kv.read(b("y")), b("4"));
    EXPECT_EQ(f.kv.read(b("z")), b("6"));
    EXPECT_FALSE(f.kv.committed(client(1), 5));
    EXPECT_TRUE(f.kv.committed(client(1), 6));
}

TEST(KvMachine, window_slides_and_forgets_old_outputs) {
    Fixture f;
    std::vector<Request> batch;
    for (Nonce n = 1; n <= 3000; ++n)
        batch.push_back(req(1, n, {put("k" + std::to_string(n), "v")}));
    auto r = f.apply(batch);
    for (const auto& x : r.results) ASSERT_FALSE(x.duplicate);
    // Only nonces in (3000-1024, 3000] keep outputs.
    EXPECT_FALSE(f.kv.stored_outputs(client(1), 1976).has_value());
    EXPECT_TRUE(f.kv.stored_outputs(client(1), 1977).has_value());
    EXPECT_TRUE(f.kv.stored_outputs(client(1), 3000).has_value());
    std::size_t outs = 0;
    for (const auto& [k, v] : f.storage.data())
        if (k.size() > 9 && std::string(k.begin(), k.begin() + 9) == std::string("\x00tob/out/", 9))
            ++outs;
    EXPECT_EQ(outs, 1024u);
    // Every nonce of 1..3000 is committed; 3001 is not.
    for (Nonce n = 1; n <= 3000; ++n) ASSERT_TRUE(f.kv.committed(client(1), n)) << n;
    EXPECT_FALSE(f.kv.committed(client(1), 3001));
    // A big jump evicts everything of the old window.
    (void)f.apply({req(1, 100000, {put("j", "v")})});
    EXPECT_FALSE(f.kv.stored_outputs(client(1), 3000).has_value());
    EXPECT_TRUE(f.kv.stored_outputs(client(1), 100000).has_value());
    EXPECT_FALSE(f.kv.committed(client(1), 99000));
    EXPECT_TRUE(f.kv.committed(client(1), 98976));
}

TEST(KvMachine, dedup_matches_a_reference_model) {
    // Random nonces (small steps, word-crossing jumps, far jumps, stale ones)
    // against a plain set of committed nonces with the window rule.
    Fixture f;
    std::set<Nonce> committed;
    std::uint64_t x = 12345;
    auto rnd = [&x](std::uint64_t m) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x % m;
    };
    Nonce base = 0;
    for (int epoch = 0; epoch < 60; ++epoch) {
        std::vector<Request> batch;
        std::vector<bool> expect_dup;
        for (int i = 0; i < 50; ++i) {
            const std::uint64_t kind = rnd(20);
            if (kind == 0) base += 1000 + rnd(2000);
            Nonce n = base + rnd(300);
            if (kind == 1 && base > 1500) n = base - 1000 - rnd(500);
            const Nonce high = committed.empty() ? 0 : *committed.rbegin();
            const bool dup =
                !committed.empty() && (committed.count(n) || (high >= 1024 && n <= high - 1024));
            if (!dup) committed.insert(n);
            expect_dup.push_back(dup);
            batch.push_back(req(1, n, {put("k", std::to_string(n))}));
        }
        auto r = f.apply(batch);
        for (std::size_t i = 0; i < batch.size(); ++i)
            ASSERT_EQ(r.results[i].duplicate, expect_dup[i]) << "epoch " << epoch << " i " << i;
    }
    const Nonce high = *committed.rbegin();
    for (Nonce n = high > 3000 ? high - 3000 : 0; n <= high + 5; ++n) {
        const bool expect = committed.count(n) || (high >= 1024 && n <= high - 1024);
        ASSERT_EQ(f.kv.committed(client(1), n), expect) << n;
        ASSERT_EQ(f.kv.stored_outputs(client(1), n).has_value(),
                  committed.count(n) && n + 1024 > high)
            << n;
    }
}

TEST(KvMachine, malformed_requests_are_skipped_and_keep_their_nonce) {
    Fixture f;
    Request wrong_chain = req(1, 1, {put("a", "x")});
    wrong_chain.chain_id[5] ^= 1;
    Request no_ops = req(1, 1, {});
    Request bad_fields = req(1, 1, {Op{OpType::Get, b("a"), b("value-on-get"), {}}});
    Request put_with_expected = req(1, 1, {Op{OpType::Put, b("a"), b("v"), b("e")}});
    auto r = f.apply({wrong_chain, no_ops, bad_fields, put_with_expected});
    for (const auto& x : r.results) {
        EXPECT_TRUE(x.malformed);
        EXPECT_FALSE(x.duplicate);
        EXPECT_TRUE(x.outputs.empty());
    }
    EXPECT_EQ(f.kv.read(b("a")), std::nullopt);
    EXPECT_FALSE(f.kv.committed(client(1), 1));
    auto r2 = f.apply({req(1, 1, {put("a", "ok")})});  // the real request still commits
    EXPECT_FALSE(r2.results[0].duplicate);
    EXPECT_EQ(f.kv.read(b("a")), b("ok"));
}

// A closed table: client 1 reads app/ and writes app/orders/; client 2 reads
// everything; client 3 is not listed.
Permissions closed_table() {
    Permissions p;
    p.open = false;
    p.clients[client(1)] = ClientGrant{{b("app/")}, {b("app/orders/")}};
    p.clients[client(2)] = ClientGrant{{b("")}, {}};
    return p;
}

TEST(Permissions, prefixes_decide_each_operation) {
    const Permissions p = closed_table();
    EXPECT_TRUE(p.permits(client(1), get("app/x")));
    EXPECT_FALSE(p.permits(client(1), get("apx")));
    EXPECT_TRUE(p.permits(client(1), put("app/orders/7", "v")));
    EXPECT_FALSE(p.permits(client(1), put("app/other", "v")));  // reads it, may not write it
    EXPECT_TRUE(p.permits(client(1), del("app/orders/")));      // the prefix itself
    EXPECT_FALSE(p.permits(client(1), del("app/orders")));
    EXPECT_TRUE(p.permits(client(1), cas("app/orders/1", std::nullopt, "v")));
    EXPECT_FALSE(p.permits(client(2), cas("app/orders/1", std::nullopt, "v")));  // no write
    EXPECT_TRUE(p.permits(client(2), get("")));
    EXPECT_FALSE(p.permits(client(3), get("app/x")));  // not listed: nothing
    // A request is permitted only when every operation is.
    EXPECT_TRUE(p.permits(req(1, 1, {get("app/a"), put("app/orders/a", "v")})));
    EXPECT_FALSE(p.permits(req(1, 1, {put("app/orders/a", "v"), put("app/b", "v")})));
    EXPECT_TRUE(Permissions::open_to_all().permits(req(3, 1, {put("anything", "v")})));
}

TEST(KvMachine, forbidden_requests_are_skipped_whole_and_keep_their_nonce) {
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), Limits{}, closed_table());
    auto r =
        kv.apply_epoch(1, od(1),
                       {req(1, 1, {put("app/orders/1", "ok")}),
                        req(1, 2, {put("app/orders/2", "x"), put("app/other", "x")}),
                        req(3, 1, {put("app/orders/3", "x")}), req(2, 1, {get("app/orders/1")}),
                        req(2, 2, {put("app/orders/1", "no")})});
    ASSERT_EQ(r.results.size(), 5u);
    EXPECT_FALSE(r.results[0].forbidden);
    EXPECT_TRUE(r.results[1].forbidden);  // one operation denied: nothing of it applies
    EXPECT_TRUE(r.results[2].forbidden);
    EXPECT_FALSE(r.results[3].forbidden);
    EXPECT_EQ(r.results[3].outputs, (std::vector{out(true, "ok")}));
    EXPECT_TRUE(r.results[4].forbidden);
    for (std::size_t i : {1u, 2u, 4u}) {
        EXPECT_TRUE(r.results[i].outputs.empty());
        EXPECT_FALSE(r.results[i].malformed);
        EXPECT_FALSE(r.results[i].duplicate);
    }
    EXPECT_EQ(kv.read(b("app/orders/1")), b("ok"));
    EXPECT_EQ(kv.read(b("app/orders/2")), std::nullopt);
    EXPECT_EQ(kv.read(b("app/other")), std::nullopt);
    EXPECT_FALSE(kv.committed(client(1), 2));  // the nonce is not consumed
    EXPECT_TRUE(kv.committed(client(1), 1));
}

TEST(KvMachine, put_withholds_the_previous_value_from_a_client_that_may_not_read_it) {
    Permissions p;
    p.clients[client(1)] = ClientGrant{{b("a")}, {b("a"), b("w")}};  // writes w/, never reads it
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), Limits{}, p);
    (void)kv.apply_epoch(1, od(1), {req(1, 1, {put("w/1", "secret"), put("a", "1")})});
    auto r = kv.apply_epoch(2, od(2), {req(1, 2, {put("w/1", "new"), put("a", "2")})});
    EXPECT_EQ(r.results[0].outputs, (std::vector{out(true, std::nullopt), out(true, "1")}));
    EXPECT_EQ(kv.read(b("w/1")), b("new"));
}

TEST(KvMachine, permission_check_is_deterministic_and_in_the_state_digest) {
    // The same epochs under the same table give the same digest; a forbidden request
    // and the same request permitted give different digests.
    std::vector<Request> epoch = {req(1, 1, {put("app/orders/1", "v")}),
                                  req(3, 1, {put("x", "v")})};
    MemoryKvStorage s1, s2, s3;
    KvMachine a(s1, chain(), Limits{}, closed_table());
    KvMachine b2(s2, chain(), Limits{}, closed_table());
    KvMachine open(s3, chain(), Limits{}, Permissions::open_to_all());
    const auto ra = a.apply_epoch(1, od(1), epoch);
    const auto rb = b2.apply_epoch(1, od(1), epoch);
    const auto ro = open.apply_epoch(1, od(1), epoch);
    EXPECT_EQ(ra.state_digest, rb.state_digest);
    EXPECT_NE(ra.state_digest, ro.state_digest);
    EXPECT_TRUE(ra.results[1].forbidden);
    EXPECT_FALSE(ro.results[1].forbidden);
}

TEST(KvMachine, same_epochs_give_same_digest_and_order_matters) {
    std::vector<std::vector<Request>> epochs = {
        {req(1, 1, {put("a", "1")}), req(2, 1, {put("a", "2")})},
        {req(1, 2, {get("a"), del("a")}), req(1, 1, {put("dup", "x")})},
        {},
    };
    Fixture f1, f2;
    for (const auto& e : epochs) {
        auto r1 = f1.apply(e);
        auto r2 = f2.apply(e);
        EXPECT_EQ(r1.state_digest, r2.state_digest);
    }
    EXPECT_EQ(f1.kv.state_digest(), f2.kv.state_digest());
    EXPECT_NE(f1.kv.state_digest(), Digest{});

    Fixture g;
    auto swapped = epochs;
    std::swap(swapped[0][0], swapped[0][1]);
    for (const auto& e : swapped) (void)g.apply(e);
    EXPECT_NE(g.kv.state_digest(), f1.kv.state_digest());

    // The output digest is chained in too.
    Fixture h;
    (void)h.kv.apply_epoch(1, Digest{}, epochs[0]);
    Fixture h2;
    (void)h2.kv.apply_epoch(1, od(1), epochs[0]);
    EXPECT_NE(h.kv.state_digest(), h2.kv.state_digest());

    // Same writes, different outputs (a GET in one of them) -> different digests.
    Fixture p, p2;
    (void)p.apply({req(1, 1, {put("a", "1")})});
    (void)p2.apply({req(1, 1, {put("a", "1"), get("a")})});
    EXPECT_NE(p.kv.state_digest(), p2.kv.state_digest());
}

TEST(KvMachine, reload_restores_state_digest_and_dedup) {
    MemoryKvStorage storage;
    Digest digest{};
    {
        KvMachine kv(storage, chain());
        (void)kv.apply_epoch(1, od(1), {req(1, 1, {put("a", "1")}), req(1, 3, {put("b", "3")})});
        (void)kv.apply_epoch(2, od(2), {req(2, 9, {put("c", "9")})});
        digest = kv.state_digest();
    }
    KvMachine kv(storage, chain());
    EXPECT_EQ(kv.last_applied(), 2u);
    EXPECT_EQ(kv.state_digest(), digest);
    EXPECT_TRUE(kv.committed(client(1), 1));
    EXPECT_FALSE(kv.committed(client(1), 2));
    EXPECT_TRUE(kv.committed(client(1), 3));
    EXPECT_TRUE(kv.committed(client(2), 9));
    EXPECT_EQ(kv.read(b("b")), b("3"));
    auto r = kv.apply_epoch(3, od(3), {req(1, 1, {put("a", "again")}), req(1, 2, {put("x", "2")})});
    EXPECT_TRUE(r.results[0].duplicate);
    EXPECT_EQ(r.results[0].outputs, (std::vector{out(true, std::nullopt)}));
    EXPECT_FALSE(r.results[1].duplicate);

    // A machine that never stopped reaches the same digest.
    MemoryKvStorage s2;
    KvMachine straight(s2, chain());
    (void)straight.apply_epoch(1, od(1), {req(1, 1, {put("a", "1")}), req(1, 3, {put("b", "3")})});
    (void)straight.apply_epoch(2, od(2), {req(2, 9, {put("c", "9")})});
    (void)straight.apply_epoch(3, od(3),
                               {req(1, 1, {put("a", "again")}), req(1, 2, {put("x", "2")})});
    EXPECT_EQ(straight.state_digest(), kv.state_digest());
    EXPECT_EQ(s2.data(), storage.data());
}

TEST(KvMachineDeathTest, applying_out_of_order_aborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    Fixture f;
    EXPECT_DEATH((void)f.kv.apply_epoch(2, od(2), {}), "epoch == last_applied_");
}

}  // namespace
}  // namespace tob::consensus::kv
