// BlockBroadcast (consensus/block_broadcast.h): the first block per (e, j), the
// equivocation evidence, SEEN tallies and the proposer's block as its vote,
// certificates at q and their validation, block fetches and pruning.

#include "consensus/block_broadcast.h"

#include <gtest/gtest.h>

#include "consensus/codec.h"
#include "consensus/fast_crypto.h"

namespace tob::consensus {
namespace {

constexpr std::uint32_t kN = 4, kT = 1, kQ = 3;

class BlockBroadcastTest : public ::testing::Test {
  protected:
    BlockBroadcastTest() : world_(FastWorld::make(kN, kT, 11)) {
        chain_.fill(3);
        for (NodeId i = 0; i < kN; ++i) suites_.emplace_back(world_, i);
        params_.n = kN;
        params_.t = kT;
        params_.self = 0;
        params_.chain_id = chain_;
        params_.cert_quorum = kQ;
    }

    /// A signed envelope from member `from`, decoded as the shell hands it in.
    std::pair<Envelope, Bytes> signed_by(NodeId from, Epoch e, Kind kind, Bytes body) const {
        Bytes raw = seal_envelope(suites_[from], chain_, from, e, kind, std::move(body));
        return {decode_envelope(raw, Limits{}).value(), raw};
    }
    std::pair<Envelope, Bytes> block_env(NodeId j, Epoch e, Nonce salt) const {
        Block b{e, j, {}};
        if (salt) {
            Request r;
            r.chain_id = chain_;
            r.nonce = salt;
            r.ops.push_back(Op{OpType::Put, Bytes{'k'}, Bytes{'v'}, std::nullopt});
            b.requests.push_back(r);
        }
        return signed_by(j, e, Kind::Block, encode(b));
    }
    std::pair<Envelope, Bytes> seen_env(NodeId from, Epoch e, NodeId j, const Digest& d) const {
        return signed_by(from, e, Kind::Seen, encode(SeenBody{j, d}));
    }
    BlockBroadcast::Accept accept(BlockBroadcast& bb, Step& step,
                                  const std::pair<Envelope, Bytes>& env) const {
        auto block = bb.parse(step, env.first, env.second);
        EXPECT_TRUE(block);
        return bb.accept(step, env.first, env.second, std::move(*block), digest_of(env.first.body),
                         /*in_window=*/true);
    }
    /// Accepts `b` as the first block of its (e, j) and counts it as j's vote, as
    /// Replica::on_block does; the vote alone certifies nothing.
    void accept_as_vote(BlockBroadcast& bb, Step& step, const std::pair<Envelope, Bytes>& b) const {
        ASSERT_EQ(accept(bb, step, b), BlockBroadcast::Accept::First);
        EXPECT_FALSE(bb.count_block(step, b.first.epoch, b.first.sender, digest_of(b.first.body),
                                    b.first.sig, b.second));
    }
    /// A certificate for (e, j, d) signed by `signers`.
    Certificate cert(Epoch e, NodeId j, const Digest& d, std::vector<NodeId> signers) const {
        Certificate c{e, j, d, {}};
        for (NodeId s : signers) c.sigs.push_back({s, seen_env(s, e, j, d).first.sig});
        return c;
    }

    std::shared_ptr<const FastWorld> world_;
    std::vector<FastCryptoSuite> suites_;
    Digest chain_{};
    BroadcastParams params_;
};

TEST_F(BlockBroadcastTest, first_valid_block_is_accepted_and_made_durable) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    auto b = block_env(2, 5, 0);
    EXPECT_EQ(accept(bb, step, b), BlockBroadcast::Accept::First);
    ASSERT_EQ(step.persist.size(), 1u);
    EXPECT_EQ(step.persist[0].type, DurableRecord::Type::Block);
    EXPECT_TRUE(bb.holds(digest_of(b.first.body)));
    EXPECT_EQ(bb.accepted(5, 2), digest_of(b.first.body));
    EXPECT_EQ(bb.bytes(), b.second.size());
    EXPECT_TRUE(step.faults.empty());
}

TEST_F(BlockBroadcastTest, second_block_of_a_proposer_is_equivocation_with_both_as_evidence) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    auto b1 = block_env(2, 5, 0), b2 = block_env(2, 5, 7);
    ASSERT_EQ(accept(bb, step, b1), BlockBroadcast::Accept::First);
    EXPECT_EQ(accept(bb, step, b2), BlockBroadcast::Accept::Equivocation);
    ASSERT_EQ(step.faults.size(), 1u);
    EXPECT_EQ(step.faults[0].culprit, 2);
    EXPECT_EQ(step.faults[0].kind, FaultKind::Equivocation);
    ASSERT_EQ(step.faults[0].evidence.size(), 2u);
    EXPECT_EQ(step.faults[0].evidence[0], b2.second);
    EXPECT_EQ(step.faults[0].evidence[1], b1.second);
    EXPECT_FALSE(bb.holds(digest_of(b2.first.body)));  // not certified: evidence only
    EXPECT_EQ(bb.accepted(5, 2), digest_of(b1.first.body));
}

TEST_F(BlockBroadcastTest, certified_digest_is_stored_even_from_an_equivocator) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    auto b1 = block_env(2, 5, 0), b2 = block_env(2, 5, 7);
    ASSERT_EQ(accept(bb, step, b1), BlockBroadcast::Accept::First);
    const Digest d2 = digest_of(b2.first.body);
    Certificate c = cert(5, 2, d2, {1, 2, 3});
    ASSERT_TRUE(bb.cert_valid(c));
    ASSERT_EQ(bb.adopt(step, c), BlockBroadcast::Adopt::Adopted);
    EXPECT_EQ(accept(bb, step, b2), BlockBroadcast::Accept::Equivocation);
    EXPECT_TRUE(bb.holds(d2));
}

TEST_F(BlockBroadcastTest, block_that_lies_about_its_envelope_is_a_fault) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    auto wrong_epoch = signed_by(2, 5, Kind::Block, encode(Block{6, 2, {}}));
    EXPECT_FALSE(bb.parse(step, wrong_epoch.first, wrong_epoch.second));
    auto wrong_proposer = signed_by(2, 5, Kind::Block, encode(Block{5, 1, {}}));
    EXPECT_FALSE(bb.parse(step, wrong_proposer.first, wrong_proposer.second));
    auto junk = signed_by(2, 5, Kind::Block, Bytes{0x93, 0x01});
    EXPECT_FALSE(bb.parse(step, junk.first, junk.second));
    ASSERT_EQ(step.faults.size(), 3u);
    EXPECT_EQ(step.faults[0].kind, FaultKind::InvalidBlock);
    EXPECT_EQ(step.faults[1].kind, FaultKind::InvalidBlock);
    EXPECT_EQ(step.faults[2].kind, FaultKind::Malformed);
    for (const auto& f : step.faults) EXPECT_EQ(f.culprit, 2);
}

TEST_F(BlockBroadcastTest, q_seens_certify_and_q_minus_one_do_not) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    Digest d{};
    d.fill(0x42);
    for (NodeId s : {1, 3}) {
        auto e = seen_env(s, 5, 2, d);
        EXPECT_FALSE(bb.count_seen(step, 5, s, SeenBody{2, d}, e.first.sig, e.second));
    }
    auto third = seen_env(0, 5, 2, d);
    auto c = bb.count_seen(step, 5, 0, SeenBody{2, d}, third.first.sig, third.second);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->sigs.size(), kQ);
    EXPECT_EQ(c->sigs[0].signer, 0);  // sorted by signer, as the decoder demands
    EXPECT_EQ(c->sigs[2].signer, 3);
    EXPECT_TRUE(bb.cert_valid(*c));
}

TEST_F(BlockBroadcastTest, seen_for_a_second_digest_is_equivocation_and_not_counted) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    Digest d1{}, d2{};
    d1.fill(1);
    d2.fill(2);
    auto a = seen_env(3, 5, 2, d1), b = seen_env(3, 5, 2, d2);
    EXPECT_FALSE(bb.count_seen(step, 5, 3, SeenBody{2, d1}, a.first.sig, a.second));
    EXPECT_FALSE(bb.count_seen(step, 5, 3, SeenBody{2, d2}, b.first.sig, b.second));
    ASSERT_EQ(step.faults.size(), 1u);
    EXPECT_EQ(step.faults[0].kind, FaultKind::Equivocation);
    EXPECT_EQ(step.faults[0].evidence, (std::vector<Bytes>{a.second, b.second}));
    EXPECT_EQ(bb.seen_votes(), 1u);
    // The two others SEEN d2: with the equivocator's second SEEN ignored, no certificate.
    for (NodeId s : {0, 1}) {
        auto e = seen_env(s, 5, 2, d2);
        EXPECT_FALSE(bb.count_seen(step, 5, s, SeenBody{2, d2}, e.first.sig, e.second));
    }
}

TEST_F(BlockBroadcastTest, certificate_needs_q_distinct_valid_member_signatures) {
    BlockBroadcast bb(params_, suites_[0]);
    Digest d{};
    d.fill(9);
    EXPECT_TRUE(bb.cert_valid(cert(5, 2, d, {0, 1, 3})));
    EXPECT_FALSE(bb.cert_valid(cert(5, 2, d, {0, 1})));     // q - 1
    EXPECT_FALSE(bb.cert_valid(cert(5, 2, d, {0, 1, 1})));  // a signer twice
    EXPECT_FALSE(bb.cert_valid(cert(5, 2, d, {1, 0, 3})));  // not increasing
    Certificate forged = cert(5, 2, d, {0, 1, 3});
    forged.sigs[1].sig[0] ^= 1;
    EXPECT_FALSE(bb.cert_valid(forged));
    Certificate other_epoch = cert(6, 2, d, {0, 1, 3});
    other_epoch.epoch = 5;  // signatures over epoch 6 do not certify epoch 5
    EXPECT_FALSE(bb.cert_valid(other_epoch));
    Certificate outsider = cert(5, 2, d, {0, 1, 3});
    outsider.sigs[2].signer = kN;
    EXPECT_FALSE(bb.cert_valid(outsider));
    Certificate bad_proposer = cert(5, 2, d, {0, 1, 3});
    bad_proposer.proposer = kN;
    EXPECT_FALSE(bb.cert_valid(bad_proposer));
}

TEST_F(BlockBroadcastTest, second_certified_digest_is_a_conflict) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    Digest d1{}, d2{};
    d1.fill(1);
    d2.fill(2);
    EXPECT_EQ(bb.adopt(step, cert(5, 2, d1, {0, 1, 2})), BlockBroadcast::Adopt::Adopted);
    EXPECT_EQ(bb.adopt(step, cert(5, 2, d1, {1, 2, 3})), BlockBroadcast::Adopt::Known);
    EXPECT_EQ(bb.adopt(step, cert(5, 2, d2, {1, 2, 3})), BlockBroadcast::Adopt::Conflict);
    ASSERT_EQ(step.persist.size(), 1u);  // one Cert record, for the adopted one
    EXPECT_EQ(step.persist[0].type, DurableRecord::Type::Cert);
    EXPECT_TRUE(bb.certified(5, 2, d1));
    EXPECT_FALSE(bb.certified(5, 2, d2));
}

// The proposer's vote is its block (block_broadcast.h, "The proposer's vote is
// its block"): it signs no SEEN for it, so the accepted block and q - 1 SEENs of
// others make the certificate, and the proposer's entry is its envelope signature.
TEST_F(BlockBroadcastTest, the_accepted_block_is_its_proposers_vote) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    auto b = block_env(2, 5, 0);
    const Digest d = digest_of(b.first.body);
    ASSERT_NO_FATAL_FAILURE(accept_as_vote(bb, step, b));
    EXPECT_TRUE(bb.seen_by(5, 2, 2, d));
    auto s1 = seen_env(1, 5, 2, d);
    EXPECT_FALSE(bb.count_seen(step, 5, 1, SeenBody{2, d}, s1.first.sig, s1.second))
        << "two votes (q - 1) certify nothing";
    auto s3 = seen_env(3, 5, 2, d);
    auto c = bb.count_seen(step, 5, 3, SeenBody{2, d}, s3.first.sig, s3.second);
    ASSERT_TRUE(c);
    ASSERT_EQ(c->sigs.size(), kQ);
    EXPECT_EQ(c->sigs[1].signer, 2);
    EXPECT_EQ(c->sigs[1].sig, b.first.sig);
    EXPECT_TRUE(step.faults.empty());
    // Valid for every member, not only the one that formed it.
    BlockBroadcast other(params_, suites_[3]);
    EXPECT_TRUE(other.cert_valid(*c));
    // Counting the block again (a second copy) adds nothing.
    EXPECT_FALSE(bb.count_block(step, 5, 2, d, b.first.sig, b.second));
    EXPECT_EQ(bb.seen_votes(), 3u);
}

TEST_F(BlockBroadcastTest, only_the_proposers_entry_may_be_a_block_signature) {
    BlockBroadcast bb(params_, suites_[0]);
    auto b = block_env(2, 5, 0);
    const Digest d = digest_of(b.first.body);
    Certificate c = cert(5, 2, d, {1, 2, 3});
    c.sigs[1].sig = b.first.sig;  // the proposer's block envelope signature
    EXPECT_TRUE(bb.cert_valid(c));
    // Member 1's signature on a block of its own with the same digest is no
    // vote for (5, 2): that payload names proposer 1.
    Certificate wrong_signer = cert(5, 2, d, {1, 2, 3});
    wrong_signer.sigs[0].sig = signed_by(1, 5, Kind::Block, b.first.body).first.sig;
    EXPECT_FALSE(bb.cert_valid(wrong_signer));
    // The proposer's block of another epoch does not vote in epoch 5.
    auto b6 = block_env(2, 6, 0);
    Certificate wrong_epoch = cert(5, 2, digest_of(b6.first.body), {1, 2, 3});
    wrong_epoch.sigs[1].sig = b6.first.sig;
    EXPECT_FALSE(bb.cert_valid(wrong_epoch));
    // Its block signature names one digest: it votes for no other.
    Digest other{};
    other.fill(0x77);
    Certificate wrong_digest = cert(5, 2, other, {1, 2, 3});
    wrong_digest.sigs[1].sig = b.first.sig;
    EXPECT_FALSE(bb.cert_valid(wrong_digest));
    // A SEEN by the proposer for its own block (what nodes signed before this
    // rule) is the same vote: cert() signs every entry as a SEEN.
    EXPECT_TRUE(bb.cert_valid(cert(5, 2, d, {1, 2, 3})));
}

TEST_F(BlockBroadcastTest, a_proposers_seen_for_another_digest_than_its_block_is_equivocation) {
    auto b = block_env(2, 5, 0);
    const Digest d = digest_of(b.first.body);
    Digest d2{};
    d2.fill(2);
    auto other = seen_env(2, 5, 2, d2);
    {  // block first, then the SEEN
        BlockBroadcast bb(params_, suites_[0]);
        Step step;
        ASSERT_NO_FATAL_FAILURE(accept_as_vote(bb, step, b));
        EXPECT_FALSE(bb.count_seen(step, 5, 2, SeenBody{2, d2}, other.first.sig, other.second));
        ASSERT_EQ(step.faults.size(), 1u);
        EXPECT_EQ(step.faults[0].culprit, 2);
        EXPECT_EQ(step.faults[0].kind, FaultKind::Equivocation);
        EXPECT_EQ(step.faults[0].evidence, (std::vector<Bytes>{b.second, other.second}));
        EXPECT_EQ(bb.seen_votes(), 1u);
        EXPECT_TRUE(bb.seen_by(5, 2, 2, d));
    }
    {  // the SEEN first, then the block
        BlockBroadcast bb(params_, suites_[0]);
        Step step;
        EXPECT_FALSE(bb.count_seen(step, 5, 2, SeenBody{2, d2}, other.first.sig, other.second));
        ASSERT_NO_FATAL_FAILURE(accept_as_vote(bb, step, b));
        ASSERT_EQ(step.faults.size(), 1u);
        EXPECT_EQ(step.faults[0].kind, FaultKind::Equivocation);
        EXPECT_EQ(step.faults[0].evidence, (std::vector<Bytes>{other.second, b.second}));
        EXPECT_FALSE(bb.seen_by(5, 2, 2, d));  // the first vote counts
    }
}

TEST_F(BlockBroadcastTest, a_restored_block_is_its_proposers_vote_again) {
    // After a restart the peers' SEENs come again (they re-publish them), but the
    // proposer sends its block again only where it lacks a SEEN: the stored
    // block must count as its vote.
    auto b = block_env(2, 5, 0);
    const Digest d = digest_of(b.first.body);
    BlockBroadcast bb(params_, suites_[0]);
    ASSERT_EQ(bb.restore_block(b.second), d);
    bb.restore_accepted(5, 2, d);
    EXPECT_TRUE(bb.seen_by(5, 2, 2, d));
    Step step;
    auto e1 = seen_env(1, 5, 2, d);
    EXPECT_FALSE(bb.count_seen(step, 5, 1, SeenBody{2, d}, e1.first.sig, e1.second));
    auto e3 = seen_env(3, 5, 2, d);
    auto c = bb.count_seen(step, 5, 3, SeenBody{2, d}, e3.first.sig, e3.second);
    ASSERT_TRUE(c);
    EXPECT_TRUE(bb.cert_valid(*c));
    // This node's own block, restored from its Signed record, is its own vote.
    auto mine = block_env(0, 5, 0);
    BlockBroadcast own(params_, suites_[0]);
    ASSERT_TRUE(own.restore_block(mine.second));
    own.restore_own_block(5, digest_of(mine.first.body));
    EXPECT_TRUE(own.seen_by(5, 0, 0, digest_of(mine.first.body)));
}

// SEENs taken on their senders' connections are counted unchecked
// (consensus/messages.h, verified_on_use); what leaves the node is checked.
TEST_F(BlockBroadcastTest, a_certificate_is_served_only_with_votes_that_verify) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    auto b = block_env(2, 5, 0);
    const Digest d = digest_of(b.first.body);
    ASSERT_NO_FATAL_FAILURE(accept_as_vote(bb, step, b));
    auto s1 = seen_env(1, 5, 2, d);
    Signature broken = s1.first.sig;
    broken[0] ^= 1;
    EXPECT_FALSE(bb.count_seen(step, 5, 1, SeenBody{2, d}, broken, s1.second));
    auto s3 = seen_env(3, 5, 2, d);
    auto c = bb.count_seen(step, 5, 3, SeenBody{2, d}, s3.first.sig, s3.second);
    ASSERT_TRUE(c);  // used at once: member 1's connection named it
    ASSERT_EQ(bb.adopt(step, *c), BlockBroadcast::Adopt::Adopted);
    EXPECT_FALSE(bb.cert_valid(*c));
    EXPECT_FALSE(bb.servable_cert(5, 2)) << "two votes that verify are not q";
    EXPECT_FALSE(bb.cert_envelope(5, 2));
    auto s0 = seen_env(0, 5, 2, d);
    EXPECT_FALSE(bb.count_seen(step, 5, 0, SeenBody{2, d}, s0.first.sig, s0.second));
    auto served = bb.servable_cert(5, 2);
    ASSERT_TRUE(served);
    EXPECT_TRUE(bb.cert_valid(*served));
    ASSERT_EQ(served->sigs.size(), kQ);
    for (const auto& entry : served->sigs) EXPECT_NE(entry.signer, 1);
    auto env = bb.cert_envelope(5, 2);
    ASSERT_TRUE(env);
    auto opened = decode_envelope(*env, Limits{});
    ASSERT_TRUE(opened);
    EXPECT_EQ(decode_certificate(opened.value().body, Limits{}).value(), *served);
}

// The shell may hand over the body it decoded (Precomputed::block): it is used
// as it is, and still checked against its envelope.
TEST_F(BlockBroadcastTest, a_block_decoded_by_the_shell_is_used_and_still_checked) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    auto b = block_env(2, 5, 7);
    Block decoded = decode_block(b.first.body, Limits{}).value();
    auto parsed = bb.parse(step, b.first, b.second, &decoded);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, decode_block(b.first.body, Limits{}).value());
    Block other_epoch = decode_block(b.first.body, Limits{}).value();
    other_epoch.epoch = 6;
    EXPECT_FALSE(bb.parse(step, b.first, b.second, &other_epoch));
    ASSERT_EQ(step.faults.size(), 1u);
    EXPECT_EQ(step.faults[0].kind, FaultKind::InvalidBlock);
    EXPECT_EQ(step.faults[0].culprit, 2);
}

TEST_F(BlockBroadcastTest, missing_block_is_fetched_from_t_plus_one_signers_rate_limited) {
    BlockBroadcast bb(params_, suites_[0]);
    Digest d{};
    d.fill(5);
    Certificate c = cert(5, 2, d, {1, 2, 3});
    Step step;
    bb.fetch_block(step, 5, c, 1000);
    ASSERT_EQ(step.messages.size(), kT + 1);
    EXPECT_NE(step.messages[0].to, step.messages[1].to);
    for (const auto& m : step.messages) EXPECT_EQ(m.kind, Kind::FetchRequest);
    Step again;
    bb.fetch_block(again, 5, c, 1000 + params_.repair_initial_ms - 1);
    EXPECT_TRUE(again.messages.empty());
    bb.fetch_block(again, 5, c, 1000 + params_.repair_initial_ms);
    EXPECT_EQ(again.messages.size(), kT + 1);
}

TEST_F(BlockBroadcastTest, pruned_epochs_release_their_state_and_blocks) {
    BlockBroadcast bb(params_, suites_[0]);
    Step step;
    for (Epoch e = 1; e <= 10; ++e) {
        for (NodeId j = 0; j < kN; ++j)
            ASSERT_EQ(accept(bb, step, block_env(j, e, 0)), BlockBroadcast::Accept::First);
    }
    EXPECT_EQ(bb.blocks(), 40u);
    bb.prune([](Epoch e) { return e <= 8; }, [](Epoch e) { return e > 8; });
    EXPECT_EQ(bb.epochs(), 2u);
    EXPECT_EQ(bb.blocks(), 8u);
    std::size_t bytes = 0;
    for (Epoch e = 9; e <= 10; ++e)
        for (NodeId j = 0; j < kN; ++j) bytes += block_env(j, e, 0).second.size();
    EXPECT_EQ(bb.bytes(), bytes);
}

}  // namespace
}  // namespace tob::consensus
