#include "consensus/step.h"

#include <algorithm>

namespace tob::consensus {

bool Step::needs_sync() const {
    for (const auto& r : persist) {
        if (r.type == DurableRecord::Type::Signed || r.type == DurableRecord::Type::Floor ||
            r.type == DurableRecord::Type::HighWater)
            return true;
    }
    return false;
}

void Step::append(Step&& other) {
    for (auto& r : other.persist) persist.push_back(std::move(r));
    for (auto& m : other.messages) messages.push_back(std::move(m));
    for (auto& c : other.committed) committed.push_back(std::move(c));
    faults_dropped += other.faults_dropped;
    for (auto& f : other.faults) add_fault(std::move(f));
    for (auto& a : other.alarms) alarms.push_back(std::move(a));
    prune_below = std::max(prune_below, other.prune_below);
    for (auto& i : other.installed) installed.push_back(std::move(i));
}

void Step::add_fault(Fault&& f) {
    if (faults.size() >= kStepFaultsMax) {
        ++faults_dropped;
        return;
    }
    std::size_t bytes = 0;
    for (const auto& e : f.evidence) bytes += e.size();
    if (bytes > kStepEvidenceBytesMax - evidence_bytes) {
        f.evidence.clear();
        f.detail += " (evidence left out: over the step's bound)";
        bytes = 0;
    }
    evidence_bytes += bytes;
    faults.push_back(std::move(f));
}

const char* to_string(FaultKind kind) {
    switch (kind) {
        case FaultKind::InvalidSignature:
            return "invalid_signature";
        case FaultKind::UnknownSender:
            return "unknown_sender";
        case FaultKind::Malformed:
            return "malformed";
        case FaultKind::Equivocation:
            return "equivocation";
        case FaultKind::InvalidCoinShare:
            return "invalid_coin_share";
        case FaultKind::InvalidCertificate:
            return "invalid_certificate";
        case FaultKind::InvalidBlock:
            return "invalid_block";
        case FaultKind::ProtocolViolation:
            return "protocol_violation";
        case FaultKind::InvalidSnapshot:
            return "invalid_snapshot";
    }
    return "unknown_fault";
}

}  // namespace tob::consensus
