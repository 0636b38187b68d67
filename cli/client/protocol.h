#pragma once
// The client/admin protocol on a node's ROUTER socket (docs/client.md; the
// requests themselves: docs/protocol.md, "Client requests"). Part of the client
// library (target tob_client): the daemon and every client link the same codec.
//
// Every ZeroMQ message on a node's ROUTER sockets is multipart: [routing id]
// [channel] [body]. The routing id is added/stripped by ZeroMQ. The channel frame
// is one byte:
//   'P'  peer plane, on the member ROUTER (router_endpoint) only: body = an
//        encoded, signed consensus::Envelope sent point to point by another node
//        (fetch requests and replies, catch-up answers)
//   'C'  client plane, on the client ROUTER (client_endpoint) only: body = one
//        ClientMessage encoded below
// Anything else (wrong frame count, wrong channel for the socket, undecodable
// body, oversized) is dropped and counted; it never reaches the core. Both
// sockets are CurveZMQ servers with the node's Curve key (docs/security.md).
//
// Client messages are canonical msgpack arrays [type, ...fields] (the same rules
// as consensus/codec.h: fixed arrays, shortest integers, exact-size bin for keys,
// digests and signatures, re-encode equality, no trailing bytes).
//
//   Submit      client -> node  [1, request]            request = encoded consensus::Request
//   Reply       node -> client  [2, reply fields...]    the committed outcome, signed by the node
//   StatusQuery client -> node  [3]
//   Status      node -> client  [4, status fields...]
//   LocalGet    client -> node  [5, key, client, sig]   read the node's committed state
//   LocalValue  node -> client  [6, applied epoch, value or nil]
//   Error       node -> client  [7, code, text, digest] request refused (bad signature, pool full)
//
// A node answers Submit once the request's outcome is known: when it commits (or
// is skipped as a duplicate/malformed) in a delivered epoch, or at once when the
// dedup table already holds it (a retry). It answers every routing id that
// submitted the same (client, nonce) while it waited. Submitting the same request
// to several nodes is how `tobctl --quorum` collects t+1 replies from distinct nodes.
//
// A Reply is authenticated by the Curve connection it arrives on (the client
// pins the member's Curve key), so its sig is 64 zero bytes; only a plaintext
// test node (`tobd --test-no-curve`) signs it, with tag "tobd-reply-v1" over the
// canonical encoding of reply_sign_payload(). Two replies *match* when request_digest,
// status and outputs are equal (epoch/position are informational: a node that
// answers a retry from its dedup table reports epoch 0).
//
// Layouts (cli/client/protocol.cpp; docs/client.md). Booleans are the
// integers 0/1 and text is bin (UTF-8), since bool and str never appear on the
// wire. Every client message is at most Limits::message_bytes_max bytes.
//   [1, request bin<=request_bytes_max]
//   [2, node u16, client bin[32], nonce u64, request_digest bin[32], status 1..8,
//       epoch u64, position u32, outputs [[ok 0..1, value nil|bin]...], sig bin[64]]
//       outputs: 0..request_ops_max entries, values <= value_bytes_max
//   [3]
//   [4, node u16, version bin<=kClientTextBytesMax, epoch u64, applied u64,
//       peers_connected u32, pool u64, faults u64, state_digest bin[32],
//       voting 0..1, halted 0..1, uptime_s u64]
//   [5, key bin<=key_bytes_max, client bin[32], sig bin[64]]
//       sig: the client's Ed25519 signature with kLocalGetTag over
//       local_get_sign_payload (the node answers only a client that may read key)
//   [6, applied u64, value nil|bin<=value_bytes_max]
//   [7, code 1..7, text bin<=kClientTextBytesMax, request_digest nil|bin[32]]

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "consensus/codec.h"
#include "consensus/messages.h"
#include "consensus/state_machine.h"
#include "crypto/sign.h"

namespace tob::client {

using consensus::Bytes;
using consensus::ByteView;
using consensus::Decoded;
using consensus::Digest;
using consensus::Epoch;
using consensus::NodeId;
using consensus::Nonce;
using consensus::PublicKey;
using consensus::Signature;

inline constexpr std::uint8_t kChannelPeer = 'P';
inline constexpr std::uint8_t kChannelClient = 'C';
inline constexpr std::string_view kReplyTag = "tobd-reply-v1";
inline constexpr std::string_view kLocalGetTag = "tobd-local-get-v1";
/// Longest StatusMsg::version and ErrorMsg::text; the encoder truncates longer text.
inline constexpr std::size_t kClientTextBytesMax = 1024;

enum class ClientMsgType : std::uint8_t {
    Submit = 1,
    Reply = 2,
    StatusQuery = 3,
    Status = 4,
    LocalGet = 5,
    LocalValue = 6,
    Error = 7,
};

enum class ReplyStatus : std::uint8_t {
    Committed = 1,  // applied in `epoch` at `position`; outputs are its results
    Duplicate = 2,  // an earlier copy committed; outputs are the stored ones (may be empty
                    // when the nonce left the dedup window)
    Malformed = 3,  // skipped on every node (wrong chain id, limits, unused fields)
    Forbidden = 4,  // skipped on every node: the client lacks a permission for an
                    // operation (the cluster file's [permissions], docs/security.md)
    // Also skipped on every node, with the nonce kept (consensus::Skip):
    OutputsOver = 5,  // its outputs exceed limits.request_output_bytes_max (ask for less)
    EpochFull = 6,    // its epoch's outputs reached limits.epoch_output_bytes_max (resubmit)
    // Skipped by the expiry rules (consensus::Skip), the nonce kept: sign the ops
    // again (same nonce or a new one) with a fresh expiry. An expired request has
    // not taken effect in this epoch; whether an earlier copy did is known only
    // while the cluster still remembers it (a retry then gets Committed/Duplicate).
    Expired = 7,        // applied after its expiry epoch
    ExpiresTooFar = 8,  // its expiry lies more than request_expiry_max_epochs ahead
};

/// True for the statuses of a request skipped on every node (nothing applied).
inline bool skipped(ReplyStatus s) { return s >= ReplyStatus::Malformed; }

struct SubmitMsg {
    Bytes request;  // encoded consensus::Request
    bool operator==(const SubmitMsg&) const = default;
};

struct ReplyMsg {
    NodeId node = 0;
    PublicKey client{};
    Nonce nonce = 0;
    Digest request_digest{};  // digest_of(encoded request)
    ReplyStatus status = ReplyStatus::Committed;
    Epoch epoch = 0;
    std::uint32_t position = 0;
    std::vector<consensus::OpOutput> outputs;
    Signature sig{};
    bool operator==(const ReplyMsg&) const = default;
};

struct StatusMsg {
    NodeId node = 0;
    std::string version;
    Epoch epoch = 0;    // highest epoch joined
    Epoch applied = 0;  // last applied (delivered) epoch
    std::uint32_t peers_connected = 0;
    std::uint64_t pool = 0;
    std::uint64_t faults = 0;
    Digest state_digest{};
    bool voting = true;  // false: non-voting follower (sign-log damaged or mark missing)
    bool halted = false;
    std::uint64_t uptime_s = 0;
    // Checkpoints and snapshot transfer (docs/protocol.md, "Checkpoints").
    Epoch checkpoint = 0;          // newest checkpoint this node serves (0: none)
    Epoch pruned_below = 0;        // its records below this epoch are deleted
    bool snapshot_active = false;  // installing a peer's checkpoint
    Epoch snapshot_epoch = 0;      // which one (0: still asking for offers)
    std::uint64_t snapshot_bytes_total = 0;
    std::uint64_t snapshot_bytes_done = 0;
    std::uint64_t snapshot_eta_s = 0;  // 0: unknown
    std::uint64_t snapshot_chunks_rejected = 0;
    bool operator==(const StatusMsg&) const = default;
};

struct LocalGetMsg {
    Bytes key;
    PublicKey client{};  // the reading client's Ed25519 key
    Signature sig{};     // by `client`: kLocalGetTag over local_get_sign_payload
    bool operator==(const LocalGetMsg&) const = default;
};

struct LocalValueMsg {
    Epoch applied = 0;
    std::optional<Bytes> value;
    bool operator==(const LocalValueMsg&) const = default;
};

enum class ErrorCode : std::uint8_t {
    BadRequest = 1,     // undecodable, wrong chain id, or bad client signature
    Overloaded = 2,     // pool full: retry later or elsewhere
    NotVoting = 3,      // informational: this node is a follower (it still floods requests)
    Halted = 4,         // the node halted with an alarm
    ReplyTooLarge = 5,  // the outcome is known but its Reply would exceed message_bytes_max
    Forbidden = 6,      // a LocalGet whose signature does not verify, whose client may not
                        // read the key, or that came over another client's connection
    Expired = 7,        // a Submit whose expiry is outside [next epoch, next epoch + H] at this
                        // node: it cannot commit now (sign it again, or ask another node)
};

struct ErrorMsg {
    ErrorCode code = ErrorCode::BadRequest;
    std::string text;
    // Errors answering a Submit: digest_of(SubmitMsg::request) (the bytes as
    // received, also when they do not decode), so a client with many requests in
    // flight knows which one was refused. nullopt for other errors.
    std::optional<Digest> request_digest;
    bool operator==(const ErrorMsg&) const = default;
};

struct StatusQueryMsg {
    bool operator==(const StatusQueryMsg&) const = default;
};

using ClientMessage = std::variant<SubmitMsg, ReplyMsg, StatusQueryMsg, StatusMsg, LocalGetMsg,
                                   LocalValueMsg, ErrorMsg>;

/// Canonical bytes of one client message (without the channel frame).
Bytes encode_client_message(const ClientMessage& message);
/// Decodes untrusted bytes; never throws. Sizes are bounded by `limits`
/// (request_bytes_max for Submit, key/value limits, request_ops_max outputs).
Decoded<ClientMessage> decode_client_message(ByteView bytes, const consensus::Limits& limits);

/// The bytes a node signs for a reply (after kReplyTag): canonical
/// [chain_id, node, client, nonce, request_digest, status, epoch, position, outputs].
Bytes reply_sign_payload(const Digest& chain_id, const ReplyMsg& reply);

/// The bytes a client signs for a LocalGet (after kLocalGetTag): canonical
/// [chain_id, client, key].
Bytes local_get_sign_payload(const Digest& chain_id, const LocalGetMsg& get);
/// A LocalGet for `key` signed by `client`.
LocalGetMsg make_local_get(const crypto::SigningKey& client, const Digest& chain_id, Bytes key);
/// True iff get.sig is get.client's signature over local_get_sign_payload.
bool verify_local_get(const Digest& chain_id, const LocalGetMsg& get);

/// True when two replies report the same outcome (request_digest, status, outputs).
bool replies_match(const ReplyMsg& a, const ReplyMsg& b);

/// The node's signature over kReplyTag ‖ 0 ‖ reply_sign_payload(chain_id, reply)
/// (reply.sig is ignored).
Signature sign_reply(const crypto::SigningKey& key, const Digest& chain_id, const ReplyMsg& reply);
/// True iff reply.sig is `node_key`'s signature over reply_sign_payload(chain_id, reply).
bool verify_reply(const PublicKey& node_key, const Digest& chain_id, const ReplyMsg& reply);

/// Short English names: "committed", "duplicate", "malformed", "forbidden", "expired: ...";
/// "bad request", ...
std::string_view to_string(ReplyStatus status);
std::string_view to_string(ErrorCode code);

}  // namespace tob::client
