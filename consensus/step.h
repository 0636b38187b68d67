#pragma once
// What every sub-protocol returns: records to make durable, messages to send,
// committed epochs, peer misbehaviour as data (Fault, never an exception) and
// alarms. A broken invariant in our own code is a TOB_CHECK instead
// (consensus/check.h): it stops the process.
//
// The shell executes a Step in this order: 1. persist `persist` (one synced
// write), 2. send `messages`, 3. report `committed` to clients, 4. record
// `faults`; a non-empty `alarms` halts the node (it never retries with other data).

#include <optional>
#include <string>
#include <vector>

#include "consensus/messages.h"
#include "consensus/state_machine.h"
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
    InvalidSnapshot = 9,    // a snapshot chunk that does not match the signed checkpoint root
};

const char* to_string(FaultKind kind);

struct Fault {
    NodeId culprit = 0;
    FaultKind kind = FaultKind::Malformed;
    std::string detail;           // human-readable, for logs
    std::vector<Bytes> evidence;  // signed envelopes proving it, when there are any
};

/// What one Step may carry about faults (issue 11, finding 1): a peer that packs
/// many bad items into one envelope must not make the node copy that envelope
/// once per item. Faults beyond kStepFaultsMax are only counted
/// (Step::faults_dropped); evidence beyond kStepEvidenceBytesMax in one Step is
/// left out (the fault is still recorded, its detail says so).
inline constexpr std::size_t kStepFaultsMax = 64;
inline constexpr std::size_t kStepEvidenceBytesMax = std::size_t{32} << 20;

/// A record the shell makes durable before sending the step's messages.
struct DurableRecord {
    enum class Type : std::uint8_t {
        Signed = 1,     // an envelope this node signed (sign-log); bytes = encoded envelope
        Block = 2,      // a block envelope accepted or certified; bytes = encoded envelope
        Cert = 3,       // a verified certificate; bytes = encoded Certificate
        HighWater = 4,  // the signing high-water mark is raised to `epoch` (synced before signing)
        Proof = 5,      // a delivered epoch's blocks (encoded FetchReply), to serve catch-up
        Commit = 6,     // a peer's COMMIT envelope for a tracked epoch, to serve catch-up
        Floor = 7,      // signing floor `epoch`: the sign-log at or below it was lost (kept
                        // with the later Signed records, so a restart keeps the floor)
    };
    Type type = Type::Signed;
    Epoch epoch = 0;
    Bytes bytes;
};

/// One message to send. `kind` is the envelope's kind, so the shell can label
/// metrics without parsing the bytes.
struct Outgoing {
    std::optional<NodeId> to;  // nullopt: broadcast to every other node
    Bytes envelope;            // encoded, signed envelope
    Kind kind = Kind::Block;
};

/// A snapshot the core installed (consensus/state_transfer.h): the state jumped to
/// the end of `epoch` without applying the epochs up to it.
struct SnapshotInstalled {
    Epoch epoch = 0;
    Digest state_digest{};
    std::uint64_t bytes = 0;    // entry bytes installed
    std::uint64_t entries = 0;  // entries installed
};

struct [[nodiscard]] Step {
    std::vector<DurableRecord> persist;
    std::vector<Outgoing> messages;
    std::vector<EpochResult> committed;
    std::vector<Fault> faults;
    std::vector<std::string> alarms;  // non-empty: the node must halt (never retry with other data)
    std::uint64_t faults_dropped = 0;  // faults over kStepFaultsMax: counted, not recorded
    std::size_t evidence_bytes = 0;    // evidence held by `faults`, <= kStepEvidenceBytesMax
    /// Durable records of epochs below this may be deleted (0: nothing), after
    /// `persist` is written (consensus/state_transfer.h, "Pruning").
    Epoch prune_below = 0;
    std::vector<SnapshotInstalled> installed;

    void append(Step&& other);
    /// Whether `persist` must be on the disk before any of `messages` leaves: it
    /// holds a signature of this node (the sign-log), the signing floor or a
    /// raised mark. Peers' blocks, certificates and COMMITs and delivered epochs'
    /// proofs are needed by no message: a power failure that loses them costs a
    /// fetch or a re-apply, never a second signature, so the shell may write them
    /// without waiting for the disk (the next synced write covers them, in order).
    bool needs_sync() const;

    // Helpers for the sub-protocols that fill a step.
    void broadcast(Kind kind, const Bytes& envelope) {
        messages.push_back(Outgoing{std::nullopt, envelope, kind});
    }
    void send(NodeId to, Kind kind, const Bytes& envelope) {
        messages.push_back(Outgoing{to, envelope, kind});
    }
    /// Records a fault within the bounds above. Every fault goes through here
    /// (sub-protocols' own fault lists are added with add_fault).
    void fault(NodeId culprit, FaultKind kind, std::string detail,
               std::vector<Bytes> evidence = {}) {
        add_fault(Fault{culprit, kind, std::move(detail), std::move(evidence)});
    }
    void add_fault(Fault&& f);
    void durable(DurableRecord::Type type, Epoch epoch, Bytes bytes) {
        persist.push_back(DurableRecord{type, epoch, std::move(bytes)});
    }
};

}  // namespace tob::consensus
