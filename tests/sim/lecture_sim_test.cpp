// Tests of the lecture simulator (tests/sim/lecture_sim.h): its checker catches
// planted bugs; naive broadcast diverges; the synchronous protocol keeps
// agreement and liveness with t Byzantine nodes under synchrony and loses a
// property when delays exceed the bound; a weakened Dolev–Strong is caught.

#include "tests/sim/lecture_sim.h"

#include <gtest/gtest.h>

#include <map>

namespace tob::sim {
namespace {

using consensus::OpRequest;
using consensus::Rational;

LectureNodeResult node(consensus::NodeId id, std::vector<OpRequest> log, Rational state) {
    return {id, std::move(log), state};
}

std::map<std::string, int> checks(const std::vector<Violation>& v) {
    std::map<std::string, int> out;
    for (const auto& x : v) ++out[x.check];
    return out;
}

TEST(LectureChecker, EqualLogsPass) {
    const std::vector<OpRequest> log{{1, "/2"}, {2, "+1"}};
    EXPECT_TRUE(check_lecture_logs({node(0, log, {3, 2}), node(1, log, {3, 2})}, {1, 2}).empty());
}

TEST(LectureChecker, CatchesDivergingOrder) {
    auto v = check_lecture_logs(
        {node(0, {{1, "/2"}, {2, "+1"}}, {3, 2}), node(1, {{2, "+1"}, {1, "/2"}}, {1, 1})}, {1, 2});
    EXPECT_EQ(checks(v)["agreement"], 1);
    EXPECT_NE(v.front().detail.find("3/2 (1.5) vs 1 (1)"), std::string::npos) << v.front().detail;
}

TEST(LectureChecker, CatchesSameLogDifferentState) {
    const std::vector<OpRequest> log{{1, "+1"}};
    auto v = check_lecture_logs({node(0, log, {2, 1}), node(1, log, {3, 1})}, {1});
    EXPECT_EQ(checks(v)["agreement"], 1);
}

TEST(LectureChecker, PrefixIsAgreementButMissingIsLiveness) {
    auto v = check_lecture_logs(
        {node(0, {{1, "+1"}, {2, "/2"}}, {1, 1}), node(1, {{1, "+1"}}, {2, 1})}, {1, 2});
    EXPECT_EQ(checks(v)["agreement"], 0);
    EXPECT_EQ(checks(v)["liveness"], 1);
}

TEST(LectureChecker, CatchesDuplicateAndUnsubmittedRequests) {
    auto v = check_lecture_logs({node(0, {{1, "+1"}, {1, "+1"}, {7, "*3"}}, {9, 1})}, {1});
    EXPECT_EQ(checks(v)["validity"], 2);
    // A request made up by a Byzantine node is not a validity violation.
    auto w = check_lecture_logs({node(0, {{1, "+1"}, {kByzantineIdBase + 3, "*3"}}, {6, 1})}, {1});
    EXPECT_TRUE(w.empty());
}

TEST(LectureSim, NaiveReproducesTheLectureExample) {
    LectureOptions o;
    o.protocol = LectureProtocol::Naive;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const LectureReport r = run_lecture_seed(o, seed);
        EXPECT_FALSE(r.agreement) << seed;
        EXPECT_TRUE(r.liveness) << seed;
        // Node 0 got "/2" from its client first: 1/2 + 1; node 1 got "+1": (1+1)/2.
        ASSERT_EQ(r.honest.size(), 4u);
        EXPECT_EQ(r.honest[0].state, (Rational{3, 2})) << seed;
        EXPECT_EQ(r.honest[1].state, (Rational{1, 1})) << seed;
        EXPECT_EQ(r.messages, 6u) << seed;  // two requests, each sent to three others
    }
}

TEST(LectureSim, NaiveDivergesOnBothNetworksAndWithByzantineNodes) {
    for (auto net : {LectureNetwork::Synchronous, LectureNetwork::Asynchronous}) {
        for (std::uint32_t f : {0u, 1u}) {
            LectureOptions o;
            o.protocol = LectureProtocol::Naive;
            o.network = net;
            o.faulty = f;
            o.extra_requests = 20;
            for (std::uint64_t seed = 1; seed <= 20; ++seed)
                EXPECT_FALSE(run_lecture_seed(o, seed).agreement) << seed;
        }
    }
}

TEST(LectureSim, SyncAgreementAndLivenessWithTByzantineUnderSynchrony) {
    for (std::uint32_t n : {4u, 7u}) {
        LectureOptions o;
        o.nodes = n;
        o.faulty = (n - 1) / 3;
        o.extra_requests = 22;
        std::uint64_t byz_faults = 0, bottom = 0;
        const std::uint64_t seeds = n == 4 ? 100 : 30;
        for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
            const LectureReport r = run_lecture_seed(o, seed);
            EXPECT_TRUE(r.agreement && r.liveness)
                << "n=" << n << " seed " << seed << " " << r.params << ": "
                << (r.violations.empty() ? "" : r.violations.front().detail);
            EXPECT_TRUE(r.split_epochs.empty()) << seed;
            byz_faults += r.faults_on_byzantine;
            bottom += r.bottom_epochs;
        }
        // The Byzantine nodes did something: forgeries were blamed on them and
        // silent or equivocating leaders cost epochs.
        EXPECT_GT(byz_faults, 0u);
        EXPECT_GT(bottom, 0u);
    }
}

TEST(LectureSim, SyncLosesAgreementWhenDelaysExceedTheBound) {
    LectureOptions o;
    o.network = LectureNetwork::Asynchronous;
    o.extra_requests = 22;
    int lost = 0, split = 0;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const LectureReport r = run_lecture_seed(o, seed);
        lost += !r.agreement || !r.liveness;
        split += !r.split_epochs.empty();
        EXPECT_GT(r.late_chains, 0u) << seed;
    }
    EXPECT_GT(lost, 0);
    EXPECT_GE(split, lost);  // every loss comes from an epoch some nodes ended with ⊥
}

TEST(LectureSim, WeakenedDolevStrongIsCaught) {
    LectureOptions o;
    o.faulty = 1;
    o.behaviours = {LectureByz::LateChain};
    o.extra_requests = 22;
    int lost_weak = 0, lost_strict = 0;
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        lost_strict += !run_lecture_seed(o, seed).agreement;
        o.weak_ds = true;
        lost_weak += !run_lecture_seed(o, seed).agreement;
        o.weak_ds = false;
    }
    EXPECT_EQ(lost_strict, 0);
    EXPECT_GT(lost_weak, 0);
}

TEST(LectureSim, ASeedReplaysExactly) {
    LectureOptions o;
    o.network = LectureNetwork::Asynchronous;
    o.faulty = 1;
    o.extra_requests = 10;
    const LectureReport a = run_lecture_seed(o, 17), b = run_lecture_seed(o, 17);
    EXPECT_EQ(a.params, b.params);
    EXPECT_EQ(a.messages, b.messages);
    ASSERT_EQ(a.honest.size(), b.honest.size());
    for (std::size_t i = 0; i < a.honest.size(); ++i) EXPECT_EQ(a.honest[i].log, b.honest[i].log);
}

}  // namespace
}  // namespace tob::sim
