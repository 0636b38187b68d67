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

/// Bytes an envelope signature covers (after the "tobd-envelope-v1" tag):
/// canonical [chain_id, sender, epoch, kind, body].
inline constexpr std::string_view kEnvelopeTag = "tobd-envelope-v1";
Bytes envelope_sign_payload(const Digest& chain_id, NodeId sender, Epoch epoch, Kind kind,
                            ByteView body);

/// Bytes a client request signature covers (after "tobd-request-v1"):
/// canonical [chain_id, client, nonce, ops].
inline constexpr std::string_view kRequestTag = "tobd-request-v1";
Bytes request_sign_payload(const Request& r);

/// BLAKE2b-256 of the canonical encoding (for blocks: of the body bytes signed).
Digest digest_of(ByteView encoded);

}  // namespace tob::consensus
