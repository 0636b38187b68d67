// The state root: see consensus/state_root.h.

#include "consensus/state_root.h"

#include <string_view>

namespace tob::consensus {

namespace {

void put_u64(Bytes& out, std::uint64_t v) {
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint64_t get_u64(ByteView in, std::size_t at) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | in[at + i];
    return v;
}

}  // namespace

std::uint32_t state_bucket(ByteView key) {
    const Digest d = crypto::Hasher().field(std::string_view("tobd-bucket-v1")).raw(key).finish();
    return ((std::uint32_t{d[0]} << 8) | d[1]) % kStateBuckets;
}

Digest state_root(const Manifest& manifest) {
    crypto::Hasher h;
    h.field(std::string_view("tobd-state-root-v1")).u64(manifest.size());
    for (const auto& b : manifest) h.raw(b.digest).u64(b.count).u64(b.bytes);
    return h.finish();
}

Bytes encode_manifest(const Manifest& manifest) {
    Bytes out;
    out.reserve(kManifestBytes);
    for (const auto& b : manifest) {
        out.insert(out.end(), b.digest.begin(), b.digest.end());
        put_u64(out, b.count);
        put_u64(out, b.bytes);
    }
    return out;
}

std::optional<Manifest> decode_manifest(ByteView bytes) {
    if (bytes.size() != kManifestBytes) return std::nullopt;
    Manifest m(kStateBuckets);
    for (std::size_t i = 0; i < kStateBuckets; ++i) {
        const std::size_t at = i * 48;
        std::copy(bytes.begin() + at, bytes.begin() + at + 32, m[i].digest.begin());
        m[i].count = get_u64(bytes, at + 32);
        m[i].bytes = get_u64(bytes, at + 40);
    }
    return m;
}

}  // namespace tob::consensus
