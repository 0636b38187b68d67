// The state root (consensus/state_root.h), its multiset hash (crypto/lthash.h)
// and the storage layer that keeps it (consensus/kv/rooted_storage.h).

#include "consensus/state_root.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>

#include "consensus/kv/kv_machine.h"
#include "consensus/kv/rooted_storage.h"
#include "crypto/hash.h"
#include "crypto/lthash.h"

namespace tob::consensus {
namespace {

using crypto::LtHash16;
using kv::KvBatch;
using kv::MemoryKvStorage;
using kv::RootedStorage;

Bytes b(std::string_view s) { return Bytes(s.begin(), s.end()); }

// An independent, lane-by-lane reference of LtHash16 arithmetic.
std::vector<std::uint16_t> lanes_of(const LtHash16& h) {
    auto bytes = h.bytes();
    std::vector<std::uint16_t> out(LtHash16::kLanes);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
    return out;
}

TEST(LtHash, sum_is_lane_wise_addition_modulo_2_16) {
    const auto x = LtHash16::of(b("k1"), b("v1"));
    const auto y = LtHash16::of(b("k2"), b("v2"));
    LtHash16 sum = x;
    sum.add(y);
    const auto lx = lanes_of(x), ly = lanes_of(y), ls = lanes_of(sum);
    std::size_t wrapped = 0;
    for (std::size_t i = 0; i < ls.size(); ++i) {
        EXPECT_EQ(ls[i], static_cast<std::uint16_t>(lx[i] + ly[i])) << "lane " << i;
        if (lx[i] + ly[i] > 0xffff) ++wrapped;
    }
    EXPECT_GT(wrapped, 100u);  // carries really happened, and stayed inside their lane
    LtHash16 diff = sum;
    diff.remove(y);
    EXPECT_EQ(diff, x);
}

TEST(LtHash, multiset_hash_ignores_order_and_removal_undoes_addition) {
    LtHash16 a, c;
    for (int i = 0; i < 50; ++i) a.add(b("key" + std::to_string(i)), b("v" + std::to_string(i)));
    for (int i = 49; i >= 0; --i) c.add(b("key" + std::to_string(i)), b("v" + std::to_string(i)));
    EXPECT_EQ(a.digest(), c.digest());
    for (int i = 0; i < 50; ++i) a.remove(b("key" + std::to_string(i)), b("v" + std::to_string(i)));
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(a.digest(), LtHash16().digest());
}

TEST(LtHash, key_value_boundary_and_multiplicity_matter) {
    EXPECT_NE(LtHash16::of(b("ab"), b("c")), LtHash16::of(b("a"), b("bc")));
    LtHash16 once, twice;
    once.add(b("k"), b("v"));
    twice.add(b("k"), b("v"));
    twice.add(b("k"), b("v"));
    EXPECT_NE(once.digest(), twice.digest());
}

// The expansion of an element is part of the state root every node must agree
// on, whatever the host: its lanes, stored little endian, are the ChaCha20 stream
// (zero nonce) keyed by BLAKE2b("tobd-lthash-v1", key, value), computed here
// with libsodium directly.
TEST(LtHash, an_element_expands_to_the_chacha20_stream_of_its_seed) {
    ASSERT_GE(sodium_init(), 0);
    for (const auto& [key, value] : std::vector<std::pair<Bytes, Bytes>>{
             {b("k"), b("v")}, {b(""), b("")}, {b("user/42"), Bytes(300, 0xab)}}) {
        const crypto::Digest seed = crypto::Hasher()
                                        .field(std::string_view("tobd-lthash-v1"))
                                        .field(key)
                                        .field(value)
                                        .finish();
        std::array<std::uint8_t, LtHash16::kBytes> stream{};
        const std::array<std::uint8_t, crypto_stream_chacha20_NONCEBYTES> nonce{};
        ASSERT_EQ(crypto_stream_chacha20(stream.data(), stream.size(), nonce.data(), seed.data()),
                  0);
        EXPECT_EQ(LtHash16::of(key, value).bytes(), stream);
        LtHash16 sum;
        sum.add(key, value);
        EXPECT_EQ(sum.bytes(), stream);
    }
}

TEST(LtHash, state_round_trips_through_bytes) {
    auto h = LtHash16::of(b("k"), b("v"));
    LtHash16 back;
    ASSERT_TRUE(back.load(h.bytes()));
    EXPECT_EQ(back, h);
    EXPECT_FALSE(back.load(Bytes(10)));
}

TEST(StateRoot, manifest_round_trips_and_rejects_other_sizes) {
    Manifest m(kStateBuckets);
    for (std::uint32_t i = 0; i < kStateBuckets; ++i) {
        m[i].digest[0] = static_cast<std::uint8_t>(i);
        m[i].count = i * 3;
        m[i].bytes = i * 100 + 7;
    }
    const Bytes enc = encode_manifest(m);
    EXPECT_EQ(enc.size(), kManifestBytes);
    EXPECT_EQ(decode_manifest(enc), m);
    EXPECT_FALSE(decode_manifest(Bytes(enc.begin(), enc.end() - 1)));
    Manifest other = m;
    other[7].count += 1;
    EXPECT_NE(state_root(m), state_root(other));  // sizes are covered by the root
}

TEST(StateRoot, buckets_spread_keys) {
    std::map<std::uint32_t, int> hits;
    for (int i = 0; i < 10000; ++i) ++hits[state_bucket(b("user/" + std::to_string(i)))];
    EXPECT_EQ(hits.size(), kStateBuckets);
    for (const auto& [bucket, n] : hits) EXPECT_LT(n, 100) << "bucket " << bucket;
}

// ---- RootedStorage ----------------------------------------------------------------

Manifest recount(const RootedStorage& s) {
    std::vector<BucketHash> h(kStateBuckets);
    s.for_each_entry([&](ByteView k, ByteView v) {
        h[state_bucket(k)].add(k, v);
        return true;
    });
    Manifest m(kStateBuckets);
    for (std::uint32_t i = 0; i < kStateBuckets; ++i) m[i] = h[i].summary();
    return m;
}

KvBatch random_batch(std::mt19937_64& rng, int keys) {
    KvBatch batch;
    for (int i = 0; i < 20; ++i) {
        Bytes key = b("\x01k" + std::to_string(rng() % keys));
        if (rng() % 4 == 0)
            batch[key] = std::nullopt;
        else
            batch[key] = b("value-" + std::to_string(rng() % 1000));
    }
    return batch;
}

TEST(RootedStorage, kept_root_equals_a_fresh_recount_after_every_commit) {
    MemoryKvStorage backend;
    RootedStorage s(backend);
    std::mt19937_64 rng(7);
    for (int round = 0; round < 60; ++round) {
        s.commit(random_batch(rng, 200));
        ASSERT_EQ(s.manifest(), recount(s)) << "round " << round;
    }
}

TEST(RootedStorage, same_state_gives_same_root_whatever_the_history) {
    MemoryKvStorage b1, b2;
    RootedStorage s1(b1), s2(b2);
    s1.commit({{b("\x01x"), b("1")}, {b("\x01y"), b("2")}});
    s1.commit({{b("\x01x"), b("3")}, {b("\x01z"), b("9")}});
    s1.commit({{b("\x01z"), std::nullopt}});
    s2.commit({{b("\x01y"), b("2")}});
    s2.commit({{b("\x01x"), b("3")}});
    EXPECT_EQ(s1.root(), s2.root());
    s2.commit({{b("\x01y"), b("2!")}});
    EXPECT_NE(s1.root(), s2.root());
}

TEST(RootedStorage, chain_metadata_is_not_state) {
    MemoryKvStorage backend;
    RootedStorage s(backend);
    const Digest empty = s.root();
    Bytes epoch(8, 0);
    epoch[7] = 5;
    s.commit({{b(std::string_view("\x00tob/last_applied", 17)), epoch}});
    EXPECT_EQ(s.root(), empty);
    EXPECT_EQ(s.get(b(std::string_view("\x00tob/last_applied", 17))), epoch);
}

TEST(RootedStorage, restart_reloads_lanes_and_rescans_only_changed_buckets) {
    MemoryKvStorage backend;
    std::mt19937_64 rng(11);
    Digest before;
    std::set<std::uint32_t> touched;
    {
        RootedStorage s(backend);
        EXPECT_EQ(s.rescanned(), kStateBuckets);  // a new store has no lanes yet
        for (int i = 0; i < 20; ++i) s.commit(random_batch(rng, 500));
        s.take_checkpoint(4);
        // Two writes that change something (a value that differs from any earlier one).
        const KvBatch few = {{b("\x01k1"), b("new")}, {b("\x01k777"), b("fresh")}};
        for (const auto& [k, v] : few) touched.insert(state_bucket(k));
        s.commit(few);
        before = s.root();
    }
    RootedStorage again(backend);
    EXPECT_EQ(again.root(), before);
    EXPECT_EQ(again.manifest(), recount(again));
    EXPECT_EQ(again.rescanned(), touched.size());
}

TEST(RootedStorage, a_crash_before_the_first_checkpoint_rebuilds_every_bucket) {
    MemoryKvStorage backend;
    Digest before;
    {
        RootedStorage s(backend);
        s.commit({{b("\x01a"), b("1")}, {b("\x01b"), b("2")}});
        before = s.root();
    }
    RootedStorage again(backend);
    EXPECT_EQ(again.root(), before);
    EXPECT_EQ(again.rescanned(), kStateBuckets);
}

// Fills one bucket with `n` entries (keys chosen to land in it).
std::vector<StateEntry> one_bucket(std::uint32_t bucket, int n) {
    std::vector<StateEntry> out;
    for (int i = 0; static_cast<int>(out.size()) < n; ++i) {
        char name[16];
        std::snprintf(name, sizeof name, "\x01%06d", i);
        Bytes key = b(name);
        if (state_bucket(key) == bucket)
            out.push_back({key, Bytes(40, static_cast<std::uint8_t>(i))});
    }
    std::sort(out.begin(), out.end(),
              [](const StateEntry& x, const StateEntry& y) { return x.key < y.key; });
    return out;
}

TEST(RootedStorage, chunks_stay_under_the_budget_and_split_a_big_bucket_in_key_order) {
    MemoryKvStorage backend;
    RootedStorage s(backend);
    const auto entries = one_bucket(9, 30);
    KvBatch batch;
    for (const auto& e : entries) batch[e.key] = e.value;
    s.commit(batch);
    s.take_checkpoint(2);
    s.checkpoint_stable(2, {});
    ASSERT_EQ(s.servable(), std::vector<Epoch>{2});

    const std::uint64_t budget = 5 * chunk_entry_bytes(entries[0].key.size(), 40);
    std::vector<StateEntry> got;
    Bytes after;
    int parts = 0;
    for (;;) {
        auto c = s.read_chunk(2, 9, 1, after, budget);
        ASSERT_TRUE(c);
        ASSERT_FALSE(c->entries.empty());
        std::uint64_t used = 0;
        for (const auto& e : c->entries) used += chunk_entry_bytes(e.key.size(), e.value.size());
        EXPECT_LE(used, budget);
        got.insert(got.end(), c->entries.begin(), c->entries.end());
        ++parts;
        if (c->last_complete) break;
        after = c->entries.back().key;
    }
    EXPECT_EQ(got, entries);
    EXPECT_EQ(parts, 6);
    EXPECT_FALSE(s.read_chunk(3, 0, 1, {}, budget));  // not a servable checkpoint
}

TEST(RootedStorage, a_checkpoint_view_does_not_see_later_writes) {
    MemoryKvStorage backend;
    RootedStorage s(backend);
    const auto entries = one_bucket(3, 4);
    s.commit({{entries[0].key, entries[0].value}});
    s.take_checkpoint(2);
    s.commit({{entries[1].key, entries[1].value}, {entries[0].key, std::nullopt}});
    s.checkpoint_stable(2, {});
    auto c = s.read_chunk(2, 3, 1, {}, 1u << 20);
    ASSERT_TRUE(c);
    ASSERT_EQ(c->entries.size(), 1u);
    EXPECT_EQ(c->entries[0], entries[0]);
}

TEST(RootedStorage, install_switches_to_the_staged_state_at_once) {
    MemoryKvStorage backend;
    RootedStorage s(backend);
    s.commit({{b("\x01old"), b("gone after install")}});
    s.stage_begin();
    std::vector<StateEntry> snap = {{b("\x01a"), b("1")}, {b("\x01b"), b("2")}};
    s.stage(snap);
    EXPECT_EQ(s.get(b("\x01a")), std::nullopt);  // staged is not state yet
    std::vector<BucketHash> hashes(kStateBuckets);
    for (const auto& e : snap) hashes[state_bucket(e.key)].add(e.key, e.value);
    Digest digest{};
    digest[0] = 0x42;
    s.install(12, digest, hashes);
    EXPECT_EQ(s.get(b("\x01a")), b("1"));
    EXPECT_EQ(s.get(b("\x01old")), std::nullopt);
    EXPECT_EQ(s.manifest(), recount(s));

    kv::KvMachine machine(s, Digest{});
    EXPECT_EQ(machine.last_applied(), 12u);
    EXPECT_EQ(machine.state_digest(), digest);
    // And a restart finds the same state and root.
    const Digest root = s.root();
    RootedStorage again(backend);
    EXPECT_EQ(again.root(), root);
    EXPECT_EQ(again.get(b("\x01b")), b("2"));
}

TEST(RootedStorage, a_store_from_before_checkpoints_is_migrated_into_buckets) {
    MemoryKvStorage backend;
    Bytes client(32, 7);
    Bytes dedup = b(std::string_view("\x00tob/dedup/", 11));
    dedup.insert(dedup.end(), client.begin(), client.end());
    backend.commit({{b("\x01user"), b("v")}, {dedup, Bytes(136, 1)}});
    RootedStorage s(backend);
    EXPECT_EQ(s.migrated(), 2u);
    EXPECT_EQ(s.get(b("\x01user")), b("v"));
    EXPECT_EQ(s.get(dedup), Bytes(136, 1));
    EXPECT_EQ(s.manifest(), recount(s));
    for (const auto& [k, v] : backend.data()) EXPECT_NE(k[0], 0x01);  // nothing left behind
}

// Issue 11, finding 10: dropping expired dedup entries goes through the same
// write path as every other change, so the kept root follows it, two machines
// applying the same epochs agree, and the root equals a recount of the state.
TEST(RootedStorage, dropping_expired_dedup_entries_keeps_the_root_right_on_every_node) {
    MemoryKvStorage backend_a, backend_b;
    RootedStorage a(backend_a), b_store(backend_b);
    Digest chain{};
    kv::KvMachine ma(a, chain, Limits{}, kv::Permissions::open_to_all(), 100);
    kv::KvMachine mb(b_store, chain, Limits{}, kv::Permissions::open_to_all(), 100);
    auto request = [&](std::uint8_t c, Nonce n, Epoch expires) {
        Request r;
        r.chain_id = chain;
        r.client[0] = c;
        r.nonce = n;
        r.expires = expires;
        r.ops.push_back(Op{OpType::Put, b("k" + std::to_string(c)), b("v"), std::nullopt});
        return r;
    };
    auto dedup_entries = [](const RootedStorage& s) {
        const std::string prefix("\x00tob/dedup/", 11);
        std::size_t n = 0;
        s.for_each_entry([&](ByteView k, ByteView) {
            if (k.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), k.begin()))
                ++n;
            return true;
        });
        return n;
    };
    for (Epoch e = 1; e <= 8; ++e) {
        std::vector<Request> ordered;
        if (e <= 3) ordered = {request(1, e, 4), request(2, e, 40)};
        (void)ma.apply_epoch(e, Digest{}, ordered);
        (void)mb.apply_epoch(e, Digest{}, ordered);
        ASSERT_EQ(a.root(), b_store.root()) << "epoch " << e;
        ASSERT_EQ(a.manifest(), recount(a)) << "epoch " << e;
        // Client 1's entry (expiry 4) goes in epoch 5, from the state itself.
        EXPECT_EQ(dedup_entries(a), e <= 4 ? 2u : 1u) << "epoch " << e;
        EXPECT_EQ(ma.dedup_expiry(PublicKey{1}), e <= 4 ? std::optional<Epoch>(4) : std::nullopt);
    }
}

TEST(RootedStorage, the_machine_computes_the_same_results_over_it) {
    MemoryKvStorage plain_backend, rooted_backend;
    RootedStorage rooted(rooted_backend);
    Digest chain{};
    kv::KvMachine plain(plain_backend, chain), over(rooted, chain);
    for (Epoch e = 1; e <= 5; ++e) {
        Request r;
        r.chain_id = chain;
        r.client[0] = 1;
        r.nonce = e;
        r.expires = e;
        r.ops.push_back(Op{OpType::Put, b("key"), b("v" + std::to_string(e)), std::nullopt});
        r.ops.push_back(Op{OpType::Get, b("key"), {}, std::nullopt});
        auto a = plain.apply_epoch(e, Digest{}, {r});
        auto c = over.apply_epoch(e, Digest{}, {r});
        EXPECT_EQ(a.state_digest, c.state_digest);
        EXPECT_EQ(a.results[0].outputs, c.results[0].outputs);
    }
    EXPECT_EQ(rooted.manifest(), recount(rooted));
}

}  // namespace
}  // namespace tob::consensus
