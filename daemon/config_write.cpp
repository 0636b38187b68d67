// Writing the cluster file and a node config (daemon/config.h: format_cluster_file,
// format_node_config), as `tobctl testnet` does. Split from config.cpp, which
// parses them.

#include <string>
#include <string_view>

#include "crypto/hash.h"
#include "daemon/config.h"
#include "daemon/config_fields.h"
#include "daemon/high_water.h"

namespace tob::daemon {

namespace {

using config_fields::kLimitFields;
using config_fields::kProtocolFields;

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out += kHex[u >> 4];
            out += kHex[u & 15];
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

}  // namespace

std::string format_cluster_file(const ClusterConfig& cluster) {
    std::string out;
    out += "# tobd cluster file. Every member must hold a byte-identical copy: the chain id\n";
    out += "# is BLAKE2b-256 of this file's exact bytes, so ANY edit (even to a comment)\n";
    out += "# makes a new, incompatible chain. See docs/config.md.\n";
    out += "genesis_nonce = " + toml_string(crypto::to_hex(cluster.genesis_nonce)) + "\n";
    out += "n = " + std::to_string(cluster.n) + "\n";
    out += "t = " + std::to_string(cluster.t) + "\n";
    if (cluster.allow_unsafe) {
        out += "# This cluster does not follow t = floor((n-1)/3) with n >= 4.\n";
        out += "allow_unsafe = true\n";
    }
    out += "\n[limits]\n";
    for (const auto& field : kLimitFields) {
        out +=
            std::string(field.name) + " = " + std::to_string(cluster.limits.*field.member) + "\n";
    }
    out += "\n[protocol]\n";
    for (const auto& field : kProtocolFields) {
        if (field.name == "checkpoint_interval") {
            out +=
                "# checkpoints: the state root every K epochs; records kept R epochs below\n"
                "# the newest servable checkpoint (docs/protocol.md \"Checkpoints\")\n";
        }
        out +=
            std::string(field.name) + " = " + std::to_string(cluster.protocol.*field.member) + "\n";
    }
    out += format_permissions(cluster.permissions);
    for (const auto& member : cluster.members) {
        out += "\n[[node]]\n";
        out += "id = " + std::to_string(member.id) + "\n";
        out += "public_key = " + toml_string(crypto::to_hex(member.public_key)) + "\n";
        out += "coin_key = " + toml_string(crypto::to_hex(member.coin_key)) + "\n";
        out += "curve_key = " + toml_string(crypto::to_hex(member.curve_key)) + "\n";
        out += "pub_endpoint = " + toml_string(member.pub_endpoint) + "\n";
        out += "router_endpoint = " + toml_string(member.router_endpoint) + "\n";
        out += "client_endpoint = " + toml_string(member.client_endpoint) + "\n";
    }
    return out;
}

std::string format_node_config(const NodeConfig& node) {
    std::string out;
    out += "# tobd node config. Relative paths resolve against this file's directory.\n";
    out += "# See docs/config.md.\n";
    out += "node_id = " + std::to_string(node.node_id) + "\n";
    out += "cluster_file = " + toml_string(node.cluster_file.generic_string()) + "\n";
    out += "key_file = " + toml_string(node.key_file.generic_string()) + "\n";
    out += "coin_key_file = " + toml_string(node.coin_key_file.generic_string()) + "\n";
    if (!node.curve_key_file.empty() &&
        node.curve_key_file != default_curve_key_path(node.key_file)) {
        out += "curve_key_file = " + toml_string(node.curve_key_file.generic_string()) + "\n";
    }
    out += "data_dir = " + toml_string(node.data_dir.generic_string()) + "\n";
    if (!node.high_water_file.empty() &&
        node.high_water_file != default_high_water_path(node.key_file)) {
        out += "high_water_file = " + toml_string(node.high_water_file.generic_string()) + "\n";
    }
    out += "log_level = " + toml_string(to_string(node.log_level)) + "\n";
    out += "metrics_address = " + toml_string(node.metrics_address) + "\n";
    out += "testing = " + std::string(node.testing ? "true" : "false") + "\n";
    out += "\n[limits]\n";
    out += "pool_requests_max = " + std::to_string(node.limits.pool_requests_max) + "\n";
    out +=
        "future_epoch_buffer_max = " + std::to_string(node.limits.future_epoch_buffer_max) + "\n";
    if (node.limits.message_bytes_max) {
        out += "message_bytes_max = " + std::to_string(*node.limits.message_bytes_max) + "\n";
    } else {
        out += "# message_bytes_max = <unset: the cluster's limits.message_bytes_max>\n";
    }
    out += "memory_max_mb = " + std::to_string(node.limits.memory_max_mb) + "\n";
    out += "client_bytes_per_s = " + std::to_string(node.limits.client_bytes_per_s) + "\n";
    out += "client_requests_per_s = " + std::to_string(node.limits.client_requests_per_s) + "\n";
    out += "client_new_keys_per_s = " + std::to_string(node.limits.client_new_keys_per_s) + "\n";
    out += "client_connections_max = " + std::to_string(node.limits.client_connections_max) + "\n";
    out += "client_connections_per_address_max = " +
           std::to_string(node.limits.client_connections_per_address_max) + "\n";
    return out;
}

}  // namespace tob::daemon
