// Canonical msgpack codec of the client plane (cli/client/protocol.h).
//
// The same scheme as consensus/codec.cpp, with its building blocks
// (consensus/msgpack_wire.h):
// encoding through msgpack::packer (shortest forms everywhere); decoding in four
// steps, each of which may reject:
//   1. the input size is checked against Limits::message_bytes_max;
//   2. msgpack::unpack parses one object with an unpack_limit derived from Limits
//      (str, map and ext capped at 0; bins are referenced, not copied), and must
//      consume the whole input;
//   3. the object is converted with strict checks (message type, exact arity,
//      exact bin sizes, integer ranges, per-type size limits);
//   4. the value is encoded again and must equal the input byte for byte.
// A rejection inside the conversion throws the private Reject type; the decode
// driver shared with the wire codec (wire::decode_canonical) catches every
// exception, so decode_client_message never throws.

#include "cli/client/protocol.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <limits>
#include <msgpack.hpp>
#include <span>

#include "consensus/msgpack_wire.h"

namespace tob::client {
namespace {

using consensus::OpOutput;
using namespace consensus::wire;

// ---- encoding --------------------------------------------------------------

void put_bool(Packer& p, bool v) { p.pack_uint64(v ? 1 : 0); }
void put_opt_bin(Packer& p, const std::optional<Bytes>& b) {
    if (b) {
        put_bin(p, *b);
    } else {
        p.pack_nil();
    }
}
/// Text travels as bin; longer text than kClientTextBytesMax is cut.
void put_text(Packer& p, std::string_view text) {
    text = text.substr(0, std::min(text.size(), kClientTextBytesMax));
    put_bin(p, crypto::view(text));
}
void put_type(Packer& p, ClientMsgType type) { put_uint(p, static_cast<std::uint8_t>(type)); }

void put_outputs(Packer& p, const std::vector<OpOutput>& outputs) {
    put_array(p, outputs.size());
    for (const OpOutput& o : outputs) {
        put_array(p, 2);
        put_bool(p, o.ok);
        put_opt_bin(p, o.value);
    }
}

void put(Packer& p, const SubmitMsg& v) {
    put_array(p, 2);
    put_type(p, ClientMsgType::Submit);
    put_bin(p, v.request);
}

void put(Packer& p, const ReplyMsg& v) {
    put_array(p, 10);
    put_type(p, ClientMsgType::Reply);
    put_uint(p, v.node);
    put_bin(p, v.client);
    put_uint(p, v.nonce);
    put_bin(p, v.request_digest);
    put_uint(p, static_cast<std::uint8_t>(v.status));
    put_uint(p, v.epoch);
    put_uint(p, v.position);
    put_outputs(p, v.outputs);
    put_bin(p, v.sig);
}

void put(Packer& p, const StatusQueryMsg&) {
    put_array(p, 1);
    put_type(p, ClientMsgType::StatusQuery);
}

void put(Packer& p, const StatusMsg& v) {
    put_array(p, 20);
    put_type(p, ClientMsgType::Status);
    put_uint(p, v.node);
    put_text(p, v.version);
    put_uint(p, v.epoch);
    put_uint(p, v.applied);
    put_uint(p, v.peers_connected);
    put_uint(p, v.pool);
    put_uint(p, v.faults);
    put_bin(p, v.state_digest);
    put_bool(p, v.voting);
    put_bool(p, v.halted);
    put_uint(p, v.uptime_s);
    put_uint(p, v.checkpoint);
    put_uint(p, v.pruned_below);
    put_bool(p, v.snapshot_active);
    put_uint(p, v.snapshot_epoch);
    put_uint(p, v.snapshot_bytes_total);
    put_uint(p, v.snapshot_bytes_done);
    put_uint(p, v.snapshot_eta_s);
    put_uint(p, v.snapshot_chunks_rejected);
}

void put(Packer& p, const LocalGetMsg& v) {
    put_array(p, 4);
    put_type(p, ClientMsgType::LocalGet);
    put_bin(p, v.key);
    put_bin(p, v.client);
    put_bin(p, v.sig);
}

void put(Packer& p, const LocalValueMsg& v) {
    put_array(p, 3);
    put_type(p, ClientMsgType::LocalValue);
    put_uint(p, v.applied);
    put_opt_bin(p, v.value);
}

void put(Packer& p, const ErrorMsg& v) {
    put_array(p, 4);
    put_type(p, ClientMsgType::Error);
    put_uint(p, static_cast<std::uint8_t>(v.code));
    put_text(p, v.text);
    if (v.request_digest) {
        put_bin(p, *v.request_digest);
    } else {
        p.pack_nil();
    }
}

// ---- decoding --------------------------------------------------------------

Items fields_of(Items a, std::size_t fields, std::string_view what) {
    if (a.size() != fields) {
        reject(what,
               "expected " + std::to_string(fields) + " fields, got " + std::to_string(a.size()));
    }
    return a;
}

bool bool_of(const msgpack::object& o, std::string_view what) {
    return uint_in(o, 0, 1, what) == 1;
}

std::optional<Bytes> opt_bin_up_to(const msgpack::object& o, std::size_t max,
                                   std::string_view what) {
    if (o.type == msgpack::type::NIL) return std::nullopt;
    return bin_up_to(o, max, what);
}

std::string text_of(const msgpack::object& o, std::string_view what) {
    ByteView b = bin_view(o, what);
    if (b.size() > kClientTextBytesMax) {
        reject(what, std::to_string(b.size()) + " bytes, at most " +
                         std::to_string(kClientTextBytesMax) + " allowed");
    }
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

SubmitMsg to_submit(Items f, const consensus::Limits& lim) {
    fields_of(f, 2, "submit");
    return SubmitMsg{bin_up_to(f[1], lim.request_bytes_max, "submit.request")};
}

ReplyMsg to_reply(Items f, const consensus::Limits& lim) {
    fields_of(f, 10, "reply");
    ReplyMsg v;
    v.node = uint_of<NodeId>(f[1], "reply.node");
    v.client = bin_exact<32>(f[2], "reply.client");
    v.nonce = uint_of<Nonce>(f[3], "reply.nonce");
    v.request_digest = bin_exact<32>(f[4], "reply.request_digest");
    v.status = static_cast<ReplyStatus>(uint_in(f[5], 1, 8, "reply.status"));
    v.epoch = uint_of<Epoch>(f[6], "reply.epoch");
    v.position = uint_of<std::uint32_t>(f[7], "reply.position");
    Items outputs = array_items(f[8], "reply.outputs");
    if (outputs.size() > lim.request_ops_max) {
        reject("reply.outputs", std::to_string(outputs.size()) + " elements, at most " +
                                    std::to_string(lim.request_ops_max) + " allowed");
    }
    v.outputs.reserve(outputs.size());
    for (const msgpack::object& o : outputs) {
        Items g = fields_of(array_items(o, "reply.outputs[]"), 2, "reply.outputs[]");
        OpOutput out;
        out.ok = bool_of(g[0], "reply.outputs[].ok");
        out.value = opt_bin_up_to(g[1], lim.value_bytes_max, "reply.outputs[].value");
        v.outputs.push_back(std::move(out));
    }
    v.sig = bin_exact<64>(f[9], "reply.sig");
    return v;
}

StatusMsg to_status(Items f, const consensus::Limits&) {
    fields_of(f, 20, "status");
    StatusMsg v;
    v.node = uint_of<NodeId>(f[1], "status.node");
    v.version = text_of(f[2], "status.version");
    v.epoch = uint_of<Epoch>(f[3], "status.epoch");
    v.applied = uint_of<Epoch>(f[4], "status.applied");
    v.peers_connected = uint_of<std::uint32_t>(f[5], "status.peers_connected");
    v.pool = uint_of<std::uint64_t>(f[6], "status.pool");
    v.faults = uint_of<std::uint64_t>(f[7], "status.faults");
    v.state_digest = bin_exact<32>(f[8], "status.state_digest");
    v.voting = bool_of(f[9], "status.voting");
    v.halted = bool_of(f[10], "status.halted");
    v.uptime_s = uint_of<std::uint64_t>(f[11], "status.uptime_s");
    v.checkpoint = uint_of<Epoch>(f[12], "status.checkpoint");
    v.pruned_below = uint_of<Epoch>(f[13], "status.pruned_below");
    v.snapshot_active = bool_of(f[14], "status.snapshot_active");
    v.snapshot_epoch = uint_of<Epoch>(f[15], "status.snapshot_epoch");
    v.snapshot_bytes_total = uint_of<std::uint64_t>(f[16], "status.snapshot_bytes_total");
    v.snapshot_bytes_done = uint_of<std::uint64_t>(f[17], "status.snapshot_bytes_done");
    v.snapshot_eta_s = uint_of<std::uint64_t>(f[18], "status.snapshot_eta_s");
    v.snapshot_chunks_rejected = uint_of<std::uint64_t>(f[19], "status.snapshot_chunks_rejected");
    return v;
}

LocalGetMsg to_local_get(Items f, const consensus::Limits& lim) {
    fields_of(f, 4, "local get");
    LocalGetMsg v;
    v.key = bin_up_to(f[1], lim.key_bytes_max, "local get.key");
    v.client = bin_exact<32>(f[2], "local get.client");
    v.sig = bin_exact<64>(f[3], "local get.sig");
    return v;
}

LocalValueMsg to_local_value(Items f, const consensus::Limits& lim) {
    fields_of(f, 3, "local value");
    LocalValueMsg v;
    v.applied = uint_of<Epoch>(f[1], "local value.applied");
    v.value = opt_bin_up_to(f[2], lim.value_bytes_max, "local value.value");
    return v;
}

ErrorMsg to_error(Items f, const consensus::Limits&) {
    fields_of(f, 4, "error");
    ErrorMsg v;
    v.code = static_cast<ErrorCode>(uint_in(f[1], 1, 7, "error.code"));
    v.text = text_of(f[2], "error.text");
    if (f[3].type != msgpack::type::NIL) {
        v.request_digest = bin_exact<32>(f[3], "error.request_digest");
    }
    return v;
}

ClientMessage to_message(const msgpack::object& o, const consensus::Limits& lim) {
    Items f = array_items(o, "client message");
    if (f.empty()) reject("client message", "empty array");
    const auto type = static_cast<ClientMsgType>(uint_in(f[0], 1, 7, "client message.type"));
    switch (type) {
        case ClientMsgType::Submit:
            return to_submit(f, lim);
        case ClientMsgType::Reply:
            return to_reply(f, lim);
        case ClientMsgType::StatusQuery:
            fields_of(f, 1, "status query");
            return StatusQueryMsg{};
        case ClientMsgType::Status:
            return to_status(f, lim);
        case ClientMsgType::LocalGet:
            return to_local_get(f, lim);
        case ClientMsgType::LocalValue:
            return to_local_value(f, lim);
        case ClientMsgType::Error:
            return to_error(f, lim);
    }
    reject("client message.type", "unknown");
}

}  // namespace

Bytes encode_client_message(const ClientMessage& message) {
    Bytes out;
    ByteSink sink{out};
    Packer p(sink);
    std::visit([&p](const auto& v) { put(p, v); }, message);
    return out;
}

Decoded<ClientMessage> decode_client_message(ByteView bytes, const consensus::Limits& lim) {
    // Longest array: a reply's outputs (or the 20 fields of Status); longest bin:
    // a submitted request, a value, a key, a text; deepest nesting: message ->
    // outputs -> output.
    const Shape shape{"client message", lim.message_bytes_max,
                      std::max<std::size_t>(lim.request_ops_max, 20),
                      std::max<std::size_t>({lim.request_bytes_max, lim.value_bytes_max,
                                             lim.key_bytes_max, kClientTextBytesMax, 64}),
                      3};
    return decode_canonical<ClientMessage>(
        bytes, shape, [&lim](const msgpack::object& o) { return to_message(o, lim); },
        [](const ClientMessage& m) { return encode_client_message(m); });
}

Bytes reply_sign_payload(const Digest& chain_id, const ReplyMsg& reply) {
    Bytes out;
    ByteSink sink{out};
    Packer p(sink);
    put_array(p, 9);
    put_bin(p, chain_id);
    put_uint(p, reply.node);
    put_bin(p, reply.client);
    put_uint(p, reply.nonce);
    put_bin(p, reply.request_digest);
    put_uint(p, static_cast<std::uint8_t>(reply.status));
    put_uint(p, reply.epoch);
    put_uint(p, reply.position);
    put_outputs(p, reply.outputs);
    return out;
}

Bytes local_get_sign_payload(const Digest& chain_id, const LocalGetMsg& get) {
    Bytes out;
    ByteSink sink{out};
    Packer p(sink);
    put_array(p, 3);
    put_bin(p, chain_id);
    put_bin(p, get.client);
    put_bin(p, get.key);
    return out;
}

LocalGetMsg make_local_get(const crypto::SigningKey& client, const Digest& chain_id, Bytes key) {
    LocalGetMsg get;
    get.key = std::move(key);
    get.client = client.public_key();
    get.sig = client.sign(kLocalGetTag, local_get_sign_payload(chain_id, get));
    return get;
}

bool verify_local_get(const Digest& chain_id, const LocalGetMsg& get) {
    return crypto::verify(get.client, kLocalGetTag, local_get_sign_payload(chain_id, get), get.sig);
}

bool replies_match(const ReplyMsg& a, const ReplyMsg& b) {
    return a.request_digest == b.request_digest && a.status == b.status && a.outputs == b.outputs;
}

Signature sign_reply(const crypto::SigningKey& key, const Digest& chain_id, const ReplyMsg& reply) {
    return key.sign(kReplyTag, reply_sign_payload(chain_id, reply));
}

bool verify_reply(const PublicKey& node_key, const Digest& chain_id, const ReplyMsg& reply) {
    return crypto::verify(node_key, kReplyTag, reply_sign_payload(chain_id, reply), reply.sig);
}

// The tables below are indexed by the wire values of the enums.
static_assert(static_cast<int>(ReplyStatus::ExpiresTooFar) == 8);
static_assert(static_cast<int>(ErrorCode::Expired) == 7);

std::string_view to_string(ReplyStatus status) {
    static constexpr std::string_view kNames[] = {
        "unknown",
        "committed",
        "duplicate",
        "malformed",
        "forbidden",
        "skipped: its outputs exceed request_output_bytes_max",
        "skipped: the epoch's outputs reached epoch_output_bytes_max (submit it again)",
        "expired: applied after its expiry epoch (sign it again with a later expiry)",
        "skipped: its expiry lies more than request_expiry_max_epochs ahead"};
    const auto i = static_cast<std::size_t>(status);
    return i < std::size(kNames) ? kNames[i] : kNames[0];
}

std::string_view to_string(ErrorCode code) {
    static constexpr std::string_view kNames[] = {"unknown error", "bad request", "overloaded",
                                                  "not voting",    "halted",      "reply too large",
                                                  "forbidden",     "expired"};
    const auto i = static_cast<std::size_t>(code);
    return i < std::size(kNames) ? kNames[i] : kNames[0];
}

}  // namespace tob::client
