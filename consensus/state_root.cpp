// The state root: see consensus/state_root.h.

#include "consensus/state_root.h"

#include <string_view>

#include "consensus/big_endian.h"

namespace tob::consensus {

using be::get_u64;
using be::put_u64;

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
