#pragma once
// Who may use a node's client endpoint and its local reads (docs/security.md),
// and the transport options that follow from the node's config and keys. Kept
// apart from the event loop (daemon/node.cpp), which calls these.

#include <optional>
#include <set>
#include <string>

#include "cli/client/protocol.h"
#include "daemon/config.h"
#include "daemon/node.h"
#include "daemon/transport.h"

namespace tob::daemon {

/// The Curve keys the client ROUTER admits under a closed policy: those derived
/// from the Ed25519 keys of [[permissions.client]] (crypto/curve.h).
std::set<crypto::CurvePublicKey> permitted_client_curve_keys(
    const consensus::kv::Permissions& permissions);

/// Why a LocalGet must not be answered, or nullopt. It is answered only when its
/// signature verifies, its client may read the key, and (with Curve) it arrived
/// on a connection authenticated with that client's own Curve key, so a captured
/// query replayed on another connection is refused. `peer_key` is the
/// connection's Curve key in hex (Inbound::peer_key; empty without Curve).
std::optional<std::string> local_get_refusal(const client::LocalGetMsg& get,
                                             const std::string& peer_key,
                                             const consensus::Digest& chain_id,
                                             const consensus::kv::Permissions& permissions);

/// The transport of node `node`: its members, limits, Curve key (unless the
/// test-only switch turns Curve off), client policy, fault layer and twin offset.
TransportOptions transport_options(const NodeConfig& node, const ClusterConfig& cluster,
                                   const NodeKeys& keys, const NodeOptions& options);

}  // namespace tob::daemon
