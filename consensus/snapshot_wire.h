#pragma once
// The two messages of snapshot transfer (docs/protocol.md, "Checkpoints";
// docs/wire-format.md), carried in signed envelopes of kind SnapshotRequest and
// SnapshotReply, with the canonical msgpack rules of consensus/codec.h.
//
//   SnapshotRequest  [op, root bin32, first_bucket, bucket_count, after_key bin, bytes_max]
//     op = 1 (offer): "tell me your latest servable checkpoint"; envelope epoch =
//          the asker's delivered epoch; every other field zero or empty.
//     op = 2 (chunk): envelope epoch = the checkpoint; the entries of buckets
//          first_bucket .. first_bucket + bucket_count − 1 of the checkpoint with
//          this root, the first bucket's only after after_key (empty: from its
//          start), at most bytes_max entry bytes (see chunk_entry_bytes()).
//   SnapshotReply    [op, root bin32, certificate [bin...], manifest bin,
//                     first_bucket, last_bucket, last_complete, after_key bin,
//                     entries [[key bin, value bin]...]]
//     op = 1 (offer): envelope epoch = the checkpoint; certificate = COMMIT
//          envelopes of that epoch carrying `root`, manifest = its encoded
//          manifest (consensus/state_root.h); the chunk fields zero or empty.
//     op = 2 (chunk): envelope epoch = the checkpoint; entries of buckets
//          first_bucket .. last_bucket in (bucket, key) order, every bucket
//          complete except last_bucket when last_complete is false; after_key
//          echoes the request; certificate and manifest empty.

#include <cstdint>
#include <vector>

#include "consensus/codec.h"
#include "consensus/state_root.h"

namespace tob::consensus {

enum class SnapshotOp : std::uint8_t { Offer = 1, Chunk = 2 };

struct SnapshotRequest {
    SnapshotOp op = SnapshotOp::Offer;
    Digest root{};
    std::uint32_t first_bucket = 0;
    std::uint32_t bucket_count = 0;
    Bytes after_key;
    std::uint32_t bytes_max = 0;
    bool operator==(const SnapshotRequest&) const = default;
};

struct SnapshotReply {
    SnapshotOp op = SnapshotOp::Offer;
    Digest root{};
    std::vector<Bytes> certificate;  // offer
    Bytes manifest;                  // offer
    std::uint32_t first_bucket = 0;  // chunk
    std::uint32_t last_bucket = 0;
    bool last_complete = true;
    Bytes after_key;
    std::vector<StateEntry> entries;
    bool operator==(const SnapshotReply&) const = default;
};

/// What one entry costs in a chunk's byte budget: its key and value plus the
/// msgpack framing (at most 12 bytes), so that bytes_max bounds the message.
inline std::uint64_t chunk_entry_bytes(std::size_t key, std::size_t value) {
    return key + value + 12;
}

Bytes encode(const SnapshotRequest& v);
Bytes encode(const SnapshotReply& v);
Decoded<SnapshotRequest> decode_snapshot_request(ByteView bytes, const Limits& limits);
Decoded<SnapshotReply> decode_snapshot_reply(ByteView bytes, const Limits& limits);

}  // namespace tob::consensus
