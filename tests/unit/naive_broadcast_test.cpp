// Tests of consensus/naive_broadcast: applying requests in arrival order makes
// honest replicas diverge on an honest network (the lecture's "/2" and "+1"),
// although every request reaches every node exactly once.

#include "consensus/naive_broadcast.h"

#include <gtest/gtest.h>

#include <deque>

namespace tob::consensus {
namespace {

TEST(NaiveBroadcast, ConcurrentRequestsDivergeTheLectureExample) {
    NaiveNode n0(0, Rational::integer(1)), n1(1, Rational::integer(1));
    // Two clients, at the same moment: "/2" to node 0, "+1" to node 1.
    NaiveStep s0 = n0.handle_client({1, "/2"});
    NaiveStep s1 = n1.handle_client({2, "+1"});
    ASSERT_EQ(s0.broadcast.size(), 1u);
    ASSERT_EQ(s1.broadcast.size(), 1u);
    // Each node's copy of the other request arrives afterwards.
    (void)n1.handle_message(0, s0.broadcast[0]);
    (void)n0.handle_message(1, s1.broadcast[0]);
    EXPECT_EQ(n0.machine().state(), (Rational{3, 2}));  // 1 /2 +1
    EXPECT_EQ(n1.machine().state(), (Rational{1, 1}));  // 1 +1 /2
    EXPECT_NE(n0.machine().state(), n1.machine().state());
    // Both applied both requests: nothing was lost, only the order differs.
    EXPECT_EQ(n0.log().size(), 2u);
    EXPECT_EQ(n1.log().size(), 2u);
}

TEST(NaiveBroadcast, SequentialRequestsAgree) {
    // With one request in flight at a time every node sees the same order.
    std::vector<NaiveNode> nodes;
    for (NodeId i = 0; i < 4; ++i) nodes.emplace_back(i, Rational::integer(1));
    const OpRequest reqs[] = {{1, "/2"}, {2, "+1"}, {3, "*3"}};
    for (std::size_t k = 0; k < 3; ++k) {
        NaiveNode& entry = nodes[k % 4];
        NaiveStep s = entry.handle_client(reqs[k]);
        for (auto& n : nodes)
            if (n.self() != entry.self())
                for (const auto& m : s.broadcast) (void)n.handle_message(entry.self(), m);
    }
    for (const auto& n : nodes) EXPECT_EQ(n.machine().state(), (Rational{9, 2}));  // (1/2+1)*3
}

TEST(NaiveBroadcast, EachRequestIsAppliedOnce) {
    NaiveNode n(0, Rational::integer(1));
    (void)n.handle_client({7, "+1"});
    NaiveStep again = n.handle_message(2, {7, "+1"});
    EXPECT_TRUE(again.applied.empty());
    NaiveStep client_again = n.handle_client({7, "+1"});
    EXPECT_TRUE(client_again.broadcast.empty());
    EXPECT_EQ(n.machine().state(), Rational::integer(2));
}

}  // namespace
}  // namespace tob::consensus
