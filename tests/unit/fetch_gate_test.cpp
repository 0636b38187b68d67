// The ingress gate of members' fetch requests (daemon/fetch_gate.h): a member
// that floods fetch requests gets at most the request rate admitted, none while
// its answer bytes are used up, and the other members are not affected.

#include "daemon/fetch_gate.h"

#include <gtest/gtest.h>

namespace tob::daemon {
namespace {

TEST(FetchGate, a_flooding_member_gets_at_most_burst_plus_rate_times_time_admitted) {
    FetchGate gate(4, 1u << 30, 100, 400);  // answers never limit here
    std::uint64_t admitted = 0;
    for (std::uint64_t now = 0; now < 10'000; ++now) {  // 10 s
        for (int k = 0; k < 20; ++k)                    // 20,000 requests a second
            if (gate.admit(3, now) == FetchGate::Verdict::Admit) ++admitted;
    }
    EXPECT_LE(admitted, 400u + 10 * 100u + 1);
    EXPECT_GE(admitted, 10 * 100u);  // it is served at the rate, not starved
}

TEST(FetchGate, an_over_rate_member_leaves_the_other_members_admitted) {
    FetchGate gate(4, 1u << 30, 100, 10);
    for (int k = 0; k < 1000; ++k) gate.admit(3, 0);
    EXPECT_EQ(gate.admit(3, 0), FetchGate::Verdict::OverRate);
    for (std::size_t m = 0; m < 3; ++m) EXPECT_EQ(gate.admit(m, 0), FetchGate::Verdict::Admit);
}

TEST(FetchGate, a_member_without_answer_bytes_is_refused_at_ingress_until_they_refill) {
    FetchGate gate(4, 1000, 1000, 1000);
    ASSERT_EQ(gate.admit(1, 0), FetchGate::Verdict::Admit);
    ASSERT_TRUE(gate.may_answer(1, 0));
    gate.charge_answer(1, 3000, 0);  // one large answer: 2000 bytes in debt
    EXPECT_EQ(gate.admit(1, 1000), FetchGate::Verdict::NoAnswerBytes);
    EXPECT_FALSE(gate.may_answer(1, 1000));
    EXPECT_EQ(gate.admit(2, 1000), FetchGate::Verdict::Admit);  // another member's bytes
    EXPECT_EQ(gate.admit(1, 2001), FetchGate::Verdict::Admit);
}

TEST(FetchGate, unknown_senders_share_one_limit_apart_from_the_members) {
    FetchGate gate(4, 1u << 30, 10, 5);
    std::uint64_t admitted = 0;
    for (std::size_t from : {4u, 7u, 1000u, 65535u})
        for (int k = 0; k < 5; ++k)
            if (gate.admit(from, 0) == FetchGate::Verdict::Admit) ++admitted;
    EXPECT_EQ(admitted, 5u);
    EXPECT_EQ(gate.admit(0, 0), FetchGate::Verdict::Admit);
}

}  // namespace
}  // namespace tob::daemon
