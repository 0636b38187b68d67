// Scripted scenarios for the Replica (docs/protocol.md): a small in-process network
// with a seeded delivery order, crash/restart from durable records, and hooks to
// drop or inject envelopes. tobsim sweeps seeds; these tests pin specific schedules.

#include "consensus/replica.h"

#include <gtest/gtest.h>

#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "consensus/block_broadcast.h"
#include "consensus/codec.h"
#include "consensus/fast_crypto.h"
#include "consensus/kv/kv_machine.h"
#include "consensus/kv/kv_storage.h"
#include "consensus/sign_log.h"

namespace tob::consensus {
namespace {

using kv::KvMachine;
using kv::MemoryKvStorage;

struct Node {
    std::unique_ptr<FastCryptoSuite> crypto;
    std::unique_ptr<MemoryKvStorage> storage;
    std::unique_ptr<KvMachine> kv;
    std::unique_ptr<Replica> replica;
    std::vector<DurableRecord> records;
    Epoch high_water = 0;
    std::vector<std::pair<Epoch, Digest>> log;  // (epoch, state digest)
    // (client, nonce) -> RequestResult::request_digest of every committed result
    std::vector<std::pair<std::pair<PublicKey, Nonce>, Digest>> result_digests;
    std::map<Slot, Digest> signed_slots;
    bool up = true;
    std::vector<Fault> faults;
    std::vector<std::string> alarms;
    std::uint64_t aba_signed = 0;  // agreement bundles signed (sign-log records)
};

struct Msg {
    NodeId from, to;
    Bytes bytes;
    std::uint64_t at = 0;  // delivery time (ms)
};

class Net {
  public:
    Net(std::uint32_t n, std::uint64_t seed, std::function<void(ReplicaConfig&)> tweak = nullptr)
        : n_(n), rng_(seed), tweak_(std::move(tweak)) {
        world_ = FastWorld::make(n, max_faulty(n), seed);
        chain_.fill(7);
        for (NodeId i = 0; i < n; ++i) {
            nodes_.emplace_back();
            start(i, /*fresh=*/true);
        }
    }

    ReplicaConfig config(NodeId i) const {
        ReplicaConfig c;
        c.n = n_;
        c.t = max_faulty(n_);
        c.self = i;
        c.chain_id = chain_;
        if (tweak_) tweak_(c);
        return c;
    }

    void start(NodeId i, bool fresh) {
        Node& nd = nodes_[i];
        nd.crypto = std::make_unique<FastCryptoSuite>(world_, i);
        if (fresh || !nd.storage) nd.storage = std::make_unique<MemoryKvStorage>();
        nd.kv = std::make_unique<KvMachine>(*nd.storage, chain_, config(i).limits);
        nd.replica = std::make_unique<Replica>(config(i), *nd.crypto, *nd.kv);
        nd.up = true;
        if (!fresh || nd.high_water > 0) {
            Recovery r{nd.records, nd.high_water, true};
            execute(i, nd.replica->recover(r, now_));
        }
    }

    void crash(NodeId i) {
        nodes_[i].up = false;
        nodes_[i].replica.reset();
    }
    void restart(NodeId i) { start(i, false); }
    /// Data directory lost, key directory (high-water mark) intact.
    void reformat(NodeId i) {
        crash(i);
        nodes_[i].records.clear();
        nodes_[i].storage.reset();
        start(i, true);
    }

    /// The data directory (records and KV store) as it is now, for restore().
    struct Backup {
        std::vector<DurableRecord> records;
        MemoryKvStorage storage;
    };
    Backup backup(NodeId i) const { return {nodes_[i].records, *nodes_[i].storage}; }
    /// Crash, then restart from an older copy of the data directory; the key
    /// directory (the high-water mark) keeps its newer value.
    void restore(NodeId i, const Backup& b) {
        crash(i);
        nodes_[i].records = b.records;
        *nodes_[i].storage = b.storage;
        start(i, false);
    }

    Request request(std::uint64_t client, Nonce nonce, const std::string& key,
                    const std::string& value) {
        Request r;
        r.chain_id = chain_;
        r.client.fill(0);
        for (int b = 0; b < 8; ++b) r.client[b] = static_cast<std::uint8_t>(client >> (8 * b));
        r.nonce = nonce;
        r.expires = 10'000;
        Op op;
        op.type = OpType::Put;
        op.key.assign(key.begin(), key.end());
        op.value.assign(value.begin(), value.end());
        r.ops.push_back(op);
        r.sig =
            FastCryptoSuite::sign_client(*world_, r.client, kRequestTag, request_sign_payload(r));
        return r;
    }

    void submit(NodeId i, const Request& r) {
        if (nodes_[i].up) execute(i, nodes_[i].replica->handle_request(r, now_));
    }

    /// The next step for which `when` is true is torn: the process dies inside it.
    /// The state machine's writes (MemoryKvStorage) are kept, as the daemon's KV
    /// commit is durable on its own; none of the step's records reach the disk
    /// and none of its messages leave.
    void tear_step(std::function<bool(NodeId, const Step&)> when) { tear_ = std::move(when); }

    void execute(NodeId i, Step&& step) {
        Node& nd = nodes_[i];
        if (tear_ && tear_(i, step)) {
            tear_ = nullptr;
            crash(i);
            return;
        }
        for (auto& rec : step.persist) {
            if (rec.type == DurableRecord::Type::HighWater) {
                nd.high_water = std::max(nd.high_water, rec.epoch);
            }
            if (rec.type == DurableRecord::Type::Signed) {
                check_slot(i, rec.bytes);
                auto env = decode_envelope(rec.bytes, Limits{});
                if (env && env.value().kind == Kind::Aba) ++nd.aba_signed;
            }
            nd.records.push_back(rec);
        }
        for (auto& m : step.messages) {
            if (m.to) {
                queue_.push_back({i, *m.to, m.envelope});
            } else {
                for (NodeId j = 0; j < n_; ++j) {
                    if (j != i) queue_.push_back({i, j, m.envelope});
                }
            }
        }
        for (auto& c : step.committed) {
            nd.log.push_back({c.epoch, c.state_digest});
            for (const auto& r : c.results)
                nd.result_digests.push_back({{r.client, r.nonce}, r.request_digest});
        }
        for (auto& f : step.faults) nd.faults.push_back(f);
        for (auto& a : step.alarms) nd.alarms.push_back(a);
    }

    /// I5: a node never signs two payloads for one slot (across restarts too). The
    /// slots are the sign-log's (slots_of, pinned by sign_log_test).
    void check_slot(NodeId i, const Bytes& raw) {
        auto env = decode_envelope(raw, Limits{});
        ASSERT_TRUE(env);
        auto claims = slots_of(env.value(), Limits{});
        ASSERT_TRUE(claims);
        for (const auto& c : *claims) {
            auto [it, fresh] = nodes_[i].signed_slots.try_emplace(c.slot, c.payload);
            if (!fresh && it->second != c.payload) {
                ADD_FAILURE() << "node " << i << " signed two payloads for a "
                              << to_string(c.slot.kind) << " slot of epoch " << c.slot.epoch
                              << " round " << c.slot.round;
            }
        }
    }

    /// Delivers messages with a seeded random latency of 1..20 ms each (so they
    /// are reordered), with ticks every 10 ms, until `done` or the time bound.
    /// `filter` returns false to drop a message.
    bool run(const std::function<bool()>& done, std::uint64_t max_ms = 60000,
             const std::function<bool(const Msg&)>& filter = nullptr) {
        std::uint64_t next_tick = now_;
        while (now_ < max_ms) {
            if (done()) return true;
            schedule();
            auto first = pending_.begin();
            if (first != pending_.end() && first->first.first <= next_tick && batch_ms_ > 0) {
                now_ = std::max(now_, first->first.first);
                deliver_burst(first->first.first + batch_ms_, filter);
            } else if (first != pending_.end() && first->first.first <= next_tick) {
                now_ = std::max(now_, first->first.first);
                Msg m = std::move(first->second);
                pending_.erase(first);
                deliver(m, filter);
            } else {
                now_ = std::max(now_, next_tick);
            }
            if (now_ >= next_tick) {
                for (NodeId i = 0; i < n_; ++i) {
                    if (nodes_[i].up) execute(i, nodes_[i].replica->tick(now_));
                }
                next_tick = now_ + 10;
            }
        }
        return done();
    }

    /// What deliver() hands the core as Precomputed (Replica::handle_envelope):
    /// nothing, what the daemon's workers compute (digests and the decoded body),
    /// or a request list one entry short (which the core must ignore).
    enum class Pre { None, Exact, WrongCount };
    void set_precomputed(Pre p) { pre_ = p; }

    void deliver(const Msg& m, const std::function<bool(const Msg&)>& filter) {
        if (filter && !filter(m)) return;
        Node& nd = nodes_[m.to];
        if (!nd.up) return;
        Digest body_digest{};
        auto env = open_envelope(m.bytes, *nd.crypto, config(m.to), m.from, &body_digest);
        if (!env) {
            ++rejected_;
            return;
        }
        RequestDigests rds;
        std::optional<Block> block;  // the decoded body, as the daemon's workers hand it over
        std::optional<RequestBatch> batch;
        if (pre_ != Pre::None) {
            std::vector<Request> reqs;
            if (env.value().kind == Kind::Block) {
                if (auto b = decode_block(env.value().body, Limits{})) {
                    reqs = b.value().requests;
                    block = std::move(b.value());
                }
            } else if (env.value().kind == Kind::Requests) {
                if (auto b = decode_request_batch(env.value().body, Limits{})) {
                    reqs = b.value().requests;
                    batch = std::move(b.value());
                }
            }
            for (const auto& r : reqs) rds.push_back(request_digest(r));
            // One short, so that the rest are misaligned: used anyway, they would
            // name the wrong requests.
            if (pre_ == Pre::WrongCount && !rds.empty()) rds.erase(rds.begin());
        }
        const Precomputed pre{pre_ == Pre::None ? nullptr : &body_digest,
                              pre_ == Pre::None ? nullptr : &rds, block ? &*block : nullptr,
                              batch ? &*batch : nullptr};
        execute(m.to, nd.replica->handle_envelope(env.value(), now_, pre));
    }

    /// Batched delivery (set_batch_ms): every message due before `until` reaches its
    /// node in one batch (Replica::begin_batch / end_batch), as the daemon hands
    /// over the results of one pass of its event loop.
    void set_batch_ms(std::uint64_t ms) { batch_ms_ = ms; }
    void deliver_burst(std::uint64_t until, const std::function<bool(const Msg&)>& filter) {
        std::map<NodeId, std::vector<Msg>> burst;
        while (!pending_.empty() && pending_.begin()->first.first <= until) {
            Msg m = std::move(pending_.begin()->second);
            pending_.erase(pending_.begin());
            burst[m.to].push_back(std::move(m));
        }
        now_ = std::max(now_, until);
        for (auto& [to, msgs] : burst) {
            Node& nd = nodes_[to];
            if (!nd.up) continue;
            Step step;
            nd.replica->begin_batch();
            for (const Msg& m : msgs) {
                if (filter && !filter(m)) continue;
                auto env = open_envelope(m.bytes, *nd.crypto, config(to), m.from);
                if (!env) {
                    ++rejected_;
                    continue;
                }
                step.append(nd.replica->handle_envelope(env.value(), now_));
            }
            step.append(nd.replica->end_batch());
            execute(to, std::move(step));
        }
    }

    void inject(NodeId from, NodeId to, Bytes bytes) {
        queue_.push_back({from, to, std::move(bytes)});
    }

    /// Moves newly sent messages into the timed queue with a random latency.
    void schedule() {
        for (auto& m : queue_) {
            m.at = now_ + std::uniform_int_distribution<std::uint64_t>(1, 20)(rng_);
            pending_.emplace(std::make_pair(m.at, seq_++), std::move(m));
        }
        queue_.clear();
    }

    /// Runs until every live node has delivered the same epoch and nothing is in flight.
    bool settle(std::uint64_t extra_ms = 20000) {
        return run(
            [&] {
                if (!queue_.empty() || !pending_.empty()) return false;
                std::optional<Epoch> d;
                for (auto& nd : nodes_) {
                    if (!nd.up) continue;
                    if (d && *d != nd.replica->delivered()) return false;
                    d = nd.replica->delivered();
                }
                return true;
            },
            now_ + extra_ms);
    }

    bool all_committed(const std::vector<Request>& reqs, const std::vector<NodeId>& who) {
        for (NodeId i : who) {
            if (!nodes_[i].up) return false;
            for (auto& r : reqs) {
                if (!nodes_[i].kv->committed(r.client, r.nonce)) return false;
            }
        }
        return true;
    }

    void expect_agreement() {
        for (NodeId i = 0; i < n_; ++i) {
            EXPECT_TRUE(nodes_[i].alarms.empty()) << "node " << i << ": " << nodes_[i].alarms[0];
            for (NodeId j = i + 1; j < n_; ++j) {
                auto& a = nodes_[i].log;
                auto& b = nodes_[j].log;
                std::map<Epoch, Digest> ma(a.begin(), a.end());
                for (auto& [e, d] : b) {
                    auto it = ma.find(e);
                    if (it != ma.end()) {
                        EXPECT_EQ(it->second, d) << "nodes " << i << "," << j << " epoch " << e;
                    }
                }
            }
        }
    }

    void expect_no_honest_blamed(const std::set<NodeId>& byzantine) {
        for (NodeId i = 0; i < n_; ++i) {
            if (byzantine.count(i)) continue;
            for (auto& f : nodes_[i].faults) {
                EXPECT_TRUE(byzantine.count(f.culprit))
                    << "node " << i << " blamed honest node " << f.culprit << ": " << f.detail;
            }
        }
    }

    void dump() {
        for (NodeId i = 0; i < n_; ++i) {
            if (!nodes_[i].up) continue;
            auto& st = nodes_[i].replica->stats();
            std::printf(
                "node %u delivered=%llu joined=%llu pool=%zu faults=%llu rounds=%llu/%llu "
                "halted=%d\n",
                i, static_cast<unsigned long long>(st.delivered),
                static_cast<unsigned long long>(st.highest_joined), st.pool,
                static_cast<unsigned long long>(st.faults),
                static_cast<unsigned long long>(st.aba_rounds_total),
                static_cast<unsigned long long>(st.aba_instances), st.halted);
            for (auto& f : nodes_[i].faults)
                std::printf("  fault by %u: %s\n", f.culprit, f.detail.c_str());
        }
    }
    Node& node(NodeId i) { return nodes_[i]; }
    const Digest& chain() const { return chain_; }
    const FastWorld& world() const { return *world_; }
    std::uint64_t now() const { return now_; }
    std::uint64_t rejected() const { return rejected_; }
    std::vector<Msg>& queue() { return queue_; }

  private:
    std::uint32_t n_;
    std::mt19937_64 rng_;
    std::function<void(ReplicaConfig&)> tweak_;
    std::function<bool(NodeId, const Step&)> tear_;
    std::shared_ptr<const FastWorld> world_;
    Digest chain_{};
    std::vector<Node> nodes_;
    std::vector<Msg> queue_;                                          // sent, not yet scheduled
    std::map<std::pair<std::uint64_t, std::uint64_t>, Msg> pending_;  // (time, seq) -> message
    std::uint64_t seq_ = 0;
    std::uint64_t now_ = 0;
    std::uint64_t rejected_ = 0;
    std::uint64_t batch_ms_ = 0;  // 0: one message per input
    Pre pre_ = Pre::None;
};

/// The epochs of the blocks this step signed, in the order they were signed.
std::vector<Epoch> signed_block_epochs(const Step& step) {
    std::vector<Epoch> out;
    for (const auto& rec : step.persist) {
        if (rec.type != DurableRecord::Type::Signed) continue;
        auto env = decode_envelope(rec.bytes, Limits{});
        if (env && env.value().kind == Kind::Block) out.push_back(env.value().epoch);
    }
    return out;
}

std::vector<NodeId> all_nodes(std::uint32_t n) {
    std::vector<NodeId> v;
    for (NodeId i = 0; i < n; ++i) v.push_back(i);
    return v;
}

TEST(Replica, commits_requests_and_agrees) {
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
        Net net(4, seed);
        std::vector<Request> reqs;
        for (int k = 0; k < 20; ++k) {
            reqs.push_back(net.request(k % 3, k, "k" + std::to_string(k), "v"));
            net.submit(k % 4, reqs.back());
        }
        ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(4)); }))
            << "seed " << seed;
        ASSERT_TRUE(net.settle());
        net.expect_agreement();
        net.expect_no_honest_blamed({});
        for (NodeId i = 1; i < 4; ++i) {
            EXPECT_EQ(net.node(i).kv->state_digest(), net.node(0).kv->state_digest());
        }
    }
}

// Submits 12 requests (keys prefix0..prefix11) round-robin to the 4 nodes; returns
// each one's digest_of(encode(r)) by (client, nonce).
std::map<std::pair<PublicKey, Nonce>, Digest> submit_twelve(Net& net, const std::string& prefix,
                                                            std::vector<Request>& reqs) {
    std::map<std::pair<PublicKey, Nonce>, Digest> expected;
    for (int k = 0; k < 12; ++k) {
        reqs.push_back(net.request(k % 3, k, prefix + std::to_string(k), "v"));
        expected[{reqs.back().client, reqs.back().nonce}] = digest_of(encode(reqs.back()));
        net.submit(k % 4, reqs.back());
    }
    return expected;
}

TEST(Replica, committed_results_name_each_request_by_its_own_digest) {
    // The digests on_block computed ride along to the apply (they are not
    // recomputed there): each result must still carry digest_of(encode(request)),
    // the digest a client matches its reply against.
    Net net(4, 7);
    std::vector<Request> reqs;
    const auto expected = submit_twelve(net, "d", reqs);
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(4)); }));
    for (NodeId i = 0; i < 4; ++i) {
        const auto& got = net.node(i).result_digests;
        EXPECT_EQ(got.size(), expected.size()) << "node " << i;
        for (const auto& [id, d] : got) EXPECT_EQ(d, expected.at(id)) << "node " << i;
    }
}

TEST(Replica, precomputed_digests_are_used_only_when_they_match_the_requests) {
    // The daemon hands the core the digests its workers computed; a list of
    // another length than the block's requests is ignored (the core hashes).
    for (const auto mode : {Net::Pre::Exact, Net::Pre::WrongCount}) {
        Net net(4, 11);
        net.set_precomputed(mode);
        std::vector<Request> reqs;
        const auto expected = submit_twelve(net, "p", reqs);
        ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(4)); }));
        ASSERT_TRUE(net.settle());
        net.expect_agreement();
        net.expect_no_honest_blamed({});
        for (NodeId i = 0; i < 4; ++i) {
            for (const auto& [id, d] : net.node(i).result_digests) EXPECT_EQ(d, expected.at(id));
        }
    }
}

TEST(Replica, n7_commits_with_two_crashed_nodes) {
    Net net(7, 3);
    net.crash(5);
    net.crash(6);
    std::vector<Request> reqs;
    for (int k = 0; k < 10; ++k) {
        reqs.push_back(net.request(1, k, "k" + std::to_string(k), "v"));
        net.submit(k % 5, reqs.back());
    }
    bool ok = net.run([&] { return net.all_committed(reqs, {0, 1, 2, 3, 4}); });
    if (!ok) net.dump();
    ASSERT_TRUE(ok);
    net.expect_agreement();
}

// The proposer's block is its vote (docs/protocol.md, "Certify"): no member
// signs a SEEN for its own block. With one member down every certificate needs
// the votes of all three others, the proposer's included, so the requests commit
// only if the block counts as that vote.
TEST(Replica, a_proposer_signs_no_seen_for_its_own_block_and_its_block_is_its_vote) {
    Net net(4, 61);
    net.crash(3);
    std::vector<Request> reqs;
    for (int k = 0; k < 6; ++k) {
        reqs.push_back(net.request(1, k, "k" + std::to_string(k), "v"));
        net.submit(k % 3, reqs.back());
    }
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, {0, 1, 2}); }));
    net.expect_agreement();
    net.expect_no_honest_blamed({});
    std::size_t seens = 0;
    for (NodeId i = 0; i < 3; ++i) {
        for (const auto& rec : net.node(i).records) {
            if (rec.type != DurableRecord::Type::Signed) continue;
            auto env = decode_envelope(rec.bytes, Limits{});
            if (!env || env.value().kind != Kind::Seen) continue;
            auto sb = decode_seen(env.value().body, Limits{});
            ASSERT_TRUE(sb);
            EXPECT_NE(sb.value().proposer, i) << "node " << i << " SEENed its own block";
            ++seens;
        }
    }
    EXPECT_GT(seens, 0u);
}

// A SEEN that arrives on its sender's own connection is counted without a
// check of its signature (consensus/messages.h, verified_on_use), so a
// certificate a node forms may hold a bad one: member 3 sends every SEEN with a
// broken signature. Every certificate an honest node sends (re-published: the
// COMMITs are dropped, so no epoch becomes stable) must still verify: the bad
// vote is left out (BlockBroadcast::servable_cert).
TEST(Replica, a_certificate_leaves_a_node_only_with_signatures_that_verify) {
    Net net(4, 67);
    std::vector<Request> reqs;
    for (int k = 0; k < 6; ++k) {
        reqs.push_back(net.request(1, k, "k" + std::to_string(k), "v"));
        net.submit(k % 3, reqs.back());
    }
    BroadcastParams bp;
    bp.chain_id = net.chain();
    BlockBroadcast checker(bp, *net.node(0).crypto);
    std::size_t certs_sent = 0, bad_seens = 0;
    auto filter = [&](const Msg& m) {
        auto env = decode_envelope(m.bytes, Limits{});
        if (!env) return true;
        if (env.value().kind == Kind::Commit) return false;
        if (m.from == 3 && env.value().kind == Kind::Seen && env.value().sig[0] != 0xee) {
            Envelope broken = env.value();
            broken.sig[0] = 0xee;  // a signature that does not verify
            net.inject(3, m.to, encode(broken));
            ++bad_seens;
            return false;
        }
        if (m.from != 3 && env.value().kind == Kind::Cert) {
            ++certs_sent;
            auto c = decode_certificate(env.value().body, Limits{});
            EXPECT_TRUE(c && checker.cert_valid(c.value()))
                << "node " << m.from << " sent a certificate that does not verify";
        }
        return true;
    };
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(3)); }, 60000, filter));
    const std::uint64_t until = net.now() + 3000;
    net.run([] { return false; }, until, filter);
    EXPECT_GT(bad_seens, 0u);
    EXPECT_GT(certs_sent, 0u) << "no certificate was re-published: the test shows nothing";
    net.expect_agreement();
}

// The same for COMMITs (consensus/messages.h, verified_on_use): member 3 signs
// every COMMIT badly, member 2 is down while the others commit and then catches
// up through commit proofs. Every COMMIT inside a proof an honest node sends
// verifies, and member 2 catches up.
TEST(Replica, a_commit_proof_leaves_a_node_only_with_signatures_that_verify) {
    Net net(4, 71);
    net.crash(2);
    std::vector<Request> reqs;
    for (int k = 0; k < 8; ++k) {
        reqs.push_back(net.request(1, k, "c" + std::to_string(k), "v"));
        net.submit(k % 2, reqs.back());
    }
    std::size_t proofs_sent = 0, bad_commits = 0;
    auto filter = [&](const Msg& m) {
        auto env = decode_envelope(m.bytes, Limits{});
        if (!env) return true;
        if (m.from == 3 && env.value().kind == Kind::Commit && env.value().sig[0] != 0xee) {
            Envelope broken = env.value();
            broken.sig[0] = 0xee;
            net.inject(3, m.to, encode(broken));
            ++bad_commits;
            return false;
        }
        if (m.from != 3 && env.value().kind == Kind::FetchReply) {
            auto reply = decode_fetch_reply(env.value().body, Limits{});
            if (!reply) return true;
            bool any = false;
            for (const auto& inner : reply.value().envelopes) {
                auto opened = decode_envelope(inner, Limits{});
                if (!opened || opened.value().kind != Kind::Commit) continue;
                any = true;
                EXPECT_TRUE(
                    open_envelope(inner, *net.node(m.to).crypto, net.config(m.to), kNoChannel))
                    << "node " << m.from << " served a COMMIT of node " << opened.value().sender
                    << " that does not verify";
            }
            proofs_sent += any;
        }
        return true;
    };
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, {0, 1, 3}); }, 60000, filter));
    net.restart(2);
    const bool ok =
        net.run([&] { return net.all_committed(reqs, {2}); }, net.now() + 30000, filter);
    if (!ok) net.dump();
    ASSERT_TRUE(ok);
    EXPECT_GT(bad_commits, 0u);
    EXPECT_GT(proofs_sent, 0u) << "member 2 caught up without a proof: the test shows nothing";
    net.expect_agreement();
}

TEST(Replica, applied_epoch_with_lost_agreement_messages_is_finished_after_restart) {
    // tobsim crash-stop seed 179. n = 4 with node 3 down for good: every agreement
    // needs the AUX of each of nodes 0, 1 and 2. Node 2 dies inside the step in
    // which it sends its AUX of epoch 1's last agreement, decides it and applies
    // the epoch: the state machine's write is durable, but the step's AUX, TERM and
    // COMMIT never leave and are not in its sign-log. After the restart node 2 has
    // delivered epoch 1; nodes 0 and 1 still wait for its AUX, and no COMMIT of
    // epoch 1 exists for them to catch up with. Node 2 must take part in epoch 1's
    // agreements again. The filter below makes the tear likely, not certain: seeds
    // on which it does not happen are skipped, and six must reproduce it.
    int reproduced = 0;
    for (std::uint64_t seed = 1; seed <= 40 && reproduced < 6; ++seed) {
        Net net(4, seed);
        net.crash(3);
        // Node 2 gets node 1's BVALs for proposer 3 only after the AUXes of nodes 0
        // and 1 in that round: its own AUX then leaves in the step that decides.
        std::map<Round, std::set<NodeId>> aux_at_2;
        auto filter = [&](const Msg& m) {
            if (m.to != 2) return true;
            auto env = decode_envelope(m.bytes, Limits{});
            if (!env || env.value().kind != Kind::Aba || env.value().epoch != 1) return true;
            auto bundle = decode_aba_bundle(env.value().body, Limits{});
            if (!bundle) return true;
            std::set<Round> bval;
            std::set<Round> aux;
            for (const auto& a : bundle.value().messages) {
                if (a.proposer != 3) continue;
                if (a.type == AbaType::Bval) bval.insert(a.round);
                if (a.type == AbaType::Aux) aux.insert(a.round);
            }
            if (m.from == 1) {
                for (Round r : bval) {
                    if (!aux.count(r) && aux_at_2[r].size() < 2) return false;
                }
            }
            for (Round r : aux) aux_at_2[r].insert(m.from);
            return true;
        };
        bool torn = false;
        bool aux_lost = false;
        bool peers_behind = false;
        net.tear_step([&](NodeId i, const Step& step) {
            if (i != 2 || step.committed.empty() || step.committed.front().epoch != 1) {
                return false;
            }
            torn = true;
            for (const auto& m : step.messages) {
                auto env = decode_envelope(m.envelope, Limits{});
                if (!env || env.value().kind != Kind::Aba) continue;
                auto bundle = decode_aba_bundle(env.value().body, Limits{});
                for (const auto& a : bundle.value().messages) {
                    aux_lost |= a.type == AbaType::Aux && a.proposer == 3;
                }
            }
            peers_behind =
                net.node(0).replica->delivered() == 0 && net.node(1).replica->delivered() == 0;
            return true;
        });
        Request req = net.request(1, 1, "k", "v");
        net.submit(0, req);
        if (!net.run([&] { return torn; }, 10000, filter) || !aux_lost || !peers_behind) continue;
        ++reproduced;
        ASSERT_EQ(net.node(2).kv->last_applied(), 1u) << "seed " << seed;
        net.restart(2);
        ASSERT_EQ(net.node(2).replica->delivered(), 1u) << "seed " << seed;
        bool ok = net.run([&] { return net.all_committed({req}, {0, 1, 2}); }, 30000);
        if (!ok) net.dump();
        EXPECT_TRUE(ok) << "seed " << seed;
        net.expect_agreement();
    }
    EXPECT_EQ(reproduced, 6);
}

TEST(Replica, stall_report_names_a_joined_epochs_undecided_agreements) {
    // describe_pending() is what tobd logs when no epoch is applied for a while.
    Net net(7, 5);
    net.crash(5);
    net.crash(6);
    EXPECT_EQ(net.node(0).replica->describe_pending(), "");
    Request req = net.request(1, 1, "k", "v");
    net.submit(0, req);
    ASSERT_TRUE(net.run([&] { return net.node(0).replica->stats().highest_joined >= 1; }));
    const std::string pending = net.node(0).replica->describe_pending();
    EXPECT_NE(pending.find("epoch 1:"), std::string::npos) << pending;
    // Node 0 holds its own block; nobody's agreement has decided yet.
    EXPECT_NE(pending.find("p0[B"), std::string::npos) << pending;
    EXPECT_NE(pending.find("aba5: r0"), std::string::npos) << pending;
    ASSERT_TRUE(net.run([&] { return net.all_committed({req}, {0, 1, 2, 3, 4}); }));
    ASSERT_TRUE(net.settle());
    for (NodeId i = 0; i < 5; ++i) EXPECT_EQ(net.node(i).replica->describe_pending(), "") << i;
}

TEST(Replica, epoch_gap_joins_every_earlier_epoch) {
    // A node that sees a block for epoch 3 first joins epochs 1, 2 and 3 in order.
    Net net(4, 11);
    // Node 1 proposes epochs 1..3 (only its own block traffic is let through to node 0 first).
    std::vector<Request> reqs;
    for (int k = 0; k < 3; ++k) {
        reqs.push_back(net.request(2, k, "g" + std::to_string(k), "v"));
        net.submit(1, reqs.back());
    }
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(4)); }));
    for (NodeId i = 0; i < 4; ++i) {
        // Delivered epochs are contiguous from 1.
        Epoch expect = 1;
        for (auto& [e, d] : net.node(i).log) EXPECT_EQ(e, expect++);
    }
    net.expect_agreement();
}

TEST(Replica, forged_copy_arriving_first_does_not_silence_honest_node) {
    Net net(4, 5);
    auto r = net.request(1, 1, "x", "y");
    net.submit(1, r);
    // Capture node 1's first block and put a forged copy (flipped signature) in front.
    auto has_block = [&] {
        for (auto& m : net.queue()) {
            auto env = decode_envelope(m.bytes, Limits{});
            if (env && env.value().kind == Kind::Block) return true;
        }
        return false;
    };
    ASSERT_TRUE(net.run(has_block, 1000));
    std::vector<Msg> forged;
    for (auto& m : net.queue()) {
        auto env = decode_envelope(m.bytes, Limits{});
        if (env && env.value().kind == Kind::Block) {
            Envelope f = env.value();
            f.sig[0] ^= 1;
            forged.push_back({m.from, m.to, encode(f)});
        }
    }
    for (auto& f : forged) net.inject(f.from, f.to, f.bytes);
    ASSERT_TRUE(net.run([&] { return net.all_committed({r}, all_nodes(4)); }));
    ASSERT_FALSE(forged.empty());
    EXPECT_GE(net.rejected(), forged.size());
    net.expect_no_honest_blamed({});
}

TEST(Replica, lost_certificate_flood_is_repaired) {
    Net net(4, 21);
    std::vector<Request> reqs;
    for (int k = 0; k < 5; ++k) {
        reqs.push_back(net.request(3, k, "c" + std::to_string(k), "v"));
        net.submit(k % 4, reqs.back());
    }
    // For the first 2 s every CERT and every SEEN towards node 0 is lost.
    auto filter = [&](const Msg& m) {
        if (net.now() > 2000 || m.to != 0) return true;
        auto env = decode_envelope(m.bytes, Limits{});
        return !(env && (env.value().kind == Kind::Cert || env.value().kind == Kind::Seen));
    };
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(4)); }, 60000, filter));
    net.expect_agreement();
}

// Certificates a node forms from the SEENs it received are not broadcast at once
// (every member receives the same SEENs); Repair re-publishes them for a member
// that missed SEENs. Node 3 never receives a SEEN and still commits everything,
// from re-published certificates; in the same run the members send far fewer
// certificates than the one broadcast per node and certificate of before.
TEST(Replica, a_member_without_seens_commits_from_republished_certificates) {
    Net net(4, 23);
    std::vector<Request> reqs;
    for (int k = 0; k < 8; ++k) {
        reqs.push_back(net.request(4, k, "s" + std::to_string(k), "v"));
        net.submit(k % 3, reqs.back());
    }
    std::uint64_t certs_sent = 0;
    auto filter = [&](const Msg& m) {
        auto env = decode_envelope(m.bytes, Limits{});
        if (env && env.value().kind == Kind::Cert) ++certs_sent;
        return !(m.to == 3 && env && env.value().kind == Kind::Seen);
    };
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(4)); }, 60000, filter));
    net.expect_agreement();
    net.expect_no_honest_blamed({});
    const std::uint64_t epochs = net.node(3).replica->delivered();
    ASSERT_GT(epochs, 0u);
    // Fewer than one copy of each certificate per receiver (4 certificates x 3
    // receivers per epoch); a broadcast by every node that formed it sent 46 here.
    EXPECT_LT(certs_sent, epochs * 4 * 3);
}

// Blocks are not relayed (docs/protocol.md, "Flood"): a block envelope travels
// only from its proposer, and a member that never receives one from it pulls it
// from the certificate's signers. Node 3 loses every Block envelope sent to it;
// it commits everything from fetched blocks, and only fetch replies carry peers'
// blocks to anyone. Node 0 loses only node 1's blocks, so they reach it by fetch
// while the others reach it directly.
TEST(Replica, blocks_are_not_relayed_and_a_member_that_lost_them_pulls_them) {
    Net net(4, 29);
    std::vector<Request> reqs;
    for (int k = 0; k < 12; ++k) {
        reqs.push_back(net.request(5, k, "p" + std::to_string(k), "v"));
        net.submit(k % 4, reqs.back());
    }
    std::uint64_t blocks_sent = 0, relayed = 0, fetch_replies_to_lossy = 0;
    auto filter = [&](const Msg& m) {
        auto env = decode_envelope(m.bytes, Limits{});
        if (!env) return true;
        if (env.value().kind == Kind::FetchReply && (m.to == 3 || m.to == 0))
            ++fetch_replies_to_lossy;
        if (env.value().kind != Kind::Block) return true;
        ++blocks_sent;
        if (env.value().sender != m.from) ++relayed;
        if (m.to == 3) return false;
        return !(m.to == 0 && env.value().sender == 1);
    };
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(4)); }, 60000, filter));
    net.expect_agreement();
    net.expect_no_honest_blamed({});
    ASSERT_GT(blocks_sent, 0u);
    EXPECT_EQ(relayed, 0u) << "a member sent on a block it did not propose";
    EXPECT_GT(fetch_replies_to_lossy, 0u);
    EXPECT_EQ(net.node(3).kv->state_digest(), net.node(1).kv->state_digest());
}

TEST(Replica, crash_restart_never_signs_conflicting_payloads) {
    Net net(4, 8);
    std::vector<Request> reqs;
    for (int k = 0; k < 30; ++k) {
        reqs.push_back(net.request(k % 2, k, "r" + std::to_string(k), "v"));
    }
    for (int k = 0; k < 15; ++k) net.submit(k % 4, reqs[k]);
    net.run([&] { return net.now() > 150; });
    net.crash(2);
    for (int k = 15; k < 30; ++k) net.submit(k % 2, reqs[k]);
    net.run([&] { return net.now() > 400; });
    net.restart(2);
    bool ok = net.run([&] { return net.all_committed(reqs, all_nodes(4)); });
    if (!ok) net.dump();
    ASSERT_TRUE(ok);
    ASSERT_TRUE(net.settle());
    net.expect_agreement();
    EXPECT_EQ(net.node(2).kv->state_digest(), net.node(0).kv->state_digest());
}

TEST(Replica, equivocating_proposer_and_reformatted_node) {
    // Node 3 is Byzantine: for epoch 1 it sends one block to nodes 0,1 and another
    // to node 2. Node 2 then loses its data directory (key dir intact) and must
    // catch up, signing only above its high-water mark.
    Net net(4, 13);
    auto ra = net.request(7, 1, "a", "1");
    auto rb = net.request(8, 1, "b", "2");
    auto seal = [&](const Block& b) {
        return seal_envelope(*net.node(3).crypto, net.chain(), 3, b.epoch, Kind::Block, encode(b));
    };
    net.crash(3);  // its honest replica is not running; we script it
    Block b1{1, 3, {ra}};
    Block b2{1, 3, {rb}};
    net.inject(3, 0, seal(b1));
    net.inject(3, 1, seal(b1));
    net.inject(3, 2, seal(b2));
    std::vector<Request> reqs;
    for (int k = 0; k < 10; ++k) {
        reqs.push_back(net.request(9, k, "e" + std::to_string(k), "v"));
        net.submit(k % 3, reqs.back());
    }
    // Both of node 3's requests commit too, and the cluster goes idle
    // before node 2 loses its data: an epoch that node 2 signed in and that is
    // still open cannot finish without it once it may not sign there, while node
    // 3 is silent too (two faulty nodes of four for that epoch). Reformatting
    // under load depended on the schedule (it passed while single messages could
    // pull nodes into epochs).
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, {0, 1, 2}); }));
    // Which of node 3's two blocks each node met first depends on the schedule,
    // and the second brings nothing into the pool (issue 11, finding 7): if every
    // node met b2 first, a's request is in no pool. Its client, unanswered,
    // submits again to an honest node, as a client does.
    net.submit(0, ra);
    net.submit(1, rb);
    ASSERT_TRUE(net.run([&] { return net.all_committed({ra, rb}, {0, 1, 2}); }));
    ASSERT_TRUE(net.settle());
    Epoch mark = net.node(2).high_water;
    ASSERT_GT(mark, 0u);
    net.reformat(2);
    std::vector<Request> more;
    for (int k = 10; k < 20; ++k) {
        more.push_back(net.request(9, k, "e" + std::to_string(k), "v"));
        net.submit(k % 2, more.back());
    }
    ASSERT_TRUE(net.run([&] { return net.all_committed(more, {0, 1, 2}); }));
    // After the reformat, node 2 signed nothing at or below its old mark.
    for (auto& rec : net.node(2).records) {
        if (rec.type == DurableRecord::Type::Signed) {
            auto env = decode_envelope(rec.bytes, Limits{});
            EXPECT_GT(env.value().epoch, mark);
        }
    }
    net.expect_agreement();
    net.expect_no_honest_blamed({3});
    // Equivocation was detected and blamed on node 3 by someone who saw both blocks
    // (only if both reached one node; not required for safety).
    ASSERT_TRUE(net.settle());
    EXPECT_EQ(net.node(2).kv->state_digest(), net.node(0).kv->state_digest());
}

// Issue 11, finding 8: node 2's data directory is restored from a backup taken
// 150 ms in, under load, while its key directory keeps the newer high-water mark.
// It must never sign a second payload for a slot it filled after the backup (the
// I5 check in Net::execute spans restarts) and the cluster keeps committing.
TEST(Replica, restored_backup_never_signs_below_the_mark) {
    Net net(4, 17);
    std::vector<Request> reqs;
    for (int k = 0; k < 40; ++k)
        reqs.push_back(net.request(k % 3, k, "b" + std::to_string(k), "v"));
    for (int k = 0; k < 10; ++k) net.submit(k % 4, reqs[k]);
    net.run([&] { return net.now() > 150; });
    const auto old = net.backup(2);
    for (int k = 10; k < 25; ++k) net.submit(k % 4, reqs[k]);
    net.run([&] { return net.now() > 600; });
    const Epoch mark = net.node(2).high_water;
    Epoch backup_top = 0;
    for (const auto& r : old.records) {
        if (r.type == DurableRecord::Type::Signed) backup_top = std::max(backup_top, r.epoch);
    }
    ASSERT_GT(backup_top, 0u);
    ASSERT_LT(backup_top, mark);  // the backup really is older than the mark
    net.restore(2, old);
    for (int k = 25; k < 40; ++k) net.submit(k % 4, reqs[k]);
    bool ok = net.run([&] { return net.all_committed(reqs, all_nodes(4)); });
    if (!ok) net.dump();
    ASSERT_TRUE(ok);
    net.expect_agreement();
}

// Issue 11, finding 1: a batch of N invalid requests was N faults, each holding a
// copy of the whole envelope (quadratic in the batch).
TEST(Replica, batch_of_invalid_requests_is_one_fault_with_one_copy_of_the_envelope) {
    Net net(4, 23);
    RequestBatch batch;
    for (int k = 0; k < 300; ++k) {
        Request r = net.request(5, k, "f" + std::to_string(k), std::string(200, 'x'));
        r.chain_id[0] ^= 1;  // foreign chain: refused before any signature check
        batch.requests.push_back(r);
    }
    const Bytes raw =
        seal_envelope(*net.node(3).crypto, net.chain(), 3, 0, Kind::Requests, encode(batch));
    auto env = open_envelope(raw, *net.node(0).crypto, net.config(0), 3);
    ASSERT_TRUE(env);
    Step step = net.node(0).replica->handle_envelope(env.value(), 0);
    ASSERT_EQ(step.faults.size(), 1u);
    EXPECT_EQ(step.faults[0].culprit, 3);
    std::size_t evidence = 0;
    for (const auto& f : step.faults) {
        for (const auto& e : f.evidence) evidence += e.size();
    }
    EXPECT_LE(evidence, raw.size());
    EXPECT_NE(step.faults[0].detail.find("300"), std::string::npos) << step.faults[0].detail;
    EXPECT_EQ(net.node(0).replica->stats().faults, 1u);
}

TEST(Step, faults_and_their_evidence_are_bounded_per_step) {
    Step step;
    const Bytes big(256u << 10, 0xab);  // 100 faults x 512 KiB = 50 MiB offered
    for (int k = 0; k < 100; ++k) step.fault(1, FaultKind::Malformed, "bad", {big, big});
    EXPECT_EQ(step.faults.size(), kStepFaultsMax);
    EXPECT_EQ(step.faults_dropped, 100u - kStepFaultsMax);
    std::size_t evidence = 0;
    for (const auto& f : step.faults) {
        for (const auto& e : f.evidence) evidence += e.size();
    }
    EXPECT_LE(evidence, kStepEvidenceBytesMax);
    EXPECT_GT(evidence, 0u);
    // Appending respects the same bounds.
    Step other;
    other.fault(2, FaultKind::Malformed, "more", {big});
    step.append(std::move(other));
    EXPECT_EQ(step.faults.size(), kStepFaultsMax);
    EXPECT_EQ(step.faults_dropped, 101u - kStepFaultsMax);
}

// Issue 11, finding 6: one member's SEEN, agreement message or empty block for
// epoch delivered + W made every honest node join and run every epoch up to it.
TEST(Replica, one_members_messages_for_a_far_epoch_do_not_make_a_node_join) {
    Net net(4, 29);
    const Epoch far = net.config(0).window;
    auto seal = [&](NodeId from, Kind kind, const Bytes& body) {
        Bytes raw = seal_envelope(*net.node(from).crypto, net.chain(), from, far, kind, body);
        return open_envelope(raw, *net.node(0).crypto, net.config(0), from).value();
    };
    Digest d{};
    d.fill(0x5e);
    Replica& r0 = *net.node(0).replica;
    std::vector<Envelope> lies{
        seal(3, Kind::Seen, encode(SeenBody{1, d})),
        seal(3, Kind::Aba, encode(AbaBundle{{AbaMessage{1, 0, AbaType::Bval, 1, {}}}})),
        seal(3, Kind::Block, encode(Block{far, 3, {}})),
    };
    for (const auto& env : lies) {
        Step step = r0.handle_envelope(env, 5);
        for (const auto& rec : step.persist) {
            EXPECT_NE(rec.type, DurableRecord::Type::Signed)
                << "signed in epoch " << rec.epoch << " on one member's word";
        }
    }
    EXPECT_EQ(r0.stats().highest_joined, 0u);
    // A second member (t + 1 = 2) in that epoch: at least one honest node is there.
    Step step = r0.handle_envelope(seal(2, Kind::Seen, encode(SeenBody{1, d})), 6);
    EXPECT_EQ(r0.stats().highest_joined, far);
    const auto signed_blocks = signed_block_epochs(step);
    const std::set<Epoch> proposed(signed_blocks.begin(), signed_blocks.end());
    EXPECT_EQ(proposed.size(), far);  // every epoch up to it, in order
    // Having joined, it SEENs the block it accepted earlier from member 3.
    bool seen_3 = false;
    for (const auto& rec : step.persist) {
        auto env = decode_envelope(rec.bytes, Limits{});
        if (rec.type != DurableRecord::Type::Signed || !env) continue;
        if (env.value().kind != Kind::Seen || env.value().epoch != far) continue;
        seen_3 |= decode_seen(env.value().body, Limits{}).value().proposer == 3;
    }
    EXPECT_TRUE(seen_3);
}

TEST(Replica, idle_cluster_runs_no_epochs_for_one_liar) {
    Net net(4, 31);
    net.crash(3);  // scripted: it only lies
    const Epoch far = net.config(0).window;
    Digest d{};
    d.fill(0x5e);
    for (NodeId to = 0; to < 3; ++to) {
        net.inject(3, to,
                   seal_envelope(*net.node(3).crypto, net.chain(), 3, far, Kind::Seen,
                                 encode(SeenBody{0, d})));
    }
    net.run([&] { return net.now() > 3000; });
    for (NodeId i = 0; i < 3; ++i) {
        EXPECT_EQ(net.node(i).replica->delivered(), 0u) << "node " << i << " ran empty epochs";
    }
    // Real work still commits afterwards.
    auto r = net.request(1, 1, "k", "v");
    net.submit(0, r);
    ASSERT_TRUE(net.run([&] { return net.all_committed({r}, {0, 1, 2}); }, 20000));
    net.expect_agreement();
}

// A request in another node's block is not work while that block's epoch runs
// here (no empty epochs at low load), but one member's block for an epoch nobody
// joined must not hold a client's request back: it would wait for that epoch forever.
TEST(Replica, a_liars_block_for_an_unjoined_epoch_does_not_hold_a_request_back) {
    Net net(4, 41);
    net.crash(3);  // scripted: it only lies
    const Epoch far = net.config(0).window;
    auto r = net.request(1, 1, "k", "v");
    for (NodeId to = 0; to < 3; ++to) {
        net.inject(3, to,
                   seal_envelope(*net.node(3).crypto, net.chain(), 3, far, Kind::Block,
                                 encode(Block{far, 3, {r}})));
    }
    net.run([&] { return net.now() > 100; });
    net.submit(0, r);
    ASSERT_TRUE(net.run([&] { return net.all_committed({r}, {0, 1, 2}); }, 20000));
    net.expect_agreement();
}

// Issue 11, finding 7: the requests of an equivocating block entered the pool
// before the equivocation was noticed.
TEST(Replica, requests_of_an_equivocating_block_stay_out_of_the_pool) {
    Net net(4, 37);
    auto seal = [&](const Block& b) {
        Bytes raw =
            seal_envelope(*net.node(3).crypto, net.chain(), 3, b.epoch, Kind::Block, encode(b));
        return open_envelope(raw, *net.node(0).crypto, net.config(0), 3).value();
    };
    Replica& r0 = *net.node(0).replica;
    Step first = r0.handle_envelope(seal(Block{1, 3, {net.request(1, 1, "a", "1")}}), 1);
    EXPECT_EQ(r0.stats().pool, 1u);
    Step second = r0.handle_envelope(seal(Block{1, 3, {net.request(2, 1, "b", "2")}}), 2);
    ASSERT_EQ(second.faults.size(), 1u);
    EXPECT_EQ(second.faults[0].kind, FaultKind::Equivocation);
    EXPECT_EQ(r0.stats().pool, 1u) << "the second block's request entered the pool";
}

// Issue 11, finding 5: with full blocks an epoch's proof is larger than one
// message; it was never sent, and a node that missed that epoch never caught up.
TEST(Replica, node_behind_catches_up_through_proofs_larger_than_a_message) {
    auto small = [](ReplicaConfig& c) {
        c.limits.message_bytes_max = 48u << 10;
        c.limits.block_bytes_max = 30u << 10;
        c.limits.request_bytes_max = 12u << 10;
    };
    Net net(4, 41, small);
    net.crash(3);
    std::vector<Request> reqs;
    for (int k = 0; k < 18; ++k) {
        reqs.push_back(net.request(k % 3, k, "p" + std::to_string(k), std::string(10000, 'x')));
        net.submit(k % 3, reqs.back());
    }
    ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, {0, 1, 2}); }));
    ASSERT_TRUE(net.settle());
    net.restart(3);
    bool ok = net.run([&] { return net.all_committed(reqs, {3}); }, net.now() + 20000);
    if (!ok) net.dump();
    ASSERT_TRUE(ok);
    ASSERT_TRUE(net.settle());
    net.expect_agreement();
    EXPECT_EQ(net.node(3).kv->state_digest(), net.node(0).kv->state_digest());
}

// Issue 11, finding 11: a damaged dedup entry aborted the node. Now the node
// keeps running as a non-voting follower (it signs no COMMIT from then on) and
// the others go on.
TEST(Replica, damaged_kv_entry_makes_a_non_voting_follower) {
    Net net(4, 57);
    std::vector<Request> first;
    for (int k = 0; k < 4; ++k) {
        first.push_back(net.request(1, k + 1, "a" + std::to_string(k), "x"));
        net.submit(0, first.back());
    }
    ASSERT_TRUE(net.run([&] { return net.all_committed(first, all_nodes(4)); }));
    ASSERT_TRUE(net.settle());
    net.crash(3);
    kv::KvBatch damage;
    for (const auto& [key, value] : net.node(3).storage->data()) {
        if (key.size() > 11 && std::equal(key.begin(), key.begin() + 11, "\x00tob/dedup/")) {
            damage[key] = Bytes(value.begin(), value.begin() + 5);
        }
    }
    ASSERT_FALSE(damage.empty());
    net.node(3).storage->commit(damage);
    net.restart(3);
    const Epoch restarted_at = net.node(3).kv->last_applied();
    std::vector<Request> second;
    for (int k = 0; k < 4; ++k) {
        second.push_back(net.request(1, k + 10, "b" + std::to_string(k), "y"));
        net.submit(k % 3, second.back());
    }
    int later_commits_by_3 = 0;  // COMMITs node 3 signs for epochs after the damage
    auto count = [&](const Msg& m) {
        auto env = decode_envelope(m.bytes, Limits{});
        if (env && env.value().sender == 3 && env.value().kind == Kind::Commit &&
            env.value().epoch > restarted_at) {
            ++later_commits_by_3;
        }
        return true;
    };
    ASSERT_TRUE(net.run(
        [&] {
            return net.all_committed(second, {0, 1, 2});
        },
        net.now() + 60000, count));
    net.run([&] { return net.node(3).kv->last_applied() > restarted_at + 2; }, net.now() + 5000,
            count);
    EXPECT_TRUE(net.node(3).up);
    ASSERT_TRUE(net.node(3).kv->damage());
    EXPECT_FALSE(net.node(3).replica->stats().voting);
    EXPECT_GT(net.node(3).kv->last_applied(), restarted_at);  // it still follows
    EXPECT_EQ(later_commits_by_3, 0);
}

}  // namespace
}  // namespace tob::consensus

namespace tob::consensus {
namespace {

std::vector<Outgoing> blocks_out(const Step& step) {
    std::vector<Outgoing> out;
    for (const auto& m : step.messages)
        if (m.kind == Kind::Block) out.push_back(m);
    return out;
}

// Repair re-publishes what a node signed while its epoch is not stable. Its own
// block (up to block_bytes_max) goes again only to the members whose SEEN for it
// has not arrived: the others hold it. Before this, every re-publication went to
// every member, and with blocks of megabytes and epochs slower than the backoff
// the copies stopped a cluster (docs/attacks.md, pool_flood).
TEST(Replica, a_republished_block_goes_only_to_members_that_have_not_seen_it) {
    Net net(4, 43);
    Replica& r0 = *net.node(0).replica;
    Step first = r0.handle_request(net.request(1, 1, "k", "v"), 0);
    std::optional<Envelope> own;
    Bytes own_raw;
    std::uint64_t t = 0;
    for (; t <= 200 && !own; t += 10) {
        Step s = t == 0 ? std::move(first) : r0.tick(t);
        for (const auto& m : blocks_out(s)) {
            own = decode_envelope(m.envelope, Limits{}).value();
            own_raw = m.envelope;
        }
    }
    ASSERT_TRUE(own) << "node 0 proposed no block";
    const Epoch e = own->epoch;
    // Nobody has SEEN it yet: the re-publication goes to everyone (one broadcast).
    std::vector<Outgoing> again;
    for (t += 10; t <= 2000 && again.empty(); t += 10) again = blocks_out(r0.tick(t));
    ASSERT_EQ(again.size(), 1u);
    EXPECT_FALSE(again[0].to.has_value());
    EXPECT_EQ(again[0].envelope, own_raw);
    // Members 1 and 2 SEEN it: the next re-publication goes to member 3 only.
    const Digest d = digest_of(own->body);
    auto seen = [&](NodeId from) {
        Bytes raw = seal_envelope(*net.node(from).crypto, net.chain(), from, e, Kind::Seen,
                                  encode(SeenBody{0, d}));
        return open_envelope(raw, *net.node(0).crypto, net.config(0), from).value();
    };
    (void)r0.handle_envelope(seen(1), t);
    (void)r0.handle_envelope(seen(2), t);
    again.clear();
    for (t += 10; t <= 10000 && again.empty(); t += 10) again = blocks_out(r0.tick(t));
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].to, std::optional<NodeId>(3));
    // Member 3 too: nothing more to repair with the block.
    (void)r0.handle_envelope(seen(3), t);
    std::size_t later = 0;
    for (t += 10; t <= 30000; t += 10) later += blocks_out(r0.tick(t)).size();
    EXPECT_EQ(later, 0u);
}

// Blocks of `step` signed by `proposer` (not relays of other members' blocks).
std::vector<Envelope> own_blocks(const Step& step, NodeId proposer) {
    std::vector<Envelope> out;
    for (const auto& m : blocks_out(step)) {
        auto env = decode_envelope(m.envelope, Limits{});
        if (env && env.value().sender == proposer) out.push_back(env.value());
    }
    return out;
}

// A member joins an epoch once it has heard from t + 1 members there, and on
// joining SEENs every block it holds for it. When the block that completes the
// t + 1 is the one being handled, that SEEN is already out: handling the block
// must not sign and send it a second time (each copy cost a sign-log record, a
// signature and a message to every peer; tobsim traces showed one per epoch).
TEST(Replica, a_block_that_makes_its_receiver_join_is_seen_once) {
    Net net(4, 53);
    const auto b0 =
        own_blocks(net.node(0).replica->handle_request(net.request(1, 1, "a", "v"), 1000), 0);
    const auto b1 =
        own_blocks(net.node(1).replica->handle_request(net.request(2, 1, "b", "v"), 1000), 1);
    ASSERT_EQ(b0.size(), 1u);
    ASSERT_EQ(b1.size(), 1u);
    Replica& r2 = *net.node(2).replica;
    const Step first = r2.handle_envelope(b0[0], 1001);   // one speaker: not joined yet
    const Step second = r2.handle_envelope(b1[0], 1002);  // t + 1 = 2 speakers: joins
    auto seens_of = [](const Step& step, NodeId proposer) {
        int count = 0;
        for (const auto& m : step.messages) {
            auto env = decode_envelope(m.envelope, Limits{});
            if (!env || env.value().kind != Kind::Seen) continue;
            auto sb = decode_seen(env.value().body, Limits{});
            if (sb && sb.value().proposer == proposer) ++count;
        }
        return count;
    };
    EXPECT_EQ(seens_of(first, 0), 0) << "SEEN before joining the epoch";
    EXPECT_EQ(seens_of(second, 0), 1);
    EXPECT_EQ(seens_of(second, 1), 1);
}

// Cutting blocks (request_pool.h, "Work and the block timer"): a request that
// finds its node idle is proposed in the same step, not after block_timer_ms;
// while the node's block is in flight, further requests wait for that epoch (or a
// full block), so that they batch.
TEST(Replica, an_idle_node_proposes_a_lone_request_at_once_and_batches_while_busy) {
    Net net(4, 51);
    Replica& r0 = *net.node(0).replica;
    const Step first = r0.handle_request(net.request(1, 1, "a", "v"), 1000);
    const auto mine = own_blocks(first, 0);
    ASSERT_EQ(mine.size(), 1u) << "an idle node waited for its block timer";
    EXPECT_EQ(mine[0].epoch, 1u);
    // Its epoch-1 block is in flight: the next request waits.
    const Step second = r0.handle_request(net.request(2, 1, "b", "v"), 1001);
    EXPECT_TRUE(own_blocks(second, 0).empty());
    EXPECT_TRUE(own_blocks(r0.tick(1002), 0).empty());
    // Nor does the block timer (20 ms) cut it while the first is in flight.
    std::vector<Envelope> later;
    for (std::uint64_t t = 1003; t <= 1100 && later.empty(); ++t) later = own_blocks(r0.tick(t), 0);
    EXPECT_TRUE(later.empty()) << "a block cut for epoch " << later[0].epoch;
}

// Member 0's envelope of `kind` for epoch e, as node `to` opens it.
Envelope from_member0(Net& net, Kind kind, Epoch e, const Bytes& body, NodeId to) {
    Bytes raw = seal_envelope(*net.node(0).crypto, net.chain(), 0, e, kind, body);
    return open_envelope(raw, *net.node(to).crypto, net.config(to), 0).value();
}

// An idle node that already holds work (a request flooded by a peer) joins the
// next epoch as soon as a peer's block for it arrives; a node without work does
// not join for one member's block, nor for the requests that block carries (the
// join rule: one member alone must not pull honest nodes into epochs).
TEST(Replica, a_peers_block_brings_an_idle_node_with_work_into_the_epoch_but_not_one_without) {
    Net net(4, 52);
    const Request req = net.request(1, 1, "k", "v");
    auto sealed = [&](Kind kind, Epoch e, const Bytes& body, NodeId to) {
        return from_member0(net, kind, e, body, to);
    };
    const Bytes block = encode(Block{1, 0, {req}});
    const Bytes flood = encode(RequestBatch{{req}});
    // Node 1 learnt the request by flood first: it joins epoch 1 on the block.
    Replica& r1 = *net.node(1).replica;
    EXPECT_TRUE(
        own_blocks(r1.handle_envelope(sealed(Kind::Requests, 0, flood, 1), 1000), 1).empty());
    const auto joined = own_blocks(r1.handle_envelope(sealed(Kind::Block, 1, block, 1), 1001), 1);
    ASSERT_EQ(joined.size(), 1u) << "node 1 waited for its block timer";
    EXPECT_EQ(joined[0].epoch, 1u);
    // Node 2 gets only the block: it holds the block's request now, but that is no
    // reason to join; nothing of its own goes out for epoch 1 in that step.
    Replica& r2 = *net.node(2).replica;
    const Step s2 = r2.handle_envelope(sealed(Kind::Block, 1, block, 2), 1001);
    EXPECT_TRUE(own_blocks(s2, 2).empty());
    for (const auto& m : s2.messages) EXPECT_NE(m.kind, Kind::Seen);
    EXPECT_EQ(r2.stats().highest_joined, 0u);
}

// The same with the flood second: the block and the flood of the requester race
// to every peer, and where the block won the node joined only when its block
// timer ran out (about a third of the requests at low load took a block timer
// longer). A flood whose requests the pool does not take (here: none valid)
// brings no one in, nor does a flood without a peer's block for the next epoch.
TEST(Replica, a_flood_after_a_peers_block_brings_an_idle_node_into_the_epoch_at_once) {
    Net net(4, 53);
    const Request req = net.request(1, 1, "k", "v");
    auto sealed = [&](Kind kind, Epoch e, const Bytes& body, NodeId to) {
        return from_member0(net, kind, e, body, to);
    };
    const Bytes block = encode(Block{1, 0, {req}});
    const Bytes flood = encode(RequestBatch{{req}});
    Request forged = net.request(2, 1, "k", "w");
    forged.sig[0] ^= 1;
    const Bytes bad_flood = encode(RequestBatch{{forged}});

    Replica& r3 = *net.node(3).replica;
    EXPECT_TRUE(own_blocks(r3.handle_envelope(sealed(Kind::Block, 1, block, 3), 1000), 3).empty());
    EXPECT_TRUE(
        own_blocks(r3.handle_envelope(sealed(Kind::Requests, 0, bad_flood, 3), 1001), 3).empty());
    EXPECT_EQ(r3.stats().highest_joined, 0u);
    const auto joined =
        own_blocks(r3.handle_envelope(sealed(Kind::Requests, 0, flood, 3), 1002), 3);
    ASSERT_EQ(joined.size(), 1u) << "node 3 waited for its block timer";
    EXPECT_EQ(joined[0].epoch, 1u);
    EXPECT_EQ(r3.stats().highest_joined, 1u);
    // A second copy of the flood changes nothing: the node is in the epoch.
    EXPECT_TRUE(
        own_blocks(r3.handle_envelope(sealed(Kind::Requests, 0, flood, 3), 1003), 3).empty());

    // No peer's block for epoch 1: the flood alone is no reason to join now (the
    // requester's block may be waiting for an epoch in flight).
    Replica& r2 = *net.node(2).replica;
    EXPECT_TRUE(
        own_blocks(r2.handle_envelope(sealed(Kind::Requests, 0, flood, 2), 1002), 2).empty());
    EXPECT_EQ(r2.stats().highest_joined, 0u);
}

}  // namespace
}  // namespace tob::consensus

namespace tob::consensus {
namespace {

// The daemon hands the core all verified envelopes of one loop pass at once, inside
// begin_batch / end_batch: the agreement messages of the whole pass leave as one
// bundle per epoch. Same outcome (commits, agreement, one payload per slot, checked
// by check_slot on every signed record), fewer signatures per epoch.
TEST(Replica, batched_inputs_commit_the_same_with_fewer_agreement_signatures) {
    double per_epoch_single = 0, per_epoch_batched = 0;
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        for (bool batched : {false, true}) {
            Net net(4, seed);
            if (batched) net.set_batch_ms(5);
            std::vector<Request> reqs;
            for (int k = 0; k < 12; ++k) {
                reqs.push_back(net.request(k % 3, k, "k" + std::to_string(k), "v"));
                net.submit(k % 4, reqs.back());
            }
            ASSERT_TRUE(net.run([&] { return net.all_committed(reqs, all_nodes(4)); }))
                << "seed " << seed << " batched " << batched;
            ASSERT_TRUE(net.settle());
            net.expect_agreement();
            net.expect_no_honest_blamed({});
            std::uint64_t signed_bundles = 0;
            for (NodeId i = 0; i < 4; ++i) signed_bundles += net.node(i).aba_signed;
            const double epochs = static_cast<double>(net.node(0).replica->delivered());
            ASSERT_GT(epochs, 0);
            (batched ? per_epoch_batched : per_epoch_single) += signed_bundles / epochs;
        }
    }
    std::cout << "[ replica stats ] agreement bundles signed per epoch (4 nodes, mean of 3 "
                 "seeds): one input at a time "
              << per_epoch_single / 3 << ", batched " << per_epoch_batched / 3 << "\n";
    EXPECT_LT(per_epoch_batched, per_epoch_single * 0.8);
}

// Pipelining only for full blocks (docs/decisions.md): while an epoch this node
// joined is undelivered, neither new work nor the block timer cuts its next
// block; a full block still goes at once, into the next epoch of the window.
TEST(Replica, the_block_timer_waits_for_the_epoch_in_flight_but_a_full_block_does_not) {
    Net net(4, 43, [](ReplicaConfig& c) { c.limits.block_requests_max = 3; });
    Replica& r0 = *net.node(0).replica;
    const auto timer = net.config(0).block_timer_ms;
    // Idle: the request is proposed at once, in epoch 1.
    EXPECT_EQ(signed_block_epochs(r0.handle_request(net.request(1, 1, "a", "v"), 0)),
              std::vector<Epoch>{1});
    // Epoch 1 is in flight (nothing is delivered: no messages are exchanged), so
    // new work waits however long the timer has run.
    (void)r0.handle_request(net.request(2, 1, "b", "v"), timer + 1);
    EXPECT_TRUE(signed_block_epochs(r0.tick(timer + 1 + 10 * timer)).empty())
        << "the timer cut a second block while the first one's epoch was in flight";
    EXPECT_EQ(r0.stats().highest_joined, 1u);
    // A block's worth of proposable requests is cut at once, into epoch 2.
    std::vector<Epoch> cut;
    for (std::uint64_t c = 3; c <= 4; ++c) {
        auto got = signed_block_epochs(r0.handle_request(net.request(c, 1, "c", "v"), 20 * timer));
        cut.insert(cut.end(), got.begin(), got.end());
    }
    auto got = signed_block_epochs(r0.tick(20 * timer + 1));
    cut.insert(cut.end(), got.begin(), got.end());
    EXPECT_EQ(cut, std::vector<Epoch>{2});
}

// Agreement messages carry no signature (consensus/messages.h): open_envelope
// takes one only from its sender's connection, and a signed fetch reply vouches
// only for its own signer's bundles. Shown with the t+1 BVAL relay rule: node 0
// relays BVAL(0) for proposer 3 once two members sent BVAL(0), and not when the
// second one comes inside a fetch reply signed by another member.
TEST(Replica, agreement_messages_count_only_from_their_senders_connection) {
    auto relays_bval0 = [](const Step& step) {
        for (const auto& m : step.messages) {
            if (m.kind != Kind::Aba) continue;
            const auto env = decode_envelope(m.envelope, Limits{}).value();
            const auto bundle = decode_aba_bundle(env.body, Limits{}).value();
            for (const auto& a : bundle.messages)
                if (a.proposer == 3 && a.type == AbaType::Bval && a.value == 0) return true;
        }
        return false;
    };
    for (const bool vouched : {false, true}) {
        Net net(4, 61);
        Replica& r0 = *net.node(0).replica;
        (void)r0.handle_request(net.request(1, 1, "k", "v"), 1000);
        (void)r0.tick(1100);  // the block timer: node 0 joins epoch 1
        ASSERT_EQ(r0.stats().highest_joined, 1u);
        const Bytes bval = encode(AbaBundle{{AbaMessage{3, 0, AbaType::Bval, 0, {}}}});
        auto bundle_of = [&](NodeId from) {
            return seal_envelope(*net.node(from).crypto, net.chain(), from, 1, Kind::Aba, bval);
        };
        const Bytes raw1 = bundle_of(1);
        EXPECT_EQ(decode_envelope(raw1, Limits{}).value().sig, Signature{}) << "not signed";
        auto open = [&](const Bytes& raw, NodeId channel) {
            return open_envelope(raw, *net.node(0).crypto, net.config(0), channel);
        };
        EXPECT_TRUE(is_channel_refusal(open(raw1, 2).error()));
        EXPECT_TRUE(is_channel_refusal(open(raw1, kNoChannel).error()));
        EXPECT_FALSE(relays_bval0(r0.handle_envelope(open(raw1, 1).value(), 1101)));

        const NodeId signer = vouched ? 2 : 1;
        FetchReply reply;
        reply.envelopes.push_back(bundle_of(2));
        const Bytes fr = seal_envelope(*net.node(signer).crypto, net.chain(), signer, 1,
                                       Kind::FetchReply, encode(reply));
        EXPECT_EQ(relays_bval0(r0.handle_envelope(open(fr, signer).value(), 1102)), vouched)
            << (vouched ? "node 2's own reply carries its bundle"
                        : "node 1 passed off node 2's bundle");
    }
}

// A decision's TERM alone does not cost a step of its own (a synced write and a
// frame to every peer): it waits for the next step that signs anything or for the
// next tick (flush_aba). Node 0 decides ABA(1, 3) on the AUX quorum of its input
// that carries nothing else to sign; the TERM leaves with the tick after it.
TEST(Replica, a_terms_alone_leave_with_the_next_signed_step_or_tick) {
    auto sent = [](const Step& step, AbaType type) {
        for (const auto& m : step.messages) {
            if (m.kind != Kind::Aba) continue;
            const auto env = decode_envelope(m.envelope, Limits{}).value();
            const auto bundle = decode_aba_bundle(env.body, Limits{}).value();
            for (const auto& a : bundle.messages)
                if (a.proposer == 3 && a.type == type && a.value == 1) return true;
        }
        return false;
    };
    Net net(4, 62);
    Replica& r0 = *net.node(0).replica;
    (void)r0.handle_request(net.request(1, 1, "k", "v"), 1000);
    (void)r0.tick(1100);  // the block timer: node 0 joins epoch 1
    ASSERT_EQ(r0.stats().highest_joined, 1u);
    auto from = [&](NodeId sender, AbaType type) {
        const Bytes raw = seal_envelope(*net.node(sender).crypto, net.chain(), sender, 1, Kind::Aba,
                                        encode(AbaBundle{{AbaMessage{3, 0, type, 1, {}}}}));
        return open_envelope(raw, *net.node(0).crypto, net.config(0), sender).value();
    };
    EXPECT_FALSE(sent(r0.handle_envelope(from(1, AbaType::Bval), 1101), AbaType::Bval));
    // t+1 BVAL(1): relayed; with its own, 2t+1: AUX(1) in the same step.
    const Step relay = r0.handle_envelope(from(2, AbaType::Bval), 1102);
    EXPECT_TRUE(sent(relay, AbaType::Bval));
    EXPECT_TRUE(sent(relay, AbaType::Aux));
    EXPECT_FALSE(sent(r0.handle_envelope(from(1, AbaType::Aux), 1103), AbaType::Term));
    // n - t AUX(1) with the fixed coin 1 of round 0: decided, the TERM held.
    const Step decided = r0.handle_envelope(from(2, AbaType::Aux), 1104);
    EXPECT_FALSE(sent(decided, AbaType::Term));
    EXPECT_TRUE(decided.persist.empty()) << "nothing signed, nothing written";
    EXPECT_NE(r0.describe_pending().find("aba3=1"), std::string::npos) << r0.describe_pending();
    // The next tick sends it.
    EXPECT_TRUE(sent(r0.tick(1105), AbaType::Term));
}

}  // namespace
}  // namespace tob::consensus
