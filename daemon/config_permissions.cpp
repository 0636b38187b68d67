// The [permissions] table of the cluster file: parsing, writing, and the
// permissions file of `tobctl testnet --permissions FILE`.
//
//   [permissions]
//   open = false                 # true: every client key may read and write every key
//
//   [[permissions.client]]
//   public_key = "<64 hex digits: the client's Ed25519 key>"
//   read = ["app/"]              # key prefixes it may read ("" = every key)
//   write = ["app/orders/"]      # key prefixes it may write

#include "daemon/config_permissions.h"

#include <set>
#include <utility>

#include "crypto/curve.h"
#include "crypto/durable_file.h"
#include "crypto/hash.h"

namespace tob::daemon {

namespace fs = std::filesystem;
using consensus::kv::ClientGrant;
using consensus::kv::kPermissionClientsMax;
using consensus::kv::kPermissionPrefixesMax;
using consensus::kv::Permissions;

namespace {

struct Problems {
    const std::string& file;
    Errors& errors;
    void fail(const std::string& key, const std::string& problem) {
        errors.push_back(file + ": " + key + ": " + problem);
    }
};

// `key` = ["prefix", ...]: distinct strings, at most kPermissionPrefixesMax.
std::vector<consensus::Bytes> parse_prefixes(Problems& report, const toml::table& entry,
                                             const std::string& where, std::string_view key) {
    std::vector<consensus::Bytes> out;
    const toml::node* node = entry.get(key);
    const std::string name = where + "." + std::string(key);
    if (node == nullptr) return out;  // no access of this kind
    const auto* array = node->as_array();
    if (array == nullptr) {
        report.fail(name, "expected an array of key prefixes, e.g. [\"app/\"]");
        return out;
    }
    if (array->size() > kPermissionPrefixesMax) {
        report.fail(name, std::to_string(array->size()) + " prefixes, at most " +
                              std::to_string(kPermissionPrefixesMax));
        return out;
    }
    std::set<consensus::Bytes> seen;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const auto* text = array->get(i)->as_string();
        if (text == nullptr) {
            report.fail(name + "[" + std::to_string(i) + "]", "expected a string");
            continue;
        }
        const std::string& value = text->get();
        consensus::Bytes prefix(value.begin(), value.end());
        if (!seen.insert(prefix).second) {
            report.fail(name + "[" + std::to_string(i) + "]", "\"" + value + "\" listed twice");
            continue;
        }
        out.push_back(std::move(prefix));
    }
    return out;
}

void parse_client(Problems& report, const toml::table& entry, std::size_t i, Permissions& out) {
    const std::string where = "permissions.client[" + std::to_string(i) + "]";
    for (auto&& [key, value] : entry) {
        if (key.str() != "public_key" && key.str() != "read" && key.str() != "write") {
            report.fail(where + "." + std::string(key.str()),
                        "unknown key (expected one of: public_key, read, write)");
        }
        (void)value;
    }
    const auto* text = entry.get("public_key") ? entry.get("public_key")->as_string() : nullptr;
    crypto::Bytes bytes;
    if (text == nullptr || text->get().size() != 64 || !crypto::from_hex(text->get(), bytes)) {
        report.fail(where + ".public_key", "expected 64 hex digits (an Ed25519 client key)");
        return;
    }
    crypto::PublicKey pk{};
    std::copy(bytes.begin(), bytes.end(), pk.begin());
    if (!crypto::curve_public_from_ed25519(pk)) {
        report.fail(where + ".public_key", "not a valid Ed25519 public key");
        return;
    }
    ClientGrant grant;
    grant.read = parse_prefixes(report, entry, where, "read");
    grant.write = parse_prefixes(report, entry, where, "write");
    if (!out.clients.emplace(pk, std::move(grant)).second) {
        report.fail(where + ".public_key", "listed twice: give one entry per client key");
    }
}

}  // namespace

namespace config_permissions {

void parse(const toml::table& root, const std::string& file, Errors& errors, Permissions& out) {
    Problems report{file, errors};
    out = Permissions{};
    const toml::node* node = root.get("permissions");
    if (node == nullptr || node->as_table() == nullptr) {
        report.fail("permissions", node == nullptr
                                       ? "missing: the cluster file must say which clients may do "
                                         "what ([permissions] open = true for a test network)"
                                       : "expected a table ([permissions])");
        return;
    }
    const toml::table& table = *node->as_table();
    for (auto&& [key, value] : table) {
        if (key.str() != "open" && key.str() != "client") {
            report.fail("permissions." + std::string(key.str()),
                        "unknown key (expected one of: open, client)");
        }
        (void)value;
    }
    const toml::node* open = table.get("open");
    if (open == nullptr || open->as_boolean() == nullptr) {
        report.fail("permissions.open",
                    "required: true (every client may read and write every "
                    "key) or false (only the [[permissions.client]] grants)");
        return;
    }
    out.open = open->as_boolean()->get();
    const toml::node* clients = table.get("client");
    if (clients == nullptr) return;
    const auto* array = clients->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
        report.fail("permissions.client", "expected [[permissions.client]] tables");
        return;
    }
    if (out.open && !array->empty()) {
        report.fail("permissions.client",
                    "open = true grants every client everything; remove "
                    "the [[permissions.client]] entries or set open = false");
        return;
    }
    if (array->size() > kPermissionClientsMax) {
        report.fail("permissions.client", std::to_string(array->size()) + " clients, at most " +
                                              std::to_string(kPermissionClientsMax));
        return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
        parse_client(report, *array->get(i)->as_table(), i, out);
    }
}

}  // namespace config_permissions

Outcome<Permissions> load_permissions_file(const fs::path& path) {
    Outcome<Permissions> out;
    std::string data;
    if (auto problem = crypto::read_small_file(path, kConfigFileBytesMax, data)) {
        out.errors.push_back(path.string() + ": " + problem->problem);
        return out;
    }
    toml::table root;
    try {
        root = toml::parse(data, path.string());
    } catch (const toml::parse_error& e) {
        out.errors.push_back(path.string() + ":" + std::to_string(e.source().begin.line) +
                             ": TOML syntax error: " + std::string(e.description()));
        return out;
    }
    for (auto&& [key, value] : root) {
        if (key.str() != "permissions") {
            out.errors.push_back(path.string() + ": " + std::string(key.str()) +
                                 ": unknown key (a permissions file holds [permissions] only)");
        }
        (void)value;
    }
    Permissions permissions;
    config_permissions::parse(root, path.string(), out.errors, permissions);
    if (out.errors.empty()) out.value = std::move(permissions);
    return out;
}

namespace {

std::string quoted(const consensus::Bytes& bytes) {
    // A TOML basic string; control characters, quotes and backslashes escaped.
    std::string out = "\"";
    for (std::uint8_t c : bytes) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string prefix_list(const std::vector<consensus::Bytes>& prefixes) {
    std::string out = "[";
    for (std::size_t i = 0; i < prefixes.size(); ++i) out += (i ? ", " : "") + quoted(prefixes[i]);
    return out + "]";
}

}  // namespace

std::string format_permissions(const Permissions& permissions) {
    std::string out = "\n[permissions]\n";
    if (permissions.open) {
        out += "# open: every client key may read and write every key (a test network).\n";
        out += "open = true\n";
        return out;
    }
    out += "# closed: only the clients below, each on its key prefixes (docs/security.md).\n";
    out += "open = false\n";
    for (const auto& [key, grant] : permissions.clients) {
        out += "\n[[permissions.client]]\n";
        out += "public_key = \"" + crypto::to_hex(key) + "\"\n";
        out += "read = " + prefix_list(grant.read) + "\n";
        out += "write = " + prefix_list(grant.write) + "\n";
    }
    return out;
}

}  // namespace tob::daemon
