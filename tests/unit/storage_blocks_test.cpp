// Block envelopes stored once (daemon/block_refs.h, NodeStorage's "blocks"
// column family): a Proof record refers to the blocks its epoch's Block and own
// Signed records stored, every record still loads byte for byte (recovery, the
// catch-up archive, dump-log read them so), after a restart too, pruning takes the
// blocks with their records, and a missing block is a corrupt record.

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "consensus/codec.h"
#include "daemon/block_refs.h"
#include "daemon/storage.h"
#include "tests/unit/test_util.h"

namespace tob::daemon {
namespace {

namespace fs = std::filesystem;
using consensus::Bytes;
using consensus::DurableRecord;
using Type = DurableRecord::Type;

// A block envelope of `bytes` body bytes from `sender` (only its layout matters:
// storage decodes it, never verifies it).
Bytes block_envelope(consensus::NodeId sender, consensus::Epoch e, std::size_t bytes,
                     std::uint8_t fill) {
    consensus::Envelope env;
    env.sender = sender;
    env.epoch = e;
    env.kind = consensus::Kind::Block;
    env.body.assign(bytes, fill);
    for (std::size_t i = 0; i < bytes; i += 7) env.body[i] = static_cast<std::uint8_t>(i + sender);
    return consensus::encode(env);
}

Bytes proof_of(const std::vector<Bytes>& blocks) {
    return consensus::encode(consensus::FetchReply{blocks, {}});
}

DurableRecord rec(Type type, consensus::Epoch e, Bytes bytes) {
    return DurableRecord{type, e, std::move(bytes)};
}

bool same(const std::vector<DurableRecord>& a, const std::vector<DurableRecord>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].type != b[i].type || a[i].epoch != b[i].epoch || a[i].bytes != b[i].bytes)
            return false;
    }
    return true;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

class StorageBlocksTest : public ::testing::Test {
  protected:
    void SetUp() override { crypto::init(); }

    std::unique_ptr<NodeStorage> open_store() {
        auto opened = NodeStorage::open(tmp_.path() / "data");
        EXPECT_TRUE(opened.ok()) << joined(opened.errors);
        if (!opened.ok()) return nullptr;
        return std::move(*opened.value);
    }

    // Every (key, value) of a column family.
    static std::vector<std::pair<std::string, std::string>> entries(
        NodeStorage& store, rocksdb::ColumnFamilyHandle* cf) {
        std::vector<std::pair<std::string, std::string>> out;
        std::unique_ptr<rocksdb::Iterator> it(
            store.db_for_testing().NewIterator(rocksdb::ReadOptions(), cf));
        for (it->SeekToFirst(); it->Valid(); it->Next())
            out.emplace_back(it->key().ToString(), it->value().ToString());
        return out;
    }

    // The records of one epoch: peer 1's block, this node's own block (Signed), a
    // small empty block of peer 2, and the Proof holding all three.
    struct Epoch {
        Bytes peer, own, small;
        std::vector<DurableRecord> accepted, proof;
    };
    static Epoch epoch_records(consensus::Epoch e) {
        Epoch x;
        x.peer = block_envelope(1, e, 6000, static_cast<std::uint8_t>(e));
        x.own = block_envelope(0, e, 5000, static_cast<std::uint8_t>(e + 100));
        x.small = block_envelope(2, e, 10, 0);
        x.accepted = {rec(Type::Block, e, x.peer), rec(Type::Signed, e, x.own),
                      rec(Type::Block, e, x.small)};
        x.proof = {rec(Type::Proof, e, proof_of({x.own, x.peer, x.small}))};
        return x;
    }

    test_util::TempDir tmp_;
};

TEST_F(StorageBlocksTest, a_delivered_epochs_blocks_are_stored_once_and_load_byte_for_byte) {
    const auto x = epoch_records(5);
    std::vector<DurableRecord> all = x.accepted;
    all.insert(all.end(), x.proof.begin(), x.proof.end());
    {
        auto store = open_store();
        ASSERT_TRUE(store);
        ASSERT_EQ(store->append(x.accepted), std::nullopt);
        ASSERT_EQ(store->append(x.proof), std::nullopt);

        // Each large envelope once in "blocks"; the small one stays inline.
        const auto blocks = entries(*store, store->blocks_cf_for_testing());
        ASSERT_EQ(blocks.size(), 2u);
        std::vector<std::string> stored = {blocks[0].second, blocks[1].second};
        std::sort(stored.begin(), stored.end());
        std::vector<std::string> expected = {std::string(x.peer.begin(), x.peer.end()),
                                             std::string(x.own.begin(), x.own.end())};
        std::sort(expected.begin(), expected.end());
        EXPECT_EQ(stored, expected);
        // No record value holds a large envelope any more: together they are far
        // smaller than one of them.
        std::size_t record_bytes = 0;
        for (const auto& [k, v] : entries(*store, store->records_cf_for_testing()))
            record_bytes += v.size();
        EXPECT_LT(record_bytes, 1000u);

        const auto loaded = store->load_records();
        EXPECT_TRUE(loaded.sign_log_ok) << joined(loaded.problems);
        EXPECT_TRUE(same(loaded.records, all));
        // The catch-up archive reads one epoch.
        EXPECT_TRUE(same(store->load_records(5, 6).records, all));
    }
    // After a restart, and a Proof stored again (the node does not remember which
    // blocks it wrote before): still one copy of each block, same records.
    auto store = open_store();
    ASSERT_TRUE(store);
    const auto loaded = store->load_records();
    EXPECT_TRUE(loaded.sign_log_ok) << joined(loaded.problems);
    EXPECT_TRUE(same(loaded.records, all));
    ASSERT_EQ(store->append(x.proof), std::nullopt);
    EXPECT_EQ(entries(*store, store->blocks_cf_for_testing()).size(), 2u);
    all.push_back(x.proof[0]);
    EXPECT_TRUE(same(store->load_records().records, all));
}

TEST_F(StorageBlocksTest, a_proof_of_blocks_never_seen_stores_them_itself) {
    // A node that caught up stores the Proof of an epoch it did not take part in.
    const auto x = epoch_records(9);
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_EQ(store->append(x.proof), std::nullopt);
    EXPECT_EQ(entries(*store, store->blocks_cf_for_testing()).size(), 2u);
    EXPECT_TRUE(same(store->load_records().records, x.proof));
}

TEST_F(StorageBlocksTest, pruning_takes_the_blocks_of_the_pruned_epochs_only) {
    std::vector<DurableRecord> kept;
    {
        auto store = open_store();
        ASSERT_TRUE(store);
        auto& db = store->db_for_testing();
        // One table file per epoch and family, left in level 0 (as flushes under
        // load leave them until a compaction moves them down).
        for (auto* cf : {store->records_cf_for_testing(), store->blocks_cf_for_testing()})
            ASSERT_TRUE(db.SetOptions(cf, {{"disable_auto_compactions", "true"}}).ok());
        for (consensus::Epoch e = 1; e <= 4; ++e) {
            const auto x = epoch_records(e);
            ASSERT_EQ(store->append(x.accepted), std::nullopt);
            ASSERT_EQ(store->append(x.proof), std::nullopt);
            for (auto* cf : {store->records_cf_for_testing(), store->blocks_cf_for_testing()})
                ASSERT_TRUE(db.Flush(rocksdb::FlushOptions(), cf).ok());
            if (e >= 3) {
                kept.insert(kept.end(), x.accepted.begin(), x.accepted.end());
                kept.insert(kept.end(), x.proof.begin(), x.proof.end());
            }
        }
        ASSERT_EQ(entries(*store, store->blocks_cf_for_testing()).size(), 8u);
        const std::uint64_t compactions = store->compactions();
        store->prune_records_below(3);
        // The pruned epochs are gone from the records at once...
        auto loaded = store->load_records();
        EXPECT_TRUE(loaded.sign_log_ok) << joined(loaded.problems);
        EXPECT_TRUE(same(loaded.records, kept));
        // ... and their table files (wholly below the floor) in the background.
        for (int k = 0; k < 200 && store->compactions() == compactions; ++k)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ASSERT_GT(store->compactions(), compactions) << "no background pass within 10 s";
        const auto blocks = entries(*store, store->blocks_cf_for_testing());
        ASSERT_EQ(blocks.size(), 4u);
        for (const auto& [k, v] : blocks) EXPECT_GE(k, block_refs::key(3, {}));
        for (const auto& [k, v] : entries(*store, store->records_cf_for_testing()))
            EXPECT_GE(k, NodeStorage::record_key(3, 0));
        // A pruned epoch's record appended again (a late Proof) is not read.
        ASSERT_EQ(store->append(epoch_records(2).proof), std::nullopt);
        loaded = store->load_records();
        EXPECT_TRUE(same(loaded.records, kept));
    }
    // The floor outlives a restart (the late Proof's files are still on disk).
    auto store = open_store();
    ASSERT_TRUE(store);
    const auto loaded = store->load_records();
    EXPECT_TRUE(loaded.sign_log_ok) << joined(loaded.problems);
    EXPECT_TRUE(same(loaded.records, kept));
}

TEST_F(StorageBlocksTest, a_missing_own_block_is_a_damaged_sign_log_a_missing_peer_block_is_not) {
    const auto x = epoch_records(7);
    const std::string own_key = block_refs::key(7, crypto::blake2b256(x.own));
    const std::string peer_key = block_refs::key(7, crypto::blake2b256(x.peer));
    {
        auto store = open_store();
        ASSERT_TRUE(store);
        ASSERT_EQ(store->append(x.accepted), std::nullopt);
        ASSERT_EQ(store->append(x.proof), std::nullopt);
        auto& db = store->db_for_testing();
        ASSERT_TRUE(
            db.Delete(rocksdb::WriteOptions(), store->blocks_cf_for_testing(), peer_key).ok());
        const auto loaded = store->load_records();
        // The peer's Block record and the Proof are dropped (fetched again); the
        // own Signed record is intact.
        EXPECT_TRUE(loaded.sign_log_ok) << joined(loaded.problems);
        EXPECT_EQ(loaded.dropped, 2u);
        ASSERT_EQ(loaded.records.size(), 2u);
        EXPECT_EQ(loaded.records[0].bytes, x.own);
        EXPECT_NE(joined(loaded.problems).find("missing"), std::string::npos)
            << joined(loaded.problems);
        ASSERT_TRUE(
            db.Delete(rocksdb::WriteOptions(), store->blocks_cf_for_testing(), own_key).ok());
        EXPECT_FALSE(store->load_records().sign_log_ok);
    }
    auto store = open_store();
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->damaged());
}

TEST_F(StorageBlocksTest, a_damaged_type_byte_cannot_turn_an_indirect_signed_record_droppable) {
    // The own block's Signed record is stored indirect (type byte 0xc1: Signed |
    // kIndirect | kBodyChecksum). Whatever its type byte is damaged to (a
    // re-fetchable type with the old indirect form's flags, a form no writer
    // produces, a direct re-fetchable type), the load must not drop it as
    // re-fetchable (a fuzz finding: 0xc1 -> 0x82, Block in the pre-2026-12-07 form,
    // was dropped with the sign-log trusted).
    const auto x = epoch_records(9);
    for (const std::uint8_t damaged : {0x82, 0x85, 0x42, 0xc3, 0x02, 0x06}) {
        SCOPED_TRACE(static_cast<int>(damaged));
        auto opened = NodeStorage::open(tmp_.path() / ("data-" + std::to_string(damaged)));
        ASSERT_TRUE(opened.ok()) << joined(opened.errors);
        auto store = std::move(*opened.value);
        ASSERT_EQ(store->append(x.accepted), std::nullopt);
        auto& db = store->db_for_testing();
        std::string signed_key;
        for (const auto& [k, v] : entries(*store, store->records_cf_for_testing())) {
            if (static_cast<std::uint8_t>(v[0]) == 0xc1) signed_key = k;
        }
        ASSERT_FALSE(signed_key.empty()) << "the own block is not stored indirect";
        std::string v;
        ASSERT_TRUE(
            db.Get(rocksdb::ReadOptions(), store->records_cf_for_testing(), signed_key, &v).ok());
        v[0] = static_cast<char>(damaged);
        ASSERT_TRUE(
            db.Put(rocksdb::WriteOptions(), store->records_cf_for_testing(), signed_key, v).ok());
        const auto loaded = store->load_records();
        EXPECT_FALSE(loaded.sign_log_ok) << joined(loaded.problems);
        EXPECT_EQ(loaded.dropped, 0u) << joined(loaded.problems);
        EXPECT_EQ(loaded.records.size(), 2u);  // the two peer blocks
        EXPECT_NE(joined(loaded.problems).find("Signed"), std::string::npos)
            << joined(loaded.problems);
    }
}

TEST_F(StorageBlocksTest, a_damaged_block_fails_its_hash_and_its_records_are_corrupt) {
    // The checksum of an indirect record covers its references only; a bit flipped
    // inside a stored block (same length) is caught by the block's hash.
    const auto x = epoch_records(8);
    const std::string own_key = block_refs::key(8, crypto::blake2b256(x.own));
    const std::string peer_key = block_refs::key(8, crypto::blake2b256(x.peer));
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_EQ(store->append(x.accepted), std::nullopt);
    ASSERT_EQ(store->append(x.proof), std::nullopt);
    auto& db = store->db_for_testing();
    auto flip = [&](const std::string& key) {
        std::string v;
        ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), store->blocks_cf_for_testing(), key, &v).ok());
        v[v.size() / 2] = static_cast<char>(v[v.size() / 2] ^ 0x10);
        ASSERT_TRUE(db.Put(rocksdb::WriteOptions(), store->blocks_cf_for_testing(), key, v).ok());
    };
    flip(peer_key);
    auto loaded = store->load_records();
    EXPECT_TRUE(loaded.sign_log_ok) << joined(loaded.problems);
    EXPECT_EQ(loaded.dropped, 2u);  // the peer's Block record and the Proof
    ASSERT_EQ(loaded.records.size(), 2u);
    EXPECT_EQ(loaded.records[0].bytes, x.own);
    EXPECT_NE(joined(loaded.problems).find("does not match its hash"), std::string::npos)
        << joined(loaded.problems);
    flip(own_key);
    EXPECT_FALSE(store->load_records().sign_log_ok);
    EXPECT_TRUE(store->damaged());
}

TEST_F(StorageBlocksTest, values_with_the_checksum_over_the_rebuilt_bytes_still_load) {
    // Data dirs written before 2026-12-07: the type byte has kIndirect (0x80) only
    // and the checksum covers the rebuilt record bytes.
    const auto x = epoch_records(6);
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_EQ(store->append({x.accepted[0]}), std::nullopt);  // peer 1's Block record
    auto& db = store->db_for_testing();
    const std::string key = NodeStorage::record_key(6, 0);
    std::string value;
    ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), store->records_cf_for_testing(), key, &value).ok());
    const auto type = static_cast<std::uint8_t>(Type::Block);
    ASSERT_EQ(static_cast<std::uint8_t>(value[0]), type | 0x80 | 0x40);
    const std::uint8_t type_byte[1] = {type};
    crypto::Hasher h;
    h.raw(type_byte).u64(6).raw(x.peer);
    const crypto::Digest old_check = h.finish();
    std::string old_value = value;
    old_value[0] = static_cast<char>(type | 0x80);
    std::copy_n(old_check.begin(), 16, old_value.begin() + 1);
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), store->records_cf_for_testing(), key, old_value).ok());
    auto loaded = store->load_records();
    EXPECT_TRUE(loaded.problems.empty()) << joined(loaded.problems);
    EXPECT_TRUE(same(loaded.records, {x.accepted[0]}));
    // The old checksum under the new flag is a mismatch: the two forms differ.
    old_value[0] = static_cast<char>(type | 0x80 | 0x40);
    ASSERT_TRUE(
        db.Put(rocksdb::WriteOptions(), store->records_cf_for_testing(), key, old_value).ok());
    loaded = store->load_records();
    EXPECT_EQ(loaded.dropped, 1u);
    EXPECT_NE(joined(loaded.problems).find("checksum mismatch"), std::string::npos)
        << joined(loaded.problems);
}

TEST(BlockRefsTest, a_malformed_indirect_body_is_refused_not_read_past_its_end) {
    const Bytes bytes(2000, 7);
    const std::vector<block_refs::Piece> pieces = {
        {100, 1500, crypto::blake2b256(consensus::ByteView(bytes).subspan(100, 1500))}};
    const std::string body = block_refs::encode(bytes, pieces);
    auto fetch = [&](const std::string&) -> std::optional<std::string> {
        return std::string(1500, 7);
    };
    std::string problem;
    const auto whole = block_refs::rebuild(1, crypto::view(body), fetch, problem);
    ASSERT_TRUE(whole) << problem;
    EXPECT_EQ(*whole, bytes);
    for (std::size_t cut = 0; cut < body.size(); ++cut) {
        // Every truncation but the ones that end between two pieces is malformed;
        // those rebuild a prefix (the record's checksum then fails).
        problem.clear();
        const auto part = block_refs::rebuild(1, crypto::view(body.substr(0, cut)), fetch, problem);
        if (part) {
            EXPECT_LT(part->size(), bytes.size());
        } else {
            EXPECT_FALSE(problem.empty());
        }
    }
}

}  // namespace
}  // namespace tob::daemon
