// The shared catalogue of test-only Byzantine behaviours (consensus/byzantine_catalogue.h):
// names round-trip, each harness accepts what it implements and refuses the rest
// with a message that says why.

#include "consensus/byzantine_catalogue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <variant>

namespace {

using tob::consensus::Byzantine;
using tob::consensus::byzantine_behaviours;
using tob::consensus::byzantine_catalogue;
using tob::consensus::byzantine_from_name;
using tob::consensus::byzantine_help;
using tob::consensus::ByzantineHarness;
using tob::consensus::implements;
using tob::consensus::parse_byzantine;

std::set<std::string> names_of(ByzantineHarness h) {
    std::set<std::string> out;
    for (Byzantine b : byzantine_behaviours(h)) out.insert(std::string(to_string(b)));
    return out;
}

TEST(ByzantineCatalogue, EveryNameParsesBackToItsBehaviour) {
    for (const auto& info : byzantine_catalogue()) {
        auto b = byzantine_from_name(info.name);
        ASSERT_TRUE(b.has_value()) << info.name;
        EXPECT_EQ(*b, info.behaviour) << info.name;
        EXPECT_EQ(to_string(info.behaviour), info.name);
        for (ByzantineHarness h : {ByzantineHarness::Tobsim, ByzantineHarness::Tobd}) {
            if (!implements(h, info.behaviour)) continue;
            auto parsed = parse_byzantine(info.name, h);
            ASSERT_TRUE(std::holds_alternative<Byzantine>(parsed)) << info.name;
            EXPECT_EQ(std::get<Byzantine>(parsed), info.behaviour);
        }
    }
}

TEST(ByzantineCatalogue, EveryEnumeratorHasExactlyOneEntryWithAUniqueName) {
    std::set<Byzantine> behaviours;
    std::set<std::string> names;
    for (const auto& info : byzantine_catalogue()) {
        EXPECT_TRUE(behaviours.insert(info.behaviour).second) << info.name;
        EXPECT_TRUE(names.insert(std::string(info.name)).second) << info.name;
        EXPECT_FALSE(info.summary.empty()) << info.name;
        EXPECT_EQ(info.summary.find('\n'), std::string::npos) << info.name;
    }
    for (std::uint8_t v = 0; v <= static_cast<std::uint8_t>(Byzantine::CrashStop); ++v)
        EXPECT_EQ(behaviours.count(static_cast<Byzantine>(v)), 1u) << int(v);
}

// The behaviours each harness really implements: tests/sim/byzantine.cpp (as
// docs/simulator.md lists them) and daemon/byzantine.cpp (as the fault suite runs
// them: byzantine_modes and byzantine_over_bound).
TEST(ByzantineCatalogue, HarnessColumnsMatchTheImplementations) {
    EXPECT_EQ(
        names_of(ByzantineHarness::Tobsim),
        (std::set<std::string>{"silent", "equivocate", "conflicting-seen", "lying-aba", "bad-coin",
                               "forge", "replay", "junk", "forge-request", "window-edge",
                               "withhold", "lying-commit", "corrupt-snapshot", "crash-stop"}));
    EXPECT_EQ(names_of(ByzantineHarness::Tobd),
              (std::set<std::string>{"silent", "equivocate", "conflicting-seen", "lying-aba",
                                     "bad-coin", "replay", "collude", "corrupt-snapshot"}));
}

// tobsim draws each faulty node's behaviours from its list in catalogue order: the
// order of the first twelve is what old seeds replay with; corrupt-snapshot came
// after them, then crash-stop (which "all" leaves out: tests/sim/sim.cpp).
TEST(ByzantineCatalogue, SimulatorOrderIsTheSeedReplayOrder) {
    const auto sim = byzantine_behaviours(ByzantineHarness::Tobsim);
    ASSERT_EQ(sim.size(), 14u);
    EXPECT_EQ(sim.front(), Byzantine::Silent);
    EXPECT_EQ(sim[11], Byzantine::LyingCommit);
    EXPECT_EQ(sim[12], Byzantine::CorruptSnapshot);
    EXPECT_EQ(sim.back(), Byzantine::CrashStop);
    EXPECT_TRUE(std::is_sorted(sim.begin(), sim.end()));
}

TEST(ByzantineCatalogue, EachHarnessRefusesWhatOnlyTheOtherImplements) {
    auto tobd_forge = parse_byzantine("forge", ByzantineHarness::Tobd);
    ASSERT_TRUE(std::holds_alternative<std::string>(tobd_forge));
    EXPECT_NE(std::get<std::string>(tobd_forge).find("'forge' is implemented by tobsim only"),
              std::string::npos)
        << std::get<std::string>(tobd_forge);

    auto sim_collude = parse_byzantine("collude", ByzantineHarness::Tobsim);
    ASSERT_TRUE(std::holds_alternative<std::string>(sim_collude));
    EXPECT_NE(std::get<std::string>(sim_collude).find("'collude' is implemented by tobd only"),
              std::string::npos)
        << std::get<std::string>(sim_collude);

    for (const auto& info : byzantine_catalogue()) {
        for (ByzantineHarness h : {ByzantineHarness::Tobsim, ByzantineHarness::Tobd}) {
            if (implements(h, info.behaviour)) continue;
            auto parsed = parse_byzantine(info.name, h);
            ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << info.name;
            EXPECT_NE(std::get<std::string>(parsed).find("only, not by"), std::string::npos);
        }
    }
}

TEST(ByzantineCatalogue, UnknownNameIsRefusedWithTheNamesTheHarnessKnows) {
    for (ByzantineHarness h : {ByzantineHarness::Tobsim, ByzantineHarness::Tobd}) {
        for (const char* bad : {"", "Equivocate", "equivocate ", "none", "lying_aba"}) {
            auto parsed = parse_byzantine(bad, h);
            ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << bad;
            const auto& msg = std::get<std::string>(parsed);
            EXPECT_NE(msg.find("unknown Byzantine behaviour"), std::string::npos) << msg;
            for (const auto& name : names_of(h)) EXPECT_NE(msg.find(name), std::string::npos);
        }
    }
}

TEST(ByzantineCatalogue, HelpHasOneLinePerImplementedBehaviour) {
    for (ByzantineHarness h : {ByzantineHarness::Tobsim, ByzantineHarness::Tobd}) {
        const std::string help = byzantine_help(h, "  ");
        EXPECT_EQ(static_cast<std::size_t>(std::count(help.begin(), help.end(), '\n')),
                  byzantine_behaviours(h).size());
        for (const auto& name : names_of(h))
            EXPECT_NE(help.find("  " + name + " "), std::string::npos) << name;
    }
    EXPECT_EQ(byzantine_help(ByzantineHarness::Tobd, "").find("forge"), std::string::npos);
}

}  // namespace
