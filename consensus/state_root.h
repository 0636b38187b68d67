#pragma once
// The state root: one digest over the whole replicated state, signed in COMMIT at
// checkpoint epochs (docs/protocol.md, "Checkpoints"). The state is seen as a set
// of (key, value) entries, whatever the application stores in them (the KV
// machine: user data, the dedup table, stored outputs).
//
//   bucket(key)  = the first two bytes of BLAKE2b-256("tobd-bucket-v1", key), big
//                  endian, modulo kStateBuckets (256): a fixed partition of the keys
//   summary(b)   = (digest, count, bytes) of bucket b: digest = LtHash16 of its
//                  entries (crypto/lthash.h), count = entries, bytes = sum of
//                  |key| + |value|
//   manifest     = the kStateBuckets summaries in bucket order
//   root         = BLAKE2b-256("tobd-state-root-v1", u64 kStateBuckets, for each
//                  bucket: digest, u64 count, u64 bytes)
//
// Why this shape:
//  - Cost per write does not grow with the state: a write changes one bucket's
//    LtHash by removing the old entry and adding the new one (two expansions),
//    and the root is recomputed from the 256 summaries only at checkpoints.
//  - Chunks verify on their own: a snapshot chunk carries whole buckets (or a
//    part of one too big for a message); the receiver recomputes each bucket's
//    summary from its entries and compares it with the manifest, whose hash is
//    the signed root. A lying chunk is caught without trusting the other chunks.
//  - count and bytes in the manifest tell the receiver the exact size of every
//    bucket before it asks, so a peer cannot stream endless entries, and progress
//    (bytes of bytes) is exact.
// The multiset hash must resist an attacker who picks the entries (clients pick
// keys and values; a lying peer picks everything in its chunk), which is why it
// is LtHash (a lattice problem) and not XOR or a sum modulo 2^256.

#include <cstdint>
#include <optional>
#include <vector>

#include "consensus/types.h"
#include "crypto/lthash.h"

namespace tob::consensus {

inline constexpr std::uint32_t kStateBuckets = 256;

/// The bucket of a state key.
std::uint32_t state_bucket(ByteView key);

struct StateEntry {
    Bytes key;
    Bytes value;
    bool operator==(const StateEntry&) const = default;
};

struct BucketSummary {
    Digest digest{};
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
    bool operator==(const BucketSummary&) const = default;
};

/// kStateBuckets summaries, bucket 0 first.
using Manifest = std::vector<BucketSummary>;

/// The root of a manifest (see the header comment).
Digest state_root(const Manifest& manifest);

/// Fixed layout: kStateBuckets × (digest 32 ‖ count u64 BE ‖ bytes u64 BE).
Bytes encode_manifest(const Manifest& manifest);
/// nullopt unless `bytes` has exactly the layout above.
std::optional<Manifest> decode_manifest(ByteView bytes);
inline constexpr std::size_t kManifestBytes = kStateBuckets * (32 + 8 + 8);

/// The bytes an entry counts for in BucketSummary::bytes (and in chunk budgets).
inline std::uint64_t entry_bytes(const StateEntry& e) { return e.key.size() + e.value.size(); }

/// The running hash of one bucket: entries are added as they arrive; matches()
/// compares with the manifest's summary.
struct BucketHash {
    crypto::LtHash16 lanes;
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;

    void add(ByteView key, ByteView value) {
        lanes.add(key, value);
        ++count;
        bytes += key.size() + value.size();
    }
    void remove(ByteView key, ByteView value) {
        lanes.remove(key, value);
        --count;
        bytes -= key.size() + value.size();
    }
    BucketSummary summary() const { return {lanes.digest(), count, bytes}; }
    bool matches(const BucketSummary& s) const {
        return count == s.count && bytes == s.bytes && lanes.digest() == s.digest;
    }
};

}  // namespace tob::consensus
