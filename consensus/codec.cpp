// Canonical msgpack codec (see consensus/codec.h and docs/wire-format.md).
//
// Encoding goes through msgpack::packer, which always picks the shortest form of
// every integer, bin and array header, writing straight into a Bytes vector.
//
// Decoding runs in four steps, each of which may reject:
//   1. the input size is checked against the Limits bound of the message;
//   2. msgpack::unpack parses one object with an unpack_limit derived from Limits
//      (array counts, bin sizes, nesting depth; str, map and ext are capped at 0),
//      so nothing larger than the limits is allocated, and the whole input must
//      be consumed (no trailing bytes);
//   3. the msgpack::object is converted field by field with strict checks (exact
//      array lengths, exact bin sizes, integer ranges, per-type rules);
//   4. the typed value is encoded again and must equal the input byte for byte,
//      which rejects every non-canonical form the parser accepted (an integer in
//      a longer form than needed, a signed form of a positive number, a long
//      header for a short array or bin, ...).
// Inside the codec a rejected field is reported by throwing the private Reject
// type; every exception (ours, msgpack's, bad_alloc) is caught in the single
// decode driver (wire::decode_canonical in consensus/msgpack_wire.h, shared with
// the client-plane codec), so no decoder can throw to its caller.

#include "consensus/codec.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <msgpack.hpp>
#include <span>
#include <string_view>

#include "consensus/msgpack_wire.h"
#include "crypto/coin.h"

namespace tob::consensus {
namespace {

using namespace wire;

// ---- encoding --------------------------------------------------------------

void put(Packer& p, const Op& v) {
    put_array(p, v.previous ? 5 : 4);
    put_uint(p, static_cast<std::uint8_t>(v.type));
    put_bin(p, v.key);
    put_bin(p, v.value);
    if (v.expected) {
        put_bin(p, *v.expected);
    } else {
        p.pack_nil();
    }
    if (v.previous) put_uint(p, 1);
}

void put_ops(Packer& p, const std::vector<Op>& ops) {
    put_array(p, ops.size());
    for (const Op& op : ops) put(p, op);
}

void put(Packer& p, const Request& v) {
    put_array(p, 6);
    put_bin(p, v.chain_id);
    put_bin(p, v.client);
    put_uint(p, v.nonce);
    put_uint(p, v.expires);
    put_ops(p, v.ops);
    put_bin(p, v.sig);
}

void put_requests(Packer& p, const std::vector<Request>& requests) {
    put_array(p, requests.size());
    for (const Request& r : requests) put(p, r);
}

void put(Packer& p, const RequestBatch& v) {
    put_array(p, 1);
    put_requests(p, v.requests);
}

void put(Packer& p, const Block& v) {
    put_array(p, 3);
    put_uint(p, v.epoch);
    put_uint(p, v.proposer);
    put_requests(p, v.requests);
}

void put(Packer& p, const SeenBody& v) {
    put_array(p, 2);
    put_uint(p, v.proposer);
    put_bin(p, v.digest);
}

void put(Packer& p, const Certificate& v) {
    put_array(p, 4);
    put_uint(p, v.epoch);
    put_uint(p, v.proposer);
    put_bin(p, v.digest);
    put_array(p, v.sigs.size());
    for (const SignerSig& s : v.sigs) {
        put_array(p, 2);
        put_uint(p, s.signer);
        put_bin(p, s.sig);
    }
}

void put(Packer& p, const AbaMessage& v) {
    put_array(p, 5);
    put_uint(p, v.proposer);
    put_uint(p, v.round);
    put_uint(p, static_cast<std::uint8_t>(v.type));
    put_uint(p, v.value);
    put_bin(p, v.coin_share);
}

void put(Packer& p, const AbaBundle& v) {
    put_array(p, 1);
    put_array(p, v.messages.size());
    for (const AbaMessage& m : v.messages) put(p, m);
}

void put(Packer& p, const CommitBody& v) {
    put_array(p, 3);
    put_bin(p, v.output_digest);
    put_bin(p, v.state_digest);
    if (v.checkpoint_root) {
        put_bin(p, *v.checkpoint_root);
    } else {
        p.pack_nil();
    }
}

void put(Packer& p, const FetchRequest& v) {
    put_array(p, 3);
    put_uint(p, static_cast<std::uint8_t>(v.type));
    put_uint(p, v.proposer);
    put_bin(p, v.digest);
}

void put(Packer& p, const FetchReply& v) {
    put_array(p, 2);
    put_array(p, v.envelopes.size());
    for (const Bytes& e : v.envelopes) put_bin(p, e);
    put_array(p, v.blocks.size());
    for (const BlockRef& b : v.blocks) {
        put_array(p, 2);
        put_uint(p, b.proposer);
        put_bin(p, b.digest);
    }
}

/// The first five envelope fields, shared by encode(Envelope) and the sign payload.
void put_envelope_head(Packer& p, std::size_t fields, const Digest& chain_id, NodeId sender,
                       Epoch epoch, Kind kind, ByteView body) {
    put_array(p, fields);
    put_bin(p, chain_id);
    put_uint(p, sender);
    put_uint(p, epoch);
    put_uint(p, static_cast<std::uint8_t>(kind));
    put_bin(p, body);
}

void put(Packer& p, const Envelope& v) {
    put_envelope_head(p, 6, v.chain_id, v.sender, v.epoch, v.kind, v.body);
    put_bin(p, v.sig);
}

template <class T>
Bytes encode_value(const T& v, std::size_t size_hint = 0) {
    Bytes out;
    out.reserve(size_hint);
    ByteSink sink{out};
    Packer p(sink);
    put(p, v);
    return out;
}

// ---- encoded sizes (must mirror the encoder exactly) -------------------------

std::size_t uint_size(std::uint64_t v) {
    if (v < 0x80) return 1;
    if (v <= 0xff) return 2;
    if (v <= 0xffff) return 3;
    if (v <= 0xffffffffu) return 5;
    return 9;
}
std::size_t array_header_size(std::size_t n) { return n < 16 ? 1 : n <= 0xffff ? 3 : 5; }
std::size_t bin_size(std::size_t n) { return n + (n <= 0xff ? 2 : n <= 0xffff ? 3 : 5); }

std::size_t encoded_size(const Op& v) {
    return array_header_size(4) + uint_size(static_cast<std::uint8_t>(v.type)) +
           bin_size(v.key.size()) + bin_size(v.value.size()) +
           (v.expected ? bin_size(v.expected->size()) : 1) + (v.previous ? 1 : 0);
}

std::size_t encoded_size(const Request& v) {
    std::size_t n = array_header_size(6) + bin_size(v.chain_id.size()) + bin_size(v.client.size()) +
                    uint_size(v.nonce) + uint_size(v.expires) + array_header_size(v.ops.size()) +
                    bin_size(v.sig.size());
    for (const Op& op : v.ops) n += encoded_size(op);
    return n;
}

// ---- decoding --------------------------------------------------------------

/// A struct: an array of exactly `fields` elements.
Items fields_of(const msgpack::object& o, std::size_t fields, std::string_view what) {
    Items a = array_items(o, what);
    if (a.size() != fields) {
        reject(what,
               "expected " + std::to_string(fields) + " fields, got " + std::to_string(a.size()));
    }
    return a;
}

/// A list of min..max elements.
Items list_of(const msgpack::object& o, std::size_t min, std::size_t max, std::string_view what) {
    Items a = array_items(o, what);
    if (a.size() < min || a.size() > max) {
        reject(what, std::to_string(a.size()) + " elements, allowed " + std::to_string(min) + ".." +
                         std::to_string(max));
    }
    return a;
}

Op to_op(const msgpack::object& o, const Limits& lim) {
    // Four fields, or five when the client asks for the previous value: the
    // fifth is then 1 (one encoding per op).
    Items f = array_items(o, "op");
    if (f.size() != 4 && f.size() != 5) {
        reject("op", "expected 4 or 5 fields, got " + std::to_string(f.size()));
    }
    Op v;
    v.type = static_cast<OpType>(uint_in(f[0], 1, 4, "op.type"));
    v.key = bin_up_to(f[1], lim.key_bytes_max, "op.key");
    v.value = bin_up_to(f[2], lim.value_bytes_max, "op.value");
    if (f[3].type != msgpack::type::NIL) {
        if (v.type != OpType::Cas) reject("op.expected", "must be nil unless the op is CAS");
        v.expected = bin_up_to(f[3], lim.value_bytes_max, "op.expected");
    }
    if ((v.type == OpType::Del || v.type == OpType::Get) && !v.value.empty()) {
        reject("op.value", "must be empty for DEL and GET");
    }
    if (f.size() == 5) {
        uint_in(f[4], 1, 1, "op.previous");
        if (v.type != OpType::Put && v.type != OpType::Del) {
            reject("op.previous", "only PUT and DEL return a previous value on request");
        }
        v.previous = true;
    }
    return v;
}

Request to_request(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 6, "request");
    Request v;
    v.chain_id = bin_exact<32>(f[0], "request.chain_id");
    v.client = bin_exact<32>(f[1], "request.client");
    v.nonce = uint_of<Nonce>(f[2], "request.nonce");
    v.expires = uint_of<Epoch>(f[3], "request.expires");
    Items ops = list_of(f[4], 1, lim.request_ops_max, "request.ops");
    v.ops.reserve(ops.size());
    for (const msgpack::object& op : ops) v.ops.push_back(to_op(op, lim));
    v.sig = bin_exact<64>(f[5], "request.sig");
    // Inside a block or batch a request has no input size of its own; this bounds
    // it exactly as decode_request bounds a request that arrives alone.
    if (encoded_size(v) > lim.request_bytes_max) {
        reject("request", std::to_string(encoded_size(v)) + " bytes, request_bytes_max is " +
                              std::to_string(lim.request_bytes_max));
    }
    return v;
}

std::vector<Request> to_requests(const msgpack::object& o, std::size_t max, const Limits& lim,
                                 std::string_view what) {
    Items items = list_of(o, 0, max, what);
    std::vector<Request> out;
    out.reserve(items.size());
    for (const msgpack::object& r : items) out.push_back(to_request(r, lim));
    return out;
}

RequestBatch to_request_batch(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 1, "request batch");
    return RequestBatch{to_requests(f[0], lim.batch_requests_max, lim, "request batch.requests")};
}

Block to_block(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 3, "block");
    Block v;
    v.epoch = uint_of<Epoch>(f[0], "block.epoch");
    v.proposer = uint_of<NodeId>(f[1], "block.proposer");
    v.requests = to_requests(f[2], lim.block_requests_max, lim, "block.requests");
    return v;
}

SeenBody to_seen(const msgpack::object& o, const Limits&) {
    Items f = fields_of(o, 2, "seen");
    SeenBody v;
    v.proposer = uint_of<NodeId>(f[0], "seen.proposer");
    v.digest = bin_exact<32>(f[1], "seen.digest");
    return v;
}

Certificate to_certificate(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 4, "cert");
    Certificate v;
    v.epoch = uint_of<Epoch>(f[0], "cert.epoch");
    v.proposer = uint_of<NodeId>(f[1], "cert.proposer");
    v.digest = bin_exact<32>(f[2], "cert.digest");
    Items sigs = list_of(f[3], 0, lim.cert_signatures_max, "cert.sigs");
    v.sigs.reserve(sigs.size());
    for (const msgpack::object& s : sigs) {
        Items g = fields_of(s, 2, "cert.sigs[]");
        SignerSig ss;
        ss.signer = uint_of<NodeId>(g[0], "cert.sigs[].signer");
        ss.sig = bin_exact<64>(g[1], "cert.sigs[].sig");
        if (!v.sigs.empty() && ss.signer <= v.sigs.back().signer) {
            reject("cert.sigs", "signers not strictly increasing (" +
                                    std::to_string(v.sigs.back().signer) + " then " +
                                    std::to_string(ss.signer) + ")");
        }
        v.sigs.push_back(ss);
    }
    return v;
}

using crypto::kCoinShareBytes;  // a serialised coin share: sigma ‖ c ‖ z

AbaMessage to_aba_message(const msgpack::object& o) {
    Items f = fields_of(o, 5, "aba");
    AbaMessage v;
    v.proposer = uint_of<NodeId>(f[0], "aba.proposer");
    v.round = uint_of<Round>(f[1], "aba.round");
    v.type = static_cast<AbaType>(uint_in(f[2], 1, 5, "aba.type"));
    switch (v.type) {
        case AbaType::Bval:
        case AbaType::Aux:
        case AbaType::Term:
            v.value = static_cast<std::uint8_t>(uint_in(f[3], 0, 1, "aba.value"));
            break;
        case AbaType::Conf:
            v.value = static_cast<std::uint8_t>(uint_in(f[3], 1, 3, "aba.value"));
            break;
        case AbaType::Coin:
            v.value = static_cast<std::uint8_t>(uint_in(f[3], 0, 0, "aba.value"));
            break;
    }
    const std::size_t share_bytes = v.type == AbaType::Coin ? kCoinShareBytes : 0;
    v.coin_share = bin_up_to(f[4], share_bytes, "aba.coin_share");
    if (v.coin_share.size() != share_bytes) {
        reject("aba.coin_share", std::to_string(v.coin_share.size()) + " bytes, expected " +
                                     std::to_string(share_bytes));
    }
    return v;
}

AbaBundle to_aba_bundle(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 1, "aba bundle");
    Items msgs = list_of(f[0], 1, lim.aba_bundle_max, "aba bundle.messages");
    AbaBundle v;
    v.messages.reserve(msgs.size());
    for (const msgpack::object& m : msgs) v.messages.push_back(to_aba_message(m));
    return v;
}

CommitBody to_commit(const msgpack::object& o, const Limits&) {
    Items f = fields_of(o, 3, "commit");
    CommitBody v;
    v.output_digest = bin_exact<32>(f[0], "commit.output_digest");
    v.state_digest = bin_exact<32>(f[1], "commit.state_digest");
    if (f[2].type != msgpack::type::NIL)
        v.checkpoint_root = bin_exact<32>(f[2], "commit.checkpoint_root");
    return v;
}

FetchRequest to_fetch_request(const msgpack::object& o, const Limits&) {
    Items f = fields_of(o, 3, "fetch request");
    FetchRequest v;
    v.type = static_cast<FetchType>(uint_in(f[0], 1, 4, "fetch request.type"));
    v.proposer = uint_of<NodeId>(f[1], "fetch request.proposer");
    v.digest = bin_exact<32>(f[2], "fetch request.digest");
    if (v.type != FetchType::Block && v.digest != Digest{}) {
        reject("fetch request.digest", "must be zero unless fetching a block");
    }
    return v;
}

FetchReply to_fetch_reply(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 2, "fetch reply");
    Items items = list_of(f[0], 0, lim.fetch_items_max, "fetch reply.envelopes");
    FetchReply v;
    v.envelopes.reserve(items.size());
    for (const msgpack::object& e : items) {
        v.envelopes.push_back(bin_up_to(e, lim.message_bytes_max, "fetch reply.envelopes[]"));
    }
    Items refs = list_of(f[1], 0, lim.fetch_items_max, "fetch reply.blocks");
    v.blocks.reserve(refs.size());
    for (const msgpack::object& r : refs) {
        Items g = fields_of(r, 2, "fetch reply.blocks[]");
        v.blocks.push_back(BlockRef{uint_of<NodeId>(g[0], "fetch reply.blocks[].proposer"),
                                    bin_exact<32>(g[1], "fetch reply.blocks[].digest")});
    }
    return v;
}

Envelope to_envelope(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 6, "envelope");
    Envelope v;
    v.chain_id = bin_exact<32>(f[0], "envelope.chain_id");
    v.sender = uint_of<NodeId>(f[1], "envelope.sender");
    v.epoch = uint_of<Epoch>(f[2], "envelope.epoch");
    v.kind = static_cast<Kind>(uint_in(f[3], 1, kKindMax, "envelope.kind"));
    v.body = bin_up_to(f[4], lim.message_bytes_max, "envelope.body");
    v.sig = bin_exact<64>(f[5], "envelope.sig");
    return v;
}

// Bins every request-carrying message may hold: keys, values, digests, signatures.
std::size_t request_bins(const Limits& l) {
    return std::max<std::size_t>({l.key_bytes_max, l.value_bytes_max, 64});
}

/// Every decoder below: wire::decode_canonical with this codec's conversion and
/// encoder.
template <class T, class Convert>
Decoded<T> decode_with(ByteView bytes, const Limits& lim, const Shape& shape, Convert convert) {
    return decode_canonical<T>(
        bytes, shape, [&](const msgpack::object& o) { return convert(o, lim); },
        [](const T& value) { return encode(value); });
}

}  // namespace

// ---- public API --------------------------------------------------------------

Bytes encode(const Envelope& v) { return encode_value(v, v.body.size() + 128); }
Bytes encode(const Op& v) { return encode_value(v); }
Bytes encode(const Request& v) { return encode_value(v); }
Bytes encode(const RequestBatch& v) { return encode_value(v); }
Bytes encode(const Block& v) { return encode_value(v); }
Bytes encode(const SeenBody& v) { return encode_value(v); }
Bytes encode(const Certificate& v) { return encode_value(v); }
Bytes encode(const AbaMessage& v) { return encode_value(v); }
Bytes encode(const AbaBundle& v) { return encode_value(v); }
Bytes encode(const CommitBody& v) { return encode_value(v); }
Bytes encode(const FetchRequest& v) { return encode_value(v); }
Bytes encode(const FetchReply& v) { return encode_value(v); }

Decoded<Envelope> decode_envelope(ByteView bytes, const Limits& lim) {
    const Shape shape{"envelope", lim.message_bytes_max, 6,
                      std::max<std::size_t>(lim.message_bytes_max, 64), 1};
    return decode_with<Envelope>(bytes, lim, shape, to_envelope);
}

Decoded<Request> decode_request(ByteView bytes, const Limits& lim) {
    const Shape shape{"request", lim.request_bytes_max,
                      std::max<std::size_t>(lim.request_ops_max, 6), request_bins(lim), 3};
    return decode_with<Request>(bytes, lim, shape, to_request);
}

Decoded<RequestBatch> decode_request_batch(ByteView bytes, const Limits& lim) {
    const Shape shape{"request batch", lim.message_bytes_max,
                      std::max<std::size_t>({lim.batch_requests_max, lim.request_ops_max, 6}),
                      request_bins(lim), 5};
    return decode_with<RequestBatch>(bytes, lim, shape, to_request_batch);
}

Decoded<Block> decode_block(ByteView bytes, const Limits& lim) {
    const Shape shape{"block", lim.block_bytes_max,
                      std::max<std::size_t>({lim.block_requests_max, lim.request_ops_max, 6}),
                      request_bins(lim), 5};
    return decode_with<Block>(bytes, lim, shape, to_block);
}

Decoded<SeenBody> decode_seen(ByteView bytes, const Limits& lim) {
    const Shape shape{"seen", lim.message_bytes_max, 2, 32, 1};
    return decode_with<SeenBody>(bytes, lim, shape, to_seen);
}

Decoded<Certificate> decode_certificate(ByteView bytes, const Limits& lim) {
    const Shape shape{"cert", lim.message_bytes_max,
                      std::max<std::size_t>(lim.cert_signatures_max, 4), 64, 3};
    return decode_with<Certificate>(bytes, lim, shape, to_certificate);
}

Decoded<AbaBundle> decode_aba_bundle(ByteView bytes, const Limits& lim) {
    const Shape shape{"aba bundle", lim.message_bytes_max,
                      std::max<std::size_t>(lim.aba_bundle_max, 5), kCoinShareBytes, 3};
    return decode_with<AbaBundle>(bytes, lim, shape, to_aba_bundle);
}

Decoded<CommitBody> decode_commit(ByteView bytes, const Limits& lim) {
    const Shape shape{"commit", lim.message_bytes_max, 3, 32, 1};
    return decode_with<CommitBody>(bytes, lim, shape, to_commit);
}

Decoded<FetchRequest> decode_fetch_request(ByteView bytes, const Limits& lim) {
    const Shape shape{"fetch request", lim.message_bytes_max, 3, 32, 1};
    return decode_with<FetchRequest>(bytes, lim, shape, to_fetch_request);
}

Decoded<FetchReply> decode_fetch_reply(ByteView bytes, const Limits& lim) {
    const Shape shape{"fetch reply", lim.message_bytes_max,
                      std::max<std::size_t>(lim.fetch_items_max, 2),
                      std::max<std::size_t>(lim.message_bytes_max, 32), 3};
    return decode_with<FetchReply>(bytes, lim, shape, to_fetch_reply);
}

Decoded<FetchReply> decode_proof_record(ByteView bytes, const Limits& lim) {
    // A node's own record of a delivered epoch's blocks: n blocks of up to
    // block_bytes_max may exceed one message, so the record bounds itself (its
    // size was checked by the storage's checksum, not by a peer).
    Limits own = lim;
    const std::size_t size = std::min<std::size_t>(bytes.size(), 0xffffffffu);
    own.message_bytes_max =
        std::max<std::uint32_t>(lim.message_bytes_max, static_cast<std::uint32_t>(size));
    own.fetch_items_max = std::max<std::uint32_t>(lim.fetch_items_max, 1u << 16);
    return decode_fetch_reply(bytes, own);
}

Bytes envelope_sign_payload_of(const Digest& chain_id, NodeId sender, Epoch epoch, Kind kind,
                               const Digest& body_digest) {
    Bytes out;
    ByteSink sink{out};
    Packer p(sink);
    put_envelope_head(p, 5, chain_id, sender, epoch, kind, body_digest);
    return out;
}

Bytes envelope_sign_payload(const Digest& chain_id, NodeId sender, Epoch epoch, Kind kind,
                            ByteView body) {
    return envelope_sign_payload_of(chain_id, sender, epoch, kind, digest_of(body));
}

Bytes request_sign_payload(const Request& r) {
    Bytes out;
    ByteSink sink{out};
    Packer p(sink);
    put_array(p, 5);
    put_bin(p, r.chain_id);
    put_bin(p, r.client);
    put_uint(p, r.nonce);
    put_uint(p, r.expires);
    put_ops(p, r.ops);
    return out;
}

Digest digest_of(ByteView encoded) { return crypto::blake2b256(encoded); }

std::vector<Digest> digests_of(const std::vector<Request>& requests) {
    std::vector<Digest> out;
    out.reserve(requests.size());
    for (const auto& r : requests) out.push_back(request_digest(r).first);
    return out;
}

std::pair<Digest, std::size_t> request_digest(const Request& r) {
    const Bytes enc = encode(r);
    return {digest_of(enc), enc.size()};
}

std::vector<std::pair<std::string, std::string>> limit_problems(const Limits& l, std::uint32_t n) {
    std::vector<std::pair<std::string, std::string>> out;
    auto fail = [&](std::string key, std::string why) {
        out.emplace_back("limits." + std::move(key), std::move(why));
    };
    const auto str = [](std::uint64_t v) { return std::to_string(v); };
    const std::uint64_t msg = l.message_bytes_max;
    if (std::uint64_t{l.block_bytes_max} + kEnvelopeOverhead > msg) {
        fail("block_bytes_max", str(l.block_bytes_max) + " + " + str(kEnvelopeOverhead) +
                                    " bytes of envelope exceed message_bytes_max (" + str(msg) +
                                    "): a full block could not be sent");
    }
    if (std::uint64_t{l.request_bytes_max} + kBlockOverhead > l.block_bytes_max) {
        fail("request_bytes_max", str(l.request_bytes_max) + " + " + str(kBlockOverhead) +
                                      " bytes of block fields exceed limits.block_bytes_max (" +
                                      str(l.block_bytes_max) +
                                      "): such a request could never be proposed");
    }
    if (n != 0 && l.cert_signatures_max < n) {
        fail("cert_signatures_max", str(l.cert_signatures_max) + " is below n = " + str(n) +
                                        ": certificates of q signatures would be rejected");
    }
    // A certificate of n signatures, and a proof reply's COMMITs (t + 1 of about
    // 230 bytes each) and block list (n entries of 36 bytes), fit in one message.
    const std::uint64_t t = max_faulty(n);
    if (std::uint64_t{n} * 72 + 64 + kEnvelopeOverhead > msg) {
        fail("message_bytes_max",
             str(msg) + " cannot hold a certificate of n = " + str(n) + " signatures");
    }
    if ((t + 1) * 256 + std::uint64_t{n} * 40 + 64 + kEnvelopeOverhead > msg) {
        fail("message_bytes_max",
             str(msg) + " cannot hold a commit proof's t + 1 COMMITs and its list of blocks");
    }
    // Output caps: a reply with the most outputs one request may have fits in a
    // message; the epoch's cap holds one such request; a request of
    // request_ops_max ops without values stays under the request's cap.
    if (std::uint64_t{l.request_output_bytes_max} + kReplyOverhead > msg) {
        fail("request_output_bytes_max", str(l.request_output_bytes_max) + " + " +
                                             str(kReplyOverhead) +
                                             " bytes of reply exceed message_bytes_max (" +
                                             str(msg) + "): a reply could not be sent");
    }
    if (l.epoch_output_bytes_max < l.request_output_bytes_max) {
        fail("epoch_output_bytes_max", str(l.epoch_output_bytes_max) +
                                           " is below request_output_bytes_max (" +
                                           str(l.request_output_bytes_max) + ")");
    }
    if (l.request_output_bytes_max < std::uint64_t{l.request_ops_max} * kOutputOverhead) {
        fail("request_output_bytes_max",
             str(l.request_output_bytes_max) + " is below request_ops_max * " +
                 str(kOutputOverhead) + ": a request of request_ops_max PUTs would be skipped");
    }
    if (l.fetch_items_max < n + t + 1) {
        fail("fetch_items_max", str(l.fetch_items_max) + " is below n + t + 1 = " + str(n + t + 1) +
                                    ": a commit proof would be rejected");
    }
    return out;
}

}  // namespace tob::consensus
