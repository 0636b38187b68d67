#pragma once
// Canonical msgpack encoding of every wire message (consensus/messages.h).
//
// Rules (docs/wire-format.md):
//  - every struct is a msgpack array of fixed length, fields in declaration order;
//    no maps appear on the wire;
//  - integers use the shortest msgpack form; fixed-size byte strings (digests,
//    keys, signatures) are `bin` of exactly that length; optional fields are nil
//    or the value; enums are positive integers in their declared range;
//  - decoding accepts only the canonical form: a decoded value must re-encode to
//    exactly the input bytes (this rejects non-minimal integers, str-for-bin and
//    any other alternative form) and there must be no trailing bytes;
//  - decoding untrusted bytes never throws and never aborts: it returns an error
//    string; sizes are checked against Limits before anything large is allocated.

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "consensus/messages.h"

namespace tob::consensus {

/// Result of decoding: a value or a human-readable reason.
template <class T>
class Decoded {
  public:
    Decoded(T value) : v_(std::move(value)) {}
    static Decoded fail(std::string why) { return Decoded(Error{std::move(why)}); }
    explicit operator bool() const { return v_.index() == 0; }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    const std::string& error() const { return std::get<1>(v_).why; }

  private:
    struct Error {
        std::string why;
    };
    explicit Decoded(Error e) : v_(std::move(e)) {}
    std::variant<T, Error> v_;
};

Bytes encode(const Envelope& v);
Bytes encode(const Op& v);
Bytes encode(const Request& v);
Bytes encode(const RequestBatch& v);
Bytes encode(const Block& v);
Bytes encode(const SeenBody& v);
Bytes encode(const Certificate& v);
Bytes encode(const AbaMessage& v);
Bytes encode(const AbaBundle& v);
Bytes encode(const CommitBody& v);
Bytes encode(const FetchRequest& v);
Bytes encode(const FetchReply& v);

Decoded<Envelope> decode_envelope(ByteView bytes, const Limits& limits);
Decoded<Request> decode_request(ByteView bytes, const Limits& limits);
Decoded<RequestBatch> decode_request_batch(ByteView bytes, const Limits& limits);
Decoded<Block> decode_block(ByteView bytes, const Limits& limits);
Decoded<SeenBody> decode_seen(ByteView bytes, const Limits& limits);
Decoded<Certificate> decode_certificate(ByteView bytes, const Limits& limits);
Decoded<AbaBundle> decode_aba_bundle(ByteView bytes, const Limits& limits);
Decoded<CommitBody> decode_commit(ByteView bytes, const Limits& limits);
Decoded<FetchRequest> decode_fetch_request(ByteView bytes, const Limits& limits);
Decoded<FetchReply> decode_fetch_reply(ByteView bytes, const Limits& limits);
/// A Proof record (DurableRecord::Proof: a FetchReply holding a delivered epoch's
/// blocks), which may be larger than one message.
Decoded<FetchReply> decode_proof_record(ByteView bytes, const Limits& limits);

/// The most bytes an Envelope's encoding adds to its body (array header, chain
/// id, sender, epoch, kind, the body's bin header, signature: 119), rounded up.
/// Everything sent is built to fit message_bytes_max with this much room.
inline constexpr std::size_t kEnvelopeOverhead = 160;
/// Room a block's fields take beside its requests, rounded up (RequestPool
/// fills blocks to block_bytes_max - kBlockOverhead).
inline constexpr std::size_t kBlockOverhead = 1024;
/// The most bytes one output adds to a reply beside its value (array header,
/// ok flag, bin header), rounded up; the output caps count it per output.
inline constexpr std::size_t kOutputOverhead = 8;
/// The most bytes a client Reply adds to its outputs (fields, signature, array
/// headers), rounded up: request_output_bytes_max + kReplyOverhead fits in a
/// message (limit_problems).
inline constexpr std::size_t kReplyOverhead = 512;

/// Relations between the limits that the protocol relies on (a block fits in a
/// message, a request in a block, a proof's skeleton and a reply in a message,
/// ...). Each problem is (key, why); empty when they all hold. The daemon refuses
/// a cluster file with any.
std::vector<std::pair<std::string, std::string>> limit_problems(const Limits& limits,
                                                                std::uint32_t n);

/// Bytes an envelope signature covers (after the "tobd-envelope-v2" tag):
/// canonical [chain_id, sender, epoch, kind, digest_of(body)]. The body enters by
/// its digest, which a receiver computes anyway (a block is known by it): one
/// BLAKE2b pass over a block instead of a copy, a cache key and Ed25519's SHA-512
/// over it (docs/wire-format.md, "Signatures").
inline constexpr std::string_view kEnvelopeTag = "tobd-envelope-v2";
Bytes envelope_sign_payload(const Digest& chain_id, NodeId sender, Epoch epoch, Kind kind,
                            ByteView body);
/// The same, for a body whose digest the caller holds.
Bytes envelope_sign_payload_of(const Digest& chain_id, NodeId sender, Epoch epoch, Kind kind,
                               const Digest& body_digest);

/// Bytes a client request signature covers (after "tobd-request-v2"):
/// canonical [chain_id, client, nonce, expires, ops].
inline constexpr std::string_view kRequestTag = "tobd-request-v2";
Bytes request_sign_payload(const Request& r);

/// BLAKE2b-256 of the canonical encoding (for blocks: of the body bytes signed).
Digest digest_of(ByteView encoded);
/// (digest_of(encode(r)), encode(r).size()): a request's identity and its size.
std::pair<Digest, std::size_t> request_digest(const Request& r);
/// digest_of(encode(r)) of each request, in order.
std::vector<Digest> digests_of(const std::vector<Request>& requests);

}  // namespace tob::consensus
