#pragma once
// The storage backend under the replicated key-value machine (consensus/kv/kv_machine.h).
//
// The machine reads single keys and writes exactly one batch per applied epoch;
// the batch holds the user writes, the dedup table changes, the stored outputs,
// last_applied and the state digest, so a crash leaves the store either before
// or after the whole epoch, never in between. Backends: MemoryKvStorage (here;
// tests and the simulator) and a RocksDB one in daemon/ (one synced WriteBatch).
//
// The interface has no iteration on purpose: the machine never needs to scan,
// so a backend cannot leak its iteration order into the replicated state.

#include <map>
#include <optional>

#include "consensus/types.h"

namespace tob::consensus::kv {

/// Ordered changes: key -> new value, or nullopt to delete the key. Ordered so
/// that a backend applies (and a test inspects) them in one canonical order.
using KvBatch = std::map<Bytes, std::optional<Bytes>>;

class KvStorage {
  public:
    virtual ~KvStorage() = default;
    /// The committed value of `key`, or nullopt if absent.
    virtual std::optional<Bytes> get(ByteView key) const = 0;
    /// Applies every change of `batch` atomically and durably (synced) before
    /// returning. A backend that cannot do so must stop the process: the machine
    /// has no way to continue from a half-written epoch.
    virtual void commit(const KvBatch& batch) = 0;
};

/// An in-memory backend (std::map). "Durable" means: survives the destruction
/// of the KvMachine that wrote it, which is what the simulator's crashes model.
class MemoryKvStorage final : public KvStorage {
  public:
    std::optional<Bytes> get(ByteView key) const override;
    void commit(const KvBatch& batch) override;

    /// Everything stored, in key order (tests, simulator "reformat").
    const std::map<Bytes, Bytes>& data() const { return data_; }
    void clear() { data_.clear(); }
    std::uint64_t commits() const { return commits_; }

  private:
    std::map<Bytes, Bytes> data_;
    std::uint64_t commits_ = 0;
};

}  // namespace tob::consensus::kv
