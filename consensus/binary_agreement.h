#pragma once
// Asynchronous binary agreement (ABA) for one (epoch, proposer) instance:
// Mostéfaoui–Moumen–Raynal with the CONF phase, deciding from the CONF quorum
// (see the essay in binary_agreement.cpp, docs/aba.md, and docs/protocol.md,
// "Binary agreement").
//
// The instance is pure: inputs in, an AbaStep out. Messages in the step are to be
// broadcast to every other node; the instance has already counted its own copy.
// The caller (Epoch) signs, sign-logs and sends them, and hands in messages from
// other nodes only after their envelope signature verified.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
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
        bool skip_conf = false;              // the original MMR without CONF (issue #59)
        std::uint32_t relay_threshold = 0;   // 0 = t+1
        std::uint32_t accept_threshold = 0;  // 0 = 2t+1
        std::uint32_t aux_quorum = 0;        // 0 = n-t
        std::uint32_t conf_quorum = 0;       // 0 = n-t
        std::uint32_t coin_threshold = 0;    // 0 = t+1 (informational: combine needs t+1)
        std::uint32_t term_threshold = 0;    // 0 = t+1
        bool conf_sends_bin_values =
            false;                      // the known bug: CONF(bin_values) instead of CONF(vals)
        bool aux_every_value = false;   // send AUX for every value added, not the first only
        bool count_duplicates = false;  // count a second BVAL/AUX from one sender again
        bool own_vals_decision =
            false;  // hbbft's rule: decide from the own AUX-phase vals, not the CONF quorum
        bool threshold_coin_every_round =
            false;  // no fixed-coin rounds: CONF and the threshold coin in every round
        bool no_relay_behind = false;  // no BVAL relays in rounds left behind or decided in
    } knobs;
};

/// The coin of round r when it is fixed by the protocol, nullopt when round r draws
/// the threshold coin: rounds 0, 3, 6, … have coin 1, rounds 1, 4, 7, … coin 0, and
/// rounds 2, 5, 8, … the threshold coin. A fixed round has no CONF phase and no
/// coin shares (binary_agreement.cpp, "Rounds with a fixed coin").
std::optional<bool> fixed_coin(Round r);

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

    // ---- read-only views for tests, metrics and invariant checks ----------------
    /// The current estimate (unset in round 0 before an input arrived).
    std::optional<bool> estimate() const { return est_; }
    /// bin_values of the current round as a mask (bit 0: false, bit 1: true).
    std::uint8_t bin_values() const;
    /// The AUX-phase set of the current round as a mask (what this node sends in
    /// CONF); 0 while still waiting.
    std::uint8_t vals() const;
    /// The set the round outcome is computed from, taken from the CONF quorum that
    /// ended the CONF wait; 0 while still waiting.
    std::uint8_t decision_vals() const;
    /// Whether this node released its coin share for the current round.
    bool coin_share_released() const;
    /// Messages dropped because their round was beyond round() + max_rounds_ahead.
    std::uint64_t dropped_messages() const { return dropped_; }
    /// Round states held (at most 2 x max_rounds_ahead + 1: the rounds behind keep
    /// their BVAL flags for relaying), for memory reports.
    std::size_t rounds_held() const { return rounds_.size(); }
    /// One line for a stall report: the round, estimate, bin_values, who sent which
    /// BVAL/AUX/CONF in the current round (sender masks), coin and TERM counts.
    std::string describe() const;

  private:
    /// What one sender contributed to one round: flags, never a queue.
    struct SenderVotes {
        std::uint8_t bval = 0;   // bit b set: a BVAL(b) from this sender is counted
        std::uint8_t aux = 0;    // bit b set: an AUX(b) is counted (one bit unless aux_every_value)
        std::uint8_t conf = 0;   // the counted CONF set as a mask (0 = none yet)
        bool aux_real = false;   // the counted AUX came in an AUX message (not implied by TERM)
        bool conf_real = false;  // same for CONF
        bool share = false;      // a coin share from this sender was taken (pending or verified)
    };

    struct RoundState {
        std::vector<SenderVotes> votes;             // index = sender id, size n
        std::array<std::uint32_t, 2> bval_count{};  // counted BVAL(b) senders
        std::array<std::uint32_t, 2> aux_count{};   // counted AUX(b) senders
        std::uint8_t bval_sent = 0;                 // mask of BVAL values this node sent
        std::uint8_t aux_sent = 0;                  // mask of AUX values this node sent
        std::uint8_t conf_sent = 0;                 // the CONF set this node sent (0 = none)
        std::uint8_t bin_values = 0;
        std::uint8_t vals = 0;       // AUX-phase result (0 = still waiting)
        bool conf_done = false;      // the n-t CONF wait finished
        std::uint8_t conf_vals = 0;  // the decision set, fixed when the CONF wait ended
        bool share_sent = false;
        Bytes coin_name;
        std::map<NodeId, Bytes> shares_pending;  // not verified yet (verified lazily)
        std::map<NodeId, Bytes> shares_valid;
        std::optional<bool> coin;
    };

    RoundState& state(Round r);
    void record_bval(RoundState& rs, NodeId from, bool v, bool real);
    void record_aux(RoundState& rs, NodeId from, bool v, bool real, AbaStep& step);
    void record_conf(RoundState& rs, NodeId from, std::uint8_t mask, bool real, AbaStep& step);
    void apply_term(RoundState& rs, NodeId from, bool v);
    void on_term(NodeId from, bool v, AbaStep& step);
    void progress(AbaStep& step);
    /// The fixed coin of round r, nullopt if it draws the threshold coin.
    std::optional<bool> coin_of(Round r) const;
    std::optional<std::uint8_t> conf_quorum_vals(const RoundState& rs) const;
    void try_coin(RoundState& rs, AbaStep& step);
    /// A message of this instance (proposer filled in).
    AbaMessage message(Round r, AbaType type, std::uint8_t value) const;
    void send(RoundState& rs, AbaType type, std::uint8_t value, AbaStep& step);
    void decide(bool v, AbaStep& step);
    /// The relay rule (t+1 BVAL(b): send BVAL(b)) in round r ≤ round(), once this
    /// node has left r or decided.
    void relay_behind(NodeId from, Round r, bool v, AbaStep& step);
    /// Drops rounds more than max_rounds_ahead behind and the coin state of the
    /// rounds behind round().
    void retire_rounds();
    static void drop_coin(RoundState& rs);
    void fault(AbaStep& step, NodeId culprit, FaultKind kind, std::string detail) const;

    AbaParams p_;
    const CryptoSuite& crypto_;
    // Effective thresholds (TestKnobs override the defaults).
    std::uint32_t relay_threshold_;
    std::uint32_t accept_threshold_;
    std::uint32_t aux_quorum_;
    std::uint32_t conf_quorum_;
    std::uint32_t coin_threshold_;
    std::uint32_t term_threshold_;

    std::optional<bool> input_;
    std::optional<bool> decision_;
    Round round_ = 0;
    std::optional<bool> est_;
    // Only rounds in [round_ - max_rounds_ahead, round_ + max_rounds_ahead].
    std::map<Round, RoundState> rounds_;
    std::vector<std::uint8_t> term_from_;  // per sender: 0 none, else the TERM value's mask bit
    std::array<std::uint32_t, 2> term_count_{};
    std::uint64_t dropped_ = 0;
};

}  // namespace tob::consensus
