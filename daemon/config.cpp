#include "daemon/config.h"

#include <sodium.h>
#include <toml++/toml.h>

#include <initializer_list>
#include <limits>
#include <map>
#include <system_error>
#include <utility>

#include "consensus/codec.h"
#include "crypto/durable_file.h"
#include "daemon/config_fields.h"
#include "daemon/config_permissions.h"
#include "daemon/high_water.h"

namespace tob::daemon {

namespace fs = std::filesystem;

namespace {

using config_fields::kLimitFields;
using config_fields::kProtocolFields;

// ---- small helpers -----------------------------------------------------------

std::string in_quotes(std::string_view text) {
    std::string out = "\"";
    out += text;
    out += '"';
    return out;
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        default:
            return "nothing";
    }
}

std::string join_key(std::string_view prefix, std::string_view key) {
    if (prefix.empty()) return std::string(key);
    std::string out(prefix);
    out += '.';
    out += key;
    return out;
}

// Collects errors for one file: "<file>: <key>: <problem>".
class Reporter {
  public:
    Reporter(const fs::path& file, Errors& errors) : file_(file.string()), errors_(errors) {}

    void fail(std::string_view key, std::string_view problem) {
        std::string line = file_;
        line += ": ";
        if (!key.empty()) {
            line += key;
            line += ": ";
        }
        line += problem;
        errors_.push_back(std::move(line));
    }
    std::size_t count() const { return errors_.size(); }

  private:
    std::string file_;
    Errors& errors_;
};

// Every key of `table` must be in `known`; anything else is a typo or a key of a
// newer version, and silently ignoring it could run a node with a default the
// operator did not mean.
void check_known_keys(Reporter& report, const toml::table& table, std::string_view prefix,
                      std::initializer_list<std::string_view> known) {
    for (auto&& [key, value] : table) {
        bool found = false;
        for (std::string_view k : known) found = found || k == key.str();
        if (!found) {
            std::string expected;
            for (std::string_view k : known) {
                if (!expected.empty()) expected += ", ";
                expected += k;
            }
            report.fail(join_key(prefix, key.str()),
                        "unknown key (expected one of: " + expected + ")");
        }
        (void)value;
    }
}

// Reads an unsigned integer in [min, max]. nullopt if absent (reported when
// required) or invalid (always reported).
std::optional<std::uint64_t> get_uint(Reporter& report, const toml::table& table,
                                      std::string_view prefix, std::string_view key, bool required,
                                      std::uint64_t min, std::uint64_t max) {
    const toml::node* node = table.get(key);
    const std::string name = join_key(prefix, key);
    if (node == nullptr) {
        if (required) report.fail(name, "missing (required integer)");
        return std::nullopt;
    }
    const auto* integer = node->as_integer();
    if (integer == nullptr) {
        report.fail(name, "expected an integer, got " + std::string(type_name(*node)));
        return std::nullopt;
    }
    const std::int64_t value = integer->get();
    if (value < 0 || static_cast<std::uint64_t>(value) < min ||
        static_cast<std::uint64_t>(value) > max) {
        report.fail(name, std::to_string(value) + " is out of range [" + std::to_string(min) +
                              ", " + std::to_string(max) + "]");
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(value);
}

std::optional<std::string> get_string(Reporter& report, const toml::table& table,
                                      std::string_view prefix, std::string_view key,
                                      bool required) {
    const toml::node* node = table.get(key);
    const std::string name = join_key(prefix, key);
    if (node == nullptr) {
        if (required) report.fail(name, "missing (required string)");
        return std::nullopt;
    }
    const auto* text = node->as_string();
    if (text == nullptr) {
        report.fail(name, "expected a string, got " + std::string(type_name(*node)));
        return std::nullopt;
    }
    return text->get();
}

std::optional<bool> get_bool(Reporter& report, const toml::table& table, std::string_view prefix,
                             std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return std::nullopt;
    const auto* flag = node->as_boolean();
    if (flag == nullptr) {
        report.fail(join_key(prefix, key),
                    "expected true or false, got " + std::string(type_name(*node)));
        return std::nullopt;
    }
    return flag->get();
}

// An optional sub-table; a key of another type is reported.
const toml::table* get_table(Reporter& report, const toml::table& table, std::string_view key) {
    const toml::node* node = table.get(key);
    if (node == nullptr) return nullptr;
    const auto* sub = node->as_table();
    if (sub == nullptr)
        report.fail(key, "expected a table ([" + std::string(key) + "]), got " +
                             std::string(type_name(*node)));
    return sub;
}

// A fixed-size byte string written as hex.
template <std::size_t N>
std::optional<std::array<std::uint8_t, N>> get_hex(Reporter& report, const toml::table& table,
                                                   std::string_view prefix, std::string_view key) {
    auto text = get_string(report, table, prefix, key, true);
    if (!text) return std::nullopt;
    crypto::Bytes bytes;
    if (text->size() != 2 * N || !crypto::from_hex(*text, bytes) || bytes.size() != N) {
        report.fail(join_key(prefix, key), "expected " + std::to_string(2 * N) + " hex digits (" +
                                               std::to_string(N) + " bytes), got " +
                                               in_quotes(*text));
        return std::nullopt;
    }
    std::array<std::uint8_t, N> out{};
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

bool parse_port(std::string_view text, std::uint32_t& port) {
    if (text.empty() || text.size() > 5) return false;
    std::uint32_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (value == 0 || value > 65535) return false;
    port = value;
    return true;
}

// "host:port" with a non-empty host ("[::1]" allowed) and port 1..65535.
bool valid_host_port(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::uint32_t port = 0;
    return parse_port(text.substr(colon + 1), port);
}

// metrics_address: HOST:PORT where an IPv6 HOST is bracketed ("[::1]:9100"),
// HOST has no blanks or slashes (so "http://..." is refused), port 1..65535.
bool valid_metrics_address(std::string_view text) {
    if (!valid_host_port(text)) return false;
    const std::string_view host = text.substr(0, text.rfind(':'));
    if (host.find_first_of(" \t/\\") != std::string_view::npos) return false;
    if (host.front() == '[') return host.size() > 2 && host.back() == ']';
    return host.find_first_of("[]:") == std::string_view::npos;
}

// ZeroMQ bind addresses tobd supports: tcp://HOST:PORT and ipc://PATH.
bool valid_endpoint(std::string_view text) {
    constexpr std::string_view tcp = "tcp://";
    constexpr std::string_view ipc = "ipc://";
    if (text.substr(0, tcp.size()) == tcp) return valid_host_port(text.substr(tcp.size()));
    if (text.substr(0, ipc.size()) == ipc) return text.size() > ipc.size();
    return false;
}

// Reads a whole file with clear errors: missing, not a regular file, too large.
Outcome<std::string> read_file(const fs::path& path) {
    Outcome<std::string> out;
    std::string data;
    auto problem = crypto::read_small_file(path, kConfigFileBytesMax, data);
    if (!problem) {
        out.value = std::move(data);
    } else if (problem->kind == crypto::SmallFileError::Kind::TooLarge) {
        out.errors.push_back(path.string() + ": " + problem->problem +
                             ": above the limit for config files");
    } else {
        out.errors.push_back(path.string() + ": " + problem->problem);
    }
    return out;
}

// Parses TOML text; a syntax error becomes "<file>:<line>:<col>: TOML syntax error: ...".
std::optional<toml::table> parse_toml(std::string_view bytes, const fs::path& source,
                                      Errors& errors) {
    try {
        return toml::parse(bytes, source.string());
    } catch (const toml::parse_error& e) {
        const auto& begin = e.source().begin;
        errors.push_back(source.string() + ":" + std::to_string(begin.line) + ":" +
                         std::to_string(begin.column) +
                         ": TOML syntax error: " + std::string(e.description()));
    } catch (const std::exception& e) {
        errors.push_back(source.string() + ": cannot parse: " + e.what());
    }
    return std::nullopt;
}

// ---- [limits] and [protocol] of the cluster file ----------------------------

constexpr std::uint32_t kU32Max = std::numeric_limits<std::uint32_t>::max();
// NodeId is 16 bits.
constexpr std::uint32_t kMembersMax = 1u << 16;

// A key of [limits] that belongs in [protocol] (or the reverse) gets a hint.
std::string unknown_key_hint(std::string_view key, std::string_view table) {
    for (const auto& field : kLimitFields) {
        if (field.name == key && table != "limits") return "unknown key (it belongs in [limits])";
    }
    for (const auto& field : kProtocolFields) {
        if (field.name == key && table != "protocol")
            return "unknown key (it belongs in [protocol])";
    }
    return "unknown key (see docs/config.md for the keys of [" + std::string(table) + "])";
}

void parse_limits(Reporter& report, const toml::table& root, consensus::Limits& limits) {
    const toml::table* table = get_table(report, root, "limits");
    if (table == nullptr) return;
    for (auto&& [key, value] : *table) {
        bool known = false;
        for (const auto& field : kLimitFields) known = known || field.name == key.str();
        if (!known)
            report.fail(join_key("limits", key.str()), unknown_key_hint(key.str(), "limits"));
        (void)value;
    }
    for (const auto& field : kLimitFields) {
        if (auto v = get_uint(report, *table, "limits", field.name, false, 1, kU32Max)) {
            limits.*field.member = static_cast<std::uint32_t>(*v);
        }
    }
}

void parse_protocol(Reporter& report, const toml::table& root, ProtocolParams& params) {
    const toml::table* table = get_table(report, root, "protocol");
    if (table == nullptr) return;
    for (auto&& [key, value] : *table) {
        bool known = false;
        for (const auto& field : kProtocolFields) known = known || field.name == key.str();
        if (!known)
            report.fail(join_key("protocol", key.str()), unknown_key_hint(key.str(), "protocol"));
        (void)value;
    }
    for (const auto& field : kProtocolFields) {
        if (auto v = get_uint(report, *table, "protocol", field.name, false, 1, field.max)) {
            params.*field.member = static_cast<std::uint32_t>(*v);
        }
    }
}

// Relations between limits that every validator relies on (consensus::limit_problems:
// a block fits in a message, a request in a block, a proof's skeleton and a reply in
// a message, ...).
void check_limit_relations(Reporter& report, const consensus::Limits& limits, std::uint32_t n) {
    for (const auto& [key, why] : consensus::limit_problems(limits, n)) report.fail(key, why);
}

}  // namespace

// ---- public helpers ------------------------------------------------------------

std::string_view to_string(LogLevel level) {
    switch (level) {
        case LogLevel::Trace:
            return "trace";
        case LogLevel::Debug:
            return "debug";
        case LogLevel::Info:
            return "info";
        case LogLevel::Warn:
            return "warn";
        case LogLevel::Error:
            return "error";
    }
    return "info";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
    for (LogLevel level :
         {LogLevel::Trace, LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error}) {
        if (to_string(level) == text) return level;
    }
    return std::nullopt;
}

crypto::CoinPublicKey ClusterConfig::coin_public_key() const {
    crypto::CoinPublicKey pk;
    pk.n = n;
    pk.t = t;
    pk.verification_keys.reserve(members.size());
    for (const auto& member : members) pk.verification_keys.push_back(member.coin_key);
    return pk;
}

fs::path resolve_path(const fs::path& base_dir, const fs::path& path) {
    std::error_code ec;
    fs::path joined = path.is_absolute() ? path : base_dir / path;
    if (!joined.is_absolute()) {
        fs::path absolute = fs::absolute(joined, ec);
        if (!ec) joined = absolute;
    }
    // Resolve the directory part against the real file system (so that ".."
    // after a symlinked directory means what the kernel will make of it), but
    // keep the file name as written: error messages then name the file the
    // operator wrote, not a symlink target.
    const fs::path name = joined.filename();
    if (name.empty() || name == "." || name == "..") {
        fs::path canonical = fs::weakly_canonical(joined, ec);
        return ec ? joined.lexically_normal() : canonical;
    }
    fs::path dir = fs::weakly_canonical(joined.parent_path(), ec);
    if (ec) return joined.lexically_normal();
    return dir / name;
}

fs::path default_curve_key_path(const fs::path& key_file) {
    return key_file.parent_path() / "curve.key";
}

// ---- cluster file --------------------------------------------------------------

namespace {

// n, t and allow_unsafe, and whether they fit together. False when n is absent or
// invalid (the [[node]] count is then not checked against it).
bool parse_size(Reporter& report, const toml::table& root, ClusterConfig& cluster) {
    cluster.allow_unsafe = get_bool(report, root, "", "allow_unsafe").value_or(false);
    const auto n = get_uint(report, root, "", "n", true, 1, kMembersMax);
    const auto t = get_uint(report, root, "", "t", true, 0, kMembersMax);
    if (n) cluster.n = static_cast<std::uint32_t>(*n);
    if (t) cluster.t = static_cast<std::uint32_t>(*t);
    if (n && t) {
        const std::uint32_t expected = consensus::max_faulty(cluster.n);
        if (cluster.t >= cluster.n) {
            report.fail("t", std::to_string(cluster.t) + " must be below n = " +
                                 std::to_string(cluster.n) + " (the coin needs t+1 <= n shares)");
        } else if (cluster.t != expected && !cluster.allow_unsafe) {
            report.fail("t", std::to_string(cluster.t) +
                                 " is inconsistent with n = " + std::to_string(cluster.n) +
                                 ": t must be floor((n-1)/3) = " + std::to_string(expected) +
                                 " (set allow_unsafe = true to override)");
        } else if (cluster.n < 4 && !cluster.allow_unsafe) {
            report.fail("n", std::to_string(cluster.n) +
                                 " nodes tolerate no faulty node (t = 0); at least 4 are needed "
                                 "(set allow_unsafe = true to run anyway)");
        }
    }
    return n.has_value();
}

// What must be unique across [[node]] entries. Coin keys may repeat: with t = 0
// the polynomial is a constant and every share equals the secret.
struct SeenMembers {
    std::map<crypto::PublicKey, std::size_t> keys;
    std::map<crypto::CurvePublicKey, std::size_t> curve_keys;
    std::map<std::string, std::string> endpoints;
};

void parse_member_endpoints(Reporter& report, const toml::table& entry, const std::string& prefix,
                            SeenMembers& seen, ClusterMember& member) {
    for (auto [key, field] : {std::pair{"pub_endpoint", &ClusterMember::pub_endpoint},
                              std::pair{"router_endpoint", &ClusterMember::router_endpoint},
                              std::pair{"client_endpoint", &ClusterMember::client_endpoint}}) {
        auto endpoint = get_string(report, entry, prefix, key, true);
        if (!endpoint) continue;
        const std::string name = join_key(prefix, key);
        if (!valid_endpoint(*endpoint)) {
            report.fail(name,
                        "expected tcp://HOST:PORT or ipc://PATH, got " + in_quotes(*endpoint));
            continue;
        }
        auto [it, fresh] = seen.endpoints.emplace(*endpoint, name);
        if (!fresh) report.fail(name, in_quotes(*endpoint) + " is also " + it->second);
        member.*field = *endpoint;
    }
}

// The i-th [[node]] entry.
ClusterMember parse_member(Reporter& report, const toml::table& entry, std::size_t i,
                           SeenMembers& seen) {
    const std::string prefix = "node[" + std::to_string(i) + "]";
    check_known_keys(report, entry, prefix,
                     {"id", "public_key", "coin_key", "curve_key", "pub_endpoint",
                      "router_endpoint", "client_endpoint"});
    ClusterMember member;
    member.id = static_cast<consensus::NodeId>(i);
    if (auto id = get_uint(report, entry, prefix, "id", true, 0, kMembersMax - 1)) {
        if (*id != i) {
            report.fail(prefix + ".id", std::to_string(*id) +
                                            " is out of order: ids are dense, start at 0 and "
                                            "follow file order, so this entry must be " +
                                            std::to_string(i));
        }
    }
    if (auto pk = get_hex<32>(report, entry, prefix, "public_key")) {
        member.public_key = *pk;
        auto [it, fresh] = seen.keys.emplace(*pk, i);
        if (!fresh) {
            report.fail(prefix + ".public_key", "same key as node[" + std::to_string(it->second) +
                                                    "]: every member needs its own key");
        }
    }
    if (auto y = get_hex<32>(report, entry, prefix, "coin_key")) {
        member.coin_key = *y;
        if (*y == crypto::Point{}) {
            report.fail(prefix + ".coin_key", "is the identity element, never a valid coin key");
        } else if (crypto_core_ristretto255_is_valid_point(y->data()) != 1) {
            report.fail(prefix + ".coin_key", "not a valid ristretto255 point");
        }
    }
    if (auto curve = get_hex<32>(report, entry, prefix, "curve_key")) {
        member.curve_key = *curve;
        auto [it, fresh] = seen.curve_keys.emplace(*curve, i);
        if (*curve == crypto::CurvePublicKey{}) {
            report.fail(prefix + ".curve_key", "is all zero, never a Curve public key");
        } else if (!fresh) {
            report.fail(prefix + ".curve_key", "same key as node[" + std::to_string(it->second) +
                                                   "]: every member needs its own Curve key");
        }
    }
    parse_member_endpoints(report, entry, prefix, seen, member);
    return member;
}

// The [[node]] entries: one per member, ids dense and in file order.
void parse_members(Reporter& report, const toml::table& root, bool n_given,
                   ClusterConfig& cluster) {
    const toml::node* nodes_node = root.get("node");
    if (nodes_node == nullptr) {
        report.fail("node", "missing: the file needs one [[node]] table per member");
        return;
    }
    const auto* nodes = nodes_node->as_array();
    if (nodes == nullptr || !nodes->is_array_of_tables()) {
        report.fail(
            "node",
            nodes == nullptr
                ? "expected [[node]] tables, got " + std::string(type_name(*nodes_node))
                : "expected [[node]] tables, got an empty array or one with non-table elements");
        return;
    }
    if (n_given && nodes->size() != cluster.n) {
        report.fail("node", std::to_string(nodes->size()) +
                                " [[node]] entries, but n = " + std::to_string(cluster.n));
    }
    SeenMembers seen;
    for (std::size_t i = 0; i < nodes->size() && i < kMembersMax; ++i) {
        cluster.members.push_back(parse_member(report, *nodes->get(i)->as_table(), i, seen));
    }
}

}  // namespace

Outcome<ClusterConfig> parse_cluster_config(std::string_view bytes, const fs::path& source) {
    Outcome<ClusterConfig> out;
    Reporter report(source, out.errors);
    auto parsed = parse_toml(bytes, source, out.errors);
    if (!parsed) return out;
    const toml::table& root = *parsed;

    ClusterConfig cluster;
    cluster.path = source;
    cluster.chain_id = crypto::blake2b256(crypto::view(bytes));
    check_known_keys(
        report, root, "",
        {"genesis_nonce", "n", "t", "allow_unsafe", "limits", "protocol", "permissions", "node"});
    if (auto nonce = get_hex<32>(report, root, "", "genesis_nonce")) cluster.genesis_nonce = *nonce;
    const bool n_given = parse_size(report, root, cluster);
    parse_limits(report, root, cluster.limits);
    parse_protocol(report, root, cluster.protocol);
    check_limit_relations(report, cluster.limits, cluster.n);
    parse_members(report, root, n_given, cluster);
    config_permissions::parse(root, source.string(), out.errors, cluster.permissions);
    if (out.errors.empty()) out.value = std::move(cluster);
    return out;
}

Outcome<ClusterConfig> load_cluster_config(const fs::path& path) {
    const fs::path source = resolve_path(fs::path(), path);
    auto bytes = read_file(source);
    if (!bytes.value) return {std::nullopt, std::move(bytes.errors)};
    return parse_cluster_config(*bytes.value, source);
}

// ---- node config ------------------------------------------------------------------

// The node config's [limits] table (local resource bounds).
static void parse_local_limits(Reporter& report, const toml::table& limits_table,
                               LocalLimits& out) {
    check_known_keys(
        report, limits_table, "limits",
        {"pool_requests_max", "future_epoch_buffer_max", "message_bytes_max", "memory_max_mb",
         "client_bytes_per_s", "client_requests_per_s", "client_new_keys_per_s",
         "client_connections_max", "client_connections_per_address_max"});
    if (auto v = get_uint(report, limits_table, "limits", "pool_requests_max", false, 1, kU32Max)) {
        out.pool_requests_max = static_cast<std::uint32_t>(*v);
    }
    if (auto v = get_uint(report, limits_table, "limits", "future_epoch_buffer_max", false, 1,
                          kU32Max)) {
        out.future_epoch_buffer_max = static_cast<std::uint32_t>(*v);
    }
    if (auto v = get_uint(report, limits_table, "limits", "message_bytes_max", false, 1, kU32Max)) {
        out.message_bytes_max = static_cast<std::uint32_t>(*v);
    }
    if (auto v = get_uint(report, limits_table, "limits", "memory_max_mb", false, 64, 1u << 22)) {
        out.memory_max_mb = static_cast<std::uint32_t>(*v);
    }
    if (auto v =
            get_uint(report, limits_table, "limits", "client_bytes_per_s", false, 1024, kU32Max)) {
        out.client_bytes_per_s = static_cast<std::uint32_t>(*v);
    }
    if (auto v =
            get_uint(report, limits_table, "limits", "client_requests_per_s", false, 1, kU32Max)) {
        out.client_requests_per_s = static_cast<std::uint32_t>(*v);
    }
    if (auto v =
            get_uint(report, limits_table, "limits", "client_new_keys_per_s", false, 0, kU32Max)) {
        out.client_new_keys_per_s = static_cast<std::uint32_t>(*v);
    }
    if (auto v = get_uint(report, limits_table, "limits", "client_connections_max", false, 1,
                          1u << 20)) {
        out.client_connections_max = static_cast<std::uint32_t>(*v);
    }
    if (auto v = get_uint(report, limits_table, "limits", "client_connections_per_address_max",
                          false, 1, 1u << 20)) {
        out.client_connections_per_address_max = static_cast<std::uint32_t>(*v);
    }
    if (out.client_requests_per_s > out.client_bytes_per_s) {
        report.fail(
            "limits.client_requests_per_s",
            std::to_string(out.client_requests_per_s) +
                " exceeds limits.client_bytes_per_s = " + std::to_string(out.client_bytes_per_s) +
                ": every request costs at least one byte of that rate");
    }
}

Outcome<NodeConfig> parse_node_config(std::string_view bytes, const fs::path& source) {
    Outcome<NodeConfig> out;
    Reporter report(source, out.errors);
    auto parsed = parse_toml(bytes, source, out.errors);
    if (!parsed) return out;
    const toml::table& root = *parsed;
    const fs::path base = source.parent_path();

    NodeConfig node;
    node.path = source;
    check_known_keys(
        report, root, "",
        {"node_id", "cluster_file", "key_file", "coin_key_file", "curve_key_file", "data_dir",
         "high_water_file", "log_level", "metrics_address", "testing", "limits"});

    if (auto id = get_uint(report, root, "", "node_id", true, 0, kMembersMax - 1)) {
        node.node_id = static_cast<consensus::NodeId>(*id);
    }
    for (auto [key, field] : {std::pair{"cluster_file", &NodeConfig::cluster_file},
                              std::pair{"key_file", &NodeConfig::key_file},
                              std::pair{"coin_key_file", &NodeConfig::coin_key_file},
                              std::pair{"data_dir", &NodeConfig::data_dir}}) {
        auto text = get_string(report, root, "", key, true);
        if (!text) continue;
        if (text->empty() || text->find('\0') != std::string::npos) {
            report.fail(key, "expected a path, got " + in_quotes(*text));
            continue;
        }
        node.*field = resolve_path(base, *text);
    }
    if (auto text = get_string(report, root, "", "curve_key_file", false)) {
        if (text->empty() || text->find('\0') != std::string::npos) {
            report.fail("curve_key_file", "expected a path, got " + in_quotes(*text));
        } else {
            node.curve_key_file = resolve_path(base, *text);
        }
    } else if (!node.key_file.empty()) {
        node.curve_key_file = default_curve_key_path(node.key_file);
    }
    if (auto text = get_string(report, root, "", "high_water_file", false)) {
        if (text->empty() || text->find('\0') != std::string::npos) {
            report.fail("high_water_file", "expected a path, got " + in_quotes(*text));
        } else {
            node.high_water_file = resolve_path(base, *text);
        }
    } else if (!node.key_file.empty()) {
        node.high_water_file = default_high_water_path(node.key_file);
    }
    if (auto level = get_string(report, root, "", "log_level", false)) {
        if (auto parsed_level = parse_log_level(*level)) {
            node.log_level = *parsed_level;
        } else {
            report.fail("log_level", "expected one of trace, debug, info, warn, error, got " +
                                         in_quotes(*level));
        }
    }
    if (auto address = get_string(report, root, "", "metrics_address", false)) {
        if (!address->empty() && !valid_metrics_address(*address)) {
            report.fail("metrics_address",
                        "expected HOST:PORT (e.g. 127.0.0.1:9100) or \"\" for off, got " +
                            in_quotes(*address));
        } else {
            node.metrics_address = *address;
        }
    }
    node.testing = get_bool(report, root, "", "testing").value_or(false);

    if (const toml::table* limits = get_table(report, root, "limits")) {
        parse_local_limits(report, *limits, node.limits);
    }

    if (out.errors.empty()) out.value = std::move(node);
    return out;
}

Outcome<NodeConfig> load_node_config(const fs::path& path) {
    const fs::path source = resolve_path(fs::path(), path);
    auto bytes = read_file(source);
    if (!bytes.value) return {std::nullopt, std::move(bytes.errors)};
    return parse_node_config(*bytes.value, source);
}

}  // namespace tob::daemon
