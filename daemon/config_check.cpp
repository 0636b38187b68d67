// The checks of a node config against its cluster file and the machine: keys,
// data dir, high-water mark file and listen ports (daemon/config.h: check_node,
// load_node_keys, load_and_check). Split from config.cpp, which parses and
// writes the files.

#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "crypto/keyfile.h"
#include "daemon/config.h"
#include "daemon/high_water.h"
#include "daemon/memory_budget.h"

namespace tob::daemon {

namespace fs = std::filesystem;

namespace {

// Collects "<config file>: <key>: <problem>", the shape of every config error.
struct KeyProblems {
    std::string file;
    Errors& errors;
    void fail(std::string_view key, const std::string& problem) {
        errors.push_back(file + ": " + std::string(key) + ": " + problem);
    }
};

}  // namespace

// ---- checks against the cluster -------------------------------------------------

Outcome<NodeKeys> load_node_keys(const NodeConfig& node, const ClusterConfig& cluster) {
    Outcome<NodeKeys> out;
    if (node.node_id >= cluster.members.size()) {
        out.errors.push_back(node.path.string() + ": node_id: " + std::to_string(node.node_id) +
                             " is not a member (cluster has n=" + std::to_string(cluster.n) + ")");
        return out;
    }
    const ClusterMember& member = cluster.members[node.node_id];
    const std::string who = "node[" + std::to_string(node.node_id) + "]";

    auto signing = crypto::load_signing_key(node.key_file);
    if (const auto* error = std::get_if<crypto::KeyFileError>(&signing)) {
        out.errors.push_back(error->message);
    } else if (std::get<crypto::SigningKey>(signing).public_key() != member.public_key) {
        out.errors.push_back(node.key_file.string() + ": public key " +
                             crypto::to_hex(std::get<crypto::SigningKey>(signing).public_key()) +
                             " is not " + who + ".public_key in " + cluster.path.string() + " (" +
                             crypto::to_hex(member.public_key) + "); wrong key_file or node_id?");
    }

    auto coin = crypto::load_coin_share(node.coin_key_file);
    if (const auto* error = std::get_if<crypto::KeyFileError>(&coin)) {
        out.errors.push_back(error->message);
    } else {
        const auto& share = std::get<crypto::CoinSecretShare>(coin);
        const crypto::Point y = crypto::coin_verification_key(share);
        if (share.index != node.node_id) {
            out.errors.push_back(node.coin_key_file.string() + ": coin share is node " +
                                 std::to_string(share.index) + "'s, but node_id is " +
                                 std::to_string(node.node_id));
        } else if (y != member.coin_key) {
            out.errors.push_back(node.coin_key_file.string() + ": coin share does not match " +
                                 who + ".coin_key in " + cluster.path.string() + " (g^x differs)");
        }
    }

    const fs::path curve_path =
        node.curve_key_file.empty() ? default_curve_key_path(node.key_file) : node.curve_key_file;
    auto curve = crypto::load_curve_key(curve_path);
    if (const auto* error = std::get_if<crypto::KeyFileError>(&curve)) {
        out.errors.push_back(error->message);
    } else if (std::get<crypto::CurveKeyPair>(curve).public_key() != member.curve_key) {
        out.errors.push_back(curve_path.string() + ": Curve public key " +
                             crypto::to_hex(std::get<crypto::CurveKeyPair>(curve).public_key()) +
                             " is not " + who + ".curve_key in " + cluster.path.string() + " (" +
                             crypto::to_hex(member.curve_key) + ")");
    }

    if (out.errors.empty()) {
        out.value.emplace(NodeKeys{std::get<crypto::SigningKey>(signing),
                                   std::get<crypto::CoinSecretShare>(coin),
                                   std::get<crypto::CurveKeyPair>(curve)});
    }
    return out;
}

namespace {

// data_dir is an existing writable directory, or its nearest existing ancestor
// is a writable directory (so tobd can create it). Creates nothing.
void check_data_dir(const NodeConfig& node, Errors& errors) {
    KeyProblems report{node.path.string(), errors};
    const fs::path& dir = node.data_dir;
    std::error_code ec;
    const auto status = fs::status(dir, ec);
    if (status.type() == fs::file_type::none) {
        report.fail("data_dir", dir.string() + ": " + ec.message());
        return;
    }
    if (fs::exists(status)) {
        if (!fs::is_directory(status)) {
            report.fail("data_dir", dir.string() + " exists and is not a directory");
        } else if (::access(dir.c_str(), W_OK | X_OK) != 0) {
            report.fail("data_dir", dir.string() + " is not writable: " + std::strerror(errno));
        }
        return;
    }
    fs::path ancestor = dir.parent_path();
    while (!ancestor.empty()) {
        const auto st = fs::status(ancestor, ec);
        if (fs::exists(st)) {
            if (!fs::is_directory(st)) {
                report.fail("data_dir", dir.string() + " cannot be created: " + ancestor.string() +
                                            " is not a directory");
            } else if (::access(ancestor.c_str(), W_OK | X_OK) != 0) {
                report.fail("data_dir", dir.string() + " does not exist and cannot be created: " +
                                            ancestor.string() + " is not writable (" +
                                            std::strerror(errno) + ")");
            }
            return;
        }
        if (ancestor == ancestor.parent_path()) break;
        ancestor = ancestor.parent_path();
    }
    report.fail("data_dir", dir.string() + " cannot be created: no existing parent directory");
}

// True when `inner` is `outer` or below it (lexically, after resolving what exists).
bool is_within(const fs::path& inner, const fs::path& outer) {
    std::error_code ec;
    const fs::path a = fs::weakly_canonical(inner, ec);
    const fs::path b = fs::weakly_canonical(outer, ec);
    auto ai = a.begin();
    for (auto bi = b.begin(); bi != b.end(); ++bi, ++ai) {
        if (bi->empty()) continue;  // a trailing separator
        if (ai == a.end() || *ai != *bi) return false;
    }
    return true;
}

// The mark is replaced by writing a temp file beside it and renaming, so its
// directory must exist and be writable; the mark itself, if present, must be a
// regular file. It must not live in data_dir: it exists to survive losing that.
void check_high_water_file(const NodeConfig& node, Errors& errors) {
    KeyProblems report{node.path.string(), errors};
    const fs::path file = node.high_water_file.empty() ? default_high_water_path(node.key_file)
                                                       : node.high_water_file;
    if (file.empty()) return;
    std::error_code ec;
    const auto status = fs::symlink_status(file, ec);
    if (fs::exists(status) && !fs::is_regular_file(fs::status(file, ec))) {
        report.fail("high_water_file", file.string() + " exists and is not a regular file");
    }
    const fs::path dir = file.parent_path();
    const auto dir_status = fs::status(dir, ec);
    if (!fs::exists(dir_status)) {
        report.fail("high_water_file", file.string() + ": directory " + dir.string() +
                                           " does not exist (create it, owned by the user tobd "
                                           "runs as, mode 0700)");
    } else if (!fs::is_directory(dir_status)) {
        report.fail("high_water_file", file.string() + ": " + dir.string() + " is not a directory");
    } else if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        report.fail("high_water_file", file.string() + ": directory " + dir.string() +
                                           " is not writable: " + std::strerror(errno));
    }
    if (!node.data_dir.empty() && is_within(file, node.data_dir)) {
        report.fail("high_water_file",
                    file.string() + " is inside data_dir " + node.data_dir.string() +
                        ": the mark must survive losing the data directory; keep it beside "
                        "key_file (the default) or in a directory of its own");
    }
}

// One address tobd will listen on.
struct ListenAddress {
    std::string file;   // where it is configured
    std::string key;    // under which key
    std::string shown;  // as written
    std::string host;   // brackets removed; "*" = any
    std::string port;
};

// Binds and listens on every address at once (SO_REUSEADDR, as ZeroMQ and the
// HTTP server do), then closes them all: a port another process listens on,
// or two of this node's own addresses on one port, fail here as they would at
// start. Hosts that do not resolve are reported; ZeroMQ interface names
// ("tcp://eth0:7100") are left to ZeroMQ.
void check_ports(const std::vector<ListenAddress>& addresses, Errors& errors) {
    std::vector<int> open_fds;
    for (const auto& address : addresses) {
        const std::string where = address.file + ": " + address.key + ": " + address.shown;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        addrinfo* found = nullptr;
        const char* host = address.host == "*" ? nullptr : address.host.c_str();
        if (address.host == "*") hints.ai_family = AF_INET;  // ZeroMQ's "*" is 0.0.0.0
        if (const int rc = ::getaddrinfo(host, address.port.c_str(), &hints, &found); rc != 0) {
            if (::if_nametoindex(address.host.c_str()) != 0) continue;  // an interface name
            errors.push_back(where + ": cannot resolve " + address.host + ": " +
                             ::gai_strerror(rc));
            continue;
        }
        const int fd =
            ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
        if (fd < 0) {
            errors.push_back(where + ": cannot create a socket: " + std::strerror(errno));
            ::freeaddrinfo(found);
            continue;
        }
        int yes = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 1) != 0) {
            const int error = errno;
            std::string why = std::strerror(error);
            if (error == EADDRINUSE) {
                why += " (another process, or another address of this node, listens on port " +
                       address.port + "; is this node already running?)";
            } else if (error == EADDRNOTAVAIL) {
                why += " (" + address.host + " is not an address of this machine)";
            } else if (error == EACCES) {
                why += " (ports below 1024 need privileges tobd does not have)";
            }
            errors.push_back(where + ": cannot listen: " + why);
            ::close(fd);
        } else {
            open_fds.push_back(fd);
        }
        ::freeaddrinfo(found);
    }
    for (int fd : open_fds) ::close(fd);
}

// "tcp://HOST:PORT" or "HOST:PORT" -> host (without brackets) and port.
bool split_host_port(std::string_view text, std::string& host, std::string& port) {
    constexpr std::string_view tcp = "tcp://";
    if (text.substr(0, tcp.size()) == tcp) text.remove_prefix(tcp.size());
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    host = std::string(text.substr(0, colon));
    port = std::string(text.substr(colon + 1));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return true;
}

}  // namespace

Errors check_node(const NodeConfig& node, const ClusterConfig& cluster,
                  const CheckOptions& options) {
    Errors errors;
    if (node.node_id >= cluster.n || node.node_id >= cluster.members.size()) {
        errors.push_back(node.path.string() + ": node_id: " + std::to_string(node.node_id) +
                         " is not a member (cluster has n=" + std::to_string(cluster.n) + ")");
    } else {
        auto keys = load_node_keys(node, cluster);
        errors.insert(errors.end(), keys.errors.begin(), keys.errors.end());
    }
    if (node.limits.message_bytes_max &&
        *node.limits.message_bytes_max < cluster.limits.message_bytes_max) {
        errors.push_back(
            node.path.string() +
            ": limits.message_bytes_max: " + std::to_string(*node.limits.message_bytes_max) +
            " is below the cluster's " + std::to_string(cluster.limits.message_bytes_max) + " (" +
            cluster.path.string() + "): this node would drop envelopes honest peers may send");
    }
    const auto budget = derive_memory_budget(memory_budget_input(node, cluster));
    if (const auto* why = std::get_if<std::string>(&budget)) {
        errors.push_back(node.path.string() + ": limits." + *why);
    }
    check_data_dir(node, errors);
    check_high_water_file(node, errors);
    if (options.ports) {
        std::vector<ListenAddress> addresses;
        if (node.node_id < cluster.members.size()) {
            const ClusterMember& member = cluster.members[node.node_id];
            const std::string prefix = "node[" + std::to_string(node.node_id) + "].";
            for (auto [key, endpoint] : {std::pair{"pub_endpoint", &member.pub_endpoint},
                                         std::pair{"router_endpoint", &member.router_endpoint},
                                         std::pair{"client_endpoint", &member.client_endpoint}}) {
                ListenAddress address{cluster.path.string(), prefix + key, *endpoint, "", ""};
                if (endpoint->rfind("tcp://", 0) == 0 &&
                    split_host_port(*endpoint, address.host, address.port)) {
                    addresses.push_back(std::move(address));
                }
            }
        }
        if (!node.metrics_address.empty()) {
            ListenAddress address{node.path.string(), "metrics_address", node.metrics_address, "",
                                  ""};
            if (split_host_port(node.metrics_address, address.host, address.port))
                addresses.push_back(std::move(address));
        }
        check_ports(addresses, errors);
    }
    return errors;
}

Outcome<LoadedNode> load_and_check(const fs::path& config_file, const CheckOptions& options) {
    Outcome<LoadedNode> out;
    auto node = load_node_config(config_file);
    if (!node.ok()) {
        out.errors = std::move(node.errors);
        return out;
    }
    std::error_code ec;
    if (fs::status(node.value->cluster_file, ec).type() == fs::file_type::not_found) {
        out.errors.push_back(node.value->path.string() + ": cluster_file: " +
                             node.value->cluster_file.string() + " does not exist");
        return out;
    }
    auto cluster = load_cluster_config(node.value->cluster_file);
    if (!cluster.ok()) {
        out.errors = std::move(cluster.errors);
        return out;
    }
    out.errors = check_node(*node.value, *cluster.value, options);
    if (out.errors.empty())
        out.value.emplace(LoadedNode{std::move(*node.value), std::move(*cluster.value)});
    return out;
}

}  // namespace tob::daemon
