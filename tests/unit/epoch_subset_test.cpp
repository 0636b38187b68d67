// EpochSubset (consensus/epoch_subset.h): the n agreements of an epoch, their
// inputs (certificate ⇒ 1; n − t decided ones ⇒ 0 to the rest) and the output
// order. Four subsets exchange their ABA messages in a small FIFO network.

#include "consensus/epoch_subset.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "consensus/fast_crypto.h"

namespace tob::consensus {
namespace {

constexpr std::uint32_t kN = 4, kT = 1;

struct Wire {
    NodeId from, to;
    AbaMessage message;
};

class Network {
  public:
    explicit Network(Epoch e) : epoch_(e), world_(FastWorld::make(kN, kT, 5)) {
        Digest chain{};
        chain.fill(1);
        for (NodeId i = 0; i < kN; ++i) {
            suites_.push_back(std::make_unique<FastCryptoSuite>(world_, i));
            nodes_.push_back(
                std::make_unique<EpochSubset>(SubsetParams{kN, kT, i, chain, 16}, *suites_[i]));
            nodes_[i]->open_epoch(e);
        }
    }
    EpochSubset& node(NodeId i) { return *nodes_[i]; }

    void take(NodeId from, EpochSubset::Progress&& p) {
        for (auto& [j, messages] : p.sends) {
            for (auto& m : messages) {
                sent_[from][j].push_back(m);
                if (m.type == AbaType::Bval && m.value == 0) zero_bvals_.insert({from, j});
                for (NodeId to = 0; to < kN; ++to)
                    if (to != from) queue_.push_back({from, to, m});
            }
        }
        decisions_ += p.decisions;
        faults_ += p.faults.size();
    }
    void input(NodeId i, NodeId j) { take(i, nodes_[i]->input_one(epoch_, j)); }
    void run() {
        while (!queue_.empty()) {
            Wire w = std::move(queue_.front());
            queue_.pop_front();
            take(w.to, nodes_[w.to]->handle(epoch_, w.from, w.message));
        }
    }
    bool sent_zero(NodeId node, NodeId proposer) const {
        return zero_bvals_.count({node, proposer}) != 0;
    }
    std::uint32_t decisions() const { return decisions_; }
    /// Every message `node` produced, per proposer, in order.
    std::map<NodeId, std::vector<AbaMessage>> sent_by(NodeId node) { return sent_[node]; }
    std::size_t faults() const { return faults_; }

  private:
    Epoch epoch_;
    std::shared_ptr<const FastWorld> world_;
    std::vector<std::unique_ptr<FastCryptoSuite>> suites_;
    std::vector<std::unique_ptr<EpochSubset>> nodes_;
    std::deque<Wire> queue_;
    std::set<std::pair<NodeId, NodeId>> zero_bvals_;
    std::map<NodeId, std::map<NodeId, std::vector<AbaMessage>>> sent_;
    std::uint32_t decisions_ = 0;
    std::size_t faults_ = 0;
};

TEST(EpochSubset, every_certified_block_is_in_the_set_in_rotated_order) {
    const Epoch e = 5;  // 5 mod 4 = 1: proposer 1 first
    Network net(e);
    for (NodeId i = 0; i < kN; ++i)
        for (NodeId j = 0; j < kN; ++j) net.input(i, j);
    net.run();
    for (NodeId i = 0; i < kN; ++i) {
        auto s = net.node(i).outcome(e);
        ASSERT_TRUE(s) << "node " << i;
        EXPECT_EQ(*s, (std::vector<NodeId>{1, 2, 3, 0}));
    }
    EXPECT_EQ(net.decisions(), kN * kN);
    EXPECT_EQ(net.faults(), 0u);
}

TEST(EpochSubset, n_minus_t_ones_input_zero_for_a_silent_proposer) {
    const Epoch e = 2;
    Network net(e);
    // Proposer 3 is silent: nobody holds its certificate, nobody inputs for it.
    for (NodeId i = 0; i < kN; ++i)
        for (NodeId j = 0; j < kN - 1; ++j) net.input(i, j);
    net.run();
    for (NodeId i = 0; i < kN; ++i) {
        auto s = net.node(i).outcome(e);
        ASSERT_TRUE(s) << "node " << i << ": ABA(e, 3) needed the zero input to terminate";
        EXPECT_EQ(*s, (std::vector<NodeId>{2, 0, 1}));
        EXPECT_TRUE(net.sent_zero(i, 3));
        // Zeros go only to instances without an input.
        for (NodeId j = 0; j < kN - 1; ++j) EXPECT_FALSE(net.sent_zero(i, j));
    }
}

TEST(EpochSubset, no_zero_before_n_minus_t_ones) {
    const Epoch e = 1;
    Network net(e);
    // Only two certificates anywhere: two ones can decide, but 2 < n - t = 3,
    // so nobody may input 0 and the epoch stays open.
    for (NodeId i = 0; i < kN; ++i)
        for (NodeId j = 0; j < 2; ++j) net.input(i, j);
    net.run();
    for (NodeId i = 0; i < kN; ++i) {
        EXPECT_FALSE(net.node(i).outcome(e)) << "node " << i;
        EXPECT_FALSE(net.sent_zero(i, 2));
        EXPECT_FALSE(net.sent_zero(i, 3));
    }
    // A third certificate arrives: now the rule fires and the epoch completes.
    for (NodeId i = 0; i < kN; ++i) net.input(i, 2);
    net.run();
    for (NodeId i = 0; i < kN; ++i) {
        auto s = net.node(i).outcome(e);
        ASSERT_TRUE(s);
        EXPECT_EQ(*s, (std::vector<NodeId>{1, 2, 0}));
    }
}

TEST(EpochSubset, input_is_taken_once) {
    Network net(3);
    net.input(0, 1);
    EpochSubset::Progress again = net.node(0).input_one(3, 1);
    EXPECT_TRUE(again.sends.empty());
    EXPECT_EQ(again.decisions, 0u);
}

TEST(EpochSubset, unopened_epoch_ignores_inputs_and_messages) {
    const auto world = FastWorld::make(kN, kT, 5);
    FastCryptoSuite suite(world, 0);
    EpochSubset subset(SubsetParams{kN, kT, 0, Digest{}, 16}, suite);
    EXPECT_FALSE(subset.open(4));
    EXPECT_TRUE(subset.input_one(4, 0).sends.empty());
    EXPECT_TRUE(subset.handle(4, 1, AbaMessage{0, 0, AbaType::Bval, 1, {}}).sends.empty());
    EXPECT_FALSE(subset.outcome(4));
    EXPECT_EQ(subset.epochs(), 0u);
}

TEST(EpochSubset, restored_node_keeps_its_inputs_and_decisions) {
    const Epoch e = 5;
    Network net(e);
    for (NodeId i = 0; i < kN; ++i)
        for (NodeId j = 0; j < kN; ++j) net.input(i, j);
    net.run();
    ASSERT_TRUE(net.node(0).outcome(e));
    // Node 0 restarts with what it signed (as its sign-log holds it).
    const auto world = FastWorld::make(kN, kT, 5);
    FastCryptoSuite suite(world, 0);
    EpochSubset restarted(SubsetParams{kN, kT, 0, Digest{}, 16}, suite);
    restarted.open_epoch(e);
    restarted.restore(e, net.sent_by(0));
    EXPECT_EQ(restarted.outcome(e), net.node(0).outcome(e));
    // It input 1 before the crash: a certificate after the restart changes nothing.
    EXPECT_TRUE(restarted.input_one(e, 0).sends.empty());
}

TEST(EpochSubset, pruning_drops_whole_epochs) {
    const auto world = FastWorld::make(kN, kT, 5);
    FastCryptoSuite suite(world, 0);
    EpochSubset subset(SubsetParams{kN, kT, 0, Digest{}, 16}, suite);
    for (Epoch e = 1; e <= 6; ++e) subset.open_epoch(e);
    EXPECT_EQ(subset.instances(), 6 * kN);
    subset.prune([](Epoch e) { return e <= 4; });
    EXPECT_EQ(subset.epochs(), 2u);
    EXPECT_EQ(subset.instances(), 2 * kN);
    EXPECT_EQ(subset.rounds_held(), 0u);  // rounds are created on demand
}

}  // namespace
}  // namespace tob::consensus
