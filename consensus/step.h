#pragma once
// What every sub-protocol returns: peer misbehaviour as data (Fault), never an
// exception. A broken invariant in our own code is an assertion instead.

#include <string>
#include <vector>

#include "consensus/types.h"

namespace tob::consensus {

enum class FaultKind : std::uint8_t {
    InvalidSignature = 1,    // envelope, SEEN-in-cert, COMMIT-in-proof or client signature fails
    UnknownSender = 2,       // sender id outside 0..n-1
    Malformed = 3,           // bytes that do not decode, or fields out of range
    Equivocation = 4,        // two different signed payloads for one slot (evidence: both)
    InvalidCoinShare = 5,    // DLEQ proof fails
    InvalidCertificate = 6,  // too few / duplicate / non-member / bad signers
    InvalidBlock = 7,        // limits exceeded, bad request inside, wrong epoch/proposer
    ProtocolViolation = 8,  // a message the protocol forbids (e.g. AUX value not in a possible set)
};

const char* to_string(FaultKind kind);

struct Fault {
    NodeId culprit = 0;
    FaultKind kind = FaultKind::Malformed;
    std::string detail;           // human-readable, for logs
    std::vector<Bytes> evidence;  // signed envelopes proving it, when there are any
};

}  // namespace tob::consensus
