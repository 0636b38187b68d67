// Tests of consensus/numeric_machine: the lecture's example, exact arithmetic,
// and deterministic rejection of malformed, dividing-by-zero and overflowing ops.

#include "consensus/numeric_machine.h"

#include <gtest/gtest.h>

#include <limits>

namespace tob::consensus {
namespace {

Rational run(std::initializer_list<const char*> ops, Rational start = Rational::integer(1)) {
    NumericMachine m(start);
    for (const char* op : ops) m.apply(op);
    return m.state();
}

TEST(NumericMachine, LectureExampleOrderMatters) {
    // 1 /2 = 1/2, +1 = 3/2;   1 +1 = 2, /2 = 1.
    EXPECT_EQ(run({"/2", "+1"}), (Rational{3, 2}));
    EXPECT_EQ(run({"+1", "/2"}), (Rational{1, 1}));
    EXPECT_EQ(run({"/2", "+1"}).decimal(), "1.5");
    EXPECT_EQ(run({"+1", "/2"}).decimal(), "1");
}

TEST(NumericMachine, FractionsStayInLowestTermsWithPositiveDenominator) {
    EXPECT_EQ(run({"/6", "*3"}), (Rational{1, 2}));
    EXPECT_EQ(run({"-3", "/4"}), (Rational{-1, 2}));
    EXPECT_EQ(run({"-3", "/4"}).decimal(), "-0.5");
    EXPECT_EQ(run({"/8"}).decimal(), "0.125");
    EXPECT_EQ(run({"/3"}).decimal(), std::nullopt);  // 1/3 has no finite decimal
    EXPECT_EQ(run({"/3"}).str(), "1/3");
    EXPECT_EQ(run({"*0"}), (Rational{0, 1}));
    EXPECT_EQ(Rational::make(4, -6), (Rational{-2, 3}));
}

TEST(NumericMachine, DivisionByZeroIsRejectedAndLeavesTheState) {
    NumericMachine m;
    EXPECT_FALSE(m.apply("/0"));
    EXPECT_EQ(m.state(), Rational::integer(1));
    EXPECT_EQ(m.rejected(), 1u);
    EXPECT_EQ(m.applied(), 0u);
}

TEST(NumericMachine, OverflowIsRejectedNotWrapped) {
    const std::int64_t big = std::numeric_limits<std::int64_t>::max();
    NumericMachine m(Rational::integer(big));
    EXPECT_FALSE(m.apply("+1"));
    EXPECT_FALSE(m.apply("*2"));
    EXPECT_EQ(m.state(), Rational::integer(big));
    EXPECT_TRUE(m.apply("/2"));
    EXPECT_EQ(m.state(), (Rational{big, 2}));
    EXPECT_TRUE(m.apply("-1"));  // (big - 2)/2 reduces; still fits
}

TEST(NumericMachine, MalformedOpsAreRejected) {
    for (const char* bad : {"", "+", "x2", "+-1", "+01", "+ 1", "+1.5", "++1", "/2a",
                            "+10000000000", "*99999999999999999999"}) {
        NumericMachine m;
        EXPECT_FALSE(m.apply(bad)) << bad;
        EXPECT_EQ(m.state(), Rational::integer(1)) << bad;
    }
    EXPECT_TRUE(NumericOp::parse("+0").has_value());
    EXPECT_TRUE(NumericOp::parse("*1000000000").has_value());
    EXPECT_EQ(NumericOp::parse("/2")->str(), "/2");
}

TEST(NumericMachine, SameSequenceSameStateOnTwoReplicas) {
    const char* ops[] = {"*3", "/2", "+7", "/0", "-1", "/5", "*3", "+1"};
    NumericMachine a, b;
    for (const char* op : ops) {
        EXPECT_EQ(a.apply(op), b.apply(op));
        EXPECT_EQ(a.state(), b.state());
    }
    // 1 *3 = 3, /2 = 3/2, +7 = 17/2, /0 rejected, -1 = 15/2, /5 = 3/2, *3 = 9/2, +1 = 11/2.
    EXPECT_EQ(a.state(), (Rational{11, 2}));
    EXPECT_EQ(a.rejected(), 1u);
}

}  // namespace
}  // namespace tob::consensus
