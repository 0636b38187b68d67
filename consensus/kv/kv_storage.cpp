#include "consensus/kv/kv_storage.h"

namespace tob::consensus::kv {

std::optional<Bytes> MemoryKvStorage::get(ByteView key) const {
    auto it = data_.find(Bytes(key.begin(), key.end()));
    if (it == data_.end()) return std::nullopt;
    return it->second;
}

void MemoryKvStorage::commit(const KvBatch& batch) {
    for (const auto& [key, value] : batch) {
        if (value)
            data_[key] = *value;
        else
            data_.erase(key);
    }
    ++commits_;
}

}  // namespace tob::consensus::kv
