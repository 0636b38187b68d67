#pragma once
// Asynchronous binary agreement (ABA) for one (epoch, proposer) instance:
// Mostéfaoui–Moumen–Raynal with the CONF phase (see the essay in
// binary_agreement.cpp and DESIGN.md §2 "Binary agreement").
//
// The instance is pure: inputs in, an AbaStep out. Messages in the step are to be
// broadcast to every other node; the instance has already counted its own copy.
// The caller (Epoch) signs, sign-logs and sends them, and hands in messages from
// other nodes only after their envelope signature verified.

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "consensus/crypto_suite.h"
#include "consensus/messages.h"
#include "consensus/step.h"

namespace tob::consensus {

struct AbaParams {
    std::uint32_t n = 4;
    std::uint32_t t = 1;
    NodeId self = 0;
    Digest chain_id{};
    Epoch epoch = 0;
    NodeId proposer = 0;
    Round max_rounds_ahead = 16;  // messages for rounds > current + this are dropped

    /// Test-only switches that break one rule each, so that tests can show the rule
    /// matters. Never set outside tests (tobsim exposes none of them).
    struct TestKnobs {
        bool skip_conf = false;             // the original MMR without CONF (issue #59)
        std::uint32_t relay_threshold = 0;  // 0 = t+1
        std::uint32_t accept_threshold = 0; // 0 = 2t+1
        std::uint32_t aux_quorum = 0;       // 0 = n-t
        std::uint32_t conf_quorum = 0;      // 0 = n-t
        std::uint32_t coin_threshold = 0;   // 0 = t+1 (informational: combine needs t+1)
        std::uint32_t term_threshold = 0;   // 0 = t+1
        bool conf_sends_bin_values = false; // the known bug: CONF(bin_values) instead of CONF(vals)
        bool aux_every_value = false;       // send AUX for every value added, not the first only
        bool count_duplicates = false;      // count a second BVAL/AUX from one sender again
    } knobs;
};

struct AbaStep {
    std::vector<AbaMessage> messages;  // broadcast to all other nodes, in this order
    std::optional<bool> decision;      // set in the one step where the instance decides
    std::vector<Fault> faults;
};

class BinaryAgreement {
  public:
    BinaryAgreement(const AbaParams& params, const CryptoSuite& crypto);

    /// The node's input (estimate for round 0). Ignored if an input was given
    /// before, or if the instance already moved past round 0 or terminated.
    [[nodiscard]] AbaStep handle_input(bool estimate);

    /// A message from another member (signature already verified by the caller).
    /// Messages from `self` are ignored. Invalid coin shares yield a Fault.
    [[nodiscard]] AbaStep handle_message(NodeId from, const AbaMessage& message);

    /// Rebuilds the state after a restart from the messages this node signed,
    /// in the order they were signed (from the sign-log). Produces nothing: the
    /// caller re-publishes the logged bytes. Must be called before any input.
    void restore(const std::vector<AbaMessage>& sent_in_order);

    bool has_input() const { return input_.has_value(); }
    std::optional<bool> decision() const { return decision_; }
    bool terminated() const { return decision_.has_value(); }
    Round round() const { return round_; }
    /// Rounds this instance went through (for the aba_rounds metric).
    Round rounds_used() const { return round_ + 1; }

  private:
    struct RoundState;
    // implementation-defined members; see binary_agreement.cpp
    AbaParams p_;
    const CryptoSuite& crypto_;
    std::optional<bool> input_;
    std::optional<bool> decision_;
    Round round_ = 0;
    bool est_ = false;
    bool started_ = false;
    std::map<Round, RoundState*> unused_;  // placeholder; the implementation may replace private members freely
};

}  // namespace tob::consensus
