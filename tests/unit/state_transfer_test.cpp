// Snapshot transfer between StateTransfer units (consensus/state_transfer.h) over
// RootedStorage stores, with the messages passed by hand: offers and their
// certificates, chunk verification, a lying source, parts of big buckets, install.

#include "consensus/state_transfer.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "consensus/codec.h"
#include "consensus/fast_crypto.h"
#include "consensus/kv/kv_machine.h"
#include "consensus/kv/rooted_storage.h"

namespace tob::consensus {
namespace {

using kv::KvBatch;
using kv::MemoryKvStorage;
using kv::RootedStorage;

constexpr Epoch kCheckpoint = 8;

Bytes b(std::string_view s) { return Bytes(s.begin(), s.end()); }

struct Peer {
    std::unique_ptr<FastCryptoSuite> crypto;
    MemoryKvStorage backend;
    std::unique_ptr<RootedStorage> store;
    std::unique_ptr<StateTransfer> transfer;
};

class TransferTest : public ::testing::Test {
  protected:
    static constexpr std::uint32_t kN = 4;

    void SetUp() override {
        world_ = FastWorld::make(kN, 1, 99);
        chain_[0] = 0xc1;
        for (NodeId i = 0; i < kN; ++i) {
            auto p = std::make_unique<Peer>();
            p->crypto = std::make_unique<FastCryptoSuite>(world_, i);
            p->store = std::make_unique<RootedStorage>(p->backend);
            peers_.push_back(std::move(p));
        }
    }

    TransferParams params(NodeId self, std::uint64_t chunk_bytes = 4096) const {
        TransferParams p;
        p.n = kN;
        p.t = 1;
        p.self = self;
        p.chain_id = chain_;
        p.checkpoint_interval = 4;
        p.retention = 2;
        p.chunk_bytes = chunk_bytes;
        return p;
    }

    void make_transfers(std::uint64_t chunk_bytes = 4096) {
        for (NodeId i = 0; i < kN; ++i) {
            peers_[i]->transfer = std::make_unique<StateTransfer>(
                params(i, chunk_bytes), *peers_[i]->crypto, peers_[i]->store.get());
        }
    }

    // Nodes 1..3 hold the same state at the checkpoint and serve it with a
    // certificate of `signers` COMMITs; node 0 is empty.
    void serve_state(int keys, const std::vector<NodeId>& signers, bool lie_in_cert = false) {
        KvBatch batch;
        for (int i = 0; i < keys; ++i) {
            batch[b("\x01key" + std::to_string(i))] =
                Bytes(20 + i % 50, static_cast<std::uint8_t>(i));
        }
        // One oversized bucket: many keys of one bucket (its parts span chunks).
        for (int i = 0, found = 0; found < 40; ++i) {
            Bytes k = b("\x01big" + std::to_string(i));
            if (state_bucket(k) != 17) continue;
            batch[k] = Bytes(100, 'x');
            ++found;
        }
        Digest root{};
        for (NodeId i = 1; i < kN; ++i) {
            peers_[i]->store->commit(batch);
            root = peers_[i]->store->take_checkpoint(kCheckpoint);
        }
        CommitBody body;
        body.output_digest[0] = 1;
        body.state_digest[0] = 2;
        body.checkpoint_root = root;
        std::vector<Bytes> cert;
        for (NodeId s : signers) {
            CommitBody mine = body;
            if (lie_in_cert && s == signers.back()) mine.checkpoint_root->at(0) ^= 1;
            cert.push_back(seal_envelope(*peers_[s]->crypto, chain_, s, kCheckpoint, Kind::Commit,
                                         encode(mine)));
        }
        for (NodeId i = 1; i < kN; ++i) peers_[i]->store->checkpoint_stable(kCheckpoint, cert);
        tuple_ = body;
    }

    struct Msg {
        NodeId from;
        std::optional<NodeId> to;
        Bytes bytes;
        Kind kind;
    };

    // Delivers every message until none is left; `tamper` may rewrite what a peer sends.
    std::optional<InstalledSnapshot> run(std::function<void(NodeId, Msg&)> tamper = nullptr) {
        std::deque<Msg> queue;
        auto take = [&](NodeId from, Step& step) {
            for (auto& m : step.messages) queue.push_back({from, m.to, m.envelope, m.kind});
            for (auto& f : step.faults) faults_.push_back(f);
            step.messages.clear();
            step.faults.clear();
        };
        Step first;
        peers_[0]->transfer->maybe_start(first, 0, 1000, now_);
        take(0, first);
        std::optional<InstalledSnapshot> done;
        for (int guard = 0; !queue.empty() && guard < 100000; ++guard) {
            Msg m = queue.front();
            queue.pop_front();
            for (NodeId to = 0; to < kN; ++to) {
                if (to == m.from || (m.to && *m.to != to)) continue;
                Msg copy = m;
                if (tamper) tamper(to, copy);
                auto env = decode_envelope(copy.bytes, Limits{});
                if (!env) continue;
                Step step;
                now_ += 1;
                if (env.value().kind == Kind::SnapshotRequest) {
                    peers_[to]->transfer->on_request(step, env.value(), now_);
                } else if (env.value().kind == Kind::SnapshotReply && to == 0) {
                    auto got = peers_[0]->transfer->on_reply(step, env.value(), 0, now_);
                    if (got) done = got;
                }
                take(to, step);
            }
        }
        return done;
    }

    std::map<Bytes, Bytes> state_of(NodeId i) const {
        std::map<Bytes, Bytes> out;
        peers_[i]->store->for_each_entry([&](ByteView k, ByteView v) {
            out.emplace(Bytes(k.begin(), k.end()), Bytes(v.begin(), v.end()));
            return true;
        });
        return out;
    }

    std::shared_ptr<const FastWorld> world_;
    Digest chain_{};
    std::vector<std::unique_ptr<Peer>> peers_;
    std::vector<Fault> faults_;
    CommitBody tuple_;
    std::uint64_t now_ = 1000;
};

TEST_F(TransferTest, an_empty_node_installs_the_checkpoint_from_its_peers) {
    make_transfers();
    serve_state(300, {1, 2, 3});
    auto done = run();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->epoch, kCheckpoint);
    EXPECT_EQ(done->tuple, tuple_);
    EXPECT_TRUE(faults_.empty());
    EXPECT_EQ(state_of(0), state_of(1));
    EXPECT_EQ(peers_[0]->store->root(), peers_[1]->store->root());
    kv::KvMachine machine(*peers_[0]->store, chain_);
    EXPECT_EQ(machine.last_applied(), kCheckpoint);
    EXPECT_EQ(machine.state_digest(), tuple_.state_digest);
    EXPECT_FALSE(peers_[0]->transfer->progress().active);
    EXPECT_GT(peers_[1]->transfer->chunks_served() + peers_[2]->transfer->chunks_served() +
                  peers_[3]->transfer->chunks_served(),
              3u);
}

TEST_F(TransferTest, buckets_larger_than_a_chunk_arrive_in_parts) {
    make_transfers(/*chunk_bytes=*/600);
    serve_state(120, {1, 2, 3});
    auto done = run();
    ASSERT_TRUE(done);
    EXPECT_EQ(state_of(0), state_of(1));
}

TEST_F(TransferTest, a_lying_source_is_blamed_and_the_transfer_completes_from_the_others) {
    make_transfers(/*chunk_bytes=*/800);
    serve_state(300, {1, 2, 3});
    // Node 3 changes one value in every chunk it sends (re-signed with its own key).
    int tampered = 0;
    auto done = run([&](NodeId, Msg& m) {
        if (m.from != 3 || m.kind != Kind::SnapshotReply) return;
        auto env = decode_envelope(m.bytes, Limits{});
        auto reply = decode_snapshot_reply(env.value().body, Limits{});
        if (reply.value().op != SnapshotOp::Chunk || reply.value().entries.empty()) return;
        reply.value().entries[0].value.push_back('!');
        m.bytes = seal_envelope(*peers_[3]->crypto, chain_, 3, env.value().epoch,
                                Kind::SnapshotReply, encode(reply.value()));
        ++tampered;
    });
    ASSERT_TRUE(done);
    EXPECT_GE(tampered, 1);
    EXPECT_GE(peers_[0]->transfer->chunks_rejected(), 1u);
    ASSERT_FALSE(faults_.empty());
    for (const auto& f : faults_) {
        EXPECT_EQ(f.culprit, 3);
        EXPECT_EQ(f.kind, FaultKind::InvalidSnapshot);
    }
    EXPECT_EQ(state_of(0), state_of(1));
}

TEST_F(TransferTest, an_offer_needs_t_plus_1_commits_on_the_manifest_root) {
    make_transfers();
    serve_state(50, {1, 2}, /*lie_in_cert=*/true);  // only one COMMIT carries the real root
    auto done = run();
    EXPECT_FALSE(done);
    ASSERT_FALSE(faults_.empty());
    EXPECT_EQ(faults_[0].kind, FaultKind::ProtocolViolation);
    EXPECT_TRUE(state_of(0).empty());
}

TEST_F(TransferTest, an_offer_whose_manifest_is_not_the_signed_root_is_refused) {
    make_transfers();
    serve_state(50, {1, 2, 3});
    auto done = run([&](NodeId, Msg& m) {
        if (m.kind != Kind::SnapshotReply) return;
        auto env = decode_envelope(m.bytes, Limits{});
        auto reply = decode_snapshot_reply(env.value().body, Limits{});
        if (reply.value().op != SnapshotOp::Offer) return;
        reply.value().manifest[40] ^= 1;  // a bucket count
        m.bytes = seal_envelope(*peers_[m.from]->crypto, chain_, m.from, env.value().epoch,
                                Kind::SnapshotReply, encode(reply.value()));
    });
    EXPECT_FALSE(done);
    EXPECT_EQ(faults_.size(), 3u);
    EXPECT_TRUE(state_of(0).empty());
}

TEST_F(TransferTest, nothing_is_offered_to_a_node_already_at_the_checkpoint) {
    make_transfers();
    serve_state(10, {1, 2, 3});
    Step step;
    SnapshotRequest offer;
    Bytes raw = seal_envelope(*peers_[0]->crypto, chain_, 0, kCheckpoint, Kind::SnapshotRequest,
                              encode(offer));
    peers_[1]->transfer->on_request(step, decode_envelope(raw, Limits{}).value(), now_);
    EXPECT_TRUE(step.messages.empty());
}

// A node cut off from its peers sees no progress and no newer epoch; when it hears of
// one (the partition heals), catch-up by proofs gets kStallMs before a snapshot is
// asked for. (It once asked at once, and its archive then had a gap below the
// installed checkpoint although every peer still held the proofs.)
TEST_F(TransferTest, the_stall_clock_starts_when_a_peer_is_first_seen_ahead) {
    make_transfers();
    auto asks = [&](Epoch delivered, Epoch peers, std::uint64_t now) {
        Step step;
        peers_[0]->transfer->maybe_start(step, delivered, peers, now);
        return !step.messages.empty();
    };
    const std::uint64_t stall = StateTransfer::kStallMs;
    const std::uint64_t heal = 1000 + 3 * stall;
    EXPECT_FALSE(asks(5, 5, 1000));              // up to date
    EXPECT_FALSE(asks(5, 6, heal - 1));          // cut off for a long time; one epoch is not behind
    EXPECT_FALSE(asks(5, 7, heal));              // heard of epoch 7: behind from now on
    EXPECT_FALSE(asks(5, 7, heal + stall - 2));  // the clock started at the last tick not behind
    EXPECT_TRUE(asks(5, 7, heal + stall));       // no progress for kStallMs while behind
    // Progress restarts the clock.
    EXPECT_FALSE(asks(6, 8, heal + 2 * stall));
    EXPECT_FALSE(asks(6, 8, heal + 3 * stall - 1));
}

TEST(SnapshotWire, messages_round_trip_and_reject_non_canonical_forms) {
    SnapshotRequest q{SnapshotOp::Chunk, Digest{}, 3, 5, b("after"), 4096};
    q.root[0] = 9;
    auto back = decode_snapshot_request(encode(q), Limits{});
    ASSERT_TRUE(back);
    EXPECT_EQ(back.value(), q);
    SnapshotReply r;
    r.op = SnapshotOp::Chunk;
    r.first_bucket = 3;
    r.last_bucket = 4;
    r.last_complete = false;
    r.entries = {{b("k"), b("v")}};
    auto rb = decode_snapshot_reply(encode(r), Limits{});
    ASSERT_TRUE(rb);
    EXPECT_EQ(rb.value(), r);
    // An offer request with chunk fields, a bucket beyond the last, trailing bytes.
    SnapshotRequest bad{SnapshotOp::Offer, Digest{}, 1, 0, {}, 0};
    EXPECT_FALSE(decode_snapshot_request(encode(bad), Limits{}));
    SnapshotRequest far{SnapshotOp::Chunk, Digest{}, 0, kStateBuckets + 1, {}, 1};
    EXPECT_FALSE(decode_snapshot_request(encode(far), Limits{}));
    Bytes trailing = encode(q);
    trailing.push_back(0);
    EXPECT_FALSE(decode_snapshot_request(trailing, Limits{}));
    SnapshotReply backwards = r;
    backwards.last_bucket = 2;
    EXPECT_FALSE(decode_snapshot_reply(encode(backwards), Limits{}));
}

TEST(HeldCheckpoint, round_trips_and_rejects_truncation) {
    HeldCheckpoint h;
    h.epoch = 64;
    h.root[1] = 3;
    h.manifest = Bytes(kManifestBytes, 5);
    h.certificate = {b("c1"), b("commit two")};
    const Bytes enc = encode_held(h);
    EXPECT_EQ(decode_held(enc), h);
    EXPECT_FALSE(decode_held(Bytes(enc.begin(), enc.end() - 1)));
}

}  // namespace
}  // namespace tob::consensus
