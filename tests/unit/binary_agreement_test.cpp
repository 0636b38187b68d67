// Tests of consensus/binary_agreement: one test per threshold and per "first
// only" rule, a scripted schedule per rule showing that breaking it (TestKnobs)
// breaks agreement, validity or termination, randomized runs with silent and
// lying nodes, crash/restore, and the HoneyBadgerBFT issue #59 schedule.
//
// Randomness (std::mt19937_64 with fixed seeds) lives here, in test code only.

#include "consensus/binary_agreement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "consensus/fast_crypto.h"

namespace tob::consensus {
namespace {

constexpr std::uint8_t mask(bool b) { return b ? 2 : 1; }
constexpr std::uint8_t kBoth = 3;

Digest test_chain() {
    Digest d{};
    d.fill(0x42);
    return d;
}

AbaMessage make(AbaType type, Round r, std::uint8_t value) {
    AbaMessage m;
    m.proposer = 0;
    m.round = r;
    m.type = type;
    m.value = value;
    return m;
}
AbaMessage bval(Round r, bool v) { return make(AbaType::Bval, r, v ? 1 : 0); }
AbaMessage aux(Round r, bool v) { return make(AbaType::Aux, r, v ? 1 : 0); }
AbaMessage conf(Round r, std::uint8_t set) { return make(AbaType::Conf, r, set); }
AbaMessage term(bool v) { return make(AbaType::Term, 0, v ? 1 : 0); }

Bytes share_of(const FastWorld& w, NodeId node, Epoch e, Round r) {
    return FastCryptoSuite::share_of(w, node, coin_name(test_chain(), e, 0, r));
}
AbaMessage coin_msg(const FastWorld& w, NodeId node, Epoch e, Round r) {
    AbaMessage m = make(AbaType::Coin, r, 0);
    m.coin_share = share_of(w, node, e, r);
    return m;
}

/// The coin of ABA(epoch, proposer 0) round r, as an adversary holding every share sees it.
bool coin_value(const std::shared_ptr<const FastWorld>& w, Epoch e, Round r) {
    FastCryptoSuite any(w, 0);
    std::map<NodeId, Bytes> all;
    for (NodeId i = 0; i < w->n; ++i) all[i] = share_of(*w, i, e, r);
    auto c = any.combine_coin(coin_name(test_chain(), e, 0, r), all);
    EXPECT_TRUE(c.has_value());
    return c.value_or(false);
}

/// The first epoch whose coins satisfy `want` (scripted schedules depend on the coin,
/// which a strong adversary may know; the test picks an instance where it helps).
Epoch find_epoch(const std::shared_ptr<const FastWorld>& w,
                 const std::function<bool(const std::vector<bool>&)>& want, Round rounds = 4) {
    for (Epoch e = 0; e < 1000; ++e) {
        std::vector<bool> coins;
        for (Round r = 0; r < rounds; ++r) coins.push_back(coin_value(w, e, r));
        if (want(coins)) return e;
    }
    ADD_FAILURE() << "no epoch with the wanted coins";
    return 0;
}

std::size_t count(const AbaStep& s, AbaType type) {
    return static_cast<std::size_t>(std::count_if(
        s.messages.begin(), s.messages.end(), [&](const AbaMessage& m) { return m.type == type; }));
}
bool has(const AbaStep& s, AbaType type, Round r, std::uint8_t value) {
    return std::any_of(s.messages.begin(), s.messages.end(), [&](const AbaMessage& m) {
        return m.type == type && m.round == r && (type == AbaType::Coin || m.value == value);
    });
}
bool has_fault(const AbaStep& s, NodeId culprit, FaultKind kind) {
    return std::any_of(s.faults.begin(), s.faults.end(),
                       [&](const Fault& f) { return f.culprit == culprit && f.kind == kind; });
}

/// The knobs of the tests written for CONF and the threshold coin in every round:
/// they script rounds 0 and 1, which the protocol's schedule fixes (fixed_coin).
/// The rules they check are those of every threshold-coin round.
AbaParams::TestKnobs every_round(AbaParams::TestKnobs k = {}) {
    k.threshold_coin_every_round = true;
    return k;
}

AbaParams params_for(std::uint32_t n, NodeId self, Epoch epoch, AbaParams::TestKnobs knobs = {},
                     Round window = 16) {
    AbaParams p;
    p.n = n;
    p.t = max_faulty(n);
    p.self = self;
    p.chain_id = test_chain();
    p.epoch = epoch;
    p.proposer = 0;
    p.max_rounds_ahead = window;
    p.knobs = knobs;
    return p;
}

// ---- a single instance, fed by hand -----------------------------------------

/// Counts coin-share verifications (to check that verification is lazy).
class CountingSuite : public FastCryptoSuite {
  public:
    using FastCryptoSuite::FastCryptoSuite;
    bool verify_coin_share(NodeId from, ByteView name, ByteView share) const override {
        ++verifications;
        return FastCryptoSuite::verify_coin_share(from, name, share);
    }
    mutable int verifications = 0;
};

struct Solo {
    explicit Solo(std::uint32_t n, AbaParams::TestKnobs knobs = every_round(), Epoch e = 0,
                  Round window = 16)
        : world(FastWorld::make(n, max_faulty(n), 7)),
          crypto(world, 0),
          epoch(e),
          aba(params_for(n, 0, e, knobs, window), crypto) {}
    AbaStep from(NodeId j, const AbaMessage& m) { return aba.handle_message(j, m); }
    AbaStep share_from(NodeId j, Round r = 0) {
        return aba.handle_message(j, coin_msg(*world, j, epoch, r));
    }

    std::shared_ptr<const FastWorld> world;
    CountingSuite crypto;
    Epoch epoch;
    BinaryAgreement aba;
};

// ---- a deterministic test network -------------------------------------------

struct Packet {
    NodeId from;
    NodeId to;
    AbaMessage msg;
};

/// n instances (honest) or scripted senders (Byzantine, no instance), a queue of
/// (from, to, message), and checks run on every step: a decision never flips and
/// honest nodes never blame honest nodes.
class Net {
  public:
    Net(std::uint32_t n, std::set<NodeId> byzantine, AbaParams::TestKnobs knobs = every_round(),
        Epoch epoch = 0, Round window = 16, std::uint64_t world_seed = 7)
        : n_(n),
          knobs_(knobs),
          epoch_(epoch),
          window_(window),
          world_(FastWorld::make(n, max_faulty(n), world_seed)),
          byz_(std::move(byzantine)),
          node_(n),
          sent_(n),
          history_(n),
          decided_(n),
          decided_round_(n, 0) {
        for (NodeId i = 0; i < n; ++i) {
            suite_.push_back(std::make_unique<FastCryptoSuite>(world_, i));
            if (!byz_.count(i)) {
                node_[i] = std::make_unique<BinaryAgreement>(params_for(n, i, epoch, knobs, window),
                                                             *suite_[i]);
            }
        }
    }

    std::uint32_t n() const { return n_; }
    std::uint32_t t() const { return max_faulty(n_); }
    Epoch epoch() const { return epoch_; }
    const std::shared_ptr<const FastWorld>& world() const { return world_; }
    bool honest(NodeId i) const { return node_[i] != nullptr; }
    BinaryAgreement& node(NodeId i) { return *node_[i]; }
    std::vector<Packet>& queue() { return queue_; }
    const std::vector<std::optional<bool>>& decided() const { return decided_; }
    Round decided_round(NodeId i) const { return decided_round_[i]; }
    const std::vector<std::string>& violations() const { return violations_; }
    const std::vector<std::pair<NodeId, AbaMessage>>& broadcasts() const { return broadcasts_; }

    void input(NodeId i, bool v) { absorb(i, node_[i]->handle_input(v)); }

    /// A Byzantine (or any) sender's message, handed to `to` at once.
    void inject(NodeId from, NodeId to, const AbaMessage& m) {
        if (honest(to)) absorb(to, node_[to]->handle_message(from, m));
    }
    void inject_all(NodeId from, const std::vector<NodeId>& to, const AbaMessage& m) {
        for (NodeId j : to) inject(from, j, m);
    }

    void deliver_at(std::size_t k) {
        Packet p = std::move(queue_[k]);
        queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(k));
        if (honest(p.to)) absorb(p.to, node_[p.to]->handle_message(p.from, p.msg));
    }

    /// Delivers matching packets, including ones produced meanwhile, in queue order
    /// until none matches; returns how many were delivered.
    std::size_t deliver_while(const std::function<bool(const Packet&)>& pred) {
        std::size_t delivered = 0;
        for (;;) {
            auto it = std::find_if(queue_.begin(), queue_.end(), pred);
            if (it == queue_.end()) return delivered;
            deliver_at(static_cast<std::size_t>(it - queue_.begin()));
            ++delivered;
        }
    }

    /// Random delivery order among the packets matching `pred` until none matches.
    void deliver_random(std::mt19937_64& rng, const std::function<bool(const Packet&)>& pred,
                        std::size_t max_steps = 2'000'000) {
        std::vector<std::size_t> idx;
        for (std::size_t step = 0; step < max_steps; ++step) {
            idx.clear();
            for (std::size_t k = 0; k < queue_.size(); ++k) {
                if (pred(queue_[k])) idx.push_back(k);
            }
            if (idx.empty()) return;
            deliver_at(idx[rng() % idx.size()]);
        }
        ADD_FAILURE() << "deliver_random: step bound reached";
    }
    void deliver_all_random(std::mt19937_64& rng) {
        deliver_random(rng, [](const Packet&) { return true; });
    }

    /// Crash and restart: a fresh instance restored from its sent messages; peers
    /// re-publish everything they sent to it and it re-publishes its log (Repair).
    void restart(NodeId i) {
        node_[i] = std::make_unique<BinaryAgreement>(params_for(n_, i, epoch_, knobs_, window_),
                                                     *suite_[i]);
        node_[i]->restore(sent_[i]);
        queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                    [&](const Packet& p) { return p.to == i; }),
                     queue_.end());
        for (const Packet& p : history_[i]) queue_.push_back(p);
        for (const AbaMessage& m : sent_[i]) {
            for (NodeId j = 0; j < n_; ++j) {
                if (j != i && honest(j)) queue_.push_back({i, j, m});
            }
        }
    }

    bool all_honest_decided() const {
        for (NodeId i = 0; i < n_; ++i) {
            if (node_[i] && !decided_[i]) return false;
        }
        return true;
    }
    bool any_honest_decided() const {
        for (NodeId i = 0; i < n_; ++i) {
            if (node_[i] && decided_[i]) return true;
        }
        return false;
    }
    /// True if two honest nodes decided different values.
    bool disagreement() const {
        std::optional<bool> seen;
        for (NodeId i = 0; i < n_; ++i) {
            if (!node_[i] || !decided_[i]) continue;
            if (seen && *seen != *decided_[i]) return true;
            seen = decided_[i];
        }
        return false;
    }

    /// The adversary's view of the coin of round r: its own shares plus every honest
    /// share broadcast so far; nullopt while fewer than t+1 exist.
    std::optional<bool> adversary_coin(Round r) const {
        std::map<NodeId, Bytes> shares;
        for (NodeId b : byz_) shares[b] = share_of(*world_, b, epoch_, r);
        for (const auto& [from, m] : broadcasts_) {
            if (m.type == AbaType::Coin && m.round == r) shares[from] = m.coin_share;
        }
        return suite_[0]->combine_coin(coin_name(test_chain(), epoch_, 0, r), shares);
    }

  private:
    void absorb(NodeId i, AbaStep step) {
        for (const Fault& f : step.faults) {
            if (honest(f.culprit)) {
                violations_.push_back("node " + std::to_string(i) + " blamed honest node " +
                                      std::to_string(f.culprit) + ": " + f.detail);
            }
        }
        if (step.decision) {
            if (decided_[i] && *decided_[i] != *step.decision) {
                violations_.push_back("node " + std::to_string(i) + " flipped its decision");
            }
            if (!decided_[i]) {
                decided_[i] = step.decision;
                decided_round_[i] = node_[i]->round();
            }
        }
        if (node_[i]->decision() != decided_[i]) {
            violations_.push_back("node " + std::to_string(i) + " decision() disagrees with steps");
        }
        for (const AbaMessage& m : step.messages) {
            // Sign-log rule: one AUX and one CONF per round, one TERM — across restarts too.
            const bool slot = m.type == AbaType::Term || m.type == AbaType::Conf ||
                              (m.type == AbaType::Aux && !knobs_.aux_every_value);
            for (const AbaMessage& old : sent_[i]) {
                if (slot && old.type == m.type && old.value != m.value &&
                    (m.type == AbaType::Term || old.round == m.round)) {
                    violations_.push_back("node " + std::to_string(i) +
                                          " signed two payloads for one slot");
                }
            }
            sent_[i].push_back(m);
            broadcasts_.push_back({i, m});
            for (NodeId j = 0; j < n_; ++j) {
                if (j == i || !honest(j)) continue;
                queue_.push_back({i, j, m});
                history_[j].push_back({i, j, m});
            }
        }
    }

    std::uint32_t n_;
    AbaParams::TestKnobs knobs_;
    Epoch epoch_;
    Round window_;
    std::shared_ptr<const FastWorld> world_;
    std::set<NodeId> byz_;
    std::vector<std::unique_ptr<FastCryptoSuite>> suite_;
    std::vector<std::unique_ptr<BinaryAgreement>> node_;
    std::vector<Packet> queue_;
    std::vector<std::vector<AbaMessage>> sent_;  // per node, in send order (its sign-log)
    std::vector<std::vector<Packet>> history_;   // every honest packet ever addressed to j
    std::vector<std::pair<NodeId, AbaMessage>> broadcasts_;
    std::vector<std::optional<bool>> decided_;
    std::vector<Round> decided_round_;
    std::vector<std::string> violations_;
};

// Packet predicates.
auto is(AbaType type, Round r) {
    return [=](const Packet& p) { return p.msg.type == type && p.msg.round == r; };
}
auto is(AbaType type, Round r, bool v) {
    return [=](const Packet& p) {
        return p.msg.type == type && p.msg.round == r && p.msg.value == (v ? 1 : 0);
    };
}
auto from_to(std::set<NodeId> from, std::set<NodeId> to, std::function<bool(const Packet&)> what) {
    return [=](const Packet& p) { return from.count(p.from) && to.count(p.to) && what(p); };
}

#define EXPECT_NO_VIOLATIONS(net) \
    for (const std::string& violation_ : (net).violations()) ADD_FAILURE() << violation_

// =============================================================================
// One test per threshold
// =============================================================================

TEST(BinaryAgreement, aba_relay_needs_t_plus_1_bval) {
    Solo s(7);  // t = 2; no input: relaying does not wait for one
    EXPECT_EQ(count(s.from(1, bval(0, true)), AbaType::Bval), 0u);
    EXPECT_EQ(count(s.from(2, bval(0, true)), AbaType::Bval), 0u)
        << "t BVAL must not trigger a relay";
    AbaStep st = s.from(3, bval(0, true));
    EXPECT_TRUE(has(st, AbaType::Bval, 0, 1)) << "t+1 BVAL must trigger the relay";
    EXPECT_FALSE(s.aba.has_input());
}

TEST(BinaryAgreement, aba_bin_values_needs_2t_plus_1_bval) {
    Solo s(7);  // t = 2, 2t+1 = 5
    (void)s.aba.handle_input(false);
    (void)s.from(1, bval(0, true));
    (void)s.from(2, bval(0, true));
    AbaStep st = s.from(3, bval(0, true));  // t+1: relayed, so 4 with our own
    EXPECT_TRUE(has(st, AbaType::Bval, 0, 1));
    EXPECT_EQ(s.aba.bin_values(), 0) << "2t BVAL must not enter bin_values";
    st = s.from(4, bval(0, true));
    EXPECT_EQ(s.aba.bin_values(), mask(true)) << "2t+1 BVAL enter bin_values";
    EXPECT_TRUE(has(st, AbaType::Aux, 0, 1));
}

TEST(BinaryAgreement, aba_aux_wait_needs_n_minus_t_in_bin_values) {
    Solo s(4);  // n-t = 3
    (void)s.aba.handle_input(true);
    (void)s.from(1, bval(0, true));
    AbaStep st = s.from(2, bval(0, true));
    ASSERT_TRUE(has(st, AbaType::Aux, 0, 1));
    EXPECT_EQ(count(s.from(1, aux(0, true)), AbaType::Conf), 0u) << "2 AUX < n-t";
    EXPECT_EQ(count(s.from(3, aux(0, false)), AbaType::Conf), 0u)
        << "an AUX whose value is not in bin_values does not count";
    EXPECT_EQ(s.aba.vals(), 0);
    // bin_values grows: node 3's AUX(0) now counts, and vals takes both values.
    (void)s.from(1, bval(0, false));
    st = s.from(2, bval(0, false));
    EXPECT_EQ(s.aba.bin_values(), kBoth);
    EXPECT_EQ(count(st, AbaType::Aux), 0u) << "AUX is sent for the first bin value only";
    EXPECT_TRUE(has(st, AbaType::Conf, 0, kBoth));
    EXPECT_EQ(s.aba.vals(), kBoth);
}

TEST(BinaryAgreement, aba_conf_wait_needs_n_minus_t_subsets_of_bin_values) {
    Solo s(4);
    (void)s.aba.handle_input(true);
    (void)s.from(1, bval(0, true));
    (void)s.from(2, bval(0, true));
    (void)s.from(1, aux(0, true));
    AbaStep st = s.from(2, aux(0, true));
    ASSERT_TRUE(has(st, AbaType::Conf, 0, mask(true)));
    EXPECT_EQ(count(s.from(1, conf(0, mask(true))), AbaType::Coin), 0u) << "2 CONF < n-t";
    EXPECT_EQ(count(s.from(3, conf(0, kBoth)), AbaType::Coin), 0u)
        << "CONF({0,1}) is not a subset of bin_values {1}";
    EXPECT_FALSE(s.aba.coin_share_released());
    (void)s.from(2, bval(0, false));
    st = s.from(3, bval(0, false));  // bin_values = {0,1}: node 3's CONF now counts
    EXPECT_EQ(count(st, AbaType::Coin), 1u);
    EXPECT_TRUE(s.aba.coin_share_released());
}

TEST(BinaryAgreement, aba_coin_needs_t_plus_1_shares) {
    auto drive_to_coin = [](Solo& s) {
        (void)s.aba.handle_input(true);
        for (NodeId j = 1; j <= 4; ++j) (void)s.from(j, bval(0, true));
        for (NodeId j = 1; j <= 4; ++j) (void)s.from(j, aux(0, true));
        for (NodeId j = 1; j <= 4; ++j) (void)s.from(j, conf(0, mask(true)));
        ASSERT_TRUE(s.aba.coin_share_released());
    };
    {
        Solo s(7);  // t = 2: t+1 = 3 shares
        drive_to_coin(s);
        (void)s.share_from(1);  // own + 1 = t shares
        EXPECT_EQ(s.aba.round(), 0u);
        EXPECT_FALSE(s.aba.terminated()) << "t shares must not produce the coin";
        (void)s.share_from(2);  // t+1
        EXPECT_TRUE(s.aba.round() == 1 || s.aba.terminated()) << "t+1 shares produce the coin";
    }
    {
        // Even an instance told to combine with t shares cannot: the coin refuses.
        AbaParams::TestKnobs k = every_round();
        k.coin_threshold = 2;
        Solo s(7, k);
        drive_to_coin(s);
        (void)s.share_from(1);
        EXPECT_EQ(s.aba.round(), 0u);
        EXPECT_FALSE(s.aba.terminated());
        std::map<NodeId, Bytes> two{{0, share_of(*s.world, 0, 0, 0)},
                                    {1, share_of(*s.world, 1, 0, 0)}};
        EXPECT_FALSE(s.crypto.combine_coin(coin_name(test_chain(), 0, 0, 0), two).has_value());
    }
}

TEST(BinaryAgreement, aba_invalid_coin_share_is_a_fault_and_not_counted) {
    Solo s(4);
    // Shares arrive before this node's CONF wait ends: kept, not verified yet.
    AbaMessage bad = coin_msg(*s.world, 1, 0, 0);
    bad.coin_share[5] ^= 1;
    (void)s.from(1, bad);
    (void)s.share_from(2, 0);
    (void)s.share_from(3, 0);
    EXPECT_EQ(s.crypto.verifications, 0) << "shares are verified lazily";
    (void)s.aba.handle_input(true);
    (void)s.from(1, bval(0, true));
    (void)s.from(2, bval(0, true));
    (void)s.from(1, aux(0, true));
    (void)s.from(2, aux(0, true));
    (void)s.from(1, conf(0, mask(true)));
    AbaStep st = s.from(2, conf(0, mask(true)));
    EXPECT_EQ(count(st, AbaType::Coin), 1u);
    EXPECT_TRUE(has_fault(st, 1, FaultKind::InvalidCoinShare));
    EXPECT_TRUE(s.aba.round() == 1 || s.aba.terminated());
    EXPECT_EQ(s.crypto.verifications, 2) << "node 1's (bad) and node 2's: enough for t+1 with ours";
}

TEST(BinaryAgreement, aba_term_needs_t_plus_1) {
    Solo s(7);  // t = 2
    EXPECT_FALSE(s.from(1, term(true)).decision);
    EXPECT_FALSE(s.from(2, term(true)).decision) << "t TERMs may all be lies";
    AbaStep st = s.from(3, term(true));
    ASSERT_TRUE(st.decision.has_value());
    EXPECT_TRUE(*st.decision);
    EXPECT_TRUE(has(st, AbaType::Term, 0, 1)) << "a node that decides sends TERM";
    // Takes no further part.
    EXPECT_TRUE(s.from(4, bval(0, false)).messages.empty());
    EXPECT_TRUE(s.aba.handle_input(false).messages.empty());
}

// =============================================================================
// "First only" rules
// =============================================================================

TEST(BinaryAgreement, aba_aux_for_first_bin_value_only) {
    for (bool every : {false, true}) {
        AbaParams::TestKnobs k = every_round();
        k.aux_every_value = every;
        Solo s(4, k);
        (void)s.aba.handle_input(false);
        (void)s.from(1, bval(0, false));
        AbaStep st = s.from(2, bval(0, false));
        EXPECT_TRUE(has(st, AbaType::Aux, 0, 0));
        (void)s.from(1, bval(0, true));
        st = s.from(2, bval(0, true));
        EXPECT_EQ(s.aba.bin_values(), kBoth);
        EXPECT_EQ(has(st, AbaType::Aux, 0, 1), every) << "knob aux_every_value=" << every;
    }
}

TEST(BinaryAgreement, aba_second_aux_from_one_sender_ignored) {
    Solo s(4);
    (void)s.aba.handle_input(false);
    (void)s.from(1, bval(0, false));
    (void)s.from(2, bval(0, false));  // bin_values {0}, AUX(0) sent
    (void)s.from(1, aux(0, true));    // 1 ∉ bin_values: not counted yet
    AbaStep st = s.from(1, aux(0, false));
    EXPECT_TRUE(has_fault(st, 1, FaultKind::ProtocolViolation));
    st = s.from(2, aux(0, false));
    EXPECT_EQ(count(st, AbaType::Conf), 0u) << "node 1's second AUX must not count";
    st = s.from(3, aux(0, false));
    EXPECT_TRUE(has(st, AbaType::Conf, 0, mask(false)));
    // An identical repeat (re-publication) is not a fault.
    EXPECT_TRUE(s.from(3, aux(0, false)).faults.empty());
}

TEST(BinaryAgreement, aba_second_conf_from_one_sender_ignored) {
    Solo s(4);
    (void)s.aba.handle_input(false);
    (void)s.from(1, bval(0, false));
    (void)s.from(2, bval(0, false));
    (void)s.from(1, aux(0, false));
    ASSERT_TRUE(has(s.from(2, aux(0, false)), AbaType::Conf, 0, mask(false)));
    (void)s.from(1, conf(0, mask(true)));  // not ⊆ bin_values
    AbaStep st = s.from(1, conf(0, mask(false)));
    EXPECT_TRUE(has_fault(st, 1, FaultKind::ProtocolViolation));
    EXPECT_EQ(count(s.from(2, conf(0, mask(false))), AbaType::Coin), 0u)
        << "node 1's second CONF must not count";
    EXPECT_EQ(count(s.from(3, conf(0, mask(false))), AbaType::Coin), 1u);
}

TEST(BinaryAgreement, aba_duplicate_bval_not_counted_twice) {
    for (bool dup : {false, true}) {
        AbaParams::TestKnobs k = every_round();
        k.count_duplicates = dup;
        Solo s(4, k);  // relay at t+1 = 2
        (void)s.from(1, bval(0, true));
        AbaStep st = s.from(1, bval(0, true));
        EXPECT_TRUE(st.faults.empty());
        EXPECT_EQ(has(st, AbaType::Bval, 0, 1), dup) << "count_duplicates=" << dup;
    }
}

TEST(BinaryAgreement, aba_conf_carries_vals_not_bin_values) {
    for (bool bug : {false, true}) {
        AbaParams::TestKnobs k = every_round();
        k.conf_sends_bin_values = bug;
        Solo s(4, k);
        (void)s.aba.handle_input(true);
        (void)s.from(1, bval(0, true));
        (void)s.from(2, bval(0, true));  // bin_values {1}, AUX(1)
        (void)s.from(1, aux(0, true));
        (void)s.from(2, bval(0, false));
        (void)s.from(3, bval(0, false));  // relay, bin_values {0,1}
        ASSERT_EQ(s.aba.bin_values(), kBoth);
        AbaStep st = s.from(2, aux(0, true));  // n-t AUX, all for 1: vals {1}
        EXPECT_EQ(s.aba.vals(), mask(true));
        EXPECT_TRUE(has(st, AbaType::Conf, 0, bug ? kBoth : mask(true))) << "bug knob=" << bug;
    }
}

TEST(BinaryAgreement, aba_coin_share_released_only_after_conf_wait) {
    Solo s(4);
    // t+1 others' shares arrive first: the node may hold them but not use them.
    (void)s.share_from(1, 0);
    (void)s.share_from(2, 0);
    (void)s.share_from(3, 0);
    (void)s.aba.handle_input(true);
    (void)s.from(1, bval(0, true));
    (void)s.from(2, bval(0, true));
    (void)s.from(1, aux(0, true));
    AbaStep st = s.from(2, aux(0, true));
    EXPECT_TRUE(has(st, AbaType::Conf, 0, mask(true)));
    EXPECT_EQ(count(st, AbaType::Coin), 0u);
    st = s.from(1, conf(0, mask(true)));
    EXPECT_EQ(count(st, AbaType::Coin), 0u) << "CONF wait not finished: no share";
    EXPECT_EQ(s.aba.round(), 0u) << "s must not be used before the CONF wait ends";
    EXPECT_FALSE(s.aba.terminated());
    st = s.from(2, conf(0, mask(true)));
    EXPECT_EQ(count(st, AbaType::Coin), 1u);
    EXPECT_TRUE(s.aba.round() == 1 || s.aba.terminated());
}

TEST(BinaryAgreement, aba_term_counts_as_bval_aux_conf_in_later_rounds) {
    auto world = FastWorld::make(4, 1, 7);
    const Epoch e = find_epoch(world, [](const std::vector<bool>& c) { return !c[0]; });
    for (bool with_term : {true, false}) {
        Solo s(4, every_round(), e);
        (void)s.aba.handle_input(true);
        if (with_term) (void)s.from(3, term(true));  // one TERM: t, no decision
        (void)s.from(1, bval(0, true));
        (void)s.from(2, bval(0, true));
        (void)s.from(1, aux(0, true));
        (void)s.from(2, aux(0, true));
        (void)s.from(1, conf(0, mask(true)));
        (void)s.from(2, conf(0, mask(true)));
        (void)s.share_from(1, 0);
        ASSERT_EQ(s.aba.round(), 1u) << "coin 0 in round 0: est 1, next round";
        ASSERT_EQ(s.aba.estimate(), std::optional<bool>(true));
        // Round 1: only node 1 speaks (node 2 is silent). Node 3's TERM stands in.
        (void)s.from(1, bval(1, true));
        EXPECT_EQ(s.aba.bin_values(), with_term ? mask(true) : 0) << "TERM as BVAL";
        AbaStep st = s.from(1, aux(1, true));
        EXPECT_EQ(has(st, AbaType::Conf, 1, mask(true)), with_term) << "TERM as AUX";
        st = s.from(1, conf(1, mask(true)));
        EXPECT_EQ(count(st, AbaType::Coin), with_term ? 1u : 0u) << "TERM as CONF";
    }
}

TEST(BinaryAgreement, aba_messages_beyond_max_rounds_ahead_dropped) {
    Solo s(4, every_round(), 0, /*window=*/2);
    (void)s.from(1, bval(3, true));
    EXPECT_EQ(s.aba.dropped_messages(), 1u);
    (void)s.from(1, bval(2, true));
    EXPECT_EQ(s.aba.dropped_messages(), 1u) << "round 2 = current + 2 is kept";
    (void)s.from(1, make(AbaType::Bval, 1000000, 1));
    EXPECT_EQ(s.aba.dropped_messages(), 2u);
}

TEST(BinaryAgreement, aba_moves_without_input_and_ignores_late_input) {
    auto world = FastWorld::make(4, 1, 7);
    const Epoch e = find_epoch(world, [](const std::vector<bool>& c) { return !c[0]; });
    Solo s(4, every_round(), e);
    AbaStep st = s.from(1, bval(0, true));
    st = s.from(2, bval(0, true));  // relays without input
    EXPECT_TRUE(has(st, AbaType::Bval, 0, 1));
    EXPECT_TRUE(has(st, AbaType::Aux, 0, 1));
    (void)s.from(1, aux(0, true));
    (void)s.from(2, aux(0, true));
    (void)s.from(1, conf(0, mask(true)));
    (void)s.from(2, conf(0, mask(true)));
    st = s.share_from(1, 0);
    ASSERT_EQ(s.aba.round(), 1u);
    EXPECT_EQ(s.aba.estimate(), std::optional<bool>(true)) << "est from the round outcome";
    EXPECT_TRUE(has(st, AbaType::Bval, 1, 1));
    EXPECT_TRUE(s.aba.handle_input(false).messages.empty()) << "late input ignored";
    EXPECT_FALSE(s.aba.has_input());
    EXPECT_EQ(s.aba.estimate(), std::optional<bool>(true));
}

TEST(BinaryAgreement, aba_malformed_and_foreign_messages_are_faults) {
    Solo s(4);
    EXPECT_TRUE(has_fault(s.from(1, make(AbaType::Bval, 0, 2)), 1, FaultKind::Malformed));
    EXPECT_TRUE(has_fault(s.from(1, conf(0, 0)), 1, FaultKind::Malformed));
    AbaMessage short_share = make(AbaType::Coin, 0, 0);
    short_share.coin_share.assign(10, 0);
    EXPECT_TRUE(has_fault(s.from(1, short_share), 1, FaultKind::Malformed));
    AbaMessage other = bval(0, true);
    other.proposer = 3;
    EXPECT_TRUE(has_fault(s.from(1, other), 1, FaultKind::Malformed));
    EXPECT_TRUE(has_fault(s.from(9, bval(0, true)), 9, FaultKind::UnknownSender));
    EXPECT_TRUE(s.from(0, bval(0, true)).messages.empty()) << "own messages are ignored";
    EXPECT_EQ(std::string(to_string(FaultKind::InvalidCoinShare)), "invalid_coin_share");
}

// =============================================================================
// Restore after a crash
// =============================================================================

TEST(BinaryAgreement, aba_restore_never_sends_a_conflicting_aux) {
    Solo before(4);
    std::vector<AbaMessage> log;
    auto keep = [&](AbaStep st) { log.insert(log.end(), st.messages.begin(), st.messages.end()); };
    keep(before.aba.handle_input(true));
    keep(before.from(1, bval(0, true)));
    keep(before.from(2, bval(0, true)));  // AUX(0, 1)
    ASSERT_EQ(log.size(), 2u);

    Solo after(4);
    after.aba.restore(log);
    EXPECT_EQ(after.aba.round(), 0u);
    EXPECT_EQ(after.aba.estimate(), std::optional<bool>(true));
    EXPECT_TRUE(after.aba.has_input());
    EXPECT_TRUE(after.aba.handle_input(false).messages.empty());
    // After the crash the node hears 0 first: a fresh node would send AUX(0).
    std::vector<AbaMessage> out;
    for (NodeId j = 1; j <= 3; ++j) {
        AbaStep st = after.from(j, bval(0, false));
        out.insert(out.end(), st.messages.begin(), st.messages.end());
    }
    EXPECT_EQ(after.aba.bin_values(), mask(false));
    for (const AbaMessage& m : out) EXPECT_NE(m.type, AbaType::Aux) << "a second AUX after restore";
    EXPECT_TRUE(std::any_of(out.begin(), out.end(), [](const AbaMessage& m) {
        return m.type == AbaType::Bval && m.value == 0;
    })) << "relaying the other value is still allowed (BVAL slots are per value)";
}

TEST(BinaryAgreement, aba_restore_never_sends_a_conflicting_conf_and_keeps_its_vals) {
    auto world = FastWorld::make(4, 1, 7);
    const Epoch e = find_epoch(world, [](const std::vector<bool>& c) { return !c[0]; });
    Solo before(4, every_round(), e);
    std::vector<AbaMessage> log;
    auto keep = [&](AbaStep st) { log.insert(log.end(), st.messages.begin(), st.messages.end()); };
    keep(before.aba.handle_input(true));
    keep(before.from(1, bval(0, true)));
    keep(before.from(2, bval(0, true)));
    keep(before.from(1, aux(0, true)));
    keep(before.from(2, aux(0, true)));  // CONF(0, {1})
    ASSERT_EQ(log.back().type, AbaType::Conf);

    Solo after(4, every_round(), e);
    after.aba.restore(log);
    EXPECT_EQ(after.aba.vals(), mask(true));
    // A fresh node fed this would compute vals = {0,1} and send CONF({0,1}).
    std::vector<AbaMessage> out;
    auto take = [&](AbaStep st) { out.insert(out.end(), st.messages.begin(), st.messages.end()); };
    for (NodeId j = 1; j <= 3; ++j) take(after.from(j, bval(0, false)));
    for (NodeId j = 1; j <= 3; ++j) take(after.from(j, bval(0, true)));
    take(after.from(1, aux(0, false)));
    take(after.from(2, aux(0, true)));
    take(after.from(3, aux(0, false)));
    for (const AbaMessage& m : out) {
        EXPECT_NE(m.type, AbaType::Conf) << "a second CONF after restore";
        EXPECT_NE(m.type, AbaType::Aux) << "a second AUX after restore";
    }
    EXPECT_EQ(after.aba.vals(), mask(true));
    // The CONF quorum: the logged own CONF({1}) and two CONF({1}) give the decision
    // set {1}. Had the node recomputed its CONF as {0,1}, the quorum's union would
    // be {0,1} and the estimate the coin, 0.
    take(after.from(1, conf(0, mask(true))));
    take(after.from(2, conf(0, mask(true))));
    EXPECT_EQ(after.aba.decision_vals(), mask(true));
    take(after.share_from(1, 0));
    ASSERT_EQ(after.aba.round(), 1u);
    EXPECT_EQ(after.aba.estimate(), std::optional<bool>(true))
        << "the outcome uses the logged CONF {1}, not {0,1} (which would give the coin, 0)";
}

TEST(BinaryAgreement, aba_restore_resumes_logged_round_estimate_and_decision) {
    auto world = FastWorld::make(4, 1, 7);
    std::vector<AbaMessage> log = {
        bval(0, true),  bval(0, false), aux(0, true), conf(0, kBoth), coin_msg(*world, 0, 0, 0),
        bval(1, false), bval(1, true),  aux(1, true), bval(2, false), bval(2, true)};
    {
        FastCryptoSuite c(world, 0);
        BinaryAgreement aba(params_for(4, 0, 0), c);
        aba.restore(log);
        EXPECT_EQ(aba.round(), 2u);
        EXPECT_EQ(aba.estimate(), std::optional<bool>(false)) << "the first BVAL of the round";
        EXPECT_TRUE(aba.has_input());
        EXPECT_FALSE(aba.terminated());
    }
    {
        log.push_back(term(true));
        FastCryptoSuite c(world, 0);
        BinaryAgreement aba(params_for(4, 0, 0), c);
        aba.restore(log);
        EXPECT_EQ(aba.decision(), std::optional<bool>(true));
        EXPECT_TRUE(aba.handle_message(1, bval(2, false)).messages.empty());
    }
    {
        // Nothing logged: a fresh instance; a relay-only round 0 still counts as "had input".
        FastCryptoSuite c(world, 0);
        BinaryAgreement fresh(params_for(4, 0, 0), c);
        fresh.restore({});
        EXPECT_FALSE(fresh.has_input());
        BinaryAgreement relayed(params_for(4, 0, 0), c);
        relayed.restore({bval(0, true)});
        EXPECT_TRUE(relayed.has_input());
    }
}

// =============================================================================
// Randomized runs: agreement, validity, termination
// =============================================================================

enum class Faulty { None, Silent, Liars };

struct RunStats {
    bool all_decided = false;
    bool agreement = true;
    bool validity = true;
    Round max_rounds = 0;
    double rounds_sum = 0;
    std::uint32_t deciders = 0;
    std::uint32_t restarts = 0;
    std::vector<std::string> violations;
};

RunStats run_random(std::uint32_t n, Faulty faulty, std::uint64_t seed, bool restarts,
                    AbaParams::TestKnobs knobs) {
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + n * 131 + static_cast<int>(faulty));
    const std::uint32_t t = max_faulty(n);
    std::set<NodeId> byz;
    if (faulty != Faulty::None) {
        for (NodeId i = static_cast<NodeId>(n - t); i < n; ++i) byz.insert(i);
    }
    Net net(n, byz, knobs, /*epoch=*/seed, 16, /*world_seed=*/seed + 1);

    // Inputs: all equal in a third of the seeds (validity), mixed otherwise.
    std::vector<std::pair<NodeId, bool>> pending;
    const int mode = static_cast<int>(seed % 3);
    for (NodeId i = 0; i < n; ++i) {
        if (!net.honest(i)) continue;
        bool v = mode == 0 ? false : mode == 1 ? true : (rng() & 1) != 0;
        pending.push_back({i, v});
    }
    const bool first_input = pending.front().second;
    const bool all_equal = std::all_of(pending.begin(), pending.end(),
                                       [&](const auto& p) { return p.second == first_input; });
    const std::optional<bool> common =
        all_equal ? std::optional<bool>(first_input) : std::optional<bool>();
    std::shuffle(pending.begin(), pending.end(), rng);

    int restarts_left = restarts ? 2 : 0;
    std::uint32_t restarted = 0;
    for (std::size_t step = 0; step < 3'000'000; ++step) {
        if (net.queue().empty() && pending.empty()) break;
        const std::uint64_t roll = rng() % 1000;
        if (!pending.empty() && (net.queue().empty() || roll < 15)) {
            auto [i, v] = pending.back();
            pending.pop_back();
            net.input(i, v);
            continue;
        }
        if (faulty == Faulty::Liars && roll >= 15 && roll < 115) {
            // A lying node: random BVAL/AUX/CONF/TERM values, bad or good coin shares,
            // to one honest node at a time (so it equivocates freely).
            NodeId liar = *std::next(byz.begin(), static_cast<std::ptrdiff_t>(rng() % byz.size()));
            NodeId to = static_cast<NodeId>(rng() % (n - t));
            Round r = net.node(to).round() + static_cast<Round>(rng() % 2);
            bool v = (rng() & 1) != 0;
            AbaMessage m;
            switch (rng() % 6) {
                case 0:
                    m = bval(r, v);
                    break;
                case 1:
                    m = aux(r, v);
                    break;
                case 2:
                    m = conf(r, static_cast<std::uint8_t>(1 + rng() % 3));
                    break;
                case 3:
                    m = term(v);
                    break;
                case 4: {
                    m = make(AbaType::Coin, r, 0);
                    m.coin_share.resize(96);
                    for (auto& b : m.coin_share) b = static_cast<std::uint8_t>(rng());
                    break;
                }
                default:
                    m = coin_msg(*net.world(), liar, net.epoch(), r);
                    break;
            }
            net.inject(liar, to, m);
            continue;
        }
        if (restarts_left > 0 && roll >= 990) {
            --restarts_left;
            ++restarted;
            net.restart(static_cast<NodeId>(rng() % (n - t)));
            continue;
        }
        if (!net.queue().empty()) net.deliver_at(rng() % net.queue().size());
    }

    RunStats st;
    st.restarts = restarted;
    st.violations = net.violations();
    st.all_decided = net.all_honest_decided();
    st.agreement = !net.disagreement();
    for (NodeId i = 0; i < n; ++i) {
        if (!net.honest(i) || !net.decided()[i]) continue;
        if (common && *net.decided()[i] != *common) st.validity = false;
        const Round used = net.decided_round(i) + 1;
        st.max_rounds = std::max(st.max_rounds, used);
        st.rounds_sum += used;
        ++st.deciders;
    }
    return st;
}

void agreement_sweep(bool restarts, AbaParams::TestKnobs knobs) {
    const std::string schedule = knobs.threshold_coin_every_round ? "every-round" : "fixed-rounds";
    constexpr Round kRoundBound = 40;
    for (std::uint32_t n : {4u, 7u, 10u}) {
        for (Faulty f : {Faulty::None, Faulty::Silent, Faulty::Liars}) {
            const std::uint64_t seeds = n == 10 ? 60 : 200;
            double sum = 0;
            std::uint32_t deciders = 0;
            Round worst = 0;
            std::uint32_t restarted = 0;
            for (std::uint64_t seed = 0; seed < seeds; ++seed) {
                RunStats st = run_random(n, f, seed, restarts, knobs);
                SCOPED_TRACE("n=" + std::to_string(n) + " faulty=" +
                             std::to_string(static_cast<int>(f)) + " seed=" + std::to_string(seed));
                for (const std::string& v : st.violations) ADD_FAILURE() << v;
                EXPECT_TRUE(st.all_decided) << "termination";
                EXPECT_TRUE(st.agreement) << "agreement";
                EXPECT_TRUE(st.validity) << "validity";
                EXPECT_LE(st.max_rounds, kRoundBound);
                sum += st.rounds_sum;
                deciders += st.deciders;
                worst = std::max(worst, st.max_rounds);
                restarted += st.restarts;
            }
            std::ostringstream line;
            line << "coin=" << schedule << " n=" << n << " faulty="
                 << (f == Faulty::None     ? "none"
                     : f == Faulty::Silent ? "t-silent"
                                           : "t-liars")
                 << (restarts ? " restarts=" + std::to_string(restarted) : "") << " seeds=" << seeds
                 << " mean_rounds=" << (deciders ? sum / deciders : 0) << " max_rounds=" << worst;
            std::cout << "[ aba stats ] " << line.str() << "\n";
            ::testing::Test::RecordProperty("mean_rounds_n" + std::to_string(n) + "_" +
                                                std::to_string(static_cast<int>(f)) +
                                                (restarts ? "_restarts" : "") + "_" + schedule,
                                            line.str());
        }
    }
}

TEST(BinaryAgreement, aba_agreement_and_termination) { agreement_sweep(false, every_round()); }

TEST(BinaryAgreement, aba_agreement_and_termination_with_crash_restore) {
    agreement_sweep(true, every_round());
}

// The protocol's schedule (fixed coins in rounds 0, 1, 3, 4, …): the same random
// schedules, lying nodes (which also send CONFs and shares in fixed rounds) and
// crash/restore.
TEST(BinaryAgreement, aba_fixed_coin_rounds_agreement_and_termination) {
    agreement_sweep(false, {});
}

TEST(BinaryAgreement, aba_fixed_coin_rounds_agreement_and_termination_with_crash_restore) {
    agreement_sweep(true, {});
}

// =============================================================================
// Breaking a rule breaks the protocol (TestKnobs), and keeping it does not
// =============================================================================

// n = 4, honest 0,1,2 all input 0, node 3 lies. Node 2's input comes first; the
// liar then pushes 1 through every phase towards nodes 0 and 1 (repeating each
// message `repeat` times) while their inputs are still on the way (a node handles
// messages before its input arrives), then nodes 0 and 1 get their inputs and
// everything is delivered. The coin of round 0 is 1 in the chosen instance.
// Validity demands 0: nobody input 1.
Net validity_attack(AbaParams::TestKnobs knobs, int repeat) {
    auto world = FastWorld::make(4, 1, 7);
    const Epoch e = find_epoch(world, [](const std::vector<bool>& c) { return c[0]; });
    Net net(4, {3}, knobs, e);
    net.input(2, false);
    const std::vector<NodeId> targets = {0, 1};
    auto push = [&](const AbaMessage& m) {
        for (int k = 0; k < repeat; ++k) net.inject_all(3, targets, m);
    };
    push(bval(0, true));
    net.deliver_while(is(AbaType::Bval, 0, true));
    push(aux(0, true));
    net.deliver_while(is(AbaType::Aux, 0, true));
    push(conf(0, mask(true)));
    net.deliver_while(is(AbaType::Conf, 0));
    net.inject_all(3, targets, coin_msg(*net.world(), 3, e, 0));
    net.deliver_while(is(AbaType::Coin, 0));
    net.input(0, false);
    net.input(1, false);
    std::mt19937_64 rng(1);
    net.deliver_all_random(rng);
    return net;
}

bool decided_value(const Net& net, bool v) {
    for (NodeId i = 0; i < net.n(); ++i) {
        if (net.decided()[i] == std::optional<bool>(v)) return true;
    }
    return false;
}

TEST(BinaryAgreement, aba_breaking_relay_threshold_breaks_validity) {
    Net safe = validity_attack(every_round(), 1);
    EXPECT_NO_VIOLATIONS(safe);
    EXPECT_TRUE(safe.all_honest_decided());
    EXPECT_FALSE(decided_value(safe, true));
    AbaParams::TestKnobs k = every_round();
    k.relay_threshold = 1;
    Net broken = validity_attack(k, 1);
    EXPECT_TRUE(decided_value(broken, true)) << "relay on 1 BVAL: one liar decides for all";
}

TEST(BinaryAgreement, aba_breaking_accept_threshold_breaks_validity) {
    AbaParams::TestKnobs k = every_round();
    k.accept_threshold = 1;  // t
    Net broken = validity_attack(k, 1);
    EXPECT_TRUE(decided_value(broken, true)) << "bin_values on t BVAL: a liar's value is decided";
}

TEST(BinaryAgreement, aba_counting_duplicates_breaks_validity) {
    Net safe = validity_attack(every_round(), 3);
    EXPECT_NO_VIOLATIONS(safe);
    EXPECT_TRUE(safe.all_honest_decided());
    EXPECT_FALSE(decided_value(safe, true)) << "repeats from one sender count once";
    AbaParams::TestKnobs k = every_round();
    k.count_duplicates = true;
    Net broken = validity_attack(k, 3);
    EXPECT_TRUE(decided_value(broken, true)) << "one liar repeating reaches every threshold";
}

TEST(BinaryAgreement, aba_breaking_term_threshold_breaks_validity) {
    for (bool broken : {false, true}) {
        AbaParams::TestKnobs k = every_round();
        if (broken) k.term_threshold = 1;
        Net net(4, {3}, k);
        for (NodeId i = 0; i < 3; ++i) net.input(i, false);
        net.inject(3, 0, term(true));  // a lying TERM(1): nobody input 1
        std::mt19937_64 rng(2);
        net.deliver_all_random(rng);
        EXPECT_EQ(decided_value(net, true), broken) << "term_threshold=1: " << broken;
        if (!broken) {
            EXPECT_NO_VIOLATIONS(net);
            EXPECT_TRUE(net.all_honest_decided());
        }
    }
}

// n = 7, t = 2: with accept_threshold = t+1, two liars and one honest holder of 1
// put 1 into bin_values of a single honest node. Its AUX(1) never counts anywhere
// else and the four others never reach n-t AUX in their bin_values: nobody ends
// round 0. With 2t+1, 1 never enters any bin_values and everyone decides 0.
TEST(BinaryAgreement, aba_breaking_accept_threshold_breaks_termination) {
    for (bool broken : {false, true}) {
        AbaParams::TestKnobs k = every_round();
        if (broken) k.accept_threshold = 3;
        Net net(7, {5, 6}, k);
        net.input(0, true);
        for (NodeId i = 1; i <= 4; ++i) net.input(i, false);
        net.inject(5, 1, bval(0, true));
        net.inject(6, 1, bval(0, true));
        net.deliver_while(from_to({0}, {1}, is(AbaType::Bval, 0, true)));
        std::mt19937_64 rng(3);
        net.deliver_all_random(rng);
        EXPECT_NO_VIOLATIONS(net);
        EXPECT_FALSE(net.disagreement());
        if (broken) {
            EXPECT_FALSE(net.any_honest_decided()) << "accept at t+1: stuck in round 0";
        } else {
            EXPECT_TRUE(net.all_honest_decided());
            EXPECT_FALSE(decided_value(net, true));
        }
    }
}

// n = 4: a=0, b=1, c=2 honest, x=3 lies; the coins are v in round 0, ¬v in round 1.
// Under the previous decision rule (own AUX-phase vals): with AUX for every value,
// b's two AUX let a collect {v} and c collect {¬v} in the same round; a decides v
// with the coin, c carries ¬v into round 1 and decides it there with b and x. With
// AUX for the first value only, the same schedule stalls c's AUX wait until the fair
// delivery at the end, and everybody agrees. Under the CONF-quorum rule the same
// schedule keeps agreement even with AUX for every value (a's quorum holds c's
// CONF({¬v}), so a does not decide): the rule is then one of two safeguards, see
// aba_aux_first_only_or_full_conf_quorum_keeps_agreement.
TEST(BinaryAgreement, aba_aux_for_every_value_breaks_agreement_of_the_own_vals_rule) {
    auto world = FastWorld::make(4, 1, 7);
    const Epoch e = find_epoch(world, [](const std::vector<bool>& c) { return c[0] != c[1]; });
    const bool v = coin_value(world, e, 0);
    for (int variant = 0; variant < 4; ++variant) {
        const bool broken = (variant & 1) != 0;
        const bool own_vals = (variant & 2) == 0;
        SCOPED_TRACE(std::string(broken ? "aux_every_value" : "aux first only") +
                     (own_vals ? ", own-vals rule" : ", CONF-quorum rule"));
        AbaParams::TestKnobs k = every_round();
        k.aux_every_value = broken;
        k.own_vals_decision = own_vals;
        Net net(4, {3}, k, e);
        const NodeId a = 0, b = 1, c = 2, x = 3;
        net.input(a, v);
        net.input(b, v);
        net.input(c, !v);
        // Round 0.
        net.inject(x, a, bval(0, v));
        net.deliver_while(from_to({b}, {a}, is(AbaType::Bval, 0, v)));  // bin(a) = {v}
        net.inject(x, b, bval(0, v));
        net.deliver_while(from_to({a}, {b}, is(AbaType::Bval, 0, v)));  // bin(b) ∋ v
        net.inject(x, b, bval(0, !v));
        net.deliver_while(from_to({c}, {b}, is(AbaType::Bval, 0, !v)));  // bin(b) = {0,1}
        net.inject(x, c, bval(0, !v));
        net.deliver_while(from_to({b}, {c}, is(AbaType::Bval, 0, !v)));  // bin(c) = {¬v}
        net.deliver_while(from_to({b}, {a}, is(AbaType::Aux, 0, v)));
        net.inject(x, a, aux(0, v));  // a: vals {v}
        net.deliver_while(from_to({b}, {c}, is(AbaType::Aux, 0, !v)));
        net.inject(x, c, aux(0, !v));  // c: vals {¬v} (only if b sent AUX(¬v))
        net.deliver_while(from_to({a, c}, {b}, is(AbaType::Aux, 0)));
        net.deliver_while(from_to({b, c}, {a}, is(AbaType::Bval, 0, !v)));
        net.deliver_while(from_to({a, b}, {c}, is(AbaType::Bval, 0, v)));
        net.inject(x, a, conf(0, mask(v)));
        net.inject(x, c, conf(0, mask(!v)));
        net.deliver_while(is(AbaType::Conf, 0));
        net.deliver_while(is(AbaType::Coin, 0));
        // Round 1 (a decided v if the rule is broken; its TERM is held back).
        net.inject(x, c, bval(1, !v));
        net.inject(x, b, bval(1, !v));
        net.deliver_while(from_to({c}, {b}, is(AbaType::Bval, 1, !v)));
        net.deliver_while(from_to({b}, {c}, is(AbaType::Bval, 1, !v)));
        net.deliver_while(from_to({b, c}, {b, c}, is(AbaType::Aux, 1, !v)));
        net.inject(x, c, aux(1, !v));
        net.inject(x, b, aux(1, !v));
        net.inject(x, c, conf(1, mask(!v)));
        net.inject(x, b, conf(1, mask(!v)));
        net.deliver_while(from_to({b, c}, {b, c}, is(AbaType::Conf, 1)));
        net.deliver_while(from_to({b, c}, {b, c}, is(AbaType::Coin, 1)));
        std::mt19937_64 rng(4);
        net.deliver_all_random(rng);
        if (broken && own_vals) {
            EXPECT_TRUE(net.disagreement()) << "AUX for every value: two honest decisions differ";
        } else {
            EXPECT_NO_VIOLATIONS(net);
            EXPECT_FALSE(net.disagreement());
            EXPECT_TRUE(net.all_honest_decided());
        }
    }
}

// Found by spin (tests/model/aba_conf.pml with -DCONFQ=2 -DAUX_EVERY) and replayed
// here. Under the CONF-quorum rule agreement needs only one of two rules: AUX for
// the first value only (honest singleton CONF sets then agree) or the full n−t CONF
// quorum (a decider's quorum then shares an honest CONF with every other quorum);
// the model finds no violation with either one broken alone. n = 4: a=0 (its input
// never arrives), b=1 input ¬v, c=2 input v, x=3 lies; coins v in round 0, ¬v in
// round 1. With both broken, a ends round 0 with {¬v} (its own and x's CONF) and b
// with {v}; a carries ¬v into round 1, where c decides it, and b decides v with the
// round-0 coin. With one rule kept, the schedule stalls and the fair delivery after
// it ends in agreement.
TEST(BinaryAgreement, aba_aux_first_only_or_full_conf_quorum_keeps_agreement) {
    auto world = FastWorld::make(4, 1, 7);
    const Epoch e = find_epoch(world, [](const std::vector<bool>& c) { return c[0] != c[1]; });
    const bool v = coin_value(world, e, 0);
    for (int variant = 0; variant < 3; ++variant) {
        AbaParams::TestKnobs k = every_round();
        k.aux_every_value = variant != 1;
        if (variant != 2) k.conf_quorum = 2;
        SCOPED_TRACE(std::string(k.aux_every_value ? "aux_every_value" : "aux first only") +
                     (k.conf_quorum == 2 ? ", conf_quorum = n-t-1" : ", conf_quorum = n-t"));
        Net net(4, {3}, k, e);
        const NodeId a = 0, b = 1, c = 2, x = 3;
        auto share = [&](Round r) { return coin_msg(*net.world(), x, e, r); };
        net.input(b, !v);
        net.input(c, v);
        // Round 0.
        net.inject(x, b, bval(0, v));
        net.deliver_while(from_to({c}, {b}, is(AbaType::Bval, 0, v)));  // b relays v, AUX(v)
        net.inject(x, c, bval(0, !v));
        net.deliver_while(from_to({b}, {c}, is(AbaType::Bval, 0, !v)));  // c relays ¬v, AUX(¬v)
        net.deliver_while(from_to({b, c}, {a}, is(AbaType::Bval, 0, !v)));  // a: AUX(¬v)
        net.deliver_while(from_to({c}, {a}, is(AbaType::Aux, 0, !v)));
        net.inject(x, a, aux(0, !v));         // a: vals {¬v}, CONF({¬v})
        net.inject(x, a, conf(0, mask(!v)));  // a: two CONF({¬v}), decision set {¬v}
        net.inject(x, a, share(0));           // a: coin v, est ¬v, round 1
        net.inject(x, c, bval(0, v));
        net.deliver_while(from_to({b}, {c}, is(AbaType::Bval, 0, v)));  // bin(c) = {0,1}, AUX(v)
        net.deliver_while(from_to({c}, {b}, is(AbaType::Aux, 0, v)));
        net.inject(x, b, aux(0, v));         // b: vals {v}, CONF({v})
        net.inject(x, b, conf(0, mask(v)));  // b: decision set {v}; its coin is held back
        net.deliver_while(from_to({a}, {c}, is(AbaType::Aux, 0, !v)));  // c: vals {0,1}
        net.deliver_while(from_to({a}, {c}, is(AbaType::Conf, 0)));     // c: decision set {0,1}
        net.deliver_while(from_to({a}, {c}, is(AbaType::Coin, 0)));     // c: est v, round 1
        // Round 1: a holds ¬v, c holds v, b still waits for the round-0 coin.
        net.inject(x, c, bval(1, !v));
        net.deliver_while(from_to({a}, {c}, is(AbaType::Bval, 1, !v)));  // c relays ¬v, AUX(¬v)
        net.deliver_while(from_to({c}, {a}, is(AbaType::Bval, 1, !v)));
        net.inject(x, a, bval(1, !v));  // a: bin {¬v}, AUX(¬v)
        net.deliver_while(from_to({a}, {c}, is(AbaType::Aux, 1, !v)));
        net.inject(x, c, aux(1, !v));         // c: vals {¬v}
        net.inject(x, c, conf(1, mask(!v)));  // c: decision set {¬v}
        net.inject(x, c, share(1));           // c: coin ¬v, decides ¬v
        net.inject(x, b, share(0));           // b: coin v, decides v
        std::mt19937_64 rng(6);
        net.deliver_all_random(rng);
        if (variant == 0) {
            EXPECT_EQ(net.decided()[b], std::optional<bool>(v));
            EXPECT_EQ(net.decided()[c], std::optional<bool>(!v));
            EXPECT_TRUE(net.disagreement()) << "both rules broken: two honest decisions differ";
        } else {
            EXPECT_NO_VIOLATIONS(net);
            EXPECT_FALSE(net.disagreement());
            EXPECT_TRUE(net.all_honest_decided());
        }
    }
}

// n = 4, x = 3 helps in round 0 and is silent afterwards. Round 0 ends with a
// deciding v (its CONF quorum: its own, c's and x's CONF({v})) while b and c end
// with the decision set {0,1} and move on with est v. In round 1 only b and c run
// (a stopped after TERM, one TERM < t+1): with a coin threshold of 2t+1 they never
// get enough shares; with t+1 they decide.
TEST(BinaryAgreement, aba_coin_threshold_above_t_plus_1_deadlocks) {
    auto world = FastWorld::make(4, 1, 7);
    const Epoch e = find_epoch(world, [](const std::vector<bool>&) { return true; });
    const bool v = coin_value(world, e, 0);
    for (bool broken : {false, true}) {
        AbaParams::TestKnobs k = every_round();
        if (broken) k.coin_threshold = 3;
        Net net(4, {3}, k, e);
        const NodeId a = 0, b = 1, c = 2, x = 3;
        net.input(a, v);
        net.input(b, !v);
        net.input(c, v);
        net.inject(x, a, bval(0, v));
        net.deliver_while(from_to({c}, {a}, is(AbaType::Bval, 0, v)));  // bin(a) = {v}
        net.inject(x, c, bval(0, v));
        net.deliver_while(from_to({a}, {c}, is(AbaType::Bval, 0, v)));  // bin(c) = {v}
        net.deliver_while(from_to({c}, {a}, is(AbaType::Aux, 0, v)));
        net.inject(x, a, aux(0, v));  // a: vals {v}
        net.deliver_while(from_to({a}, {c}, is(AbaType::Aux, 0, v)));
        net.inject(x, c, aux(0, v));  // c: vals {v}
        net.inject(x, b, bval(0, !v));
        net.inject(x, c, bval(0, !v));
        net.deliver_while(from_to({b}, {c}, is(AbaType::Bval, 0, !v)));     // c relays ¬v
        net.deliver_while(from_to({c}, {b}, is(AbaType::Bval, 0, !v)));     // bin(b) = {¬v}
        net.deliver_while(from_to({a, c}, {b}, is(AbaType::Bval, 0, v)));   // bin(b) = {0,1}
        net.deliver_while(from_to({a, c}, {b}, is(AbaType::Aux, 0)));       // b: vals {0,1}
        net.deliver_while(from_to({b, c}, {a}, is(AbaType::Bval, 0, !v)));  // bin(a) = {0,1}
        net.inject(x, a, conf(0, mask(v)));
        // a: own, c's and x's CONF({v}); b and c: a's and c's {v} with b's {0,1}.
        net.deliver_while(is(AbaType::Conf, 0));
        net.deliver_while(is(AbaType::Coin, 0));
        ASSERT_EQ(net.decided()[a], std::optional<bool>(v));
        ASSERT_FALSE(net.decided()[b]);
        ASSERT_FALSE(net.decided()[c]);
        std::mt19937_64 rng(5);
        net.deliver_all_random(rng);  // x is silent from now on
        EXPECT_NO_VIOLATIONS(net);
        EXPECT_FALSE(net.disagreement());
        if (broken) {
            EXPECT_FALSE(net.decided()[b] || net.decided()[c]) << "2t+1 shares never come";
        } else {
            EXPECT_TRUE(net.all_honest_decided());
        }
    }
}

// =============================================================================
// HoneyBadgerBFT issue #59: the liveness attack on MMR without CONF
// =============================================================================
//
// n = 4, x = 3 Byzantine and in control of delivery; it sees every share, so it
// learns the coin s of a round as soon as one honest share is out. At the start of
// a round two honest nodes ("A": a0, a1) hold v and one ("B": b) holds ¬v. Per
// round:
//   1. x sends BVAL(¬v) to a0 and BVAL(v) to a1; b's BVAL(¬v) reaches a0 and a1.
//      a0 now has t+1 BVAL(¬v), relays, and with its own has 2t+1: bin(a0) = {¬v},
//      AUX(¬v). a0's BVAL(v) reaches a1: bin(a1) = {v}, AUX(v).
//   2. All BVAL and AUX between a0 and a1 are delivered, x sends BVAL(0), BVAL(1)
//      and AUX(v) to both: bin = {0,1} and vals = {0,1} at a0 and a1 (one AUX of
//      each value from A plus x's).
//   3. Without CONF, a0 and a1 release their shares now: x learns s. a0, a1 end the
//      round with est = s.
//   4. x sends BVAL(¬s) to b and delivers A's BVAL(¬s): bin(b) = {¬s}, b's AUX(¬s).
//      The one A node that sent AUX(¬s) has it delivered to b, x adds AUX(¬s):
//      vals(b) = {¬s}, b ends with est = ¬s ≠ s and does not decide.
//   5. Everything left of the round is delivered. Next round: A holds s, B ¬s —
//      the starting position again, forever.
// With CONF, a0 and a1 need n−t = 3 CONF before releasing a share; if x withholds
// its CONF the third must be b's, which b sends only after its own AUX wait, so
// b's vals are fixed before anybody can know s; the adversary then has nothing to
// steer with and delivers the round fairly (step 3 fallback).
//
// x_sends_conf: the stronger adversary that also sends CONF({0,1}) to a0 and a1 in
// step 2, completing their CONF quorum without b; step 4 then also makes bin(b) =
// {0,1} so that a0's and a1's CONF({0,1}) count for b.

struct Issue59Result {
    bool decided_in_attack = false;  // some honest node decided while the attack ran
    Round rounds = 0;                // rounds the attack ran (or the decision round + 1)
    std::uint32_t fallback_rounds = 0;
    Net net;
};

Issue59Result run_issue59(AbaParams::TestKnobs k, bool x_sends_conf, Epoch epoch,
                          Round max_rounds) {
    Issue59Result res{false, 0, 0, Net(4, {3}, k, epoch)};
    Net& net = res.net;
    const NodeId x = 3;
    std::mt19937_64 rng(epoch + 100);
    net.input(0, true);
    net.input(1, true);
    net.input(2, false);
    for (Round r = 0; r < max_rounds; ++r) {
        res.rounds = r + 1;
        if (net.any_honest_decided()) {
            res.decided_in_attack = true;
            res.rounds = r;
            break;
        }
        for (NodeId i = 0; i < 3; ++i) EXPECT_EQ(net.node(i).round(), r) << "node " << i;
        // Roles from the current estimates (the adversary sees everything).
        std::vector<NodeId> ones, zeros;
        for (NodeId i = 0; i < 3; ++i) (*net.node(i).estimate() ? ones : zeros).push_back(i);
        auto round_r = [r](const Packet& p) {
            return p.msg.round == r && p.msg.type != AbaType::Term;
        };
        if (ones.empty() || zeros.empty()) {
            // All honest nodes agree: nothing to split. Deliver the round fairly.
            ++res.fallback_rounds;
            net.deliver_random(rng, round_r);
            continue;
        }
        const std::vector<NodeId>& A = ones.size() == 2 ? ones : zeros;
        const NodeId b = ones.size() == 2 ? zeros[0] : ones[0];
        const NodeId a0 = A[0], a1 = A[1];
        const bool v = *net.node(a0).estimate();
        const std::set<NodeId> sa = {a0, a1}, sb = {b};
        // A round with a fixed coin has no CONF: the adversary knows s from the start.
        const std::optional<bool> fixed =
            k.threshold_coin_every_round ? std::nullopt : fixed_coin(r);
        const bool skip_conf = k.skip_conf || fixed.has_value();

        net.inject(x, a0, bval(r, !v));
        net.inject(x, a1, bval(r, v));
        net.deliver_while(from_to(sb, sa, is(AbaType::Bval, r, !v)));
        net.deliver_while(from_to({a0}, {a1}, is(AbaType::Bval, r, v)));
        net.deliver_while(from_to(sa, sa, is(AbaType::Bval, r)));
        net.deliver_while(from_to(sa, sa, is(AbaType::Aux, r)));
        net.inject_all(x, A, bval(r, v));
        net.inject_all(x, A, bval(r, !v));
        net.inject_all(x, A, aux(r, v));
        if (x_sends_conf && !skip_conf) net.inject_all(x, A, conf(r, kBoth));
        net.deliver_while(from_to(sa, sa, is(AbaType::Conf, r)));
        net.deliver_while(from_to(sa, sa, is(AbaType::Coin, r)));
        const std::optional<bool> s = fixed ? fixed : net.adversary_coin(r);
        if (!s) {
            // No honest share is out: b's vals will be fixed before s is known.
            ++res.fallback_rounds;
            net.deliver_random(rng, round_r);
            continue;
        }
        net.inject(x, b, bval(r, !*s));
        net.deliver_while(from_to(sa, sb, is(AbaType::Bval, r, !*s)));
        net.deliver_while(from_to(sa, sb, is(AbaType::Aux, r, !*s)));
        net.inject(x, b, aux(r, !*s));
        if (!skip_conf) {
            net.inject(x, b, conf(r, mask(!*s)));
            net.deliver_while(from_to(sa, sb, is(AbaType::Bval, r, *s)));
            net.deliver_while(from_to(sa, sb, is(AbaType::Conf, r)));
        }
        net.deliver_while(from_to(sa, sb, is(AbaType::Coin, r)));
        net.deliver_random(rng, round_r);  // the rest of round r (all of it stale now)
    }
    if (!res.decided_in_attack && net.any_honest_decided()) {
        res.decided_in_attack = true;
    }
    return res;
}

// After the attack: every message delivered in an order seeded by the epoch; true
// if every honest node then decided, all the same value.
bool finish_issue59(Issue59Result& res, Epoch e) {
    std::mt19937_64 rng(e);
    res.net.deliver_all_random(rng);
    EXPECT_TRUE(res.net.all_honest_decided());
    EXPECT_FALSE(res.net.disagreement());
    return res.net.all_honest_decided() && !res.net.disagreement();
}

TEST(BinaryAgreement, aba_issue59_without_conf_never_terminates) {
    for (Epoch e = 0; e < 5; ++e) {
        AbaParams::TestKnobs k = every_round();
        k.skip_conf = true;
        Issue59Result res = run_issue59(k, false, e, 50);
        SCOPED_TRACE("epoch " + std::to_string(e));
        EXPECT_NO_VIOLATIONS(res.net);
        EXPECT_FALSE(res.decided_in_attack) << "no honest node may decide within 50 rounds";
        EXPECT_EQ(res.fallback_rounds, 0u) << "the attack never lost the split";
        EXPECT_FALSE(res.net.disagreement());
    }
}

TEST(BinaryAgreement, aba_issue59_with_conf_terminates) {
    double sum = 0;
    Round worst = 0;
    constexpr Epoch kEpochs = 20;
    for (Epoch e = 0; e < kEpochs; ++e) {
        Issue59Result res = run_issue59(every_round(), false, e, 50);
        SCOPED_TRACE("epoch " + std::to_string(e));
        EXPECT_NO_VIOLATIONS(res.net);
        EXPECT_TRUE(res.decided_in_attack);
        EXPECT_LE(res.rounds, 12u) << "decides within a few rounds under the same adversary";
        finish_issue59(res, e);
        sum += res.rounds + 1;
        worst = std::max(worst, res.rounds + 1);
    }
    std::cout << "[ aba stats ] issue59 with CONF: mean_rounds_to_first_decision=" << sum / kEpochs
              << " max=" << worst << "\n";
}

// CONF only helps with its full quorum: with n-t-1 = 2 CONF, a0 and a1 complete
// the wait between themselves and the issue-#59 schedule works again.
TEST(BinaryAgreement, aba_lowered_conf_quorum_reopens_issue59) {
    for (Epoch e = 0; e < 5; ++e) {
        AbaParams::TestKnobs k = every_round();
        k.conf_quorum = 2;
        Issue59Result res = run_issue59(k, false, e, 50);
        SCOPED_TRACE("epoch " + std::to_string(e));
        EXPECT_NO_VIOLATIONS(res.net);
        EXPECT_FALSE(res.decided_in_attack);
        EXPECT_FALSE(res.net.disagreement());
    }
}

// The stronger adversary (x also sends CONF({0,1}) to the A nodes) against the
// CONF-quorum rule: A's quorum (a0, a1, x) is all {0,1}, so A ends with est = s;
// b's quorum can hold at most two CONF({¬s}) (its own and x's) and so contains one
// of A's {0,1}: b ends with est = s too. The split is gone after one round.
TEST(BinaryAgreement, aba_issue59_adversary_that_also_sends_conf_terminates) {
    constexpr Epoch kEpochs = 20;
    constexpr Round kRoundBound = 12;
    std::uint32_t decided = 0;
    double sum = 0;
    Round worst = 0;
    for (Epoch e = 0; e < kEpochs; ++e) {
        Issue59Result res = run_issue59(every_round(), /*x_sends_conf=*/true, e, 50);
        SCOPED_TRACE("epoch " + std::to_string(e));
        EXPECT_NO_VIOLATIONS(res.net);
        EXPECT_TRUE(res.decided_in_attack) << "an honest node decides while the attack runs";
        EXPECT_GT(res.rounds, res.fallback_rounds)
            << "in some round the adversary learned s before b's CONF wait ended";
        EXPECT_LE(res.rounds, kRoundBound);
        const bool agreed = finish_issue59(res, e);
        if (res.decided_in_attack && agreed) ++decided;
        sum += res.rounds + 1;
        worst = std::max(worst, res.rounds + 1);
    }
    std::cout << "[ aba stats ] issue59 adversary sending CONF, CONF-quorum rule: " << decided
              << "/" << kEpochs
              << " instances decided with agreement, mean_rounds_to_first_decision="
              << sum / kEpochs << " max=" << worst << "\n";
    EXPECT_EQ(decided, kEpochs);
}

// The protocol's schedule against the same adversary: in the rounds with a fixed
// coin it knows s from the start and keeps the split (those rounds are the
// original MMR round, as in aba_issue59_without_conf_never_terminates), but every
// third round draws the threshold coin behind the CONF wait, where the split ends
// as above. Every instance decides, in more rounds than with a threshold coin in
// every round.
TEST(BinaryAgreement, aba_issue59_adversary_with_fixed_coin_rounds_terminates) {
    constexpr Epoch kEpochs = 20;
    constexpr Round kRoundBound = 30;
    std::uint32_t decided = 0;
    std::uint32_t split_fixed_rounds = 0;
    double sum = 0;
    Round worst = 0;
    for (Epoch e = 0; e < kEpochs; ++e) {
        Issue59Result res = run_issue59({}, /*x_sends_conf=*/true, e, 50);
        SCOPED_TRACE("epoch " + std::to_string(e));
        EXPECT_NO_VIOLATIONS(res.net);
        EXPECT_TRUE(res.decided_in_attack) << "an honest node decides while the attack runs";
        EXPECT_LE(res.rounds, kRoundBound);
        const bool agreed = finish_issue59(res, e);
        if (res.decided_in_attack && agreed) ++decided;
        // Rounds 0 and 1 have fixed coins: the adversary kept the split through both.
        if (res.rounds >= 2) ++split_fixed_rounds;
        sum += res.rounds + 1;
        worst = std::max(worst, res.rounds + 1);
    }
    std::cout << "[ aba stats ] issue59 adversary sending CONF, fixed coin rounds: " << decided
              << "/" << kEpochs << " instances decided with agreement (" << split_fixed_rounds
              << " kept split through rounds 0-1), mean_rounds_to_first_decision=" << sum / kEpochs
              << " max=" << worst << "\n";
    EXPECT_EQ(decided, kEpochs);
    EXPECT_EQ(split_fixed_rounds, kEpochs) << "the adversary owns the fixed rounds";
}

// The same adversary against the previous rule (decide from the own AUX-phase vals,
// hbbft's): x completes A's CONF quorum without b, learns s, and then steers b to
// vals {¬s}; b ends with est ¬s, A with s, and the split repeats every round.
TEST(BinaryAgreement, aba_own_vals_rule_stalls_under_adversary_that_also_sends_conf) {
    constexpr Epoch kEpochs = 20;
    std::uint32_t stalled = 0;
    for (Epoch e = 0; e < kEpochs; ++e) {
        AbaParams::TestKnobs k = every_round();
        k.own_vals_decision = true;
        Issue59Result res = run_issue59(k, /*x_sends_conf=*/true, e, 50);
        SCOPED_TRACE("epoch " + std::to_string(e));
        EXPECT_NO_VIOLATIONS(res.net);
        EXPECT_FALSE(res.net.disagreement());
        EXPECT_EQ(res.fallback_rounds, 0u) << "the attack never lost the split";
        if (!res.decided_in_attack) ++stalled;
    }
    std::cout << "[ aba stats ] issue59 adversary sending CONF, own-vals rule: " << stalled << "/"
              << kEpochs << " instances without a decision in 50 rounds\n";
    EXPECT_EQ(stalled, kEpochs) << "the own-vals rule has no defence against this adversary";
}

// Regression for the replica_test n7 stall report: n = 7, t = 2, nodes 5 and 6
// crashed, the five live nodes all input 1 and the round-0 coin is 0. Nodes 0 and 4
// release their round-0 share but learn the coin only later, after the round-1
// BVALs of nodes 1, 2, 3 reached them while they were still in round 0. They must
// keep those votes for round 1 (future-round state), move to round 1 in a separate
// step, and accept 1 into bin_values(1) once each other's BVAL(1, 1) arrives. (The
// replica_test stall turned out not to be an ABA bug: see the commit message.)
TEST(BinaryAgreement, aba_round1_votes_received_in_round0_after_late_coin) {
    auto w = FastWorld::make(7, 2, 7);
    Epoch e = find_epoch(
        w, [](const std::vector<bool>& c) { return !c[0]; }, 1);
    Net net(7, {5, 6}, every_round(), e);
    const std::set<NodeId> late = {0, 4};
    for (NodeId i = 0; i < 5; ++i) net.input(i, true);
    // Everything except the coin shares towards nodes 0 and 4.
    auto held = [&](const Packet& p) { return p.msg.type == AbaType::Coin && late.count(p.to); };
    net.deliver_while([&](const Packet& p) { return !held(p); });
    for (NodeId i : {1, 2, 3}) {
        EXPECT_EQ(net.node(i).round(), 1u) << "node " << i;
        EXPECT_EQ(net.node(i).bin_values(), 0) << "node " << i << " (waits for 0 and 4)";
    }
    for (NodeId i : late) {
        EXPECT_EQ(net.node(i).round(), 0u) << "node " << i;
        EXPECT_TRUE(net.node(i).coin_share_released()) << "node " << i;
    }
    // Node 0 learns the coin first; its BVAL(1, 1) is not yet delivered to node 4.
    net.deliver_while([&](const Packet& p) { return held(p) && p.to == 0; });
    EXPECT_EQ(net.node(0).round(), 1u);
    EXPECT_EQ(net.node(0).estimate(), std::optional<bool>(true));
    EXPECT_EQ(net.node(0).bin_values(), 0);  // 4 of 5 BVAL(1, 1): needs node 4's
    // Node 4 now learns the coin; exchanging BVAL(1, 1) completes both quorums.
    net.deliver_while([&](const Packet& p) { return held(p) && p.to == 4; });
    EXPECT_EQ(net.node(4).round(), 1u);
    net.deliver_while([&](const Packet& p) {
        return p.msg.type == AbaType::Bval && p.msg.round == 1 && late.count(p.to);
    });
    for (NodeId i : late) {
        EXPECT_EQ(net.node(i).bin_values(), mask(true)) << "node " << i;
    }
    net.deliver_while([](const Packet&) { return true; });
    ASSERT_TRUE(net.all_honest_decided());
    for (NodeId i = 0; i < 5; ++i) EXPECT_EQ(net.decided()[i], std::optional<bool>(true));
    EXPECT_TRUE(net.violations().empty());
}

// =============================================================================
// Rounds with a fixed coin (the protocol's schedule; knobs = {})
// =============================================================================

TEST(BinaryAgreement, aba_fixed_coin_schedule_is_one_zero_threshold) {
    for (Round r = 0; r < 30; r += 3) {
        EXPECT_EQ(fixed_coin(r), std::optional<bool>(true)) << "round " << r;
        EXPECT_EQ(fixed_coin(r + 1), std::optional<bool>(false)) << "round " << r + 1;
        EXPECT_EQ(fixed_coin(r + 2), std::nullopt) << "round " << r + 2;
    }
}

// The common case the fixed rounds are for: every input 1 decides 1 in round 0
// with BVAL and AUX only; every input 0 decides 0 in round 1 the same way.
TEST(BinaryAgreement, aba_unanimous_inputs_decide_without_conf_or_coin) {
    for (bool v : {true, false}) {
        for (std::uint64_t seed = 0; seed < 20; ++seed) {
            SCOPED_TRACE("input " + std::to_string(v) + " seed " + std::to_string(seed));
            Net net(4, {}, {}, seed);
            std::mt19937_64 rng(seed);
            for (NodeId i = 0; i < 4; ++i) net.input(i, v);
            net.deliver_all_random(rng);
            EXPECT_NO_VIOLATIONS(net);
            ASSERT_TRUE(net.all_honest_decided());
            for (NodeId i = 0; i < 4; ++i) {
                EXPECT_EQ(net.decided()[i], std::optional<bool>(v));
                EXPECT_EQ(net.decided_round(i), v ? 0u : 1u) << "node " << i;
            }
            for (const auto& [from, m] : net.broadcasts()) {
                EXPECT_NE(m.type, AbaType::Conf) << "node " << from << " round " << m.round;
                EXPECT_NE(m.type, AbaType::Coin) << "node " << from << " round " << m.round;
            }
        }
    }
}

// In a fixed round the AUX quorum ends the round: n−t AUX, not fewer, and the
// outcome is the node's own vals against the fixed coin.
TEST(BinaryAgreement, aba_fixed_round_decides_after_n_minus_t_aux) {
    Solo s(4, {});
    (void)s.aba.handle_input(true);
    (void)s.from(1, bval(0, true));
    AbaStep st = s.from(2, bval(0, true));
    ASSERT_TRUE(has(st, AbaType::Aux, 0, 1));
    st = s.from(1, aux(0, true));
    EXPECT_FALSE(st.decision) << "2 AUX < n-t";
    EXPECT_EQ(count(st, AbaType::Conf), 0u);
    st = s.from(2, aux(0, true));
    EXPECT_EQ(st.decision, std::optional<bool>(true)) << "vals {1} = the round-0 coin";
    EXPECT_EQ(count(st, AbaType::Conf), 0u) << "a fixed round has no CONF";
    EXPECT_EQ(count(st, AbaType::Coin), 0u) << "nor a coin share";
    EXPECT_TRUE(has(st, AbaType::Term, 0, 1));
}

// vals {0} in round 0 (coin 1): est 0, round 1 (coin 0) decides 0; vals {0,1} in
// round 1: est = the coin 0 ... and round 2 draws the threshold coin behind CONF.
TEST(BinaryAgreement, aba_fixed_rounds_carry_vals_or_coin_into_the_next_round) {
    Solo s(4, {});
    (void)s.aba.handle_input(false);
    (void)s.from(1, bval(0, false));
    (void)s.from(2, bval(0, false));
    (void)s.from(1, aux(0, false));
    AbaStep st = s.from(2, aux(0, false));
    EXPECT_FALSE(st.decision) << "vals {0} against coin 1";
    EXPECT_EQ(s.aba.round(), 1u);
    EXPECT_EQ(s.aba.estimate(), std::optional<bool>(false));
    ASSERT_TRUE(has(st, AbaType::Bval, 1, 0));
    // Round 1: bin_values {0,1} and AUX for both values: vals {0,1}, est = coin 0.
    (void)s.from(1, bval(1, true));
    st = s.from(2, bval(1, true));
    ASSERT_TRUE(has(st, AbaType::Bval, 1, 1)) << "relay at t+1";
    ASSERT_TRUE(has(st, AbaType::Aux, 1, 1)) << "with the relay 2t+1: 1 enters bin_values first";
    (void)s.from(1, bval(1, false));
    (void)s.from(2, bval(1, false));
    EXPECT_EQ(s.aba.bin_values(), kBoth);
    (void)s.from(1, aux(1, true));
    st = s.from(2, aux(1, false));
    EXPECT_FALSE(st.decision) << "vals {0,1} never decide";
    EXPECT_EQ(s.aba.round(), 2u);
    EXPECT_EQ(s.aba.estimate(), std::optional<bool>(false)) << "est = the round-1 coin";
    // Round 2 is a threshold round: CONF, then the share, once the waits end.
    (void)s.from(1, bval(2, false));
    (void)s.from(2, bval(2, false));
    (void)s.from(1, aux(2, false));
    st = s.from(2, aux(2, false));
    ASSERT_TRUE(has(st, AbaType::Conf, 2, mask(false)));
    EXPECT_EQ(count(st, AbaType::Coin), 0u);
    (void)s.from(1, conf(2, mask(false)));
    st = s.from(2, conf(2, mask(false)));
    EXPECT_EQ(count(st, AbaType::Coin), 1u) << "the share leaves after the CONF wait";
}

// A CONF or a coin share for a fixed round is something no honest node sends: a
// fault, never counted, and the share is never verified (no CPU for it).
TEST(BinaryAgreement, aba_conf_or_share_in_fixed_round_is_a_fault_and_not_verified) {
    Solo s(4, {});
    (void)s.aba.handle_input(true);
    for (Round r : {0u, 1u, 3u}) {
        SCOPED_TRACE("round " + std::to_string(r));
        EXPECT_TRUE(has_fault(s.share_from(1, r), 1, FaultKind::Malformed));
        EXPECT_TRUE(has_fault(s.from(2, conf(r, mask(true))), 2, FaultKind::Malformed));
    }
    EXPECT_EQ(s.crypto.verifications, 0);
    // A share for a threshold round is taken (verified lazily once it is needed).
    EXPECT_TRUE(s.share_from(1, 2).faults.empty());
    EXPECT_TRUE(s.from(2, conf(2, mask(true))).faults.empty());
}

// Restore in a fixed round: the logged AUX is kept, nothing of a CONF or share is
// expected, and the restored node finishes the round as it would have.
TEST(BinaryAgreement, aba_restore_in_a_fixed_round) {
    Solo before(4, {});
    std::vector<AbaMessage> log;
    auto keep = [&](const AbaStep& st) {
        for (const AbaMessage& m : st.messages) log.push_back(m);
    };
    keep(before.aba.handle_input(false));
    keep(before.from(1, bval(0, true)));
    keep(before.from(2, bval(0, true)));  // relays BVAL(1), then bin_values {1}: AUX(1)
    keep(before.from(3, bval(0, true)));
    ASSERT_TRUE(std::any_of(log.begin(), log.end(), [](const AbaMessage& m) {
        return m.type == AbaType::Aux && m.round == 0 && m.value == 1;
    }));
    Solo after(4, {});
    after.aba.restore(log);
    // Its peers re-publish: BVAL(0) would enter bin_values, but AUX stays the logged one.
    (void)after.from(1, bval(0, true));
    (void)after.from(2, bval(0, true));
    (void)after.from(1, bval(0, false));
    AbaStep st = after.from(2, bval(0, false));
    EXPECT_EQ(count(st, AbaType::Aux), 0u) << "the logged AUX(1) is the round's only AUX";
    (void)after.from(1, aux(0, true));
    st = after.from(2, aux(0, true));
    EXPECT_EQ(st.decision, std::optional<bool>(true));
    EXPECT_EQ(count(st, AbaType::Conf), 0u);
}

// The schedule of "Relaying in rounds left behind" (binary_agreement.cpp): n = 7,
// nodes 5 and 6 lie. Nodes 3 and 4 decide 1 in round 0 (the fixed coin 1) before
// they see t+1 BVAL(0); nodes 1 and 2 take 0 into bin_values with the liars' help
// and move on with vals {0,1}; node 0 relayed BVAL(0) but saw only four of them.
// Then the liars fall silent. Without the relays of the nodes that decided or left
// the round, node 0 never completes its AUX wait and nobody decides again.
Net relay_behind_schedule(AbaParams::TestKnobs k) {
    Net net(7, {5, 6}, k, /*epoch=*/3);
    const std::vector<NodeId> ones = {0, 3, 4}, zeros = {1, 2}, deciders = {3, 4};
    for (NodeId i : ones) net.input(i, true);
    for (NodeId i : zeros) net.input(i, false);
    for (NodeId x : {5, 6}) {
        net.inject_all(x, ones, bval(0, true));
        net.inject_all(x, zeros, bval(0, false));
    }
    net.inject(5, 0, bval(0, false));
    // Nodes 0, 3, 4: bin_values {1} and AUX(1); node 0 relays BVAL(0) (three seen).
    net.deliver_while(from_to({0, 3, 4}, {0, 3, 4}, is(AbaType::Bval, 0, true)));
    net.deliver_while(from_to({1, 2}, {0}, is(AbaType::Bval, 0, false)));
    // Nodes 1, 2: five BVAL(0) (theirs, the liars', node 0's): AUX(0).
    net.deliver_while(from_to({0, 1, 2}, {1, 2}, is(AbaType::Bval, 0, false)));
    // Nodes 3, 4 decide: AUX(1) from 0, 3, 4 and the liars, coin 1.
    for (NodeId x : {5, 6}) net.inject_all(x, deciders, aux(0, true));
    net.deliver_while(from_to({0, 3, 4}, {3, 4}, is(AbaType::Aux, 0, true)));
    // Nodes 1, 2: 1 enters bin_values too; AUX(0) and AUX(1) give vals {0,1}: est 1.
    for (NodeId x : {5, 6}) net.inject_all(x, zeros, bval(0, true));
    net.deliver_while(from_to({0, 3, 4}, {1, 2}, is(AbaType::Bval, 0, true)));
    net.deliver_while(from_to({0, 1, 2, 3, 4}, {1, 2}, is(AbaType::Aux, 0)));
    // The liars are silent from here on; everything else is delivered in order.
    net.deliver_while([](const Packet&) { return true; });
    return net;
}

TEST(BinaryAgreement, aba_decided_nodes_keep_relaying_bval) {
    {
        Net net = relay_behind_schedule({});
        EXPECT_NO_VIOLATIONS(net);
        EXPECT_TRUE(net.all_honest_decided());
        EXPECT_FALSE(net.disagreement());
        for (NodeId i = 0; i < 5; ++i) EXPECT_EQ(net.decided()[i], std::optional<bool>(true));
    }
    {
        AbaParams::TestKnobs k;
        k.no_relay_behind = true;
        Net net = relay_behind_schedule(k);
        EXPECT_NO_VIOLATIONS(net);
        for (NodeId i : {3, 4}) {
            EXPECT_EQ(net.decided()[i], std::optional<bool>(true)) << "node " << i;
            EXPECT_EQ(net.decided_round(i), 0u) << "node " << i;
        }
        for (NodeId i : {1, 2}) EXPECT_EQ(net.node(i).round(), 1u) << "node " << i;
        EXPECT_EQ(net.node(0).round(), 0u);
        EXPECT_EQ(net.node(0).bin_values(), mask(true));
        EXPECT_FALSE(net.any_honest_decided() && net.all_honest_decided())
            << "without the relays, nodes 0, 1 and 2 wait for ever";
        for (NodeId i : {0, 1, 2}) EXPECT_FALSE(net.decided()[i]) << "node " << i;
    }
}

}  // namespace
}  // namespace tob::consensus
