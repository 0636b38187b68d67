#pragma once
// Client permissions of the replicated KV store (docs/security.md, "Clients"):
// which client keys may read and write which keys. They come from the cluster
// file's [permissions] table (daemon/config.h parses it) and are therefore covered
// by the chain id: every member enforces the same table, so the check below is
// deterministic and a denied request is skipped on every node alike.
//
// A grant is a list of key prefixes (bytes; "" is every key). An operation is
// permitted when its key starts with one of the client's prefixes for the access
// it needs:
//   GET       read
//   PUT, DEL  write (their output's previous value is returned only when the
//             client may also read the key; otherwise it is withheld as absent)
//   CAS       read and write (its outcome reveals the current value)
// A request is permitted when every one of its operations is; otherwise the
// whole request is skipped with the reason `forbidden` (nothing of it applies).
// With open = true every client key may read and write every key (test networks).

#include <map>
#include <vector>

#include "consensus/messages.h"

namespace tob::consensus::kv {

/// Bounds of the table (checked by the parser).
inline constexpr std::size_t kPermissionClientsMax = 65536;
inline constexpr std::size_t kPermissionPrefixesMax = 256;

struct ClientGrant {
    std::vector<Bytes> read;   // key prefixes the client may read
    std::vector<Bytes> write;  // key prefixes the client may write
    bool operator==(const ClientGrant&) const = default;
};

struct Permissions {
    bool open = false;
    std::map<PublicKey, ClientGrant> clients;  // closed: only these keys have any access

    static Permissions open_to_all() { return Permissions{true, {}}; }

    bool may_read(const PublicKey& client, ByteView key) const;
    bool may_write(const PublicKey& client, ByteView key) const;
    /// True when `client` may perform `op` (the table above).
    bool permits(const PublicKey& client, const Op& op) const;
    /// True when every operation of `request` is permitted to request.client.
    bool permits(const Request& request) const;
    bool operator==(const Permissions&) const = default;
};

}  // namespace tob::consensus::kv
