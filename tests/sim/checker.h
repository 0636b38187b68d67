#pragma once
// The simulator's end-of-seed checkers, as pure functions over what the honest
// nodes applied. They are kept apart from the harness so that tests can feed them
// planted bugs (tests/sim/sim_checker_test.cpp): a checker is trusted only after
// it has caught one.
//
//  agreement   every two honest logs agree on every epoch both applied (output
//              digest, state digest, the ordered results), and each log is
//              contiguous from epoch 1: hence each is a prefix of the other (I1, I2)
//  total-order the sequences of requests that took effect (neither duplicate nor
//              malformed), concatenated over epochs, are prefixes of each other
//  validity    every request in any honest output was submitted by a client (by
//              request digest, which covers the signature), and each submitted
//              transaction takes effect at most once per node (I3)
//  liveness    every submitted transaction took effect at every honest node
//  digests     honest nodes at the same last-applied epoch have the same state
//              digest, and all honest nodes end at the same epoch

#include <map>
#include <string>
#include <vector>

#include "consensus/state_machine.h"

namespace tob::sim {

using consensus::Digest;
using consensus::Epoch;
using consensus::NodeId;

struct Violation {
    std::string check;   // "agreement", "validity", ... (stable names, used in JSON)
    std::string detail;  // human-readable
};

/// One epoch as a node applied it.
struct AppliedEpoch {
    Epoch epoch = 0;
    Digest output_digest{};
    Digest state_digest{};
    std::vector<consensus::RequestResult> results;
};

/// Everything one honest node applied, in order (epochs 1..size).
struct NodeLog {
    NodeId node = 0;
    std::vector<AppliedEpoch> epochs;
};

/// What a client submitted: the digest of the exact signed request.
struct SubmittedTx {
    consensus::PublicKey client{};
    consensus::Nonce nonce = 0;
    Digest digest{};
};

/// Final state of one honest node.
struct FinalState {
    NodeId node = 0;
    Epoch last_applied = 0;
    Digest state_digest{};
};

/// Two applications of one epoch are equal (digests and every result).
bool same_epoch(const AppliedEpoch& a, const AppliedEpoch& b, std::string* why = nullptr);

std::vector<Violation> check_agreement(const std::vector<NodeLog>& logs);
std::vector<Violation> check_total_order(const std::vector<NodeLog>& logs);
std::vector<Violation> check_validity(const std::vector<NodeLog>& logs,
                                      const std::vector<SubmittedTx>& submitted);
std::vector<Violation> check_liveness(const std::vector<NodeLog>& logs,
                                      const std::vector<SubmittedTx>& submitted);
std::vector<Violation> check_digests(const std::vector<FinalState>& finals);

/// All of the above.
std::vector<Violation> check_all(const std::vector<NodeLog>& logs,
                                 const std::vector<SubmittedTx>& submitted,
                                 const std::vector<FinalState>& finals, bool liveness);

std::string hex_prefix(const Digest& d);

}  // namespace tob::sim
