// RootedStorage: see consensus/kv/rooted_storage.h for the layout and the costs.

#include "consensus/kv/rooted_storage.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "consensus/big_endian.h"

namespace tob::consensus::kv {

using be::get_u64;
using be::put_u64;

namespace {

constexpr std::string_view kLastApplied = std::string_view("\x00tob/last_applied", 17);
constexpr std::string_view kStateDigest = std::string_view("\x00tob/state_digest", 17);
constexpr std::string_view kLive = std::string_view("\x00tobroot/live", 13);
constexpr std::string_view kAt = std::string_view("\x00tobroot/at", 11);
constexpr std::string_view kDirty = std::string_view("\x00tobroot/dirty", 14);
constexpr std::string_view kLanes = std::string_view("\x00tobroot/lanes/", 15);
// The machine's keys before checkpoints: user data under 0x01, the rest under "\x00tob/".
constexpr std::string_view kOldDedup = std::string_view("\x00tob/dedup/", 11);
constexpr std::string_view kOldOut = std::string_view("\x00tob/out/", 9);
constexpr std::size_t kReadCacheMax = 1u << 16;
constexpr std::size_t kLanesValueBytes = crypto::LtHash16::kBytes + 16;

[[noreturn]] void corrupt(const char* what) {
    std::fprintf(stderr, "rooted_storage: the stored state root is corrupt: %s\n", what);
    std::abort();
}

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes bucket_prefix(std::uint8_t prefix, std::uint32_t b) {
    return Bytes{prefix, static_cast<std::uint8_t>(b >> 8), static_cast<std::uint8_t>(b)};
}

Bytes state_key(std::uint8_t prefix, std::uint32_t b, ByteView key) {
    Bytes k(3 + key.size());
    k[0] = prefix;
    k[1] = static_cast<std::uint8_t>(b >> 8);
    k[2] = static_cast<std::uint8_t>(b);
    std::copy(key.begin(), key.end(), k.begin() + 3);
    return k;
}

Bytes lanes_key(std::uint32_t b) {
    Bytes k = bytes_of(kLanes);
    k.push_back(static_cast<std::uint8_t>(b >> 8));
    k.push_back(static_cast<std::uint8_t>(b));
    return k;
}

Bytes lanes_value(const BucketHash& h) {
    const auto lanes = h.lanes.bytes();
    Bytes v(lanes.begin(), lanes.end());
    put_u64(v, h.count);
    put_u64(v, h.bytes);
    return v;
}

bool starts_with(ByteView key, std::string_view prefix) {
    return key.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), key.begin(),
                      [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; });
}

}  // namespace

bool RootedStorage::is_chain_metadata(ByteView key) {
    auto eq = [&](std::string_view k) { return starts_with(key, k) && key.size() == k.size(); };
    return eq(kLastApplied) || eq(kStateDigest);
}

RootedStorage::RootedStorage(StateBackend& backend)
    : backend_(backend),
      buckets_(kStateBuckets),
      dirty_(kStateBuckets, false),
      digests_(kStateBuckets) {
    migrate();
    load();
}

// ---- opening --------------------------------------------------------------------------

void RootedStorage::migrate() {
    // Keys of the old layout, in batches (each one atomic; a crash midway leaves
    // the rest for the next open).
    auto old_key = [](ByteView k) {
        return (!k.empty() && k[0] == 0x01) || starts_with(k, kOldDedup) || starts_with(k, kOldOut);
    };
    const std::vector<std::pair<Bytes, Bytes>> ranges = {
        {Bytes{0x01}, Bytes{0x02}},
        {bytes_of(kOldDedup), Bytes{0x00, 't', 'o', 'b', '/', 'd', 'e', 'd', 'u', 'p', '0'}},
        {bytes_of(kOldOut), Bytes{0x00, 't', 'o', 'b', '/', 'o', 'u', 't', '0'}}};
    const std::uint8_t live = [&] {
        auto v = backend_.get(bytes_of(kLive));
        return v && v->size() == 1 ? (*v)[0] : std::uint8_t{0x10};
    }();
    for (const auto& [lo, hi] : ranges) {
        for (bool more = true; more;) {
            KvBatch batch;
            backend_.scan(lo, hi, [&](ByteView k, ByteView v) {
                if (!old_key(k)) return true;
                batch[state_key(live, state_bucket(k), k)] = Bytes(v.begin(), v.end());
                batch[Bytes(k.begin(), k.end())] = std::nullopt;
                return batch.size() < 8192;
            });
            more = batch.size() >= 8192;
            if (batch.empty()) break;
            migrated_ += batch.size() / 2;
            batch[bytes_of(kAt)] = std::nullopt;  // the lanes must be rebuilt
            backend_.commit(std::move(batch));
        }
    }
}

BucketHash RootedStorage::scan_bucket(std::uint8_t prefix, std::uint32_t b) const {
    BucketHash h;
    const Bytes lo = bucket_prefix(prefix, b);
    const Bytes hi = b + 1 < kStateBuckets ? bucket_prefix(prefix, b + 1)
                                           : Bytes{static_cast<std::uint8_t>(prefix + 1)};
    backend_.scan(lo, hi, [&](ByteView k, ByteView v) {
        h.add(k.subspan(3), v);
        return true;
    });
    return h;
}

void RootedStorage::load() {
    if (auto v = backend_.get(bytes_of(kLive))) {
        if (v->size() != 1 || ((*v)[0] != 0x10 && (*v)[0] != 0x20)) corrupt("live prefix");
        live_ = (*v)[0];
    }
    backend_.erase_range(Bytes{staging()}, Bytes{static_cast<std::uint8_t>(staging() + 1)});
    const bool have_lanes = backend_.get(bytes_of(kAt)).has_value();
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        if (!have_lanes) {
            dirty_[b] = true;
            continue;
        }
        if (auto v = backend_.get(lanes_key(b))) {
            if (v->size() != kLanesValueBytes) corrupt("lanes value size");
            buckets_[b].lanes.load(ByteView(v->data(), crypto::LtHash16::kBytes));
            buckets_[b].count = get_u64(*v, crypto::LtHash16::kBytes);
            buckets_[b].bytes = get_u64(*v, crypto::LtHash16::kBytes + 8);
        }
    }
    if (auto v = backend_.get(bytes_of(kDirty))) {
        if (v->size() != kStateBuckets / 8) corrupt("dirty bitmap size");
        for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
            if (((*v)[b / 8] >> (b % 8)) & 1) dirty_[b] = true;
        }
    }
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        if (!dirty_[b]) continue;
        buckets_[b] = scan_bucket(live_, b);
        ++rescanned_;
    }
}

// ---- the machine's view ------------------------------------------------------------------

std::optional<Bytes> RootedStorage::get(ByteView key) const {
    if (is_chain_metadata(key)) return backend_.get(key);
    Bytes logical(key.begin(), key.end());
    if (auto it = read_cache_.find(logical); it != read_cache_.end()) return it->second.value;
    const std::uint32_t b = state_bucket(key);
    auto v = backend_.get(state_key(live_, b, key));
    if (read_cache_.size() >= kReadCacheMax) read_cache_.clear();
    read_cache_.emplace(std::move(logical), Read{v, b});
    return v;
}

void RootedStorage::mark(std::uint32_t b, bool& bitmap_changed) {
    digests_[b].reset();
    if (!dirty_[b]) {
        dirty_[b] = true;
        bitmap_changed = true;
    }
}

Bytes RootedStorage::dirty_bitmap() const {
    Bytes out(kStateBuckets / 8, 0);
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        if (dirty_[b]) out[b / 8] |= static_cast<std::uint8_t>(1u << (b % 8));
    }
    return out;
}

void RootedStorage::commit(KvBatch batch) {
    KvBatch out;
    bool bitmap_changed = false;
    for (auto& [key, value] : batch) {
        if (is_chain_metadata(key)) {
            out[key] = std::move(value);
            continue;
        }
        std::uint32_t b = 0;
        std::optional<Bytes> old;
        if (auto it = read_cache_.find(key); it != read_cache_.end()) {
            b = it->second.bucket;
            old = std::move(it->second.value);  // the cache is cleared below
        } else {
            b = state_bucket(key);
            old = backend_.get(state_key(live_, b, key));
        }
        if (old == value) continue;
        if (old) buckets_[b].remove(key, *old);
        if (value) buckets_[b].add(key, *value);
        mark(b, bitmap_changed);
        out[state_key(live_, b, key)] = std::move(value);
    }
    if (bitmap_changed) out[bytes_of(kDirty)] = dirty_bitmap();
    read_cache_.clear();
    backend_.commit(std::move(out));
}

// ---- checkpoints ------------------------------------------------------------------------

Manifest RootedStorage::manifest() const {
    Manifest m(kStateBuckets);
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        if (!digests_[b]) digests_[b] = buckets_[b].lanes.digest();
        m[b] = {*digests_[b], buckets_[b].count, buckets_[b].bytes};
    }
    return m;
}

Digest RootedStorage::take_checkpoint(Epoch e) {
    const Manifest m = manifest();
    KvBatch out;
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        if (!dirty_[b]) continue;
        out[lanes_key(b)] = lanes_value(buckets_[b]);
        dirty_[b] = false;
    }
    Bytes at;
    put_u64(at, e);
    out[bytes_of(kAt)] = std::move(at);
    out[bytes_of(kDirty)] = std::nullopt;
    backend_.commit(std::move(out));
    backend_.hold_view(e, Bytes{live_});
    HeldCheckpoint h;
    h.epoch = e;
    h.root = state_root(m);
    h.manifest = encode_manifest(m);
    taken_[e] = h;
    return h.root;
}

void RootedStorage::checkpoint_stable(Epoch e, const std::vector<Bytes>& certificate) {
    auto it = taken_.find(e);
    if (it == taken_.end()) return;  // not taken here (or taken before a restart)
    it->second.certificate = certificate;
    backend_.persist_view(e, encode_held(it->second));
    taken_.erase(it);
}

void RootedStorage::release_checkpoint(Epoch e) {
    taken_.erase(e);
    held_cache_.erase(e);
    backend_.drop_view(e);
}

std::vector<Epoch> RootedStorage::servable() const { return backend_.persisted_views(); }

std::optional<HeldCheckpoint> RootedStorage::held(Epoch e) const {
    if (auto it = held_cache_.find(e); it != held_cache_.end()) return it->second;
    auto meta = backend_.view_meta(e);
    if (!meta) return std::nullopt;
    auto h = decode_held(*meta);
    if (!h || h->epoch != e) return std::nullopt;
    held_cache_[e] = *h;
    return h;
}

std::optional<ChunkData> RootedStorage::read_chunk(Epoch e, std::uint32_t first,
                                                   std::uint32_t count, const Bytes& after_key,
                                                   std::uint64_t bytes_max) const {
    if (first >= kStateBuckets || count == 0 || !held(e)) return std::nullopt;
    ChunkData c;
    c.first_bucket = c.last_bucket = first;
    std::uint64_t used = 0;
    const std::uint32_t end = std::min(kStateBuckets, first + count);
    for (std::uint32_t b = first; b < end; ++b) {
        bool stopped = false;
        std::size_t in_bucket = 0;
        const bool ok = backend_.scan_view(
            e, b, b == first ? ByteView(after_key) : ByteView(), [&](ByteView k, ByteView v) {
                const std::uint64_t cost = chunk_entry_bytes(k.size(), v.size());
                if (!c.entries.empty() && used + cost > bytes_max) {
                    stopped = true;
                    return false;
                }
                c.entries.push_back({Bytes(k.begin(), k.end()), Bytes(v.begin(), v.end())});
                used += cost;
                ++in_bucket;
                return true;
            });
        if (!ok) return std::nullopt;
        if (stopped && in_bucket == 0) break;  // bucket b starts in the next chunk
        c.last_bucket = b;
        if (stopped) {
            c.last_complete = false;
            break;
        }
    }
    return c;
}

// ---- installing --------------------------------------------------------------------------

void RootedStorage::stage_begin() {
    backend_.erase_range(Bytes{staging()}, Bytes{static_cast<std::uint8_t>(staging() + 1)});
}

void RootedStorage::stage(const std::vector<StateEntry>& entries) {
    KvBatch out;
    for (const auto& e : entries) out[state_key(staging(), state_bucket(e.key), e.key)] = e.value;
    backend_.commit(std::move(out));
}

void RootedStorage::stage_discard(std::uint32_t bucket) {
    const Bytes lo = bucket_prefix(staging(), bucket);
    const Bytes hi = bucket + 1 < kStateBuckets ? bucket_prefix(staging(), bucket + 1)
                                                : Bytes{static_cast<std::uint8_t>(staging() + 1)};
    backend_.erase_range(lo, hi);
}

void RootedStorage::install(Epoch e, const Digest& state_digest,
                            const std::vector<BucketHash>& buckets) {
    const std::uint8_t old = live_;
    KvBatch out;
    out[bytes_of(kLive)] = Bytes{staging()};
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) out[lanes_key(b)] = lanes_value(buckets[b]);
    Bytes at;
    put_u64(at, e);
    out[bytes_of(kAt)] = at;
    out[bytes_of(kDirty)] = std::nullopt;
    out[bytes_of(kLastApplied)] = at;
    out[bytes_of(kStateDigest)] = Bytes(state_digest.begin(), state_digest.end());
    backend_.commit(std::move(out));  // the switch: one atomic batch
    live_ = staging();
    buckets_ = buckets;
    dirty_.assign(kStateBuckets, false);
    digests_.assign(kStateBuckets, std::nullopt);
    read_cache_.clear();
    backend_.erase_range(Bytes{old}, Bytes{static_cast<std::uint8_t>(old + 1)});
    backend_.hold_view(e, Bytes{live_});
    const Manifest m = manifest();
    HeldCheckpoint h;
    h.epoch = e;
    h.root = state_root(m);
    h.manifest = encode_manifest(m);
    taken_[e] = h;
}

void RootedStorage::for_each_entry(const ScanFn& fn) const {
    backend_.scan(Bytes{live_}, Bytes{static_cast<std::uint8_t>(live_ + 1)},
                  [&](ByteView k, ByteView v) { return fn(k.subspan(3), v); });
}

}  // namespace tob::consensus::kv
