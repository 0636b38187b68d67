#include "consensus/kv/kv_storage.h"

namespace tob::consensus::kv {

std::optional<Bytes> MemoryKvStorage::get(ByteView key) const {
    auto it = data_.find(Bytes(key.begin(), key.end()));
    if (it == data_.end()) return std::nullopt;
    return it->second;
}

void MemoryKvStorage::commit(KvBatch batch) {
    for (auto& [key, value] : batch) {
        if (value)
            data_[key] = std::move(*value);
        else
            data_.erase(key);
    }
    ++commits_;
}

void MemoryKvStorage::scan(ByteView from, ByteView to, const ScanFn& fn) const {
    const Bytes lo(from.begin(), from.end()), hi(to.begin(), to.end());
    for (auto it = data_.lower_bound(lo); it != data_.end() && it->first < hi; ++it) {
        if (!fn(it->first, it->second)) return;
    }
}

void MemoryKvStorage::erase_range(ByteView from, ByteView to) {
    const Bytes lo(from.begin(), from.end()), hi(to.begin(), to.end());
    data_.erase(data_.lower_bound(lo), data_.lower_bound(hi));
}

void MemoryKvStorage::hold_view(Epoch id, Bytes prefix) {
    View v;
    Bytes hi = prefix;
    hi.back() = static_cast<std::uint8_t>(hi.back() + 1);
    v.data.insert(data_.lower_bound(prefix), data_.lower_bound(hi));
    v.prefix = std::move(prefix);
    views_[id] = std::move(v);
}

void MemoryKvStorage::persist_view(Epoch id, Bytes meta) {
    auto it = views_.find(id);
    if (it != views_.end()) it->second.meta = std::move(meta);
}

void MemoryKvStorage::drop_view(Epoch id) { views_.erase(id); }

std::vector<Epoch> MemoryKvStorage::persisted_views() const {
    std::vector<Epoch> out;
    for (const auto& [id, v] : views_)
        if (v.meta) out.push_back(id);
    return out;
}

std::optional<Bytes> MemoryKvStorage::view_meta(Epoch id) const {
    auto it = views_.find(id);
    if (it == views_.end()) return std::nullopt;
    return it->second.meta;
}

bool MemoryKvStorage::scan_view(Epoch id, std::uint32_t bucket, ByteView after,
                                const ScanFn& fn) const {
    auto it = views_.find(id);
    if (it == views_.end()) return false;
    const View& v = it->second;
    Bytes lo = v.prefix;
    lo.push_back(static_cast<std::uint8_t>(bucket >> 8));
    lo.push_back(static_cast<std::uint8_t>(bucket));
    const std::size_t head = lo.size();
    Bytes hi = lo;
    for (std::size_t i = hi.size(); i-- > v.prefix.size();) {  // the next bucket
        if (++hi[i] != 0) break;
    }
    Bytes start = lo;
    start.insert(start.end(), after.begin(), after.end());
    for (auto e = v.data.lower_bound(start); e != v.data.end() && e->first < hi; ++e) {
        const ByteView key(e->first.data() + head, e->first.size() - head);
        if (!after.empty() && std::equal(key.begin(), key.end(), after.begin(), after.end())) {
            continue;
        }
        if (!fn(key, e->second)) break;
    }
    return true;
}

void MemoryKvStorage::drop_unpersisted() {
    std::erase_if(views_, [](const auto& kv) { return !kv.second.meta; });
}

}  // namespace tob::consensus::kv
