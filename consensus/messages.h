#pragma once
// The messages of docs/protocol.md as plain values. consensus/codec.h turns them into
// canonical msgpack bytes and back.
//
// Every message between nodes travels in an Envelope
//   {chain_id, sender, epoch, kind, body, sig}
// whose Ed25519 signature covers tag "tobd-envelope-v1" ‖ 0 ‖ canonical
// [chain_id, sender, epoch, kind, body], so a relayed copy stays verifiable and
// nothing can be replayed into another cluster (chain_id), epoch or kind.
// The one exception is Kind::Aba (channel_authenticated below): agreement
// messages are never relayed or shown to a third party, so they carry 64 zero
// bytes where the signature would be, travel only point to point, and are taken
// only from the connection their sender's key authenticated (open_envelope in
// consensus/replica.h; docs/protocol.md, "Binary agreement").
// A SEEN or COMMIT envelope's signature is exactly what certificates and commit
// proofs carry: a verifier rebuilds the (compact) envelope payload from the
// statement and checks the signer's signature over it. A proposer's entry in the
// certificate of its own block is its block envelope's signature (it signs no
// SEEN for its own block; consensus/block_broadcast.h).

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "consensus/types.h"

namespace tob::consensus {

enum class Kind : std::uint8_t {
    Block = 1,            // body: Block — a proposal, signed by its proposer
    Seen = 2,             // body: SeenBody — "I hold block d of (epoch, proposer)"
    Cert = 3,             // body: Certificate — q votes (SEEN or the proposer's block signature)
    Aba = 4,              // body: AbaBundle — binary agreement messages of one epoch
    Commit = 5,           // body: CommitBody — output and state digest after applying epoch
    Requests = 6,         // body: RequestBatch — client requests flooded by a node (epoch 0)
    FetchRequest = 7,     // body: FetchRequest — repair: ask one peer for something
    FetchReply = 8,       // body: FetchReply — original signed envelopes answering a fetch
    SnapshotRequest = 9,  // body: SnapshotRequest (consensus/snapshot_wire.h) — offer or chunk
    SnapshotReply = 10,   // body: SnapshotReply — a checkpoint offer or a chunk of its state
};
inline constexpr std::uint8_t kKindMax = 10;

/// Kinds whose sender is authenticated by the channel that carried them rather
/// than by a signature: their `sig` is all zero, they are sent point to point
/// (never on the flood plane, whose header names no authenticated sender), and a
/// receiver takes one only from its sender's own connection — or inside a
/// FetchReply signed by that sender. Only the sender's own copy ever counts, so
/// nothing is lost by not signing: the agreement needs no transferable evidence.
constexpr bool channel_authenticated(Kind kind) { return kind == Kind::Aba; }

/// Kinds that are signed but whose signature a receiver checks only when the
/// statement leaves it: a SEEN or COMMIT that arrives on its sender's own
/// authenticated connection (or inside a FetchReply its sender signed) is counted
/// as it is, because that connection already says who sent it, and a Byzantine
/// member could sign any statement of its own anyway. The signature matters only
/// to a third party, and the only ways one reaches a third party are inside a
/// certificate (a SEEN) or a commit proof or checkpoint certificate (a COMMIT),
/// which this node checks signature by signature before it sends them
/// (BlockBroadcast::servable_cert, CatchUp::checked). On the flood plane, or in
/// another member's name, the signature is checked on arrival as before.
constexpr bool verified_on_use(Kind kind) { return kind == Kind::Seen || kind == Kind::Commit; }

/// Kinds sent point to point to each member rather than on the flood plane: the
/// channel-authenticated ones, and those whose signature is checked on use (a
/// receiver learns their sender from the connection only there).
constexpr bool sent_point_to_point(Kind kind) {
    return channel_authenticated(kind) || verified_on_use(kind);
}

struct Envelope {
    Digest chain_id{};
    NodeId sender = 0;
    Epoch epoch = 0;
    Kind kind = Kind::Block;
    Bytes body;
    Signature sig{};
    bool operator==(const Envelope&) const = default;
};

// ---- client requests -------------------------------------------------------

enum class OpType : std::uint8_t { Put = 1, Del = 2, Cas = 3, Get = 4 };

struct Op {
    OpType type = OpType::Get;
    Bytes key;
    Bytes value;                    // Put: new value; Cas: new value; else empty
    std::optional<Bytes> expected;  // Cas only: expected current value (nullopt = key absent)
    // Put/Del only: the output carries the key's previous value (else none). On
    // the wire an op has a fifth field, 1, exactly when this is set.
    bool previous = false;
    bool operator==(const Op&) const = default;
};

/// A client request: its ops commit atomically and in order. Signed by the
/// client with tag "tobd-request-v2" over canonical
/// [chain_id, client, nonce, expires, ops].
///
/// `expires` is the last epoch in which the request may commit: applied in an
/// epoch e > expires it is skipped as expired, and one whose expires lies more
/// than the cluster's request_expiry_max_epochs beyond e is skipped too
/// (docs/protocol.md, "Client requests"), so every committed request dies within
/// that many epochs and the dedup table can forget idle clients.
struct Request {
    Digest chain_id{};
    PublicKey client{};
    Nonce nonce = 0;
    Epoch expires = 0;
    std::vector<Op> ops;
    Signature sig{};
    bool operator==(const Request&) const = default;
};

struct RequestBatch {
    std::vector<Request> requests;
    bool operator==(const RequestBatch&) const = default;
};

// ---- protocol messages -----------------------------------------------------

/// A block proposal B(epoch, proposer). Its digest is BLAKE2b-256 of its canonical
/// encoding (the envelope body bytes the proposer signed).
struct Block {
    Epoch epoch = 0;
    NodeId proposer = 0;
    std::vector<Request> requests;
    bool operator==(const Block&) const = default;
};

struct SeenBody {
    NodeId proposer = 0;
    Digest digest{};
    bool operator==(const SeenBody&) const = default;
};

struct SignerSig {
    NodeId signer = 0;
    Signature sig{};
    bool operator==(const SignerSig&) const = default;
};

/// CERT(epoch, proposer, digest): SEEN envelope signatures from distinct members,
/// sorted by signer (strictly increasing — the decoder rejects duplicates).
struct Certificate {
    Epoch epoch = 0;
    NodeId proposer = 0;
    Digest digest{};
    std::vector<SignerSig> sigs;
    bool operator==(const Certificate&) const = default;
};

enum class AbaType : std::uint8_t { Bval = 1, Aux = 2, Conf = 3, Term = 4, Coin = 5 };

/// One message of ABA(epoch, proposer). `value` is 0/1 for Bval, Aux, Term; for
/// Conf it is a set as a bit mask (bit 0: false ∈ set, bit 1: true ∈ set; 1..3);
/// 0 for Coin. `coin_share` holds the 96-byte share for Coin and is empty otherwise.
struct AbaMessage {
    NodeId proposer = 0;
    Round round = 0;
    AbaType type = AbaType::Bval;
    std::uint8_t value = 0;
    Bytes coin_share;
    bool operator==(const AbaMessage&) const = default;
};

/// ABA messages of one epoch emitted together, in one (unsigned, channel-
/// authenticated) envelope.
struct AbaBundle {
    std::vector<AbaMessage> messages;  // 1..Limits::aba_bundle_max
    bool operator==(const AbaBundle&) const = default;
};

struct CommitBody {
    Digest output_digest{};
    Digest state_digest{};
    std::optional<Digest> checkpoint_root;  // present at checkpoint epochs
    bool operator==(const CommitBody&) const = default;
};

enum class FetchType : std::uint8_t {
    Block = 1,       // the block with `digest` (original proposer envelope)
    Cert = 2,        // CERT(epoch, proposer)
    Aba = 3,         // the responder's ABA envelopes for ABA(epoch, proposer)
    EpochProof = 4,  // committed epoch `epoch`: its certs, blocks and t+1 COMMITs
};

struct FetchRequest {
    FetchType type = FetchType::Block;
    NodeId proposer = 0;
    Digest digest{};  // Block only; zero otherwise
    bool operator==(const FetchRequest&) const = default;
};

/// One block of an epoch's output: its proposer and digest.
struct BlockRef {
    NodeId proposer = 0;
    Digest digest{};
    bool operator==(const BlockRef&) const = default;
};

/// Original signed envelopes (each encoded), each verified on its own by the
/// receiver. An EpochProof answer also lists the epoch's blocks (S in delivery
/// order, checked against the COMMITs' output digest); blocks that do not fit in
/// the same reply are fetched by digest (FetchType::Block). Empty otherwise.
struct FetchReply {
    std::vector<Bytes> envelopes;
    std::vector<BlockRef> blocks;
    bool operator==(const FetchReply&) const = default;
};

}  // namespace tob::consensus
