#pragma once
// The storage backend under the replicated key-value machine (consensus/kv/kv_machine.h).
//
// The machine reads single keys and writes exactly one batch per applied epoch;
// the batch holds the user writes, the dedup table changes, the stored outputs,
// last_applied and the state digest, so a crash leaves the store either before
// or after the whole epoch, never in between. Backends: MemoryKvStorage (here;
// tests and the simulator) and a RocksDB one in daemon/ (one synced WriteBatch).
//
// KvStorage has no iteration on purpose: the machine never needs to scan, so a
// backend cannot leak its iteration order into the replicated state. Checkpoints
// need more (consensus/kv/rooted_storage.h, which sits between the machine and
// the backend): StateBackend adds ordered scans, range deletion and read views.

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "consensus/types.h"

namespace tob::consensus::kv {

/// Ordered changes: key -> new value, or nullopt to delete the key. Ordered so
/// that a backend applies (and a test inspects) them in one canonical order.
using KvBatch = std::map<Bytes, std::optional<Bytes>>;

/// Moves every change of `from` into `into` (keys and values, no copies); a key
/// in both takes `from`'s value, the later one.
inline void merge_batch(KvBatch& into, KvBatch from) {
    if (into.empty()) {
        into = std::move(from);
        return;
    }
    while (!from.empty()) {
        auto node = from.extract(from.begin());
        auto [it, inserted, rest] = into.insert(std::move(node));
        if (!inserted) it->second = std::move(rest.mapped());
    }
}

class KvStorage {
  public:
    virtual ~KvStorage() = default;
    /// The committed value of `key`, or nullopt if absent.
    virtual std::optional<Bytes> get(ByteView key) const = 0;
    /// Applies every change of `batch` atomically and durably (synced) before
    /// returning. A backend that cannot do so must stop the process: the machine
    /// has no way to continue from a half-written epoch. Taken by value: a backend
    /// keeps the keys and values it is handed without copying them.
    virtual void commit(KvBatch batch) = 0;
};

/// Called for each (key, value) of a scan; return false to stop.
using ScanFn = std::function<bool(ByteView key, ByteView value)>;

/// What RootedStorage needs from the shell's store. Views: a checkpoint's state
/// is read later from a view of the store taken when the checkpoint was applied;
/// in a held view the state lives under `prefix` ‖ bucket (u16 big endian) ‖ key.
class StateBackend : public KvStorage {
  public:
    /// Every key in [from, to) in byte order (including commits not yet durable),
    /// until fn returns false.
    virtual void scan(ByteView from, ByteView to, const ScanFn& fn) const = 0;
    /// Deletes every key in [from, to), after every earlier commit (need not sync).
    virtual void erase_range(ByteView from, ByteView to) = 0;
    /// Keeps a read view of the store as it is now (after every earlier commit).
    virtual void hold_view(Epoch id, Bytes prefix) = 0;
    /// Makes held view `id` durable and servable, with `meta` beside it (the
    /// daemon writes a snapshot file; it may finish later). Survives restarts.
    virtual void persist_view(Epoch id, Bytes meta) = 0;
    virtual void drop_view(Epoch id) = 0;
    /// Views that are durable and servable now, oldest first, and their meta.
    virtual std::vector<Epoch> persisted_views() const = 0;
    virtual std::optional<Bytes> view_meta(Epoch id) const = 0;
    /// The entries of `bucket` in view `id` (held or persisted) whose keys sort
    /// after `after` (all if empty), in key order, keys without prefix and bucket;
    /// false if there is no such view.
    virtual bool scan_view(Epoch id, std::uint32_t bucket, ByteView after,
                           const ScanFn& fn) const = 0;
};

/// An in-memory backend (std::map). "Durable" means: survives the destruction
/// of the KvMachine that wrote it, which is what the simulator's crashes model.
/// Held views are copies of the store; persisted ones survive drop_unpersisted().
class MemoryKvStorage final : public StateBackend {
  public:
    std::optional<Bytes> get(ByteView key) const override;
    void commit(KvBatch batch) override;
    void scan(ByteView from, ByteView to, const ScanFn& fn) const override;
    void erase_range(ByteView from, ByteView to) override;
    void hold_view(Epoch id, Bytes prefix) override;
    void persist_view(Epoch id, Bytes meta) override;
    void drop_view(Epoch id) override;
    std::vector<Epoch> persisted_views() const override;
    std::optional<Bytes> view_meta(Epoch id) const override;
    bool scan_view(Epoch id, std::uint32_t bucket, ByteView after, const ScanFn& fn) const override;

    /// Everything stored, in key order (tests, simulator "reformat").
    const std::map<Bytes, Bytes>& data() const { return data_; }
    /// Loses everything, views included (a wiped data directory).
    void clear() {
        data_.clear();
        views_.clear();
    }
    /// Loses the views that were not persisted (a crash of the process).
    void drop_unpersisted();
    std::uint64_t commits() const { return commits_; }

  private:
    struct View {
        Bytes prefix;
        std::map<Bytes, Bytes> data;  // the keys under prefix, copied
        std::optional<Bytes> meta;    // set once persisted
    };
    std::map<Bytes, Bytes> data_;
    std::map<Epoch, View> views_;
    std::uint64_t commits_ = 0;
};

}  // namespace tob::consensus::kv
