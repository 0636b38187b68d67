// Tests of consensus/dolev_strong: validity with an honest sender, agreement
// with t faulty nodes including an equivocating sender (scripted schedules and
// a randomized adversary that may deliver any chain it can build to any honest
// node in any round), and the two rules whose removal breaks agreement: "r
// signatures in round r" (TestKnobs::accept_short_chains) and the synchrony
// bound (a chain that arrives after round t+1).
//
// The harness is lock-step: what an honest node sends while it is in round r
// is delivered in round r+1 (the sender's own first message in round 1).
// Randomness (std::mt19937_64 with fixed seeds) lives in this file only.

#include "consensus/dolev_strong.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "consensus/fast_crypto.h"

namespace tob::consensus {
namespace {

Bytes val(const char* s) { return Bytes(s, s + std::strlen(s)); }

struct Delivery {
    NodeId to = 0;
    NodeId from = 0;
    DsMessage message;
};

/// n nodes; the ids in `byzantine` run no instance, the test speaks for them.
class DsNet {
  public:
    DsNet(std::uint32_t n, std::uint32_t t, NodeId sender, std::set<NodeId> byzantine,
          DsParams::TestKnobs knobs = {})
        : n_(n),
          t_(t),
          sender_(sender),
          byz_(std::move(byzantine)),
          world_(FastWorld::make(n, t, 99)),
          inbox_(t + 3) {
        for (NodeId i = 0; i < n; ++i)
            suites_.push_back(std::make_unique<FastCryptoSuite>(world_, i));
        for (NodeId i = 0; i < n; ++i) {
            if (byz_.count(i)) continue;
            DsParams p;
            p.n = n;
            p.t = t;
            p.self = i;
            p.sender = sender;
            p.session = 5;
            p.value_bytes_max = 64;
            p.knobs = knobs;
            nodes_.emplace(i, std::make_unique<DolevStrong>(p, *suites_[i]));
        }
    }

    bool honest(NodeId i) const { return !byz_.count(i); }
    DolevStrong& node(NodeId i) { return *nodes_.at(i); }
    const CryptoSuite& suite(NodeId i) const { return *suites_[i]; }

    /// A chain for `value` signed by `signers` (the first should be the sender).
    DsMessage chain(const Bytes& value, const std::vector<NodeId>& signers) const {
        DsMessage m{5, sender_, value, {}};
        for (NodeId s : signers)
            m.chain.push_back(DolevStrong::sign_link(*suites_[s], s, 5, sender_, value));
        return m;
    }

    /// Queue `m` from `from` to `to`, delivered in `round` (1..t+2; t+2 = too late).
    void inject(std::uint32_t round, NodeId from, NodeId to, DsMessage m) {
        inbox_.at(round).push_back({to, from, std::move(m)});
    }
    void honest_sender_proposes(const Bytes& v) {
        DsStep s = node(sender_).propose(v);
        broadcast(1, sender_, s);
    }

    /// Runs rounds 1..t+1 (and delivers round t+2 as "late" with round t+2).
    void run(std::uint32_t late_rounds = 0) {
        for (std::uint32_t r = 1; r <= t_ + 1 + late_rounds; ++r) {
            if (on_round) on_round(r);
            auto batch = std::move(inbox_.at(r));
            for (auto& d : batch) {
                if (!honest(d.to)) continue;
                DsStep s = node(d.to).handle_message(r, d.from, d.message);
                for (const auto& f : s.faults) faults.push_back(f);
                broadcast(r + 1, d.to, s);
            }
        }
    }

    /// Outputs of the honest nodes.
    std::map<NodeId, std::optional<Bytes>> outputs() const {
        std::map<NodeId, std::optional<Bytes>> out;
        for (const auto& [i, n] : nodes_) out[i] = n->output();
        return out;
    }
    bool agree() const {
        auto out = outputs();
        for (const auto& [i, o] : out)
            if (o != out.begin()->second) return false;
        return true;
    }

    std::function<void(std::uint32_t)> on_round;  // the adversary's hook, before delivery
    std::vector<DsMessage> seen;                  // every chain an honest node sent
    std::vector<Fault> faults;
    std::set<NodeId> late_to;  // honest messages to these nodes arrive in round t+2

  private:
    void broadcast(std::uint32_t round, NodeId from, const DsStep& s) {
        for (const auto& m : s.broadcast) {
            seen.push_back(m);
            for (NodeId to = 0; to < n_; ++to) {
                const std::uint32_t at = late_to.count(to) ? t_ + 2 : round;
                if (to != from && at < inbox_.size()) inbox_[at].push_back({to, from, m});
            }
        }
    }

    std::uint32_t n_, t_;
    NodeId sender_;
    std::set<NodeId> byz_;
    std::shared_ptr<const FastWorld> world_;
    std::vector<std::unique_ptr<FastCryptoSuite>> suites_;
    std::map<NodeId, std::unique_ptr<DolevStrong>> nodes_;
    std::vector<std::vector<Delivery>> inbox_;
};

TEST(DolevStrong, ValidityHonestSenderEveryHonestNodeOutputsItsValue) {
    for (std::uint32_t n : {4u, 7u, 10u}) {
        const std::uint32_t t = (n - 1) / 3;
        std::set<NodeId> byz;
        for (NodeId i = 1; i <= t; ++i) byz.insert(i);
        DsNet net(n, t, 0, byz);
        const Bytes v = val("v"), w = val("w");
        net.honest_sender_proposes(v);
        // The faulty nodes try to make another value count: their own signature
        // under the sender's id, and the sender's link for v pasted onto w.
        DsMessage own = net.chain(w, {1});
        own.chain[0].signer = 0;
        DsMessage pasted = net.chain(v, {0});
        pasted.value = w;
        for (NodeId to = t + 1; to < n; ++to) {
            net.inject(1, 1, to, own);
            net.inject(2, 1, to, pasted);
        }
        net.run();
        for (const auto& [i, o] : net.outputs()) EXPECT_EQ(o, v) << "n=" << n << " node " << i;
        // Every forged chain was blamed on the faulty node that sent it, never on an honest one.
        EXPECT_FALSE(net.faults.empty());
        for (const auto& f : net.faults) EXPECT_TRUE(byz.count(f.culprit)) << f.detail;
    }
}

TEST(DolevStrong, AgreementEquivocatingSenderSplitsItsValues) {
    // n = 4, t = 1: the faulty sender sends v to nodes 1, 2 and w to node 3.
    DsNet net(4, 1, 0, {0});
    const Bytes v = val("v"), w = val("w");
    net.inject(1, 0, 1, net.chain(v, {0}));
    net.inject(1, 0, 2, net.chain(v, {0}));
    net.inject(1, 0, 3, net.chain(w, {0}));
    net.run();
    EXPECT_TRUE(net.agree());
    for (const auto& [i, o] : net.outputs()) EXPECT_EQ(o, std::nullopt) << "node " << i;
}

TEST(DolevStrong, AgreementLateRevealWithColludersReachesEveryone) {
    // n = 7, t = 2: sender 0 and colluder 1. v to all in round 1; in round 2
    // (= t) a 2-signature chain for w to node 6 only. Node 6 relays it with 3
    // signatures, so everyone holds {v, w} and outputs ⊥ together.
    DsNet net(7, 2, 0, {0, 1});
    const Bytes v = val("v"), w = val("w");
    for (NodeId to = 2; to < 7; ++to) net.inject(1, 0, to, net.chain(v, {0}));
    net.inject(2, 1, 6, net.chain(w, {0, 1}));
    // And in round 3 (= t+1) a 2-signature chain for x to node 5: too short.
    net.inject(3, 1, 5, net.chain(val("x"), {0, 1}));
    net.run();
    EXPECT_TRUE(net.agree());
    EXPECT_EQ(net.outputs().begin()->second, std::nullopt);
    EXPECT_EQ(net.node(5).accepted().size(), 2u);
    EXPECT_GE(net.node(5).stats().short_chain + net.node(5).stats().duplicate, 1u);
}

/// The scripted attack on the "r signatures in round r" rule: v to everyone in
/// round 1, and a chain for w with only the sender's signature to one honest
/// node in the last round, too late for it to be relayed.
bool short_chain_attack_agrees(std::uint32_t n, DsParams::TestKnobs knobs) {
    const std::uint32_t t = (n - 1) / 3;
    std::set<NodeId> byz;
    for (NodeId i = 0; i < t; ++i) byz.insert(i);  // the sender is node 0
    DsNet net(n, t, 0, byz, knobs);
    for (NodeId to = static_cast<NodeId>(t); to < n; ++to)
        net.inject(1, 0, to, net.chain(val("v"), {0}));
    net.inject(t + 1, 0, static_cast<NodeId>(n - 1), net.chain(val("w"), {0}));
    net.run();
    return net.agree();
}

TEST(DolevStrong, AcceptingShortChainsBreaksAgreement) {
    for (std::uint32_t n : {4u, 7u}) {
        EXPECT_TRUE(short_chain_attack_agrees(n, {})) << n;
        DsParams::TestKnobs weak;
        weak.accept_short_chains = true;
        EXPECT_FALSE(short_chain_attack_agrees(n, weak)) << n;
    }
}

TEST(DolevStrong, ChainArrivingAfterTheLastRoundBreaksAgreement) {
    // The synchrony bound is an assumption, not a detail: the honest sender's
    // message to node 3 (and every relay to it) arrives only after round t+1.
    DsNet net(4, 1, 0, {});
    const Bytes v = val("v");
    net.late_to = {3};
    net.honest_sender_proposes(v);
    net.run(/*late_rounds=*/1);
    auto out = net.outputs();
    EXPECT_EQ(out[1], v);
    EXPECT_EQ(out[2], v);
    EXPECT_EQ(out[3], std::nullopt);  // node 3 dropped every late copy
    EXPECT_GE(net.node(3).stats().out_of_rounds, 1u);
    EXPECT_FALSE(net.agree());
}

/// The randomized adversary: the faulty nodes (the sender among them) know
/// every chain honest nodes sent and can sign with their own keys. In each
/// round they deliver to random honest nodes chains built from a known chain
/// or a fresh value, extended by random faulty signatures. Returns the number
/// of trials (out of `trials`) in which honest outputs differed, and counts
/// how often a value (not ⊥) was the common output.
int random_adversary(std::uint32_t n, std::uint32_t trials, DsParams::TestKnobs knobs,
                     int* value_outputs) {
    const std::uint32_t t = (n - 1) / 3;
    std::mt19937_64 rng(7 * n + knobs.accept_short_chains);
    int disagreements = 0;
    for (std::uint32_t trial = 0; trial < trials; ++trial) {
        std::set<NodeId> byz{0};
        while (byz.size() < t) byz.insert(static_cast<NodeId>(1 + rng() % (n - 1)));
        std::vector<NodeId> faulty(byz.begin(), byz.end()), honest;
        for (NodeId i = 0; i < n; ++i)
            if (!byz.count(i)) honest.push_back(i);
        DsNet net(n, t, 0, byz, knobs);
        const Bytes values[] = {val("v"), val("w"), val("x")};
        net.on_round = [&](std::uint32_t r) {
            const int sends = static_cast<int>(rng() % 4);
            for (int k = 0; k < sends; ++k) {
                DsMessage m;
                if (!net.seen.empty() && rng() % 2) {
                    m = net.seen[rng() % net.seen.size()];
                } else {
                    m = net.chain(values[rng() % 3], {0});
                }
                std::set<NodeId> in_chain;
                for (const auto& l : m.chain) in_chain.insert(l.signer);
                for (NodeId f : faulty)
                    if (!in_chain.count(f) && rng() % 2)
                        m.chain.push_back(DolevStrong::sign_link(net.suite(f), f, 5, 0, m.value));
                for (NodeId h : honest)
                    if (rng() % 3 == 0) net.inject(r, faulty[rng() % faulty.size()], h, m);
            }
        };
        net.run();
        if (!net.agree())
            ++disagreements;
        else if (net.outputs().begin()->second)
            ++*value_outputs;
    }
    return disagreements;
}

TEST(DolevStrong, AgreementAgainstRandomFaultySendersAndColluders) {
    for (std::uint32_t n : {4u, 7u}) {
        int values = 0;
        EXPECT_EQ(random_adversary(n, n == 4 ? 3000 : 600, {}, &values), 0) << n;
        EXPECT_GT(values, 0) << "the adversary never let a value through: the test is too weak";
    }
}

TEST(DolevStrong, RandomAdversaryFindsTheWeakenedRule) {
    DsParams::TestKnobs weak;
    weak.accept_short_chains = true;
    int values = 0;
    EXPECT_GT(random_adversary(4, 3000, weak, &values), 0);
}

TEST(DolevStrong, MalformedChainsAreDroppedAndBlamedOnTheirSender) {
    DsNet net(4, 1, 0, {3});
    const Bytes v = val("v");
    DsMessage repeated = net.chain(v, {0});
    repeated.chain.push_back(repeated.chain[0]);  // padding with the sender's own link
    DsMessage not_sender = net.chain(v, {3});
    DsMessage too_long = net.chain(v, {0, 3});
    while (too_long.chain.size() <= 4) too_long.chain.push_back(too_long.chain.back());
    DsMessage non_member = net.chain(v, {0});
    non_member.chain.push_back({9, {}});
    DsMessage big = net.chain(Bytes(65, 1), {0});
    DsMessage other_session = net.chain(v, {0});
    other_session.session = 6;
    for (auto* m : {&repeated, &not_sender, &too_long, &non_member, &big, &other_session})
        net.inject(2, 3, 1, *m);
    net.run();
    EXPECT_EQ(net.node(1).output(), std::nullopt);
    EXPECT_EQ(net.node(1).stats().invalid, 5u);
    EXPECT_EQ(net.node(1).stats().wrong_session, 1u);
    for (const auto& f : net.faults) EXPECT_EQ(f.culprit, 3) << f.detail;
}

TEST(DolevStrong, EachNodeRelaysAtMostTwoValues) {
    DsNet net(4, 1, 0, {0});
    for (const char* s : {"a", "b", "c", "d"}) net.inject(1, 0, 1, net.chain(val(s), {0}));
    net.run();
    std::size_t from_node1 = 0;
    for (const auto& m : net.seen)
        if (m.chain.size() == 2 && m.chain[1].signer == 1) ++from_node1;
    EXPECT_EQ(from_node1, 2u);
    EXPECT_EQ(net.node(1).accepted().size(), 2u);
    EXPECT_TRUE(net.agree());
}

}  // namespace
}  // namespace tob::consensus
