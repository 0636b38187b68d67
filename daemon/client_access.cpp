#include "daemon/client_access.h"

#include "crypto/hash.h"
#include "daemon/memory_budget.h"

namespace tob::daemon {

std::set<crypto::CurvePublicKey> permitted_client_curve_keys(
    const consensus::kv::Permissions& permissions) {
    std::set<crypto::CurvePublicKey> keys;
    for (const auto& [ed25519, grant] : permissions.clients) {
        // The parser refused keys that do not convert.
        if (auto curve = crypto::curve_public_from_ed25519(ed25519)) keys.insert(*curve);
    }
    return keys;
}

std::optional<std::string> local_get_refusal(const client::LocalGetMsg& get,
                                             const std::string& peer_key,
                                             const consensus::Digest& chain_id,
                                             const consensus::kv::Permissions& permissions) {
    if (!client::verify_local_get(chain_id, get)) {
        return std::string("local read: bad signature");
    }
    if (!peer_key.empty()) {
        const auto curve = crypto::curve_public_from_ed25519(get.client);
        if (!curve || crypto::to_hex(*curve) != peer_key) {
            return std::string("local read: signed by another client than this connection's");
        }
    }
    if (!permissions.may_read(get.client, get.key)) {
        return std::string("local read: this client may not read the key");
    }
    return std::nullopt;
}

TransportOptions transport_options(const NodeConfig& node, const ClusterConfig& cluster,
                                   const NodeKeys& keys, const NodeOptions& options) {
    TransportOptions topt;
    topt.self = node.node_id;
    topt.members = cluster.members;
    topt.message_bytes_max = node.message_bytes_max(cluster);
    // Receive queues within the memory budget (daemon/memory_budget.h); check_node
    // refuses a budget that cannot be derived, so the fallback is never used by tobd.
    const auto derived = derive_memory_budget(memory_budget_input(node, cluster));
    if (const auto* budget = std::get_if<MemoryBudget>(&derived)) {
        topt.recv_hwm = budget->member_recv_hwm;
        topt.pub_frame_max = budget->pub_frame_max;
        topt.pub_send_hwm = budget->pub_send_hwm;
        topt.peer_send_hwm = budget->peer_send_hwm;
        topt.outbox_bytes = budget->outbox_bytes;
        topt.client_hwm = budget->client_hwm;
        topt.client_frame_max = budget->client_frame_max;
        topt.client_send_each_bytes = budget->client_send_each_bytes;
    }
    topt.client_connections_max = node.limits.client_connections_max;
    topt.client_connections_per_address_max = node.limits.client_connections_per_address_max;
    if (!options.test_no_curve) topt.curve = keys.curve;
    topt.clients_open = cluster.permissions.open;
    topt.client_keys = permitted_client_curve_keys(cluster.permissions);
    topt.faults = options.faults;
    topt.twin_port_offset = options.twin_port_offset;
    return topt;
}

}  // namespace tob::daemon
