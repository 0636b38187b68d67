#include "consensus/step.h"

namespace tob::consensus {

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
    }
    return "unknown_fault";
}

}  // namespace tob::consensus
