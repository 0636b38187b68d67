#pragma once
// The lecture simulator: a compact, seeded simulation of the two protocols that
// come before tobd's in docs/protocols.md — naive arrival-order broadcast
// (consensus/naive_broadcast.h) and the synchronous rotating-leader TOB
// (consensus/sync_tob.h) — over a synchronous or an asynchronous network, with
// Byzantine nodes. tobsim runs it for `--protocol naive|sync` and for the naive
// and sync rows of `--compare`; the async rows come from the main simulator
// (sim.h). See docs/protocols.md for what each run shows.
//
// Model. Logical time in ticks. A message between two nodes takes
//  - synchronous network: 1..Δ ticks (uniform);
//  - asynchronous network: the same, except that a per-seed share of messages
//    (15-40 %) takes Δ·(1 + k) ticks with k up to 2^0..2^5 — no bound the
//    protocol could know, and reordering; every message still arrives.
// Each node's clock starts late by a per-node drift in [0, MaxDrift]; the sync
// protocol's round g begins at g·R + drift with R = Δ + MaxDrift.
//
// Workload: every seed starts from state 1 with the lecture's pair — "/2"
// (id 1) and "+1" (id 2) handed at tick 0 to the first and the second honest
// node — then `extra_requests` random ops ("/2", "+1", "*3", "-1") at random
// ticks to random honest nodes.
//
// Byzantine nodes (sync): silent, equivocate (two signed blocks, one per half),
// late-chain (a second value's chain shown to one honest node at the last round
// where it is valid, or a too-short chain in round t+1), forge-chain (links
// under another signer's id, a leader's link pasted onto another value,
// repeated signers, replays of old epochs, chains not opened by the leader).
// Naive: Byzantine nodes send made-up requests to random subsets of nodes.
//
// Checks (check_lecture_logs, after the run): agreement (honest logs are
// prefixes of each other, equal states at equal length), validity (only
// submitted or Byzantine-made requests, each at most once per node), liveness
// (every client request at every honest node by the end), and no honest node
// blamed.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "consensus/numeric_machine.h"
#include "consensus/op_request.h"
#include "tests/sim/checker.h"

namespace tob::sim {

enum class LectureProtocol : std::uint8_t { Naive, Sync };
enum class LectureNetwork : std::uint8_t { Synchronous, Asynchronous };
enum class LectureByz : std::uint8_t { Silent, Equivocate, LateChain, ForgeChain };

const char* to_string(LectureProtocol p);
const char* to_string(LectureNetwork n);
const char* to_string(LectureByz b);
std::optional<LectureByz> lecture_byz_from_string(const std::string& name);

/// Requests made up by Byzantine nodes have ids from here on.
inline constexpr std::uint64_t kByzantineIdBase = 1'000'000'000;

struct LectureOptions {
    LectureProtocol protocol = LectureProtocol::Sync;
    LectureNetwork network = LectureNetwork::Synchronous;
    std::uint32_t nodes = 4;
    std::uint32_t faulty = 0;
    std::vector<LectureByz> behaviours;  // empty: all four
    std::uint32_t extra_requests = 0;
    std::uint64_t delta_ticks = 10;     // Δ
    std::uint64_t max_drift_ticks = 2;  // MaxDrift
    bool weak_ds = false;               // TEST ONLY: Dolev–Strong accepts short chains
};

struct LectureNodeResult {
    consensus::NodeId node = 0;
    std::vector<consensus::OpRequest> log;  // in the order applied
    consensus::Rational state;
};

struct LectureReport {
    std::uint64_t seed = 0;
    std::string params;  // one line, printed first
    std::vector<Violation> violations;
    bool agreement = true;           // no agreement or validity violation
    bool liveness = true;            // every client request applied at every honest node
    std::uint64_t requests = 0;      // client requests submitted
    std::uint64_t committed = 0;     // client requests applied at every honest node
    std::uint64_t messages = 0;      // messages delivered (to any node)
    double latency_rounds_mean = 0;  // submit -> applied at the last honest node, in rounds of R
    double latency_rounds_max = 0;
    std::vector<LectureNodeResult> honest;
    // sync only
    std::uint64_t epochs = 0;               // epochs finished at every honest node
    std::uint64_t bottom_epochs = 0;        // epochs every honest node ended with ⊥
    std::vector<std::string> split_epochs;  // epochs honest nodes ended differently (described)
    std::vector<std::string> epoch_log;     // each epoch as the first honest node ended it
    std::uint64_t late_chains = 0;          // chains honest nodes dropped as late
    std::uint64_t faults_on_byzantine = 0;
};

LectureReport run_lecture_seed(const LectureOptions& options, std::uint64_t seed);

/// The end-of-run checks over the honest nodes' logs (pure; tested with
/// planted bugs in lecture_sim_test.cpp).
std::vector<Violation> check_lecture_logs(const std::vector<LectureNodeResult>& honest,
                                          const std::set<std::uint64_t>& submitted);

/// "/2 +1 *3" (at most `max_ops`, then "... (+N)").
std::string describe_log(const std::vector<consensus::OpRequest>& log, std::size_t max_ops = 12);
/// "3/2 (1.5)" or "1/3".
std::string describe_state(const consensus::Rational& r);

}  // namespace tob::sim
