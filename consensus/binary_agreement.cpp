// Asynchronous binary agreement: Mostéfaoui–Moumen–Raynal (MMR) with the CONF
// phase and TERM messages, the round outcome taken from the CONF quorum (the
// protocol: docs/protocol.md, "Binary agreement"; the reference: docs/aba.md).
//
// The algorithm
// -------------
// n members, at most t = ⌊(n−1)/3⌋ of them faulty, so n ≥ 3t+1. Every node holds
// an estimate est (its input in round 0) and runs rounds r = 0, 1, 2, … Each round
// is a "synchronized binary-value broadcast" (BVAL, AUX), a confirmation (CONF)
// and a common coin:
//
//  1. BVAL(r, est). Whoever sees t+1 BVAL(r, b) from distinct nodes sends BVAL(r, b)
//     too (once per value); whoever sees 2t+1 adds b to bin_values(r).
//  2. When bin_values(r) first becomes non-empty with value w, send AUX(r, w) —
//     for that first value only.
//  3. Wait for n−t AUX(r, ·) from distinct nodes whose values lie in bin_values(r);
//     vals = the set of the values of all such AUX senders at that moment.
//  4. Send CONF(r, vals) and wait for n−t CONF(r, S) from distinct nodes with
//     S ⊆ bin_values(r) (re-checked as bin_values grows). The CONFs that end the
//     wait fix the decision set D: D = {b} if n−t of them are {b}, otherwise the
//     union of all counted sets.
//  5. Release the coin share for round r; the coin s is known from t+1 valid shares.
//  6. D = {b}: est = b, and decide b if b = s. D = {0,1}: est = s. Next round.
//
// A node that decides v sends TERM(v) and takes no further part. t+1 TERM(v)
// decide v at once. TERM(v) from j stands for j's BVAL(v), AUX(v) and CONF({v}) in
// the receiver's current round and in every later one, so that nodes which still
// run rounds are not starved by the ones that stopped.
//
// Thresholds, with the arithmetic (at most t of the senders lie)
// --------------------------------------------------------------
//  - t+1 BVAL(b) ⇒ at least one honest node sent BVAL(b); an honest node sends
//    BVAL(b) only for its own estimate or after t+1 BVAL(b) itself, so by induction
//    b is some honest node's estimate: relaying is safe (validity). With t, the
//    liars alone could make honest nodes relay a value no honest node holds.
//  - 2t+1 BVAL(b) ⇒ at least t+1 honest nodes sent it ⇒ every honest node
//    eventually sees t+1 and relays it ⇒ every honest node eventually sees
//    n−t ≥ 2t+1 BVAL(b): b enters every honest bin_values (totality), and b is an
//    honest estimate (validity). A lower threshold lets t liars plus one honest
//    relay put a value into bin_values that other honest nodes never accept.
//  - n−t AUX: the most one may wait for (t nodes may be silent); every honest AUX
//    value is in every honest bin_values eventually (totality), so the wait ends.
//    Two sets of n−t senders share ≥ n−2t ≥ t+1 nodes, at least one honest, and an
//    honest node sends ONE AUX: so if two honest nodes end with singleton vals
//    {v} and {w}, then v = w. This is why AUX is "first value only".
//  - n−t CONF(S), S ⊆ bin_values: the same counting one phase later. An honest
//    node sends one CONF per round and a receiver counts the first one per sender,
//    so two honest nodes' CONF quorums share at least one honest sender whose set
//    both counted. The wait also holds the coin back: no honest share leaves, and
//    so nobody can know s (t+1 shares needed, the adversary holds t), before that
//    node's decision set is fixed. CONF carries vals, not bin_values: only vals is
//    limited by the one-AUX-per-node rule.
//  - coin t+1 shares: t shares (the adversary's) reveal nothing; t+1 always
//    arrive, because all n−t honest nodes release their share. A higher threshold
//    can deadlock once decided nodes stop.
//  - t+1 TERM(v) ⇒ at least one honest node decided v, and v is then the only
//    value any honest node can decide. t TERMs may all be lies.
//
// Why deciding is safe
// --------------------
// Let an honest node p decide b in round r: s = b, and p counted n−t CONF({b}).
// Take any honest q that ends its CONF wait of round r, having counted n−t or more
// CONFs. The two sets of senders overlap in at least n−2t ≥ t+1 senders, so in some
// honest h. If p and q both counted h's CONF message, they counted the same set (h
// sends one), so b is in it. If one of them counted h's TERM(v) stand-in instead, h
// decided v in round r or earlier: in round r, v = s = b, and h's real CONF holds b
// (h's own decision set {b} rested on t+1 honest CONF({b}), and honest singleton
// CONFs of one round agree by the one-AUX rule); earlier, by induction over rounds,
// every honest estimate since is v, so v = b and h sent no CONF in round r. Either
// way q's decision set contains b: it is {b} (est b) or {0,1} (est s = b), never
// {¬b}, and if q decides in round r it decides s = b. From round r+1 on every
// honest estimate is b: BVAL(¬b) comes from at most t nodes, so ¬b reaches neither
// t+1 (no honest relay) nor 2t+1 (no bin_values), every CONF that counts is {b},
// and only b can be decided. Validity: a decision set lies inside bin_values, whose
// values are honest estimates (see 2t+1 BVAL).
// Only the TERM case leans on the one-AUX rule. The spin model (tests/model) finds
// agreement intact for n = 4 and up to 3 rounds when either the one-AUX rule or
// the full n−t CONF quorum is broken alone, and a schedule that breaks agreement
// when both are (replayed in aba_aux_first_only_or_full_conf_quorum_keeps_agreement).
//
// Why the adversary cannot keep the nodes split
// ---------------------------------------------
// In round r, let p be the first honest node whose CONF wait ends. Until then no
// honest share is out, so s is unknown to everybody, and p's counted CONFs, at least
// t+1 of them honest, are fixed. Every other honest quorum shares an honest sender
// with p's. If all honest sets in p's quorum are {0,1}, every honest decision set is
// {0,1} and every honest node ends with est = s. Otherwise one of them is some {w},
// and by the one-AUX rule every honest singleton CONF of round r is {w}; a decision
// set {b} needs n−t CONF({b}), t+1 of them honest, so every honest decision set is
// {w} or {0,1}. Either way the only value a node can carry into round r+1 other than
// s is w, fixed before s was drawn: with probability at least 1/2 all honest nodes
// leave round r with the same estimate, whatever the adversary does once it knows
// s, and the next coin equal to that estimate decides.
//
// hbbft's rule, deciding from the node's own AUX-phase vals, lacks this: a lagging
// node's vals may be fixed after s is known. Without CONF that is issue #59 (below);
// with CONF a Byzantine node that also sends CONF({0,1}) completes the quorum of the
// nodes ahead without the lagging node and steers it as before. The test
// aba_own_vals_rule_stalls_under_adversary_that_also_sends_conf (TestKnobs::
// own_vals_decision) measures that: 20 of 20 instances undecided in 50 rounds; with
// the quorum rule, aba_issue59_adversary_that_also_sends_conf_terminates: 20 of 20
// decide.
//
// Differences from the paper (MMR 2014/2015) and from HoneyBadgerBFT
// ------------------------------------------------------------------
//  - The CONF phase (Ethan MacBrough's fix for HoneyBadgerBFT issue #59): with a
//    threshold coin the adversary learns s as soon as one honest node releases its
//    share, and without CONF it can then still steer which value lagging honest
//    nodes end the round with.
//  - The decision set comes from the CONF quorum (as in the HoneyBadgerBFT-Python
//    fix and the journal version of MMR), not from the own vals (hbbft), for the
//    reason above.
//  - TERM messages for termination (MMR's follow-up; hbbft's Term).
//  - Rounds with a fixed coin value, as in hbbft (below).
//  - Messages for rounds beyond round + max_rounds_ahead are dropped instead of
//    queued, and per-sender state is a flag per (round, type), never a queue.
//  - Coin shares are verified lazily, only as many as needed to reach t+1.
//  - restore(): after a crash the instance resumes from its own sign-log and
//    never sends a different AUX or CONF in a round in which it already sent one.
//    The quorum that ended a CONF wait is not logged: a restored node waits for
//    n−t CONFs again (its peers re-publish theirs) and takes its decision set from
//    that quorum; any quorum is as safe as the first.
//
// Relaying in rounds left behind
// ------------------------------
// BVAL totality (2t+1 BVAL(b) at one honest node ⇒ b in every honest bin_values)
// needs every honest node to relay. A node that decided, or left the round, keeps
// the round's BVAL flags (at most max_rounds_ahead old rounds) and keeps relaying
// there, ignoring all else: otherwise nodes that decide early, before they saw
// t+1 BVAL(¬b), can leave a lagging node without ¬b in bin_values and its AUX wait
// without end (aba_decided_nodes_keep_relaying_bval). Relaying is always safe.
//
// Rounds with a fixed coin
// ------------------------
// Round r's coin is 1 if r mod 3 = 0, 0 if r mod 3 = 1, and the threshold coin
// only if r mod 3 = 2 (hbbft's schedule). A fixed round has no CONF and no shares:
// its decision set is the own AUX-phase vals (the original MMR round); a CONF or
// share received for it is a fault. Safety: the argument above never uses the
// coin's randomness, and without CONF it runs one phase earlier (two n−t AUX
// quorums share an honest sender, which sent one AUX). Liveness: the adversary
// owns the fixed rounds, but every third round is a threshold round with CONF,
// where the argument above holds. The gain: unanimous inputs 1 decide in round 0
// with BVAL and AUX only, unanimous 0 in round 1 (docs/protocol.md).

#include "consensus/binary_agreement.h"

#include <cassert>
#include <utility>

namespace tob::consensus {

namespace {

// Set masks as on the wire: bit 0 = false ∈ set, bit 1 = true ∈ set.
constexpr std::uint8_t bit(bool b) { return b ? 2 : 1; }
constexpr std::uint8_t kBoth = 3;

bool in_mask(std::uint8_t mask, bool b) { return (mask & bit(b)) != 0; }

// The only member of a singleton set; nullopt for {0,1} (and for the empty set).
std::optional<bool> definite(std::uint8_t mask) {
    if (mask == bit(false)) return false;
    if (mask == bit(true)) return true;
    return std::nullopt;
}

constexpr std::size_t kCoinShareBytes = 96;

}  // namespace

std::optional<bool> fixed_coin(Round r) {
    switch (r % 3) {
        case 0:
            return true;
        case 1:
            return false;
        default:
            return std::nullopt;
    }
}

BinaryAgreement::BinaryAgreement(const AbaParams& params, const CryptoSuite& crypto)
    : p_(params),
      crypto_(crypto),
      relay_threshold_(p_.knobs.relay_threshold ? p_.knobs.relay_threshold : p_.t + 1),
      accept_threshold_(p_.knobs.accept_threshold ? p_.knobs.accept_threshold : 2 * p_.t + 1),
      aux_quorum_(p_.knobs.aux_quorum ? p_.knobs.aux_quorum : p_.n - p_.t),
      conf_quorum_(p_.knobs.conf_quorum ? p_.knobs.conf_quorum : p_.n - p_.t),
      coin_threshold_(p_.knobs.coin_threshold ? p_.knobs.coin_threshold : p_.t + 1),
      term_threshold_(p_.knobs.term_threshold ? p_.knobs.term_threshold : p_.t + 1),
      term_from_(p_.n, 0) {
    assert(p_.n >= 1 && p_.self < p_.n);
    assert(3 * p_.t < p_.n);
}

std::uint8_t BinaryAgreement::bin_values() const {
    auto it = rounds_.find(round_);
    return it == rounds_.end() ? 0 : it->second.bin_values;
}

std::uint8_t BinaryAgreement::vals() const {
    auto it = rounds_.find(round_);
    return it == rounds_.end() ? 0 : it->second.vals;
}

std::uint8_t BinaryAgreement::decision_vals() const {
    auto it = rounds_.find(round_);
    return it == rounds_.end() ? 0 : it->second.conf_vals;
}

bool BinaryAgreement::coin_share_released() const {
    auto it = rounds_.find(round_);
    return it != rounds_.end() && it->second.share_sent;
}

// ---- inputs ---------------------------------------------------------------------

AbaStep BinaryAgreement::handle_input(bool estimate) {
    AbaStep step;
    if (input_ || decision_ || round_ > 0) return step;  // late or repeated input
    input_ = estimate;
    assert(!est_);  // round 0 has no estimate before the input
    est_ = estimate;
    progress(step);
    return step;
}

AbaStep BinaryAgreement::handle_message(NodeId from, const AbaMessage& m) {
    AbaStep step;
    if (from >= p_.n) {
        fault(step, from, FaultKind::UnknownSender, "ABA message from a non-member");
        return step;
    }
    if (from == p_.self) return step;
    if (m.proposer != p_.proposer) {
        fault(step, from, FaultKind::Malformed, "ABA message for another proposer");
        return step;
    }
    const bool binary = m.value <= 1;
    bool well_formed = false;
    switch (m.type) {
        case AbaType::Bval:
        case AbaType::Aux:
        case AbaType::Term:
            well_formed = binary && m.coin_share.empty();
            break;
        case AbaType::Conf:
            well_formed = m.value >= 1 && m.value <= kBoth && m.coin_share.empty();
            break;
        case AbaType::Coin:
            well_formed = m.value == 0 && m.coin_share.size() == kCoinShareBytes;
            break;
    }
    if (!well_formed) {
        fault(step, from, FaultKind::Malformed, "ABA message with fields out of range");
        return step;
    }

    if (m.type == AbaType::Term) {
        if (!decision_) on_term(from, m.value != 0, step);
        return step;
    }
    // A round this node has left (or decided in) still gets its BVAL relays: see
    // "Relaying in rounds left behind" above. Everything else there is ignored.
    if (decision_ || m.round < round_) {
        if (m.type == AbaType::Bval && !p_.knobs.no_relay_behind) {
            relay_behind(from, m.round, m.value != 0, step);
        }
        return step;
    }
    if (m.round - round_ > p_.max_rounds_ahead) {
        ++dropped_;  // too far ahead: dropped and counted, not evidence
        return step;
    }

    if ((m.type == AbaType::Conf || m.type == AbaType::Coin) && coin_of(m.round)) {
        fault(step, from, FaultKind::Malformed, "CONF or coin share in a round with a fixed coin");
        return step;
    }
    RoundState& rs = state(m.round);
    switch (m.type) {
        case AbaType::Bval:
            record_bval(rs, from, m.value != 0, true);
            break;
        case AbaType::Aux:
            record_aux(rs, from, m.value != 0, true, step);
            break;
        case AbaType::Conf:
            record_conf(rs, from, m.value, true, step);
            break;
        case AbaType::Coin: {
            SenderVotes& sv = rs.votes[from];
            if (sv.share) break;  // first share per sender and round only
            sv.share = true;
            rs.shares_pending.emplace(from, m.coin_share);
            break;
        }
        case AbaType::Term:
            break;  // handled above
    }
    if (m.round == round_) progress(step);
    return step;
}

void BinaryAgreement::restore(const std::vector<AbaMessage>& sent_in_order) {
    assert(!input_ && !decision_ && round_ == 0 && rounds_.empty());
    std::optional<Round> top;
    std::optional<bool> first_round0_bval;
    bool any_round0 = false;
    for (const AbaMessage& m : sent_in_order) {
        if (m.type == AbaType::Term) {
            decision_ = m.value != 0;
            continue;
        }
        if (!top || m.round > *top) top = m.round;
        if (m.round == 0) {
            any_round0 = true;
            if (m.type == AbaType::Bval && !first_round0_bval) first_round0_bval = m.value != 0;
        }
    }
    if (top) round_ = *top;
    if (any_round0) input_ = first_round0_bval.value_or(false);
    if (!top) return;
    // The BVALs sent in the rounds kept for relaying (relay_behind): not sent again.
    for (const AbaMessage& m : sent_in_order) {
        if (m.type != AbaType::Bval || (m.round == round_ && !decision_) ||
            m.round + p_.max_rounds_ahead < round_) {
            continue;
        }
        RoundState& rs = state(m.round);
        rs.bval_sent |= bit(m.value != 0);
        record_bval(rs, p_.self, m.value != 0, true);
    }
    if (decision_) return;  // decided: takes no further part but BVAL relays

    RoundState& rs = state(round_);
    for (const AbaMessage& m : sent_in_order) {
        if (m.type == AbaType::Term || m.round != round_) continue;
        const bool v = m.value != 0;
        SenderVotes& own = rs.votes[p_.self];
        switch (m.type) {
            case AbaType::Bval:
                if (!est_) est_ = v;  // the first BVAL of the round carries the estimate
                rs.bval_sent |= bit(v);
                record_bval(rs, p_.self, v, true);
                break;
            case AbaType::Aux:
                rs.aux_sent |= bit(v);
                if (!(own.aux & bit(v)) && (own.aux == 0 || p_.knobs.aux_every_value)) {
                    own.aux |= bit(v);
                    own.aux_real = true;
                    ++rs.aux_count[v];
                }
                break;
            case AbaType::Conf:
                if (rs.conf_sent == 0) {
                    rs.conf_sent = m.value;
                    own.conf = m.value;
                    own.conf_real = true;
                    // The logged CONF is this node's vals: adopt it, never recompute it.
                    if (!p_.knobs.conf_sends_bin_values) rs.vals = m.value;
                }
                break;
            case AbaType::Coin:
                rs.share_sent = true;
                own.share = true;
                rs.shares_valid[p_.self] = m.coin_share;
                break;
            case AbaType::Term:
                break;
        }
    }
    // A logged share means the CONF wait had finished, but the quorum that ended
    // it (and so the decision set) is not logged: the wait runs again on the CONFs
    // the peers re-publish (Repair). The share is not sent a second time.
}

// ---- per-round bookkeeping ---------------------------------------------------

BinaryAgreement::RoundState& BinaryAgreement::state(Round r) {
    auto it = rounds_.find(r);
    if (it != rounds_.end()) return it->second;
    RoundState& rs = rounds_[r];
    rs.votes.resize(p_.n);
    rs.coin_name = coin_name(p_.chain_id, p_.epoch, p_.proposer, r);
    for (NodeId j = 0; j < p_.n; ++j) {
        if (term_from_[j] != 0) apply_term(rs, j, term_from_[j] == bit(true));
    }
    return rs;
}

void BinaryAgreement::record_bval(RoundState& rs, NodeId from, bool v, bool real) {
    SenderVotes& sv = rs.votes[from];
    if (sv.bval & bit(v)) {
        // A repeat (re-publication, or TERM standing in for a BVAL already counted).
        if (real && p_.knobs.count_duplicates) ++rs.bval_count[v];
        return;
    }
    sv.bval |= bit(v);
    ++rs.bval_count[v];
}

void BinaryAgreement::record_aux(RoundState& rs, NodeId from, bool v, bool real, AbaStep& step) {
    SenderVotes& sv = rs.votes[from];
    if (sv.aux == 0 || (p_.knobs.aux_every_value && !(sv.aux & bit(v)))) {
        sv.aux |= bit(v);
        sv.aux_real = real;
        ++rs.aux_count[v];
        return;
    }
    if (!real) return;
    if (p_.knobs.count_duplicates) {
        ++rs.aux_count[v];
        return;
    }
    // First AUX per sender and round only. A different second AUX is a violation,
    // unless the first was only implied by the sender's TERM (an honest node that
    // decided through t+1 TERMs may have sent another AUX in that round).
    if (!(sv.aux & bit(v)) && sv.aux_real) {
        fault(step, from, FaultKind::ProtocolViolation, "second, different AUX in one round");
    }
}

void BinaryAgreement::record_conf(RoundState& rs, NodeId from, std::uint8_t mask, bool real,
                                  AbaStep& step) {
    SenderVotes& sv = rs.votes[from];
    if (sv.conf == 0) {
        sv.conf = mask;
        sv.conf_real = real;
        return;
    }
    if (real && sv.conf != mask && sv.conf_real) {
        fault(step, from, FaultKind::ProtocolViolation, "second, different CONF in one round");
    }
}

void BinaryAgreement::apply_term(RoundState& rs, NodeId from, bool v) {
    AbaStep ignored;  // implied votes never produce faults
    record_bval(rs, from, v, false);
    record_aux(rs, from, v, false, ignored);
    record_conf(rs, from, bit(v), false, ignored);
}

void BinaryAgreement::on_term(NodeId from, bool v, AbaStep& step) {
    std::uint8_t& seen = term_from_[from];
    if (seen != 0) {
        if (seen != bit(v)) {
            fault(step, from, FaultKind::ProtocolViolation, "TERM for both values");
        }
        return;
    }
    seen = bit(v);
    ++term_count_[v];
    if (term_count_[v] >= term_threshold_) {
        decide(v, step);
        return;
    }
    for (auto& [r, rs] : rounds_) apply_term(rs, from, v);  // current and later rounds
    progress(step);
}

// ---- the round -------------------------------------------------------------------

AbaMessage BinaryAgreement::message(Round r, AbaType type, std::uint8_t value) const {
    AbaMessage m;
    m.proposer = p_.proposer;
    m.round = r;
    m.type = type;
    m.value = value;
    return m;
}

void BinaryAgreement::send(RoundState& rs, AbaType type, std::uint8_t value, AbaStep& step) {
    AbaMessage m = message(round_, type, value);
    SenderVotes& own = rs.votes[p_.self];
    switch (type) {
        case AbaType::Bval:
            rs.bval_sent |= bit(value != 0);
            record_bval(rs, p_.self, value != 0, true);
            break;
        case AbaType::Aux:
            rs.aux_sent |= bit(value != 0);
            if (!(own.aux & bit(value != 0))) {
                own.aux |= bit(value != 0);
                own.aux_real = true;
                ++rs.aux_count[value != 0];
            }
            break;
        case AbaType::Conf:
            rs.conf_sent = value;
            if (own.conf == 0) {
                own.conf = value;
                own.conf_real = true;
            }
            break;
        case AbaType::Coin:
            m.value = 0;
            m.coin_share = crypto_.coin_share(rs.coin_name);
            rs.share_sent = true;
            own.share = true;
            rs.shares_valid[p_.self] = m.coin_share;  // our own share needs no check
            break;
        case AbaType::Term:
            break;
    }
    step.messages.push_back(std::move(m));
}

void BinaryAgreement::progress(AbaStep& step) {
    while (!decision_) {
        RoundState& rs = state(round_);
        bool changed = false;

        // 1. BVAL(r, est) at the start of the round (round 0: once the input is known).
        if (est_ && !in_mask(rs.bval_sent, *est_)) {
            send(rs, AbaType::Bval, *est_, step);
            changed = true;
        }
        for (bool b : {false, true}) {
            // t+1 BVAL(b): relay once.
            if (rs.bval_count[b] >= relay_threshold_ && !in_mask(rs.bval_sent, b)) {
                send(rs, AbaType::Bval, b, step);
                changed = true;
            }
            // 2t+1 BVAL(b): accept into bin_values; AUX for the first value only.
            if (rs.bval_count[b] >= accept_threshold_ && !in_mask(rs.bin_values, b)) {
                rs.bin_values |= bit(b);
                changed = true;
                const bool may_aux =
                    p_.knobs.aux_every_value ? !in_mask(rs.aux_sent, b) : rs.aux_sent == 0;
                if (may_aux) send(rs, AbaType::Aux, b, step);
            }
        }
        // n−t AUX with values in bin_values: vals, then CONF(vals).
        if (rs.vals == 0 && rs.bin_values != 0) {
            std::uint32_t count = 0;
            std::uint8_t seen = 0;
            for (bool b : {false, true}) {
                if (in_mask(rs.bin_values, b) && rs.aux_count[b] > 0) {
                    count += rs.aux_count[b];
                    seen |= bit(b);
                }
            }
            if (count >= aux_quorum_) {
                rs.vals = seen;
                changed = true;
                if (p_.knobs.skip_conf || coin_of(round_)) {
                    rs.conf_done = true;
                    rs.conf_vals = rs.vals;  // no CONF quorum: the own set
                } else if (rs.conf_sent == 0) {
                    send(rs, AbaType::Conf,
                         p_.knobs.conf_sends_bin_values ? rs.bin_values : rs.vals, step);
                }
            }
        }
        // n−t CONF(S) with S ⊆ bin_values (bin_values may have grown since). The
        // quorum that ends the wait fixes the decision set.
        if (rs.vals != 0 && !rs.conf_done) {
            if (const auto quorum = conf_quorum_vals(rs)) {
                rs.conf_done = true;
                rs.conf_vals = p_.knobs.own_vals_decision ? rs.vals : *quorum;
                changed = true;
            }
        }
        if (rs.conf_done) {
            if (const auto fixed = coin_of(round_)) rs.coin = fixed;
            // Only now may our share leave, and only now may s be used.
            if (!rs.coin && !rs.share_sent) {
                send(rs, AbaType::Coin, 0, step);
                changed = true;
            }
            if (!rs.coin) try_coin(rs, step);
            if (rs.coin) {
                const bool s = *rs.coin;
                const std::optional<bool> b = definite(rs.conf_vals);
                if (b && *b == s) {
                    est_ = s;
                    decide(s, step);
                    return;
                }
                est_ = b ? *b : s;
                ++round_;
                retire_rounds();
                continue;  // start the next round
            }
        }
        if (!changed) break;
    }
}

std::optional<bool> BinaryAgreement::coin_of(Round r) const {
    if (p_.knobs.threshold_coin_every_round) return std::nullopt;
    return fixed_coin(r);
}

std::optional<std::uint8_t> BinaryAgreement::conf_quorum_vals(const RoundState& rs) const {
    // The CONFs that count: one per sender (first only), each a subset of
    // bin_values. At least conf_quorum_ of them end the wait; n−t of them all {b}
    // give {b}, otherwise the union of all counted sets (several may start to
    // count at once when bin_values grows; a larger union is just as safe).
    std::uint32_t count = 0;
    std::array<std::uint32_t, 2> singles{};
    std::uint8_t all = 0;
    for (const SenderVotes& sv : rs.votes) {
        if (sv.conf == 0 || (sv.conf & ~rs.bin_values) != 0) continue;
        ++count;
        all |= sv.conf;
        if (const auto b = definite(sv.conf)) ++singles[*b];
    }
    if (count < conf_quorum_) return std::nullopt;
    for (bool b : {false, true}) {
        if (singles[b] >= conf_quorum_) return bit(b);
    }
    return all;
}

void BinaryAgreement::try_coin(RoundState& rs, AbaStep& step) {
    // Verify lazily: only as many pending shares as needed to reach the threshold.
    for (;;) {
        if (rs.shares_valid.size() >= coin_threshold_) {
            rs.coin = crypto_.combine_coin(rs.coin_name, rs.shares_valid);
            if (rs.coin) return;
        }
        if (rs.shares_pending.empty()) return;
        auto it = rs.shares_pending.begin();
        if (crypto_.verify_coin_share(it->first, rs.coin_name, it->second)) {
            rs.shares_valid.emplace(it->first, std::move(it->second));
        } else {
            fault(step, it->first, FaultKind::InvalidCoinShare, "coin share does not verify");
        }
        rs.shares_pending.erase(it);
    }
}

void BinaryAgreement::decide(bool v, AbaStep& step) {
    if (decision_) return;
    decision_ = v;
    step.decision = v;
    step.messages.push_back(message(round_, AbaType::Term, v ? 1 : 0));
    // Takes no further part, except for BVAL relays in this round and the ones
    // before it; later rounds' state goes.
    rounds_.erase(rounds_.upper_bound(round_), rounds_.end());
    retire_rounds();
    if (auto it = rounds_.find(round_); it != rounds_.end()) drop_coin(it->second);
}

void BinaryAgreement::retire_rounds() {
    // Rounds left behind keep their BVAL flags (relay_behind) and nothing of the
    // coin; at most max_rounds_ahead of them.
    const Round keep_from = round_ > p_.max_rounds_ahead ? round_ - p_.max_rounds_ahead : 0;
    rounds_.erase(rounds_.begin(), rounds_.lower_bound(keep_from));
    for (auto it = rounds_.begin(); it != rounds_.end() && it->first < round_; ++it) {
        drop_coin(it->second);
    }
}

void BinaryAgreement::drop_coin(RoundState& rs) {
    rs.shares_pending.clear();
    rs.shares_valid.clear();
    rs.coin_name.clear();
    rs.coin_name.shrink_to_fit();
}

void BinaryAgreement::relay_behind(NodeId from, Round r, bool v, AbaStep& step) {
    if (r > round_ || r + p_.max_rounds_ahead < round_) return;
    RoundState& rs = state(r);
    record_bval(rs, from, v, true);
    if (rs.bval_count[v] < relay_threshold_ || in_mask(rs.bval_sent, v)) return;
    rs.bval_sent |= bit(v);
    record_bval(rs, p_.self, v, true);
    step.messages.push_back(message(r, AbaType::Bval, v ? 1 : 0));
}

void BinaryAgreement::fault(AbaStep& step, NodeId culprit, FaultKind kind,
                            std::string detail) const {
    Fault f;
    f.culprit = culprit;
    f.kind = kind;
    f.detail = "ABA(" + std::to_string(p_.epoch) + "," + std::to_string(p_.proposer) +
               "): " + std::move(detail);
    step.faults.push_back(std::move(f));
}

}  // namespace tob::consensus
