// CatchUp (consensus/catch_up.h): COMMIT thresholds (t+1 provable, q stable),
// conflicts, fetching proofs, checking them, answering from memory and from the
// archive, hints, the heartbeat and the memory bound.

#include "consensus/catch_up.h"

#include <gtest/gtest.h>

#include "consensus/codec.h"
#include "consensus/fast_crypto.h"

namespace tob::consensus {
namespace {

constexpr std::uint32_t kN = 4, kT = 1, kQ = 3;

/// An archive over a fixed list of records (what a shell keeps).
class RecordsArchive final : public ProofArchive {
  public:
    std::optional<ArchivedProof> proof(Epoch e) const override {
        ++asked;
        return proof_from_records(records, e, kT + 1, Limits{});
    }
    std::vector<DurableRecord> records;
    mutable int asked = 0;
};

class CatchUpTest : public ::testing::Test {
  protected:
    CatchUpTest() : world_(FastWorld::make(kN, kT, 21)) {
        chain_.fill(6);
        for (NodeId i = 0; i < kN; ++i) suites_.emplace_back(world_, i);
        params_.n = kN;
        params_.t = kT;
        params_.self = 0;
        params_.chain_id = chain_;
        params_.stable_quorum = kQ;
        params_.window = 4;
        params_.proof_history_epochs = 8;
    }

    static CommitBody body(std::uint8_t tag) {
        CommitBody b;
        b.output_digest.fill(tag);
        b.state_digest.fill(static_cast<std::uint8_t>(tag + 1));
        return b;
    }
    std::pair<Envelope, Bytes> commit(NodeId from, Epoch e, const CommitBody& b) const {
        Bytes raw = seal_envelope(suites_[from], chain_, from, e, Kind::Commit, encode(b));
        return {decode_envelope(raw, Limits{}).value(), raw};
    }
    /// This node applied e with result b and signed its COMMIT.
    void own(CatchUp& cu, Step& step, Epoch e, const CommitBody& b, Epoch delivered,
             std::uint64_t now = 0) {
        cu.keep_proof(step, e, {block(e, 1).second}, delivered);
        ASSERT_TRUE(cu.own_result(step, e, b));
        step.durable(DurableRecord::Type::Signed, e, commit(0, e, b).second);  // the sign-log's
        cu.signed_commit(e, commit(0, e, b).second, now);
    }
    bool peer(CatchUp& cu, Step& step, NodeId from, Epoch e, const CommitBody& b, Epoch delivered,
              std::uint64_t now = 0) {
        auto c = commit(from, e, b);
        return cu.on_commit(step, c.first, c.second, b, delivered, now);
    }
    std::pair<Envelope, Bytes> block(Epoch e, NodeId j) const {
        Bytes raw = seal_envelope(suites_[j], chain_, j, e, Kind::Block, encode(Block{e, j, {}}));
        return {decode_envelope(raw, Limits{}).value(), raw};
    }

    std::shared_ptr<const FastWorld> world_;
    std::vector<FastCryptoSuite> suites_;
    Digest chain_{};
    CatchUpParams params_;
};

TEST_F(CatchUpTest, q_matching_commits_make_an_epoch_stable_and_t_plus_one_do_not) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    own(cu, step, 5, body(1), 5);
    EXPECT_FALSE(cu.stable(5));
    EXPECT_TRUE(peer(cu, step, 1, 5, body(1), 5));  // t + 1 = 2: provable, not stable
    EXPECT_FALSE(cu.stable(5));
    EXPECT_TRUE(peer(cu, step, 2, 5, body(1), 5));  // q = 3
    EXPECT_TRUE(cu.stable(5));
    EXPECT_TRUE(step.alarms.empty());
    // Peers' COMMITs are made durable (to serve proofs later); ours is a Signed record.
    std::size_t commit_records = 0;
    for (const auto& r : step.persist) commit_records += r.type == DurableRecord::Type::Commit;
    EXPECT_EQ(commit_records, 2u);
}

TEST_F(CatchUpTest, provable_tuple_unlike_ours_raises_an_alarm) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    own(cu, step, 5, body(1), 5);
    peer(cu, step, 1, 5, body(9), 5);
    EXPECT_TRUE(step.alarms.empty());  // one liar proves nothing
    peer(cu, step, 2, 5, body(9), 5);
    ASSERT_EQ(step.alarms.size(), 1u);
    EXPECT_NE(step.alarms[0].find("differ from this node's result"), std::string::npos);
}

TEST_F(CatchUpTest, own_result_that_contradicts_an_earlier_commit_is_an_alarm) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    cu.restore_own_commit(5, body(1), commit(0, 5, body(1)).second);
    EXPECT_FALSE(cu.own_result(step, 5, body(2)));
    ASSERT_EQ(step.alarms.size(), 1u);
    EXPECT_NE(step.alarms[0].find("nondeterminism"), std::string::npos);
}

TEST_F(CatchUpTest, two_commits_from_one_member_are_equivocation) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    EXPECT_TRUE(peer(cu, step, 3, 5, body(1), 4));
    EXPECT_FALSE(peer(cu, step, 3, 5, body(2), 4));
    EXPECT_FALSE(peer(cu, step, 3, 5, body(1), 4));  // a plain duplicate is no fault
    ASSERT_EQ(step.faults.size(), 1u);
    EXPECT_EQ(step.faults[0].culprit, 3);
    EXPECT_EQ(step.faults[0].kind, FaultKind::Equivocation);
    EXPECT_EQ(step.faults[0].evidence.size(), 2u);
}

TEST_F(CatchUpTest, node_behind_asks_peers_in_turn_for_the_next_epoch) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    peer(cu, step, 1, 9, body(1), 4);
    peer(cu, step, 2, 9, body(1), 4);
    Step fetch;
    cu.maybe_fetch(fetch, 4, /*own_progress=*/false, 1000);
    ASSERT_EQ(fetch.messages.size(), 1u);
    const Outgoing first = fetch.messages[0];
    EXPECT_EQ(first.kind, Kind::FetchRequest);
    auto env = decode_envelope(first.envelope, Limits{}).value();
    EXPECT_EQ(env.epoch, 5u);  // delivered + 1
    EXPECT_EQ(decode_fetch_request(env.body, Limits{}).value().type, FetchType::EpochProof);
    Step too_soon;
    cu.maybe_fetch(too_soon, 4, false, 1000 + params_.repair_initial_ms - 1);
    EXPECT_TRUE(too_soon.messages.empty());
    Step later;
    cu.maybe_fetch(later, 4, false, 1000 + params_.repair_initial_ms);
    ASSERT_EQ(later.messages.size(), 1u);
    EXPECT_NE(later.messages[0].to, first.to);  // rotated: one silent peer cannot stall it
}

TEST_F(CatchUpTest, one_epoch_behind_own_agreement_gets_a_head_start) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    peer(cu, step, 1, 5, body(1), 4);
    Step wait;
    cu.maybe_fetch(wait, 4, /*own_progress=*/true, 1000);
    EXPECT_TRUE(wait.messages.empty());
    cu.maybe_fetch(wait, 4, true, 1000 + params_.repair_initial_ms);
    EXPECT_EQ(wait.messages.size(), 1u);
}

TEST_F(CatchUpTest, proof_is_checked_against_t_plus_one_commits_and_the_output_digest) {
    CatchUp cu(params_, suites_[0], nullptr);
    const Epoch e = 6;
    std::vector<std::pair<Envelope, Bytes>> blocks{block(e, 2), block(e, 3)};  // rotated: 2, 3
    const Digest od = output_digest(
        chain_, e, {{2, digest_of(blocks[0].first.body)}, {3, digest_of(blocks[1].first.body)}});
    CommitBody tuple{od, Digest{}, std::nullopt};
    tuple.state_digest.fill(7);
    std::vector<Envelope> commits{commit(1, e, tuple).first, commit(3, e, tuple).first};
    auto ok = cu.check_proof(e, commits, blocks);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->tuple, tuple);
    EXPECT_EQ(ok->blocks, (std::vector<Bytes>{blocks[0].second, blocks[1].second}));
    // t COMMITs prove nothing.
    EXPECT_FALSE(cu.check_proof(e, {commits[0]}, blocks));
    // Two COMMITs from one member are one vote.
    EXPECT_FALSE(cu.check_proof(e, {commits[0], commits[0]}, blocks));
    // A block missing, or one too many, gives another output digest.
    EXPECT_FALSE(cu.check_proof(e, commits, {blocks[0]}));
    EXPECT_FALSE(cu.check_proof(e, commits, {blocks[0], blocks[1], block(e, 0)}));
}

TEST_F(CatchUpTest, proof_comes_from_memory_then_from_the_archive) {
    RecordsArchive archive;
    CatchUp cu(params_, suites_[0], &archive);
    Step step;
    for (Epoch e = 1; e <= 20; ++e) {
        own(cu, step, e, body(static_cast<std::uint8_t>(e)), e);
        peer(cu, step, 1, e, body(static_cast<std::uint8_t>(e)), e);
        cu.prune(e);
    }
    archive.records = step.persist;  // the shell made every record durable
    // In memory: the last H = 8 epochs.
    auto recent = cu.proof_reply_for(20, 20);
    ASSERT_TRUE(recent);
    EXPECT_EQ(recent->envelopes.size(), 3u);  // two COMMITs, one block
    EXPECT_EQ(recent->blocks.size(), 1u);     // and the list
    EXPECT_EQ(archive.asked, 0);
    // Older: from the archive, the same shape.
    auto old_reply = cu.proof_reply_for(3, 20);
    ASSERT_TRUE(old_reply);
    const auto& old = old_reply->envelopes;
    ASSERT_EQ(old.size(), 3u);
    EXPECT_EQ(archive.asked, 1);
    EXPECT_EQ(cu.archive_served(), 1u);
    auto env = decode_envelope(old[0], Limits{}).value();
    EXPECT_EQ(env.kind, Kind::Commit);
    EXPECT_EQ(env.epoch, 3u);
    // Not delivered yet: nothing.
    EXPECT_FALSE(cu.proof_reply_for(21, 20));
}

// A peer's COMMIT that came on its own connection was counted without a check
// of its signature (consensus/messages.h, verified_on_use): a proof or a
// checkpoint certificate this node hands out holds only COMMITs that verify.
TEST_F(CatchUpTest, commits_leave_the_node_only_with_signatures_that_verify) {
    RecordsArchive archive;
    CatchUp cu(params_, suites_[0], &archive);
    Step step;
    auto broken = [&](NodeId from, Epoch e, const CommitBody& b) {
        auto c = commit(from, e, b);
        c.first.sig[0] ^= 1;
        const Bytes raw = encode(c.first);
        return cu.on_commit(step, c.first, raw, b, e, 0);
    };
    for (Epoch e = 1; e <= 20; ++e) {
        own(cu, step, e, body(static_cast<std::uint8_t>(e)), e);
        EXPECT_TRUE(broken(3, e, body(static_cast<std::uint8_t>(e))));  // counted
        cu.prune(e);
    }
    archive.records = step.persist;
    EXPECT_FALSE(cu.stable(20));  // two COMMITs: q = 3 are needed
    // Own COMMIT and member 3's bad one make t + 1 = 2 in the tally, but only one
    // verifies: nothing to serve, from memory or from the archive.
    EXPECT_FALSE(cu.proof_reply_for(20, 20));
    EXPECT_FALSE(cu.proof_reply_for(3, 20));
    // A good COMMIT of member 1 as well: served, without member 3's.
    peer(cu, step, 1, 20, body(20), 20);
    auto reply = cu.proof_reply_for(20, 20);
    ASSERT_TRUE(reply);
    std::size_t commits = 0;
    for (const auto& raw : reply->envelopes) {
        auto env = decode_envelope(raw, Limits{}).value();
        if (env.kind != Kind::Commit) continue;
        ++commits;
        EXPECT_NE(env.sender, 3);
    }
    EXPECT_EQ(commits, 2u);
    // Stable now (q = 3 counted): the checkpoint certificate leaves member 3 out too.
    EXPECT_TRUE(cu.stable(20));
    const auto cert = cu.matching_commits(20);
    EXPECT_EQ(cert.size(), 2u);
    for (const auto& raw : cert) EXPECT_NE(decode_envelope(raw, Limits{}).value().sender, 3);
}

TEST_F(CatchUpTest, epoch_with_only_our_commit_is_not_served) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    own(cu, step, 3, body(3), 3);
    EXPECT_FALSE(cu.proof_reply_for(3, 3));  // t + 1 = 2 needed
    peer(cu, step, 2, 3, body(3), 3);
    ASSERT_TRUE(cu.proof_reply_for(3, 3));
    EXPECT_EQ(cu.proof_reply_for(3, 3)->envelopes.size(), 3u);
}

TEST_F(CatchUpTest, peer_still_working_on_an_old_epoch_gets_a_commit) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    for (Epoch e = 1; e <= 40; ++e) {
        own(cu, step, e, body(static_cast<std::uint8_t>(e)), e);
        cu.prune(e);
    }
    // Recent epoch: our COMMIT for it, at most once per repair_max_ms.
    Step hint;
    cu.hint(hint, 2, 38, 40, 5000);
    ASSERT_EQ(hint.messages.size(), 1u);
    EXPECT_EQ(hint.messages[0].to, NodeId{2});
    EXPECT_EQ(decode_envelope(hint.messages[0].envelope, Limits{}).value().epoch, 38u);
    cu.hint(hint, 2, 38, 40, 5000 + params_.repair_max_ms - 1);
    EXPECT_EQ(hint.messages.size(), 1u);
    // Far older than what we keep: the latest COMMIT, which says how far we can prove.
    Step far;
    cu.hint(far, 3, 2, 40, 5000);
    ASSERT_EQ(far.messages.size(), 1u);
    EXPECT_EQ(decode_envelope(far.messages[0].envelope, Limits{}).value().epoch, 40u);
    // A far-behind peer's old COMMIT gets the same answer (rate-limited per peer).
    Step again;
    EXPECT_FALSE(peer(cu, again, 1, 2, body(2), 40, 5000));
    ASSERT_EQ(again.messages.size(), 1u);
    EXPECT_EQ(again.messages[0].to, NodeId{1});
    EXPECT_FALSE(peer(cu, again, 1, 2, body(2), 40, 5001));
    EXPECT_EQ(again.messages.size(), 1u);
    // Never to ourselves.
    Step self;
    cu.hint(self, 0, 2, 40, 9000);
    EXPECT_TRUE(self.messages.empty());
}

// A peer one message behind gets the COMMIT just broadcast, not a second copy; a
// peer still at that epoch repair_initial_ms later lost it and is hinted.
TEST_F(CatchUpTest, no_hint_for_the_epoch_whose_commit_was_just_broadcast) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    for (Epoch e = 1; e <= 39; ++e) own(cu, step, e, body(static_cast<std::uint8_t>(e)), e, 100);
    const std::uint64_t at = 10'000;
    own(cu, step, 40, body(40), 40, at);
    Step h;
    for (NodeId p = 1; p < 4; ++p) cu.hint(h, p, 40, 40, at);
    cu.hint(h, 2, 40, 40, at + params_.repair_initial_ms - 1);
    EXPECT_TRUE(h.messages.empty());
    // An earlier epoch is hinted as before.
    cu.hint(h, 1, 39, 40, at);
    ASSERT_EQ(h.messages.size(), 1u);
    EXPECT_EQ(decode_envelope(h.messages[0].envelope, Limits{}).value().epoch, 39u);
    // Still working on 40 after repair_initial_ms: the broadcast was lost on the way.
    Step late;
    cu.hint(late, 2, 40, 40, at + params_.repair_initial_ms);
    ASSERT_EQ(late.messages.size(), 1u);
    EXPECT_EQ(late.messages[0].to, NodeId{2});
    EXPECT_EQ(decode_envelope(late.messages[0].envelope, Limits{}).value().epoch, 40u);
}

// Issue 11, finding 9: epochs a peer names are added to with saturation.
TEST_F(CatchUpTest, commit_for_the_last_epoch_is_not_taken_for_a_far_behind_peer) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    for (Epoch e = 1; e <= 40; ++e) {
        own(cu, step, e, body(static_cast<std::uint8_t>(e)), e);
        cu.prune(e);
    }
    const Epoch last = ~Epoch{0};
    Step s;
    EXPECT_FALSE(peer(cu, s, 3, last, body(7), 40, 5000));
    // e + history wrapped to a small number: the node took the liar for a peer far
    // behind and sent it its latest COMMIT.
    EXPECT_TRUE(s.messages.empty());
    EXPECT_TRUE(s.persist.empty());
    Step h;
    cu.hint(h, 3, last, 40, 6000);
    EXPECT_TRUE(h.messages.empty());
}

TEST_F(CatchUpTest, peers_epoch_needs_t_plus_one_peers_so_one_liar_cannot_raise_it) {
    CatchUp cu(params_, suites_[0], nullptr);
    Step step;
    const Epoch last = ~Epoch{0};
    peer(cu, step, 3, last, body(7), 4);
    EXPECT_EQ(cu.peers_epoch(), 0u);  // one claim (t = 1) proves nothing
    peer(cu, step, 1, 9, body(1), 4);
    EXPECT_EQ(cu.peers_epoch(), 9u);  // t + 1 = 2 peers reached at least 9
    peer(cu, step, 2, 12, body(1), 4);
    EXPECT_EQ(cu.peers_epoch(), 12u);
}

TEST_F(CatchUpTest, heartbeat_resends_the_latest_commit_periodically) {
    params_.commit_heartbeat_ms = 2000;
    CatchUp cu(params_, suites_[0], nullptr);
    Step none;
    cu.heartbeat(none, 0);
    cu.heartbeat(none, 5000);
    EXPECT_TRUE(none.messages.empty());  // nothing signed yet
    Step step;
    own(cu, step, 7, body(7), 7);
    Step beat;
    cu.heartbeat(beat, 6000);  // the period runs from 5000: not yet
    cu.heartbeat(beat, 7000);
    cu.heartbeat(beat, 7500);
    ASSERT_EQ(beat.messages.size(), 1u);
    EXPECT_FALSE(beat.messages[0].to);  // broadcast
    EXPECT_EQ(beat.messages[0].envelope, commit(0, 7, body(7)).second);
    EXPECT_TRUE(beat.persist.empty());  // already-signed bytes: nothing new to log
    cu.heartbeat(beat, 9000);
    EXPECT_EQ(beat.messages.size(), 2u);
    EXPECT_EQ(cu.latest_commit(), commit(0, 7, body(7)).second);

    params_.commit_heartbeat_ms = 0;
    CatchUp quiet(params_, suites_[0], nullptr);
    own(quiet, step, 7, body(7), 7);
    Step off;
    for (std::uint64_t t = 0; t < 100000; t += 1000) quiet.heartbeat(off, t);
    EXPECT_TRUE(off.messages.empty());
}

TEST_F(CatchUpTest, memory_stays_flat_over_many_epochs) {
    CatchUp cu(params_, suites_[0], nullptr);
    std::size_t most_votes = 0, most_proofs = 0;
    for (Epoch e = 1; e <= 2000; ++e) {
        Step step;
        own(cu, step, e, body(static_cast<std::uint8_t>(e)), e);
        for (NodeId p = 1; p < kN; ++p) peer(cu, step, p, e, body(static_cast<std::uint8_t>(e)), e);
        // A Byzantine peer's COMMITs far ahead are tracked only up to W + H ahead.
        peer(cu, step, 3, e + 1000, body(1), e);
        cu.prune(e);
        most_votes = std::max(most_votes, cu.commit_epochs());
        most_proofs = std::max(most_proofs, cu.proofs());
    }
    EXPECT_EQ(most_proofs, params_.proof_history_epochs);
    // V = max(H, 4W + 1) = 17 epochs behind, and nothing beyond W + H ahead.
    EXPECT_LE(most_votes, 17u + params_.window + params_.proof_history_epochs);
}

TEST(ProofFromRecords, needs_a_proof_record_and_t_plus_one_matching_commits) {
    const auto world = FastWorld::make(kN, kT, 2);
    Digest chain{};
    CommitBody good{}, bad{};
    good.output_digest.fill(1);
    bad.output_digest.fill(2);
    auto commit = [&](NodeId i, const CommitBody& b) {
        return seal_envelope(FastCryptoSuite(world, i), chain, i, 4, Kind::Commit, encode(b));
    };
    std::vector<DurableRecord> recs;
    recs.push_back({DurableRecord::Type::Commit, 4, commit(1, bad)});
    recs.push_back({DurableRecord::Type::Signed, 4, commit(0, good)});
    EXPECT_FALSE(proof_from_records(recs, 4, 2, Limits{}));  // no Proof record
    recs.push_back({DurableRecord::Type::Proof, 4, encode(FetchReply{{Bytes{1, 2}}, {}})});
    EXPECT_FALSE(proof_from_records(recs, 4, 2, Limits{}));  // no tuple with 2 signers
    recs.push_back({DurableRecord::Type::Commit, 4, commit(2, good)});
    recs.push_back({DurableRecord::Type::Commit, 5, commit(3, good)});  // another epoch
    auto p = proof_from_records(recs, 4, 2, Limits{});
    ASSERT_TRUE(p);
    EXPECT_EQ(p->commits, (std::vector<Bytes>{commit(0, good), commit(2, good)}));
    EXPECT_EQ(p->blocks, (std::vector<Bytes>{Bytes{1, 2}}));
}

}  // namespace
}  // namespace tob::consensus
