// SignLog (consensus/sign_log.h): the slots of each statement, the one-payload-
// per-slot rule, the high-water mark and its floor, pruning by epoch.

#include "consensus/sign_log.h"

#include <gtest/gtest.h>

#include "consensus/codec.h"
#include "consensus/fast_crypto.h"

namespace tob::consensus {
namespace {

class SignLogTest : public ::testing::Test {
  protected:
    SignLogTest() : world_(FastWorld::make(4, 1, 7)), crypto_(world_, 2) { chain_.fill(9); }

    SignLog fresh() { return SignLog(2, chain_, Limits{}, crypto_); }

    static Bytes seen_body(NodeId j, std::uint8_t d0) {
        SeenBody s;
        s.proposer = j;
        s.digest.fill(d0);
        return encode(s);
    }
    static Bytes aba_body(std::vector<AbaMessage> msgs) {
        return encode(AbaBundle{std::move(msgs)});
    }
    static Bytes commit_body(std::uint8_t o) {
        CommitBody c;
        c.output_digest.fill(o);
        c.state_digest.fill(1);
        return encode(c);
    }
    Envelope envelope(Epoch e, Kind kind, Bytes body, NodeId sender = 2) const {
        Envelope env;
        env.chain_id = chain_;
        env.sender = sender;
        env.epoch = e;
        env.kind = kind;
        env.body = std::move(body);
        return env;
    }

    std::shared_ptr<const FastWorld> world_;
    FastCryptoSuite crypto_;
    Digest chain_{};
};

TEST_F(SignLogTest, slots_of_names_one_slot_per_statement) {
    auto block = slots_of(envelope(5, Kind::Block, encode(Block{5, 2, {}})), Limits{});
    ASSERT_TRUE(block);
    ASSERT_EQ(block->size(), 1u);
    EXPECT_EQ(block->at(0).slot, (Slot{SlotKind::Block, 5, 2, 0, 0}));

    auto seen = slots_of(envelope(5, Kind::Seen, seen_body(3, 0xaa)), Limits{});
    ASSERT_TRUE(seen);
    ASSERT_EQ(seen->size(), 1u);
    EXPECT_EQ(seen->at(0).slot, (Slot{SlotKind::Seen, 5, 3, 0, 0}));

    auto commit = slots_of(envelope(6, Kind::Commit, commit_body(1)), Limits{});
    ASSERT_TRUE(commit);
    ASSERT_EQ(commit->size(), 1u);
    EXPECT_EQ(commit->at(0).slot, (Slot{SlotKind::Commit, 6, 0, 0, 0}));

    Bytes share(96, 1);
    auto aba = slots_of(envelope(7, Kind::Aba,
                                 aba_body({{1, 0, AbaType::Bval, 0, {}},
                                           {1, 0, AbaType::Bval, 1, {}},
                                           {1, 0, AbaType::Aux, 1, {}},
                                           {1, 0, AbaType::Conf, 3, {}},
                                           {1, 0, AbaType::Coin, 0, share},
                                           {1, 3, AbaType::Term, 1, {}}})),
                        Limits{});
    ASSERT_TRUE(aba);
    ASSERT_EQ(aba->size(), 5u);  // the coin share has no slot
    EXPECT_EQ(aba->at(0).slot, (Slot{SlotKind::Bval, 7, 1, 0, 0}));
    EXPECT_EQ(aba->at(1).slot, (Slot{SlotKind::Bval, 7, 1, 0, 1}));
    EXPECT_EQ(aba->at(2).slot, (Slot{SlotKind::Aux, 7, 1, 0, 0}));
    EXPECT_EQ(aba->at(3).slot, (Slot{SlotKind::Conf, 7, 1, 0, 0}));
    EXPECT_EQ(aba->at(4).slot, (Slot{SlotKind::Term, 7, 1, 0, 0}));  // TERM: no round

    // Relays, fetches and request batches are not this node's statements.
    for (Kind k : {Kind::Cert, Kind::Requests, Kind::FetchRequest, Kind::FetchReply}) {
        auto none = slots_of(envelope(5, k, Bytes{0x90}), Limits{});
        ASSERT_TRUE(none);
        EXPECT_TRUE(none->empty());
    }
    // A statement whose body does not decode has no readable slot.
    EXPECT_FALSE(slots_of(envelope(5, Kind::Seen, Bytes{0xc1}), Limits{}));
}

TEST_F(SignLogTest, aux_payload_differs_by_value_and_conf_by_set) {
    auto aux0 = slots_of(envelope(1, Kind::Aba, aba_body({{0, 0, AbaType::Aux, 0, {}}})), Limits{});
    auto aux1 = slots_of(envelope(1, Kind::Aba, aba_body({{0, 0, AbaType::Aux, 1, {}}})), Limits{});
    auto conf1 =
        slots_of(envelope(1, Kind::Aba, aba_body({{0, 0, AbaType::Conf, 1, {}}})), Limits{});
    auto conf3 =
        slots_of(envelope(1, Kind::Aba, aba_body({{0, 0, AbaType::Conf, 3, {}}})), Limits{});
    EXPECT_EQ(aux0->at(0).slot, aux1->at(0).slot);
    EXPECT_NE(aux0->at(0).payload, aux1->at(0).payload);
    EXPECT_EQ(conf1->at(0).slot, conf3->at(0).slot);
    EXPECT_NE(conf1->at(0).payload, conf3->at(0).payload);
}

TEST_F(SignLogTest, seen_never_signed_for_two_digests) {
    SignLog log = fresh();
    Step step;
    auto first = log.sign(step, 3, Kind::Seen, seen_body(1, 0xaa));
    ASSERT_TRUE(first);
    EXPECT_FALSE(log.sign(step, 3, Kind::Seen, seen_body(1, 0xbb)));
    // Another proposer is another slot.
    EXPECT_TRUE(log.sign(step, 3, Kind::Seen, seen_body(0, 0xbb)));
    // The same payload again: allowed, and the very same bytes come out.
    auto again = log.sign(step, 3, Kind::Seen, seen_body(1, 0xaa));
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *first);
}

TEST_F(SignLogTest, aux_never_signed_for_both_values_but_bval_is) {
    SignLog log = fresh();
    Step step;
    EXPECT_TRUE(log.sign(step, 1, Kind::Aba, aba_body({{0, 0, AbaType::Bval, 0, {}}})));
    EXPECT_TRUE(log.sign(step, 1, Kind::Aba, aba_body({{0, 0, AbaType::Bval, 1, {}}})));
    EXPECT_TRUE(log.sign(step, 1, Kind::Aba, aba_body({{0, 0, AbaType::Aux, 0, {}}})));
    EXPECT_FALSE(log.sign(step, 1, Kind::Aba, aba_body({{0, 0, AbaType::Aux, 1, {}}})));
    // A bundle with one conflicting message is refused as a whole.
    EXPECT_FALSE(log.sign(step, 1, Kind::Aba,
                          aba_body({{0, 1, AbaType::Bval, 0, {}}, {0, 0, AbaType::Aux, 1, {}}})));
    EXPECT_FALSE(log.filled(Slot{SlotKind::Bval, 1, 0, 1, 0}));
}

TEST_F(SignLogTest, mark_is_raised_with_the_first_signature_of_an_epoch_after_it) {
    SignLog log = fresh();
    Step step;
    ASSERT_TRUE(log.sign(step, 4, Kind::Commit, commit_body(1)));
    ASSERT_EQ(step.persist.size(), 2u);
    EXPECT_EQ(step.persist[0].type, DurableRecord::Type::Signed);
    EXPECT_EQ(step.persist[1].type, DurableRecord::Type::HighWater);
    EXPECT_EQ(step.persist[1].epoch, 4u);
    EXPECT_EQ(log.high_water(), 4u);
    // A second signature in the same (or a lower) epoch needs no new mark.
    Step again;
    ASSERT_TRUE(log.sign(again, 4, Kind::Seen, seen_body(0, 1)));
    ASSERT_TRUE(log.sign(again, 3, Kind::Seen, seen_body(0, 1)));
    ASSERT_EQ(again.persist.size(), 2u);
    EXPECT_EQ(again.persist[0].type, DurableRecord::Type::Signed);
    EXPECT_EQ(again.persist[1].type, DurableRecord::Type::Signed);
}

// A crash inside a step keeps a prefix of its records (the shell writes them,
// then the mark, then sends: nothing of the step has left the node). Whatever
// the prefix, the restarted node may still sign in the step's epoch: with the
// mark first, the prefix [mark] made it take its own mark for a lost sign-log
// and sit the epoch out, which with t Byzantine members stalls the epoch.
TEST_F(SignLogTest, a_crash_inside_a_step_never_leaves_the_mark_above_its_signatures) {
    SignLog before = fresh();
    Step earlier;  // durable before the crash: epoch 3, mark 3
    ASSERT_TRUE(before.sign(earlier, 3, Kind::Commit, commit_body(2)));
    Step step;  // the step the crash tears: the first signatures of epoch 4
    ASSERT_TRUE(before.sign(step, 4, Kind::Seen, seen_body(1, 0xaa)));
    ASSERT_TRUE(before.sign(step, 4, Kind::Aba, aba_body({{1, 0, AbaType::Aux, 0, {}}})));
    for (std::size_t kept = 0; kept <= step.persist.size(); ++kept) {
        std::vector<DurableRecord> disk = earlier.persist;
        disk.insert(disk.end(), step.persist.begin(), step.persist.begin() + kept);
        SignLog after = fresh();
        for (const auto& r : disk) {
            if (r.type == DurableRecord::Type::HighWater) after.raise_mark(r.epoch);
            if (r.type == DurableRecord::Type::Signed) {
                EXPECT_TRUE(after.adopt(r.bytes));
            }
        }
        after.finish_recovery();
        EXPECT_EQ(after.floor(), 0u) << kept << " of the step's records kept";
        EXPECT_TRUE(after.may_sign(4)) << kept << " of the step's records kept";
        // What it kept it still refuses to contradict.
        Step s2;
        if (kept >= 1) {
            EXPECT_FALSE(after.sign(s2, 4, Kind::Seen, seen_body(1, 0xbb)));
        }
    }
}

TEST_F(SignLogTest, recovered_log_refuses_what_the_old_one_refused) {
    SignLog before = fresh();
    Step step;
    ASSERT_TRUE(before.sign(step, 3, Kind::Seen, seen_body(1, 0xaa)));
    ASSERT_TRUE(before.sign(step, 3, Kind::Aba, aba_body({{1, 0, AbaType::Aux, 0, {}}})));
    ASSERT_TRUE(before.sign(step, 3, Kind::Commit, commit_body(5)));
    // Restart: the same slots come back from the Signed records.
    SignLog after = fresh();
    for (const auto& r : step.persist) {
        if (r.type == DurableRecord::Type::HighWater) after.raise_mark(r.epoch);
        if (r.type == DurableRecord::Type::Signed) {
            EXPECT_TRUE(after.adopt(r.bytes));
        }
    }
    after.finish_recovery();
    EXPECT_EQ(after.slots(), before.slots());
    Step s2;
    EXPECT_FALSE(after.sign(s2, 3, Kind::Seen, seen_body(1, 0xbb)));
    EXPECT_FALSE(after.sign(s2, 3, Kind::Aba, aba_body({{1, 0, AbaType::Aux, 1, {}}})));
    EXPECT_FALSE(after.sign(s2, 3, Kind::Commit, commit_body(6)));
    EXPECT_TRUE(after.sign(s2, 3, Kind::Commit, commit_body(5)));
    EXPECT_EQ(after.floor(), 0u);  // the log survived: no floor
}

TEST_F(SignLogTest, lost_sign_log_signs_only_above_the_mark) {
    SignLog log = fresh();
    log.raise_mark(10);
    log.finish_recovery();  // nothing adopted: the data directory was lost
    EXPECT_EQ(log.floor(), 10u);
    Step step;
    EXPECT_FALSE(log.sign(step, 10, Kind::Commit, commit_body(1)));
    EXPECT_FALSE(log.sign(step, 7, Kind::Seen, seen_body(0, 1)));
    EXPECT_TRUE(step.persist.empty());
    EXPECT_TRUE(log.sign(step, 11, Kind::Commit, commit_body(1)));
}

// A wiped data directory (mark 3), then signatures above the floor, then a
// plain restart: the Signed records of epochs 4 and 5 reach the mark, so without
// a durable floor the node would look complete and sign in epoch 3 again, where
// it signed before the wipe (found by tobsim, crash-heavy seed 12:
// signed-below-mark). The floor is handed out once, for a Floor record.
TEST_F(SignLogTest, floor_of_a_lost_sign_log_survives_the_next_restart) {
    SignLog wiped = fresh();
    wiped.raise_mark(3);
    const auto floor = wiped.finish_recovery();
    ASSERT_EQ(floor, std::optional<Epoch>(3));
    Step step;
    step.durable(DurableRecord::Type::Floor, *floor, {});  // what Replica::recover persists
    ASSERT_TRUE(wiped.sign(step, 4, Kind::Seen, seen_body(1, 0xaa)));
    ASSERT_TRUE(wiped.sign(step, 5, Kind::Commit, commit_body(5)));
    ASSERT_EQ(wiped.high_water(), 5u);

    const auto restart = [&](bool with_floor_record) {
        SignLog log = fresh();
        log.raise_mark(wiped.high_water());
        for (const auto& r : step.persist) {
            if (r.type == DurableRecord::Type::HighWater) log.raise_mark(r.epoch);
            if (r.type == DurableRecord::Type::Floor && with_floor_record) log.raise_floor(r.epoch);
            if (r.type == DurableRecord::Type::Signed) {
                EXPECT_TRUE(log.adopt(r.bytes));
            }
        }
        const auto again = log.finish_recovery();
        EXPECT_FALSE(again.has_value());  // nothing new to record either way
        return log;
    };
    SignLog kept = restart(true);
    EXPECT_EQ(kept.floor(), 3u);
    Step s;
    EXPECT_FALSE(kept.sign(s, 3, Kind::Seen, seen_body(1, 0xbb)));
    EXPECT_FALSE(kept.sign(s, 2, Kind::Commit, commit_body(2)));
    EXPECT_TRUE(s.persist.empty());
    EXPECT_TRUE(kept.sign(s, 6, Kind::Commit, commit_body(6)));
    // The hole this closes: the same records without the Floor record.
    SignLog lost = restart(false);
    EXPECT_EQ(lost.floor(), 0u);
    EXPECT_TRUE(lost.may_sign(3));
}

// Issue 11, finding 8: a data directory restored from an older backup still
// holds older signed records; the mark must be a floor all the same.
TEST_F(SignLogTest, restored_backup_signs_only_above_the_mark) {
    SignLog before = fresh();
    Step old_step;
    ASSERT_TRUE(before.sign(old_step, 3, Kind::Commit, commit_body(3)));
    Step new_step;
    ASSERT_TRUE(before.sign(new_step, 8, Kind::Seen, seen_body(1, 0xaa)));
    ASSERT_EQ(before.high_water(), 8u);
    // The backup holds the records of epoch 3 only; the mark file says 8.
    SignLog after = fresh();
    for (const auto& r : old_step.persist) {
        if (r.type == DurableRecord::Type::Signed) {
            ASSERT_TRUE(after.adopt(r.bytes));
        }
    }
    after.raise_mark(before.high_water());
    after.finish_recovery();
    EXPECT_EQ(after.floor(), 8u);
    Step s;
    EXPECT_FALSE(after.sign(s, 8, Kind::Seen, seen_body(1, 0xbb)));  // would equivocate
    EXPECT_FALSE(after.sign(s, 5, Kind::Commit, commit_body(5)));
    EXPECT_TRUE(s.persist.empty());
    EXPECT_TRUE(after.sign(s, 9, Kind::Commit, commit_body(9)));
}

TEST_F(SignLogTest, non_voting_node_signs_nothing) {
    SignLog log = fresh();
    log.set_voting(false);
    Step step;
    EXPECT_FALSE(log.sign(step, 1, Kind::Block, encode(Block{1, 2, {}})));
    EXPECT_TRUE(step.persist.empty());
}

TEST_F(SignLogTest, pruned_epochs_are_never_signed_again) {
    SignLog log = fresh();
    Step step;
    ASSERT_TRUE(log.sign(step, 3, Kind::Seen, seen_body(1, 0xaa)));
    log.prune_through(3);
    EXPECT_FALSE(log.filled(Slot{SlotKind::Seen, 3, 1, 0, 0}));
    // Forgotten, but not free: the other digest is still refused.
    EXPECT_FALSE(log.sign(step, 3, Kind::Seen, seen_body(1, 0xbb)));
    EXPECT_FALSE(log.sign(step, 2, Kind::Seen, seen_body(0, 0xbb)));
    EXPECT_TRUE(log.sign(step, 4, Kind::Seen, seen_body(1, 0xbb)));
}

TEST_F(SignLogTest, memory_stays_flat_over_many_epochs_when_pruned) {
    SignLog log = fresh();
    const Epoch window = 4;
    std::size_t most = 0;
    for (Epoch e = 1; e <= 5000; ++e) {
        Step step;
        ASSERT_TRUE(log.sign(step, e, Kind::Block, encode(Block{e, 2, {}})));
        for (NodeId j = 0; j < 4; ++j) ASSERT_TRUE(log.sign(step, e, Kind::Seen, seen_body(j, 1)));
        ASSERT_TRUE(
            log.sign(step, e, Kind::Aba,
                     aba_body({{0, 0, AbaType::Bval, 1, {}}, {0, 0, AbaType::Aux, 1, {}}})));
        ASSERT_TRUE(log.sign(step, e, Kind::Commit, commit_body(1)));
        if (e > window) log.prune_through(e - window);
        most = std::max(most, log.slots());
    }
    // 8 slots per epoch, W epochs held: flat, not 5000 · 8.
    EXPECT_EQ(log.epochs(), window);
    EXPECT_EQ(most, 8 * window);
}

}  // namespace
}  // namespace tob::consensus
