// Snapshot transfer messages: see consensus/snapshot_wire.h. Same scheme as
// consensus/codec.cpp (shortest forms out, strict conversion and canonical
// re-encoding in).

#include "consensus/snapshot_wire.h"

#include "consensus/msgpack_wire.h"

namespace tob::consensus {
namespace {

using namespace wire;

void put(Packer& p, const SnapshotRequest& v) {
    put_array(p, 6);
    put_uint(p, static_cast<std::uint8_t>(v.op));
    put_bin(p, v.root);
    put_uint(p, v.first_bucket);
    put_uint(p, v.bucket_count);
    put_bin(p, v.after_key);
    put_uint(p, v.bytes_max);
}

void put(Packer& p, const SnapshotReply& v) {
    put_array(p, 9);
    put_uint(p, static_cast<std::uint8_t>(v.op));
    put_bin(p, v.root);
    put_array(p, v.certificate.size());
    for (const Bytes& c : v.certificate) put_bin(p, c);
    put_bin(p, v.manifest);
    put_uint(p, v.first_bucket);
    put_uint(p, v.last_bucket);
    put_uint(p, v.last_complete ? 1 : 0);
    put_bin(p, v.after_key);
    put_array(p, v.entries.size());
    for (const StateEntry& e : v.entries) {
        put_array(p, 2);
        put_bin(p, e.key);
        put_bin(p, e.value);
    }
}

template <class T>
Bytes encode_value(const T& v) {
    Bytes out;
    ByteSink sink{out};
    Packer p(sink);
    put(p, v);
    return out;
}

Items fields_of(const msgpack::object& o, std::size_t fields, std::string_view what) {
    Items a = array_items(o, what);
    if (a.size() != fields) reject(what, "expected " + std::to_string(fields) + " fields");
    return a;
}

std::uint32_t bucket_field(const msgpack::object& o, std::string_view what) {
    return static_cast<std::uint32_t>(uint_in(o, 0, kStateBuckets - 1, what));
}

SnapshotRequest to_request(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 6, "snapshot request");
    SnapshotRequest v;
    v.op = static_cast<SnapshotOp>(uint_in(f[0], 1, 2, "snapshot request.op"));
    v.root = bin_exact<32>(f[1], "snapshot request.root");
    v.first_bucket = bucket_field(f[2], "snapshot request.first_bucket");
    v.bucket_count = static_cast<std::uint32_t>(
        uint_in(f[3], 0, kStateBuckets, "snapshot request.bucket_count"));
    v.after_key = bin_up_to(f[4], lim.message_bytes_max, "snapshot request.after_key");
    v.bytes_max = uint_of<std::uint32_t>(f[5], "snapshot request.bytes_max");
    if (v.op == SnapshotOp::Offer && (v.root != Digest{} || v.first_bucket || v.bucket_count ||
                                      !v.after_key.empty() || v.bytes_max)) {
        reject("snapshot request", "an offer request carries no chunk fields");
    }
    if (v.op == SnapshotOp::Chunk && v.bucket_count == 0) {
        reject("snapshot request.bucket_count", "a chunk covers at least one bucket");
    }
    return v;
}

SnapshotReply to_reply(const msgpack::object& o, const Limits& lim) {
    Items f = fields_of(o, 9, "snapshot reply");
    SnapshotReply v;
    v.op = static_cast<SnapshotOp>(uint_in(f[0], 1, 2, "snapshot reply.op"));
    v.root = bin_exact<32>(f[1], "snapshot reply.root");
    Items cert = array_items(f[2], "snapshot reply.certificate");
    if (cert.size() > lim.cert_signatures_max) reject("snapshot reply.certificate", "too long");
    for (const auto& c : cert) {
        v.certificate.push_back(
            bin_up_to(c, lim.message_bytes_max, "snapshot reply.certificate[]"));
    }
    v.manifest = bin_up_to(f[3], kManifestBytes, "snapshot reply.manifest");
    v.first_bucket = bucket_field(f[4], "snapshot reply.first_bucket");
    v.last_bucket = bucket_field(f[5], "snapshot reply.last_bucket");
    v.last_complete = uint_in(f[6], 0, 1, "snapshot reply.last_complete") == 1;
    v.after_key = bin_up_to(f[7], lim.message_bytes_max, "snapshot reply.after_key");
    Items entries = array_items(f[8], "snapshot reply.entries");
    v.entries.reserve(entries.size());
    for (const auto& e : entries) {
        Items kv = fields_of(e, 2, "snapshot reply.entries[]");
        v.entries.push_back({bin_up_to(kv[0], lim.message_bytes_max, "entry key"),
                             bin_up_to(kv[1], lim.message_bytes_max, "entry value")});
    }
    if (v.op == SnapshotOp::Offer && (!v.entries.empty() || v.first_bucket || v.last_bucket ||
                                      !v.last_complete || !v.after_key.empty())) {
        reject("snapshot reply", "an offer carries no chunk fields");
    }
    if (v.op == SnapshotOp::Chunk && (!v.certificate.empty() || !v.manifest.empty())) {
        reject("snapshot reply", "a chunk carries no certificate or manifest");
    }
    if (v.last_bucket < v.first_bucket) reject("snapshot reply.last_bucket", "below first_bucket");
    return v;
}

}  // namespace

Bytes encode(const SnapshotRequest& v) { return encode_value(v); }
Bytes encode(const SnapshotReply& v) { return encode_value(v); }

Decoded<SnapshotRequest> decode_snapshot_request(ByteView bytes, const Limits& lim) {
    const Shape shape{"snapshot request", lim.message_bytes_max, 6, lim.message_bytes_max, 1};
    return decode_canonical<SnapshotRequest>(
        bytes, shape, [&](const msgpack::object& o) { return to_request(o, lim); },
        [](const SnapshotRequest& v) { return encode(v); });
}

Decoded<SnapshotReply> decode_snapshot_reply(ByteView bytes, const Limits& lim) {
    // Arrays: the entries (at most one per 12 bytes of the message), the certificate.
    const std::size_t arrays =
        std::max<std::size_t>({lim.message_bytes_max / 12 + 1, lim.cert_signatures_max, 9});
    const Shape shape{"snapshot reply", lim.message_bytes_max, arrays, lim.message_bytes_max, 3};
    return decode_canonical<SnapshotReply>(
        bytes, shape, [&](const msgpack::object& o) { return to_reply(o, lim); },
        [](const SnapshotReply& v) { return encode(v); });
}

}  // namespace tob::consensus
