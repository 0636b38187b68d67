#include "consensus/kv/kv_machine.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>

#include "consensus/big_endian.h"
#include "consensus/codec.h"
#include "crypto/hash.h"

namespace tob::consensus::kv {

using be::put_u32;
using be::put_u64;

namespace {

// Assertions on our own invariants stay on in every build type.
[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "kv_machine: invariant broken: %s\n", what);
    std::abort();
}
#define KV_CHECK(cond)            \
    do {                          \
        if (!(cond)) fail(#cond); \
    } while (0)

constexpr std::string_view kLastAppliedKey = std::string_view("\x00tob/last_applied", 17);
constexpr std::string_view kDigestKey = std::string_view("\x00tob/state_digest", 17);
constexpr std::string_view kDedupPrefix = std::string_view("\x00tob/dedup/", 11);
constexpr std::string_view kOutPrefix = std::string_view("\x00tob/out/", 9);
constexpr std::string_view kExpiryCountPrefix = std::string_view("\x00tob/xqn/", 9);
constexpr std::string_view kExpiryChunkPrefix = std::string_view("\x00tob/xq/", 8);
constexpr std::string_view kSweepCursorKey = std::string_view("\x00tob/xcur", 9);
constexpr std::size_t kEntryBytes = 8 + 128 + 8;
constexpr std::uint8_t kUserPrefix = 0x01;
constexpr std::size_t kCacheEntriesMax = 1u << 16;

Bytes text_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes dedup_key(const PublicKey& client) {
    Bytes k = text_bytes(kDedupPrefix);
    k.insert(k.end(), client.begin(), client.end());
    return k;
}

Bytes out_key(const PublicKey& client, Nonce nonce) {
    Bytes k = text_bytes(kOutPrefix);
    k.insert(k.end(), client.begin(), client.end());
    put_u64(k, nonce);
    return k;
}

Bytes expiry_count_key(Epoch x) {
    Bytes k = text_bytes(kExpiryCountPrefix);
    put_u64(k, x);
    return k;
}

Bytes expiry_chunk_key(Epoch x, std::uint32_t chunk) {
    Bytes k = text_bytes(kExpiryChunkPrefix);
    put_u64(k, x);
    put_u32(k, chunk);
    return k;
}

Bytes encode_outputs(const std::vector<OpOutput>& outputs) {
    Bytes out;
    put_u32(out, static_cast<std::uint32_t>(outputs.size()));
    for (const auto& o : outputs) {
        out.push_back(o.ok ? 1 : 0);
        out.push_back(o.value ? 1 : 0);
        const std::size_t len = o.value ? o.value->size() : 0;
        put_u32(out, static_cast<std::uint32_t>(len));
        if (o.value) out.insert(out.end(), o.value->begin(), o.value->end());
    }
    return out;
}

// Our own storage: anything that does not parse is damage (nullopt), which the
// machine reports (KvMachine::damage) instead of aborting.
std::optional<std::vector<OpOutput>> decode_outputs(ByteView in) {
    std::size_t at = 0;
    if (in.size() < 4) return std::nullopt;
    const std::uint64_t count = be::get(in, 0, 4);
    at = 4;
    std::vector<OpOutput> outputs;
    for (std::uint64_t i = 0; i < count; ++i) {
        if (in.size() - at < 6) return std::nullopt;
        OpOutput o;
        o.ok = in[at] != 0;
        const bool present = in[at + 1] != 0;
        const std::uint64_t len = be::get(in, at + 2, 4);
        at += 6;
        if (in.size() - at < len) return std::nullopt;
        if (present) o.value = Bytes(in.begin() + at, in.begin() + at + len);
        at += len;
        outputs.push_back(std::move(o));
    }
    if (at != in.size()) return std::nullopt;
    return outputs;
}

std::string hex_prefix(const PublicKey& client) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < 8; ++i) {
        s += kHex[client[i] >> 4];
        s += kHex[client[i] & 15];
    }
    return s;
}

bool test_bit(const std::array<std::uint64_t, 16>& bits, std::uint64_t i) {
    return (bits[i / 64] >> (i % 64)) & 1u;
}
void set_bit(std::array<std::uint64_t, 16>& bits, std::uint64_t i) {
    bits[i / 64] |= std::uint64_t{1} << (i % 64);
}

// bits << d (towards higher indices), for 1 <= d.
std::array<std::uint64_t, 16> shift_up(const std::array<std::uint64_t, 16>& bits, std::uint64_t d) {
    std::array<std::uint64_t, 16> out{};
    if (d >= 1024) return out;
    const std::size_t words = d / 64, rem = d % 64;
    for (std::size_t i = 15 + 1; i-- > words;) {
        std::uint64_t v = bits[i - words] << rem;
        if (rem != 0 && i - words >= 1) v |= bits[i - words - 1] >> (64 - rem);
        out[i] = v;
    }
    return out;
}

}  // namespace

KvMachine::KvMachine(KvStorage& storage, const Digest& chain_id, const Limits& limits,
                     Permissions permissions, Epoch expiry_max_epochs)
    : storage_(storage),
      chain_id_(chain_id),
      limits_(limits),
      permissions_(std::move(permissions)),
      expiry_max_epochs_(expiry_max_epochs) {
    reload();
}

void KvMachine::reload() {
    cache_.clear();
    last_applied_ = 0;
    state_digest_ = Digest{};
    if (auto v = storage_.get(crypto::view(kLastAppliedKey))) {
        KV_CHECK(v->size() == 8);
        last_applied_ = be::get(*v, 0, 8);
    }
    if (auto v = storage_.get(crypto::view(kDigestKey))) {
        KV_CHECK(v->size() == state_digest_.size());
        std::copy(v->begin(), v->end(), state_digest_.begin());
    }
    KV_CHECK((last_applied_ == 0) == (state_digest_ == Digest{}));
}

void KvMachine::note_damage(std::string what) const {
    if (!damage_) damage_ = std::move(what);
}

Bytes KvMachine::user_storage_key(ByteView user_key) {
    Bytes k;
    k.reserve(user_key.size() + 1);
    k.push_back(kUserPrefix);
    k.insert(k.end(), user_key.begin(), user_key.end());
    return k;
}

std::optional<KvMachine::DedupEntry> KvMachine::load_entry(const PublicKey& client) const {
    if (auto it = cache_.find(client); it != cache_.end()) return it->second;
    std::optional<DedupEntry> entry;
    if (auto v = storage_.get(dedup_key(client)); v && v->size() != kEntryBytes) {
        // Damaged: read as "no entry" (this node may now apply a duplicate the
        // cluster skips, so it stops voting: damage()).
        note_damage("dedup entry of client " + hex_prefix(client) + "… has " +
                    std::to_string(v->size()) + " bytes, not " + std::to_string(kEntryBytes));
    } else if (v) {
        DedupEntry e;
        e.high = be::get(*v, 0, 8);
        for (std::size_t w = 0; w < 16; ++w) {
            std::uint64_t word = 0;
            for (std::size_t b = 0; b < 8; ++b)
                word |= std::uint64_t{(*v)[8 + w * 8 + b]} << (8 * b);
            e.bits[w] = word;
        }
        e.expiry = be::get(*v, 8 + 128, 8);
        entry = e;
    }
    if (cache_.size() >= kCacheEntriesMax) cache_.clear();
    cache_.emplace(client, entry);
    return entry;
}

KvMachine::Seen KvMachine::check(const std::optional<DedupEntry>& entry, Nonce nonce) {
    if (!entry) return Seen::Fresh;
    if (nonce > entry->high) return Seen::Fresh;
    if (nonce == entry->high) return Seen::Duplicate;
    if (entry->high >= kDedupWindow && nonce <= entry->high - kDedupWindow)
        return Seen::Duplicate;  // too old to tell: treated as committed
    return test_bit(entry->bits, entry->high - 1 - nonce) ? Seen::Duplicate : Seen::Fresh;
}

bool KvMachine::committed(const PublicKey& client, Nonce nonce) const {
    return check(load_entry(client), nonce) == Seen::Duplicate;
}

bool KvMachine::expired(const Request& r) const {
    const Epoch next = epoch_add(last_applied_, 1);
    return r.expires < next || r.expires > epoch_add(next, expiry_max_epochs_);
}

std::optional<Epoch> KvMachine::dedup_expiry(const PublicKey& client) const {
    const auto entry = load_entry(client);
    if (!entry) return std::nullopt;
    return entry->expiry;
}

bool KvMachine::malformed(const Request& r) const {
    if (r.chain_id != chain_id_) return true;
    if (r.ops.empty() || r.ops.size() > limits_.request_ops_max) return true;
    for (const auto& op : r.ops) {
        if (op.key.size() > limits_.key_bytes_max) return true;
        if (op.value.size() > limits_.value_bytes_max) return true;
        if (op.expected && op.expected->size() > limits_.value_bytes_max) return true;
        switch (op.type) {
            case OpType::Put:
                if (op.expected) return true;
                break;
            case OpType::Cas:
                if (op.previous) return true;
                break;
            case OpType::Del:
            case OpType::Get:
                if (op.expected || !op.value.empty()) return true;
                if (op.type == OpType::Get && op.previous) return true;
                break;
            default:
                return true;
        }
    }
    return false;
}

std::optional<Bytes> KvMachine::read(ByteView user_key) const {
    return storage_.get(user_storage_key(user_key));
}

std::optional<std::vector<OpOutput>> KvMachine::stored_outputs(const PublicKey& client,
                                                               Nonce nonce) const {
    auto v = storage_.get(out_key(client, nonce));
    if (!v) return std::nullopt;
    auto outputs = decode_outputs(*v);
    if (!outputs) {
        note_damage("stored outputs of client " + hex_prefix(client) + "… nonce " +
                    std::to_string(nonce) + " do not parse");
    }
    return outputs;
}

struct KvMachine::EpochWork {
    std::map<Bytes, std::optional<Bytes>> writes;  // user key (unprefixed) -> value
    std::map<PublicKey, std::optional<DedupEntry>> entries;
    std::set<PublicKey> changed;  // clients whose dedup entry this epoch changed
    std::map<std::pair<PublicKey, Nonce>, std::vector<OpOutput>> new_outputs;
    std::set<std::pair<PublicKey, Nonce>> evicted;  // stored outputs that leave the window
    std::uint64_t output_bytes = 0;                 // outputs of the epoch so far
    // Stored outputs of the entries the sweep dropped (deleted before this
    // epoch's own outputs are written: a dropped client may commit again).
    std::set<std::pair<PublicKey, Nonce>> dropped_outputs;
    std::map<Epoch, std::vector<PublicKey>> expiry_appends;  // X -> clients whose x_c became X
    KvBatch index;                                           // expiry lists and the sweep cursor
    Epoch epoch = 0;
};

namespace {

// What one output adds to the caps: its value and kOutputOverhead.
std::uint64_t output_bytes(const OpOutput& o) {
    return kOutputOverhead + (o.value ? o.value->size() : 0);
}

}  // namespace

EpochResult KvMachine::apply_epoch(Epoch epoch, const Digest& output_digest,
                                   const std::vector<Request>& ordered) {
    return apply_epoch_with_digests(epoch, output_digest, ordered, digests_of(ordered));
}

EpochResult KvMachine::apply_epoch_with_digests(Epoch epoch, const Digest& output_digest,
                                                const std::vector<Request>& ordered,
                                                const std::vector<Digest>& digests) {
    KV_CHECK(epoch == last_applied_ + 1);
    KV_CHECK(digests.size() == ordered.size());
    EpochWork work;
    EpochResult result;
    result.epoch = epoch;
    result.output_digest = output_digest;
    result.results.reserve(ordered.size());
    sweep_expired(work, epoch, kSweepUnitsBase + 2 * std::uint64_t{ordered.size()});
    work.epoch = epoch;
    for (std::size_t i = 0; i < ordered.size(); ++i) {
        result.results.push_back(
            apply_request(work, ordered[i], digests[i], static_cast<std::uint32_t>(i)));
    }
    for (const auto& id : work.evicted) work.new_outputs.erase(id);
    write_expiry_lists(work);

    const Digest next_digest = next_state_digest(work, result);
    storage_.commit(epoch_batch(work, epoch, next_digest));

    for (const auto& client : work.changed) cache_[client] = work.entries.at(client);
    last_applied_ = epoch;
    state_digest_ = next_digest;
    result.state_digest = next_digest;
    return result;
}

RequestResult KvMachine::apply_request(EpochWork& work, const Request& req, const Digest& digest,
                                       std::uint32_t position) const {
    RequestResult r;
    r.client = req.client;
    r.nonce = req.nonce;
    r.request_digest = digest;
    r.position = position;
    if (malformed(req)) {
        r.malformed = true;
        r.skip = Skip::Invalid;
        return r;
    }
    std::optional<DedupEntry>& entry = work_entry(work, req.client);
    if (check(entry, req.nonce) == Seen::Duplicate) {
        r.duplicate = true;
        const bool in_window = entry->high < kDedupWindow || req.nonce > entry->high - kDedupWindow;
        if (in_window) {
            const auto id = std::make_pair(req.client, req.nonce);
            if (auto out = work.new_outputs.find(id); out != work.new_outputs.end()) {
                r.outputs = out->second;
            } else if (auto stored = stored_outputs(req.client, req.nonce)) {
                r.outputs = std::move(*stored);
            }
        }
        // A copy of stored outputs counts towards the epoch's cap too; past it the
        // duplicate is answered without them (as when they left the window).
        std::uint64_t bytes = 0;
        for (const auto& o : r.outputs) bytes += output_bytes(o);
        if (work.output_bytes + bytes > limits_.epoch_output_bytes_max) {
            r.outputs.clear();
        } else {
            work.output_bytes += bytes;
        }
        return r;
    }
    if (req.expires < work.epoch || req.expires > epoch_add(work.epoch, expiry_max_epochs_)) {
        r.malformed = true;
        r.skip = req.expires < work.epoch ? Skip::Expired : Skip::ExpiresTooFar;
        return r;  // the nonce kept: the client may sign it again with a valid expiry
    }
    if (!permissions_.permits(req)) {
        r.forbidden = true;
        return r;
    }
    // The ops run against a layer of their own, kept only when the outputs fit
    // both caps; the first op past a cap stops the run, so at most one value
    // beyond the cap is ever held.
    const std::uint64_t epoch_room = limits_.epoch_output_bytes_max > work.output_bytes
                                         ? limits_.epoch_output_bytes_max - work.output_bytes
                                         : 0;
    std::map<Bytes, std::optional<Bytes>> mine;
    std::uint64_t bytes = 0;
    auto outputs =
        apply_ops(work, req, mine,
                  std::min<std::uint64_t>(limits_.request_output_bytes_max, epoch_room), bytes);
    if (!outputs) {
        r.malformed = true;
        r.skip = bytes > limits_.request_output_bytes_max ? Skip::OutputsOver : Skip::EpochFull;
        return r;  // like any malformed request: nothing written, the nonce kept
    }
    r.outputs = std::move(*outputs);
    work.output_bytes += bytes;
    merge_batch(work.writes, std::move(mine));  // a later value of a key replaces the earlier
    const bool had_entry = entry.has_value();
    mark_nonce(work, req.client, entry, req.nonce);
    if (!had_entry || req.expires > entry->expiry) {
        entry->expiry = req.expires;
        work.expiry_appends[req.expires].push_back(req.client);
    }
    work.changed.insert(req.client);
    work.new_outputs[{req.client, req.nonce}] = r.outputs;
    return r;
}

std::optional<std::vector<OpOutput>> KvMachine::apply_ops(
    const EpochWork& work, const Request& request, std::map<Bytes, std::optional<Bytes>>& mine,
    std::uint64_t cap, std::uint64_t& bytes) const {
    const std::vector<Op>& ops = request.ops;
    std::vector<OpOutput> outputs;
    outputs.reserve(ops.size());
    for (const auto& op : ops) {
        std::optional<Bytes> current;
        if (auto it = mine.find(op.key); it != mine.end()) {
            current = it->second;
        } else if (auto w = work.writes.find(op.key); w != work.writes.end()) {
            current = w->second;
        } else {
            current = storage_.get(user_storage_key(op.key));
        }
        OpOutput out;
        bool keep = true;  // whether the output carries `current`
        switch (op.type) {
            case OpType::Put:
                mine[op.key] = op.value;
                // The previous value only when asked, and never one the client may not read.
                keep = op.previous && permissions_.may_read(request.client, op.key);
                break;
            case OpType::Del:
                mine[op.key] = std::nullopt;
                keep = op.previous && permissions_.may_read(request.client, op.key);
                break;
            case OpType::Cas:
                out.ok = current == op.expected;
                if (out.ok) mine[op.key] = op.value;
                break;
            case OpType::Get:
                break;
        }
        if (keep) out.value = std::move(current);
        bytes += output_bytes(out);
        if (bytes > cap) return std::nullopt;
        outputs.push_back(std::move(out));
    }
    return outputs;
}

void KvMachine::mark_nonce(EpochWork& work, const PublicKey& client,
                           std::optional<DedupEntry>& entry, Nonce n) {
    if (!entry) {
        entry = DedupEntry{n, {}};
        return;
    }
    if (n <= entry->high) {
        set_bit(entry->bits, entry->high - 1 - n);
        return;
    }
    const std::uint64_t d = n - entry->high;
    const Nonce old_high = entry->high;
    // Committed nonces m with m <= n - 1024 leave the window: their stored
    // outputs are evicted.
    if (d >= kDedupWindow) work.evicted.insert({client, old_high});
    const std::uint64_t first = d >= 1023 ? 0 : 1023 - d;
    for (std::uint64_t b = first; b < 1023; ++b) {
        if (test_bit(entry->bits, b)) work.evicted.insert({client, old_high - 1 - b});
    }
    auto bits = shift_up(entry->bits, d);
    if (d - 1 < 1023) set_bit(bits, d - 1);  // the old high
    bits[15] &= ~(std::uint64_t{1} << 63);   // bit 1023 is never used
    entry->bits = bits;
    entry->high = n;
}

Digest KvMachine::next_state_digest(const EpochWork& work, const EpochResult& result) const {
    crypto::Hasher wh;
    wh.field(std::string_view("tobd-writes-v1")).u64(work.writes.size());
    for (const auto& [key, value] : work.writes) {
        wh.field(key).u64(value ? 1 : 0);
        wh.field(value ? ByteView(*value) : ByteView());
    }
    const Digest write_digest = wh.finish();

    crypto::Hasher oh;
    oh.field(std::string_view("tobd-outputs-v1")).u64(result.results.size());
    for (const auto& r : result.results) {
        oh.raw(r.client).u64(r.nonce).raw(r.request_digest).u64(r.position);
        const std::uint64_t skip = r.malformed ? 1 : r.forbidden ? 2 : 0;
        oh.u64(r.duplicate ? 1 : 0).u64(skip).u64(r.outputs.size());
        for (const auto& o : r.outputs) {
            oh.u64(o.ok ? 1 : 0).u64(o.value ? 1 : 0);
            oh.field(o.value ? ByteView(*o.value) : ByteView());
        }
    }
    const Digest outputs_digest = oh.finish();

    crypto::Hasher sh;
    sh.field(std::string_view("tobd-state-v1"))
        .raw(state_digest_)
        .raw(result.output_digest)
        .raw(write_digest)
        .raw(outputs_digest);
    return sh.finish();
}

KvBatch KvMachine::epoch_batch(const EpochWork& work, Epoch epoch, const Digest& next_digest) {
    // One batch: user writes, dedup entries, outputs, last_applied, digest.
    KvBatch batch;
    for (const auto& [key, value] : work.writes) batch[user_storage_key(key)] = value;
    for (const auto& client : work.changed) {
        const auto& e = work.entries.at(client);
        if (!e) {  // dropped by the sweep
            batch[dedup_key(client)] = std::nullopt;
            continue;
        }
        Bytes v;
        v.reserve(kEntryBytes);
        put_u64(v, e->high);
        for (std::size_t w = 0; w < 16; ++w) {
            for (std::size_t b = 0; b < 8; ++b) {
                v.push_back(static_cast<std::uint8_t>(e->bits[w] >> (8 * b)));
            }
        }
        put_u64(v, e->expiry);
        batch[dedup_key(client)] = std::move(v);
    }
    for (const auto& id : work.dropped_outputs) batch[out_key(id.first, id.second)] = std::nullopt;
    for (const auto& [key, value] : work.index) batch[key] = value;
    for (const auto& [client, nonce] : work.evicted) batch[out_key(client, nonce)] = std::nullopt;
    for (const auto& [id, outputs] : work.new_outputs) {
        batch[out_key(id.first, id.second)] = encode_outputs(outputs);
    }
    Bytes applied;
    put_u64(applied, epoch);
    batch[text_bytes(kLastAppliedKey)] = std::move(applied);
    batch[text_bytes(kDigestKey)] = Bytes(next_digest.begin(), next_digest.end());
    return batch;
}

std::optional<KvMachine::DedupEntry>& KvMachine::work_entry(EpochWork& work,
                                                            const PublicKey& client) const {
    auto it = work.entries.find(client);
    if (it == work.entries.end()) it = work.entries.emplace(client, load_entry(client)).first;
    return it->second;
}

void KvMachine::sweep_expired(EpochWork& work, Epoch epoch, std::uint64_t budget) const {
    // The cursor: the next expiry epoch X to sweep and the next chunk of its list.
    // A store without one starts at the epoch before this one (nothing older can
    // be listed: the first epoch that lists a client also writes the cursor).
    Epoch x = epoch - 1;
    std::uint64_t chunk = 0;
    if (auto v = storage_.get(text_bytes(kSweepCursorKey)); v && v->size() == 12) {
        x = be::get(*v, 0, 8);
        chunk = be::get(*v, 8, 4);
    } else if (v) {
        note_damage("the expiry sweep cursor has " + std::to_string(v->size()) + " bytes, not 12");
    }
    std::uint64_t spent = 0;
    while (x < epoch && spent < budget) {
        std::uint64_t chunks = 0;
        if (auto v = storage_.get(expiry_count_key(x)); v && v->size() == 4)
            chunks = be::get(*v, 0, 4);
        if (chunk < chunks) {
            const Bytes key = expiry_chunk_key(x, static_cast<std::uint32_t>(chunk));
            const auto list = storage_.get(key);
            if (!list || list->size() % 32 != 0) note_damage("an expiry list chunk is damaged");
            for (std::size_t at = 0; list && at + 32 <= list->size(); at += 32) {
                PublicKey client;
                std::copy(list->begin() + at, list->begin() + at + 32, client.begin());
                ++spent;
                std::optional<DedupEntry>& entry = work_entry(work, client);
                if (!entry || entry->expiry != x) continue;  // dropped, or listed again later
                const Nonce high = entry->high;
                work.dropped_outputs.insert({client, high});
                for (std::uint64_t b = 0; b < kDedupWindow - 1 && b < high; ++b) {
                    if (test_bit(entry->bits, b))
                        work.dropped_outputs.insert({client, high - 1 - b});
                }
                entry.reset();
                work.changed.insert(client);
            }
            work.index[key] = std::nullopt;
            ++chunk;
            continue;
        }
        if (chunks > 0) work.index[expiry_count_key(x)] = std::nullopt;
        ++x;
        chunk = 0;
        ++spent;
    }
    Bytes cursor;
    put_u64(cursor, x);
    put_u32(cursor, static_cast<std::uint32_t>(chunk));
    work.index[text_bytes(kSweepCursorKey)] = std::move(cursor);
}

void KvMachine::write_expiry_lists(EpochWork& work) const {
    for (const auto& [x, clients] : work.expiry_appends) {
        std::uint32_t chunks = 0;
        if (auto v = storage_.get(expiry_count_key(x)); v && v->size() == 4)
            chunks = static_cast<std::uint32_t>(be::get(*v, 0, 4));
        Bytes tail;  // the last chunk, while it has room
        if (chunks > 0) {
            if (auto v = storage_.get(expiry_chunk_key(x, chunks - 1));
                v && v->size() < kExpiryChunkClients * 32) {
                tail = std::move(*v);
                --chunks;
            }
        }
        for (const auto& client : clients) {
            tail.insert(tail.end(), client.begin(), client.end());
            if (tail.size() == kExpiryChunkClients * 32) {
                work.index[expiry_chunk_key(x, chunks++)] = std::move(tail);
                tail.clear();
            }
        }
        if (!tail.empty()) work.index[expiry_chunk_key(x, chunks++)] = std::move(tail);
        Bytes count;
        put_u32(count, chunks);
        work.index[expiry_count_key(x)] = std::move(count);
    }
}

}  // namespace tob::consensus::kv
