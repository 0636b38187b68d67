// The simulator's checkers must fail on planted bugs: "a checker is trusted only
// after it has caught a planted bug" (docs/fault-model.md, "Checking the checkers").

#include <gtest/gtest.h>

#include "tests/sim/checker.h"

namespace tob::sim {
namespace {

using consensus::PublicKey;
using consensus::RequestResult;

Digest dig(std::uint8_t a, std::uint8_t b = 0) {
    Digest d{};
    d[0] = a;
    d[1] = b;
    return d;
}

PublicKey client(std::uint8_t c) {
    PublicKey pk{};
    pk[0] = c;
    return pk;
}

RequestResult res(std::uint8_t tx, std::uint32_t pos, bool dup = false) {
    RequestResult r;
    r.client = client(1);
    r.nonce = tx;
    r.request_digest = dig(0xa0, tx);
    r.position = pos;
    r.duplicate = dup;
    return r;
}

std::vector<SubmittedTx> submitted(std::initializer_list<std::uint8_t> txs) {
    std::vector<SubmittedTx> out;
    for (auto tx : txs) out.push_back({client(1), tx, dig(0xa0, tx)});
    return out;
}

// A three-epoch history, three txs.
std::vector<AppliedEpoch> history() {
    return {
        {1, dig(1), dig(0x51), {res(1, 0)}},
        {2, dig(2), dig(0x52), {res(2, 0), res(1, 1, true)}},
        {3, dig(3), dig(0x53), {res(3, 0)}},
    };
}

bool has(const std::vector<Violation>& v, const std::string& check) {
    for (const auto& x : v)
        if (x.check == check) return true;
    return false;
}

TEST(SimChecker, clean_history_passes) {
    std::vector<NodeLog> logs = {{0, history()}, {1, history()}, {2, history()}};
    logs[2].epochs.pop_back();  // a prefix is fine for safety
    auto v = check_all(logs, submitted({1, 2, 3}), {}, false);
    EXPECT_TRUE(v.empty()) << v.front().detail;
    logs[2].epochs = history();
    std::vector<FinalState> finals = {{0, 3, dig(0x53)}, {1, 3, dig(0x53)}, {2, 3, dig(0x53)}};
    v = check_all(logs, submitted({1, 2, 3}), finals, true);
    EXPECT_TRUE(v.empty()) << v.front().detail;
}

TEST(SimChecker, agreement_catches_diverging_logs) {
    std::vector<NodeLog> logs = {{0, history()}, {1, history()}};
    logs[1].epochs[1].results = {res(1, 0, true), res(2, 1)};  // same txs, other order
    auto v = check_agreement(logs);
    EXPECT_TRUE(has(v, "agreement"));

    std::vector<NodeLog> logs2 = {{0, history()}, {1, history()}};
    logs2[1].epochs[2].output_digest = dig(9);
    EXPECT_TRUE(has(check_agreement(logs2), "agreement"));

    std::vector<NodeLog> logs3 = {{0, history()}, {1, history()}};
    logs3[1].epochs.erase(logs3[1].epochs.begin() + 1);  // a gap: epochs 1, 3
    EXPECT_TRUE(has(check_agreement(logs3), "agreement"));
}

TEST(SimChecker, total_order_catches_swapped_transactions) {
    std::vector<NodeLog> logs = {{0, history()}, {1, history()}};
    std::swap(logs[1].epochs[0].results[0], logs[1].epochs[1].results[0]);
    EXPECT_TRUE(has(check_total_order(logs), "total-order"));
}

TEST(SimChecker, validity_catches_a_tx_committed_twice) {
    std::vector<NodeLog> logs = {{0, history()}};
    logs[0].epochs[2].results.push_back(res(2, 1));  // tx 2 takes effect again
    EXPECT_TRUE(has(check_validity(logs, submitted({1, 2, 3})), "validity"));
}

TEST(SimChecker, validity_catches_a_tx_never_submitted) {
    std::vector<NodeLog> logs = {{0, history()}};
    EXPECT_TRUE(has(check_validity(logs, submitted({1, 2})), "validity"));
    // Also a forged copy: same client and nonce, other bytes (other digest).
    std::vector<NodeLog> logs2 = {{0, history()}};
    logs2[0].epochs[0].results[0].request_digest = dig(0xee);
    EXPECT_TRUE(has(check_validity(logs2, submitted({1, 2, 3})), "validity"));
}

TEST(SimChecker, liveness_catches_a_lost_tx) {
    std::vector<NodeLog> logs = {{0, history()}, {1, history()}};
    EXPECT_TRUE(has(check_liveness(logs, submitted({1, 2, 3, 4})), "liveness"));
    logs[1].epochs.pop_back();
    EXPECT_TRUE(has(check_liveness(logs, submitted({1, 2, 3})), "liveness"));
}

TEST(SimChecker, digests_catch_unequal_states) {
    EXPECT_TRUE(has(check_digests({{0, 3, dig(0x53)}, {1, 3, dig(0x54)}}), "digests"));
    EXPECT_TRUE(has(check_digests({{0, 3, dig(0x53)}, {1, 2, dig(0x52)}}), "digests"));
    EXPECT_TRUE(check_digests({{0, 3, dig(0x53)}, {1, 3, dig(0x53)}}).empty());
    std::vector<NodeLog> logs = {{0, history()}, {1, history()}};
    logs[1].epochs[2].state_digest = dig(0x99);
    EXPECT_TRUE(has(check_agreement(logs), "agreement"));
}

}  // namespace
}  // namespace tob::sim
