#include "consensus/kv/permissions.h"

#include <algorithm>

namespace tob::consensus::kv {

namespace {

bool has_prefix(const std::vector<Bytes>& prefixes, ByteView key) {
    return std::any_of(prefixes.begin(), prefixes.end(), [&key](const Bytes& p) {
        return p.size() <= key.size() && std::equal(p.begin(), p.end(), key.begin());
    });
}

}  // namespace

bool Permissions::may_read(const PublicKey& client, ByteView key) const {
    if (open) return true;
    auto it = clients.find(client);
    return it != clients.end() && has_prefix(it->second.read, key);
}

bool Permissions::may_write(const PublicKey& client, ByteView key) const {
    if (open) return true;
    auto it = clients.find(client);
    return it != clients.end() && has_prefix(it->second.write, key);
}

bool Permissions::permits(const PublicKey& client, const Op& op) const {
    switch (op.type) {
        case OpType::Get:
            return may_read(client, op.key);
        case OpType::Put:
        case OpType::Del:
            return may_write(client, op.key);
        case OpType::Cas:
            return may_read(client, op.key) && may_write(client, op.key);
    }
    return false;
}

bool Permissions::permits(const Request& request) const {
    if (open) return true;
    return std::all_of(request.ops.begin(), request.ops.end(),
                       [&](const Op& op) { return permits(request.client, op); });
}

}  // namespace tob::consensus::kv
