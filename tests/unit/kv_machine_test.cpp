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

// PUT and DEL that ask for the previous value (most tests check it).
Op put(const std::string& k, const std::string& v) { return Op{OpType::Put, b(k), b(v), {}, true}; }
Op del(const std::string& k) { return Op{OpType::Del, b(k), {}, {}, true}; }
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
    r.expires = 1000;  // valid in every epoch these tests apply (<= 1000, >= 1000 - H)
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

// Issue 11, finding 2: PUT and DEL returned the previous value always, so one
// write of a large value echoed it back; now only when the op asks.
TEST(KvMachine, put_and_del_return_the_previous_value_only_when_asked) {
    Fixture f;
    const std::string big(1000, 'v');
    auto r = f.apply({req(1, 1, {put("a", big)}),
                      req(1, 2, {Op{OpType::Put, b("a"), b("x"), {}}}),  // not asked
                      req(1, 3, {Op{OpType::Del, b("a"), {}, {}}}),      // not asked
                      req(1, 4, {put("a", "y")}), req(1, 5, {del("a")})});
    ASSERT_EQ(r.results.size(), 5u);
    EXPECT_EQ(r.results[1].outputs, (std::vector{out(true, std::nullopt)}));
    EXPECT_EQ(r.results[2].outputs, (std::vector{out(true, std::nullopt)}));
    EXPECT_EQ(r.results[3].outputs, (std::vector{out(true, std::nullopt)}));  // absent before
    EXPECT_EQ(r.results[4].outputs, (std::vector{out(true, "y")}));
    // `previous` means nothing on GET and CAS: such a request is malformed.
    Op get_prev{OpType::Get, b("a"), {}, {}, true};
    Op cas_prev{OpType::Cas, b("a"), b("z"), {}, true};
    auto m = f.apply({req(1, 6, {get_prev}), req(1, 7, {cas_prev})});
    for (const auto& x : m.results) {
        EXPECT_TRUE(x.malformed);
        EXPECT_EQ(x.skip, Skip::Invalid);
    }
}

// Issue 11, finding 2: one ~8 KB request of GETs on a large value made outputs
// of hundreds of MiB on every node. Over the request's cap it is skipped, on
// every node alike, nothing it wrote is kept, and its nonce stays usable.
TEST(KvMachine, request_over_the_output_cap_is_skipped_and_writes_nothing) {
    Limits lim;
    lim.request_output_bytes_max = 4096;
    lim.epoch_output_bytes_max = 1u << 20;
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), lim);
    const std::string big(1500, 'v');
    (void)kv.apply_epoch(1, od(1), {req(1, 1, {put("big", big)})});
    // 3 GETs of 1,500 bytes = 4,524 bytes of outputs (> 4,096), after a PUT.
    Request amp = req(2, 1, {put("side", "effect"), get("big"), get("big"), get("big")});
    auto r = kv.apply_epoch(2, od(2), {amp, req(2, 2, {get("big"), get("big")})});
    ASSERT_EQ(r.results.size(), 2u);
    EXPECT_TRUE(r.results[0].malformed);
    EXPECT_EQ(r.results[0].skip, Skip::OutputsOver);
    EXPECT_TRUE(r.results[0].outputs.empty());
    EXPECT_FALSE(r.results[1].malformed);  // 3,016 bytes: under the cap
    EXPECT_EQ(r.results[1].outputs.size(), 2u);
    EXPECT_EQ(kv.read(b("side")), std::nullopt);  // the skipped request's PUT is not kept
    EXPECT_FALSE(kv.committed(client(2), 1));
    EXPECT_TRUE(kv.committed(client(2), 2));
}

// Issue 11, finding 2: a block of such requests multiplied it again. The epoch's
// outputs stop at their cap: the request that would pass it is skipped (it may
// be submitted again), later small ones still fit, a duplicate's stored outputs
// count too.
TEST(KvMachine, epoch_outputs_stop_at_their_cap) {
    Limits lim;
    lim.request_output_bytes_max = 4096;
    lim.epoch_output_bytes_max = 5000;
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), lim);
    const std::string big(2000, 'v');
    (void)kv.apply_epoch(1, od(1), {req(1, 1, {put("big", big)})});
    auto r = kv.apply_epoch(2, od(2),
                            {req(2, 1, {get("big")}), req(3, 1, {get("big")}),
                             req(4, 1, {get("big")}),      // 6,024 > 5,000: skipped
                             req(5, 1, {get("small")})});  // 8 bytes: fits
    ASSERT_EQ(r.results.size(), 4u);
    EXPECT_FALSE(r.results[0].malformed);
    EXPECT_FALSE(r.results[1].malformed);
    EXPECT_TRUE(r.results[2].malformed);
    EXPECT_EQ(r.results[2].skip, Skip::EpochFull);
    EXPECT_FALSE(r.results[3].malformed);
    EXPECT_FALSE(kv.committed(client(4), 1));
    // Resubmitted next epoch it commits; two duplicates follow, whose stored
    // outputs fill the epoch.
    auto r3 = kv.apply_epoch(
        3, od(3), {req(4, 1, {get("big")}), req(2, 1, {get("big")}), req(3, 1, {get("big")})});
    EXPECT_FALSE(r3.results[0].malformed);
    EXPECT_TRUE(kv.committed(client(4), 1));
    EXPECT_TRUE(r3.results[1].duplicate);
    EXPECT_EQ(r3.results[1].outputs.size(), 1u);
    EXPECT_TRUE(r3.results[2].duplicate);
    EXPECT_TRUE(r3.results[2].outputs.empty());  // past the cap: answered without them
    // Every node computes the same: a second machine on the same inputs agrees.
    MemoryKvStorage s2;
    KvMachine kv2(s2, chain(), lim);
    (void)kv2.apply_epoch(1, od(1), {req(1, 1, {put("big", big)})});
    auto again = kv2.apply_epoch(2, od(2),
                                 {req(2, 1, {get("big")}), req(3, 1, {get("big")}),
                                  req(4, 1, {get("big")}), req(5, 1, {get("small")})});
    EXPECT_EQ(again.state_digest, r.state_digest);
}

// Issue 11, finding 11: a damaged dedup entry or stored outputs aborted the
// node. Now the machine reports the damage and keeps going.
TEST(KvMachine, damaged_stored_entries_are_reported_not_fatal) {
    MemoryKvStorage storage;
    {
        KvMachine kv(storage, chain());
        (void)kv.apply_epoch(1, od(1), {req(1, 1, {put("a", "1")}), req(2, 1, {get("a")})});
        EXPECT_FALSE(kv.damage());
    }
    // Truncate client 1's dedup entry and client 2's stored outputs.
    KvBatch damage;
    for (const auto& [key, value] : storage.data()) {
        const std::string k(key.begin(), key.end());
        if (k.rfind(std::string("\x00tob/dedup/", 11), 0) == 0 && key.back() == 0 && key[11] == 1) {
            damage[key] = Bytes(value.begin(), value.begin() + 10);
        }
        if (k.rfind(std::string("\x00tob/out/", 9), 0) == 0 && key[9] == 2) {
            damage[key] = Bytes{0, 0, 0, 9};
        }
    }
    ASSERT_EQ(damage.size(), 2u);
    storage.commit(damage);
    KvMachine kv(storage, chain());
    EXPECT_FALSE(kv.damage());  // nothing read yet
    EXPECT_FALSE(kv.stored_outputs(client(2), 1));
    ASSERT_TRUE(kv.damage());
    EXPECT_NE(kv.damage()->find("stored outputs"), std::string::npos) << *kv.damage();
    auto r = kv.apply_epoch(2, od(2), {req(1, 2, {put("a", "2")})});
    EXPECT_FALSE(r.results[0].malformed);
    EXPECT_EQ(kv.read(b("a")), b("2"));
    EXPECT_EQ(kv.last_applied(), 2u);
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

// ---- expiry (issue 11, finding 10) ---------------------------------------------------

Request req_until(std::uint8_t c, Nonce nonce, Epoch expires, std::vector<Op> ops) {
    Request r = req(c, nonce, std::move(ops));
    r.expires = expires;
    return r;
}

// Entries of the machine's metadata whose key starts with `prefix` ("dedup/", ...).
std::size_t stored_with(const MemoryKvStorage& s, const std::string& prefix) {
    const Bytes p = b(std::string("\x00tob/", 5) + prefix);
    std::size_t n = 0;
    for (const auto& [k, v] : s.data())
        if (k.size() >= p.size() && std::equal(p.begin(), p.end(), k.begin())) ++n;
    return n;
}

TEST(KvMachineExpiry, a_request_applied_after_its_expiry_is_skipped_and_keeps_its_nonce) {
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), Limits{}, Permissions::open_to_all(), 100);
    (void)kv.apply_epoch(1, od(1), {});
    (void)kv.apply_epoch(2, od(2), {});
    // Epoch 3: expires 2 is past; expires 3 (this very epoch) is the last one allowed.
    auto r = kv.apply_epoch(
        3, od(3), {req_until(1, 1, 2, {put("a", "late")}), req_until(2, 1, 3, {put("b", "ok")})});
    ASSERT_EQ(r.results.size(), 2u);
    EXPECT_TRUE(r.results[0].malformed);
    EXPECT_EQ(r.results[0].skip, Skip::Expired);
    EXPECT_TRUE(r.results[0].outputs.empty());
    EXPECT_EQ(kv.read(b("a")), std::nullopt);
    EXPECT_FALSE(kv.committed(client(1), 1));
    EXPECT_FALSE(r.results[1].malformed);
    EXPECT_EQ(kv.read(b("b")), b("ok"));
    // The nonce was not consumed: signed again with a later expiry, it commits.
    auto again = kv.apply_epoch(4, od(4), {req_until(1, 1, 9, {put("a", "again")})});
    EXPECT_FALSE(again.results[0].malformed);
    EXPECT_EQ(kv.read(b("a")), b("again"));
    // The pool's view: expired for the next epoch (5), or not.
    EXPECT_TRUE(kv.expired(req_until(1, 2, 4, {get("a")})));
    EXPECT_FALSE(kv.expired(req_until(1, 2, 5, {get("a")})));
}

TEST(KvMachineExpiry, a_request_expiring_more_than_H_epochs_ahead_is_skipped) {
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), Limits{}, Permissions::open_to_all(), 10);
    auto r = kv.apply_epoch(
        1, od(1), {req_until(1, 1, 11, {put("a", "1")}), req_until(2, 1, 12, {put("b", "1")})});
    EXPECT_FALSE(r.results[0].malformed);  // 1 + H: allowed
    EXPECT_TRUE(r.results[1].malformed);   // 1 + H + 1: too far
    EXPECT_EQ(r.results[1].skip, Skip::ExpiresTooFar);
    EXPECT_EQ(kv.read(b("b")), std::nullopt);
    EXPECT_FALSE(kv.committed(client(2), 1));
    EXPECT_TRUE(kv.expired(req_until(2, 1, 13, {get("b")})));  // next epoch 2: 2 + 10 < 13
    EXPECT_FALSE(kv.expired(req_until(2, 1, 12, {get("b")})));
    // And the largest expiry u64 allows does not wrap around.
    auto far = kv.apply_epoch(2, od(2), {req_until(3, 1, ~Epoch{0}, {put("c", "1")})});
    EXPECT_EQ(far.results[0].skip, Skip::ExpiresTooFar);
    // H shapes the results, so the state digest: a node with another H disagrees
    // (the cluster file, hence the chain id, fixes it for every member).
    MemoryKvStorage s2;
    KvMachine other(s2, chain(), Limits{}, Permissions::open_to_all(), 11);
    auto r2 = other.apply_epoch(
        1, od(1), {req_until(1, 1, 11, {put("a", "1")}), req_until(2, 1, 12, {put("b", "1")})});
    EXPECT_NE(r2.state_digest, r.state_digest);
}

TEST(KvMachineExpiry, a_dedup_entry_goes_exactly_when_its_largest_expiry_passes) {
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), Limits{}, Permissions::open_to_all(), 100);
    (void)kv.apply_epoch(1, od(1), {req_until(1, 1, 5, {put("k", "v1")})});
    (void)kv.apply_epoch(2, od(2), {req_until(1, 2, 8, {put("k", "v2")})});
    // A later commit with a smaller expiry does not shorten the entry's life.
    (void)kv.apply_epoch(3, od(3), {req_until(1, 3, 6, {put("k", "v3")})});
    EXPECT_EQ(kv.dedup_expiry(client(1)), 8u);
    for (Epoch e = 4; e <= 8; ++e) {
        (void)kv.apply_epoch(e, od(e), {});
        EXPECT_EQ(kv.dedup_expiry(client(1)), 8u) << "epoch " << e;
        EXPECT_TRUE(kv.committed(client(1), 2));
        EXPECT_TRUE(kv.stored_outputs(client(1), 1).has_value());
    }
    // Epoch 9: no committed request of the client can commit any more.
    (void)kv.apply_epoch(9, od(9), {});
    EXPECT_EQ(kv.dedup_expiry(client(1)), std::nullopt);
    EXPECT_FALSE(kv.committed(client(1), 2));
    EXPECT_EQ(stored_with(storage, "dedup/"), 0u);
    EXPECT_EQ(stored_with(storage, "out/"), 0u);  // its stored outputs went too
    EXPECT_EQ(stored_with(storage, "xq"), 0u);    // and its expiry lists
    EXPECT_EQ(kv.read(b("k")), b("v3"));          // user data stays
    // A restarted machine reads the same (nothing of the drop was only cached).
    KvMachine reloaded(storage, chain(), Limits{}, Permissions::open_to_all(), 100);
    EXPECT_EQ(reloaded.dedup_expiry(client(1)), std::nullopt);
}

TEST(KvMachineExpiry, a_replay_after_the_entry_was_dropped_is_refused_by_its_expiry) {
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), Limits{}, Permissions::open_to_all(), 100);
    const Request first = req_until(1, 1, 3, {put("k", "old")});
    (void)kv.apply_epoch(1, od(1), {first});
    (void)kv.apply_epoch(2, od(2), {req_until(2, 1, 50, {put("k", "new")})});
    // While the entry lasts, a retry is answered as a duplicate.
    auto dup = kv.apply_epoch(3, od(3), {first});
    EXPECT_TRUE(dup.results[0].duplicate);
    (void)kv.apply_epoch(4, od(4), {});
    ASSERT_EQ(kv.dedup_expiry(client(1)), std::nullopt);
    // The entry is gone; the replay is refused by its expiry, not applied again.
    auto replay = kv.apply_epoch(5, od(5), {first});
    EXPECT_FALSE(replay.results[0].duplicate);
    EXPECT_EQ(replay.results[0].skip, Skip::Expired);
    EXPECT_EQ(kv.read(b("k")), b("new"));
}

TEST(KvMachineExpiry, a_client_dropped_and_back_in_one_epoch_keeps_its_new_outputs) {
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), Limits{}, Permissions::open_to_all(), 100);
    (void)kv.apply_epoch(1, od(1), {req_until(1, 7, 1, {put("k", "a")})});
    // Epoch 2 drops the entry (expiry 1) first, then the same nonce commits anew.
    auto r = kv.apply_epoch(2, od(2), {req_until(1, 7, 20, {put("k", "b")})});
    EXPECT_FALSE(r.results[0].malformed);
    EXPECT_FALSE(r.results[0].duplicate);
    EXPECT_EQ(kv.dedup_expiry(client(1)), 20u);
    auto outs = kv.stored_outputs(client(1), 7);
    ASSERT_TRUE(outs.has_value());
    ASSERT_EQ(outs->size(), 1u);
    EXPECT_EQ(outs->front().value, b("a"));  // the previous value of this commit
}

TEST(KvMachineExpiry, the_sweep_is_bounded_per_epoch_and_catches_up) {
    MemoryKvStorage storage;
    KvMachine kv(storage, chain(), Limits{}, Permissions::open_to_all(), 100);
    const std::size_t clients = 3000;
    std::vector<Request> many;
    for (std::size_t c = 0; c < clients; ++c) {
        Request r = req_until(1, 1, 1, {get("x")});
        r.client[1] = static_cast<std::uint8_t>(c >> 8);
        r.client[2] = static_cast<std::uint8_t>(c);
        many.push_back(r);
    }
    (void)kv.apply_epoch(1, od(1), many);
    ASSERT_EQ(stored_with(storage, "dedup/"), clients);
    // Empty epochs: each drops at most kSweepUnitsBase clients (plus one chunk).
    std::size_t left = clients;
    Epoch e = 2;
    while (left > 0 && e < 10) {
        (void)kv.apply_epoch(e, od(e), {});
        const std::size_t now = stored_with(storage, "dedup/");
        EXPECT_LE(left - now, KvMachine::kSweepUnitsBase + KvMachine::kExpiryChunkClients);
        EXPECT_LT(now, left) << "the sweep made no progress in epoch " << e;
        left = now;
        ++e;
    }
    EXPECT_EQ(left, 0u);
    EXPECT_GE(e, 5u);  // it took several epochs
    EXPECT_EQ(stored_with(storage, "xq"), 0u);
}

}  // namespace
}  // namespace tob::consensus::kv
