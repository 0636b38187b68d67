// The security parts of the config files (docs/config.md, docs/security.md): the
// cluster file's [permissions] table and permissions files, and the members'
// Curve keys and client endpoints as tobctl testnet writes and tobd checks them.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "crypto/hash.h"
#include "crypto/keyfile.h"
#include "daemon/client_access.h"
#include "daemon/config.h"
#include "daemon/testnet.h"
#include "tests/unit/test_util.h"

namespace tob::daemon {
namespace {

namespace fs = std::filesystem;
using consensus::Bytes;
using test_util::read_all;
using test_util::TempDir;

Bytes b(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::string joined(const Errors& errors) {
    std::string out;
    for (const auto& e : errors) out += e + "\n";
    return out;
}

bool any_contains(const Errors& errors, const std::string& needle) {
    for (const auto& e : errors)
        if (e.find(needle) != std::string::npos) return true;
    return false;
}

// A cluster file of a fresh testnet with its [permissions] table replaced by `table`.
class PermissionsConfig : public ::testing::Test {
  protected:
    void SetUp() override {
        crypto::init();
        TestnetOptions options;
        options.dir = tmp_.path() / "net";
        // Ports are not bound here (the self-check leaves them out); keep them away
        // from the defaults anyway.
        options.base_port = 40000 + static_cast<std::uint32_t>(::getpid() % 2000) * 12;
        auto written = write_testnet(options);
        ASSERT_TRUE(written.ok()) << joined(written.errors);
        net_ = *written.value;
        text_ = read_all(net_.cluster_file);
    }

    Outcome<ClusterConfig> with_table(const std::string& table) const {
        std::string text = text_;
        const auto start = text.find("\n[permissions]");
        const auto end = text.find("\n[[node]]");
        text.replace(start, end - start, "\n" + table);
        return parse_cluster_config(text, tmp_.path() / "cluster.toml");
    }

    std::string key_hex() const {
        return crypto::to_hex(crypto::SigningKey::generate().public_key());
    }

    TempDir tmp_;
    Testnet net_;
    std::string text_;
};

TEST_F(PermissionsConfig, testnet_writes_open_permissions_and_says_so) {
    EXPECT_TRUE(net_.permissions.open);
    EXPECT_NE(text_.find("[permissions]\n# open: every client key may read and write every key"),
              std::string::npos);
    auto cluster = load_cluster_config(net_.cluster_file);
    ASSERT_TRUE(cluster.ok()) << joined(cluster.errors);
    EXPECT_TRUE(cluster.value->permissions.open);
}

TEST_F(PermissionsConfig, closed_table_parses_into_grants) {
    const std::string a = key_hex(), c = key_hex();
    auto cluster =
        with_table("[permissions]\nopen = false\n\n[[permissions.client]]\npublic_key = \"" + a +
                   "\"\nread = [\"app/\"]\nwrite = [\"app/orders/\"]\n\n"
                   "[[permissions.client]]\npublic_key = \"" +
                   c + "\"\nread = [\"\"]\n");
    ASSERT_TRUE(cluster.ok()) << joined(cluster.errors);
    const auto& p = cluster.value->permissions;
    EXPECT_FALSE(p.open);
    ASSERT_EQ(p.clients.size(), 2u);
    crypto::Bytes raw;
    ASSERT_TRUE(crypto::from_hex(a, raw));
    crypto::PublicKey ka{};
    std::copy(raw.begin(), raw.end(), ka.begin());
    EXPECT_EQ(p.clients.at(ka).read, std::vector<Bytes>{b("app/")});
    EXPECT_EQ(p.clients.at(ka).write, std::vector<Bytes>{b("app/orders/")});
    EXPECT_TRUE(p.may_write(ka, b("app/orders/9")));
    EXPECT_FALSE(p.may_write(ka, b("app/x")));
    // A closed table with no clients at all is valid (nobody may do anything).
    EXPECT_TRUE(with_table("[permissions]\nopen = false\n").ok());
}

TEST_F(PermissionsConfig, bad_tables_are_reported_per_key) {
    const std::string k = key_hex();
    struct Case {
        std::string table;
        std::string expect;
    };
    const std::vector<Case> cases = {
        {"", "permissions: missing"},
        {"[permissions]\n", "permissions.open: required"},
        {"[permissions]\nopen = \"yes\"\n", "permissions.open: required"},
        {"[permissions]\nopen = true\nread = []\n", "permissions.read: unknown key"},
        {"[permissions]\nopen = true\n[[permissions.client]]\npublic_key = \"" + k + "\"\n",
         "open = true grants every client everything"},
        {"[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"abc\"\n",
         "permissions.client[0].public_key: expected 64 hex digits"},
        {"[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"" +
             std::string(64, 'f') + "\"\n",
         "not a valid Ed25519 public key"},
        {"[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"" + k +
             "\"\n[[permissions.client]]\npublic_key = \"" + k + "\"\n",
         "permissions.client[1].public_key: listed twice"},
        {"[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"" + k +
             "\"\nread = \"app/\"\n",
         "permissions.client[0].read: expected an array"},
        {"[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"" + k +
             "\"\nwrite = [\"a\", \"a\"]\n",
         "permissions.client[0].write[1]: \"a\" listed twice"},
        {"[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"" + k +
             "\"\nread = [1]\n",
         "permissions.client[0].read[0]: expected a string"},
        {"[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"" + k +
             "\"\nadmin = true\n",
         "permissions.client[0].admin: unknown key"},
    };
    for (const auto& c : cases) {
        auto cluster = with_table(c.table);
        EXPECT_FALSE(cluster.ok()) << c.table;
        EXPECT_TRUE(any_contains(cluster.errors, c.expect))
            << "expected \"" << c.expect << "\" for:\n"
            << c.table << "got:\n"
            << joined(cluster.errors);
    }
}

TEST_F(PermissionsConfig, permissions_are_covered_by_the_chain_id) {
    const std::string k = key_hex();
    auto a = with_table("[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"" + k +
                        "\"\nread = [\"app/\"]\n");
    auto c = with_table("[permissions]\nopen = false\n[[permissions.client]]\npublic_key = \"" + k +
                        "\"\nread = [\"app\"]\n");
    ASSERT_TRUE(a.ok() && c.ok());
    EXPECT_NE(a.value->chain_id, c.value->chain_id);
}

TEST_F(PermissionsConfig, testnet_writes_a_closed_table_from_a_permissions_file) {
    const std::string k = key_hex();
    const fs::path file = tmp_.path() / "perms.toml";
    test_util::write_all(file,
                         "[permissions]\nopen = false\n\n[[permissions.client]]\n"
                         "public_key = \"" +
                             k + "\"\nread = [\"app/\"]\nwrite = [\"app/\\\"q\\\"\"]\n");
    auto loaded = load_permissions_file(file);
    ASSERT_TRUE(loaded.ok()) << joined(loaded.errors);
    TestnetOptions options;
    options.dir = tmp_.path() / "closed";
    options.base_port = 45000;
    options.permissions = *loaded.value;
    auto written = write_testnet(options);
    ASSERT_TRUE(written.ok()) << joined(written.errors);
    EXPECT_FALSE(written.value->permissions.open);
    auto cluster = load_cluster_config(written.value->cluster_file);
    ASSERT_TRUE(cluster.ok()) << joined(cluster.errors);
    EXPECT_EQ(cluster.value->permissions, *loaded.value);
    // A permissions file holds nothing else.
    test_util::write_all(file, "n = 4\n[permissions]\nopen = true\n");
    auto extra = load_permissions_file(file);
    EXPECT_FALSE(extra.ok());
    EXPECT_TRUE(any_contains(extra.errors, "n: unknown key"));
}

TEST_F(PermissionsConfig, testnet_deals_private_curve_keys_that_tobd_checks) {
    auto cluster = load_cluster_config(net_.cluster_file);
    ASSERT_TRUE(cluster.ok());
    for (const auto& node : net_.nodes) {
        const fs::path key = node.dir / "curve.key";
        struct stat st {};
        ASSERT_EQ(::stat(key.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u);
        auto loaded = crypto::load_curve_key(key);
        ASSERT_TRUE(std::holds_alternative<crypto::CurveKeyPair>(loaded));
        EXPECT_EQ(std::get<crypto::CurveKeyPair>(loaded).public_key(),
                  cluster.value->members[node.id].curve_key);
        EXPECT_EQ(cluster.value->members[node.id].client_endpoint, node.client_endpoint);
    }
    // Node 0 with node 1's Curve key file: refused, naming the file and the member.
    auto config = load_node_config(net_.nodes[0].config_file);
    ASSERT_TRUE(config.ok());
    NodeConfig wrong = *config.value;
    wrong.curve_key_file = net_.nodes[1].dir / "curve.key";
    auto keys = load_node_keys(wrong, *cluster.value);
    EXPECT_FALSE(keys.ok());
    EXPECT_TRUE(any_contains(keys.errors, "is not node[0].curve_key")) << joined(keys.errors);
    // Two members with one Curve key: refused by the parser.
    std::string text = text_;
    const std::string k0 = crypto::to_hex(cluster.value->members[0].curve_key);
    const std::string k1 = crypto::to_hex(cluster.value->members[1].curve_key);
    text.replace(text.find("curve_key = \"" + k1), 13 + k1.size(), "curve_key = \"" + k0);
    auto dup = parse_cluster_config(text, net_.cluster_file);
    EXPECT_TRUE(any_contains(dup.errors, "node[1].curve_key: same key as node[0]"))
        << joined(dup.errors);
}

TEST(ClientAccess, local_reads_need_a_good_signature_the_connections_key_and_read_permission) {
    crypto::init();
    ClusterConfig cluster;
    cluster.chain_id.fill(7);
    const auto reader = crypto::SigningKey::generate();
    const auto stranger = crypto::SigningKey::generate();
    cluster.permissions.open = false;
    cluster.permissions.clients[reader.public_key()] = consensus::kv::ClientGrant{{b("app/")}, {}};
    const std::string conn =
        crypto::to_hex(crypto::CurveKeyPair::from_signing_key(reader).public_key());
    auto get = client::make_local_get(reader, cluster.chain_id, b("app/x"));
    EXPECT_FALSE(local_get_refusal(get, conn, cluster.chain_id, cluster.permissions).has_value());
    EXPECT_FALSE(local_get_refusal(get, "", cluster.chain_id, cluster.permissions)
                     .has_value());  // Curve off: no binding
    // Not readable, signed by an unknown key, replayed on another connection, forged.
    EXPECT_TRUE(local_get_refusal(client::make_local_get(reader, cluster.chain_id, b("other")),
                                  conn, cluster.chain_id, cluster.permissions));
    auto unknown = client::make_local_get(stranger, cluster.chain_id, b("app/x"));
    EXPECT_TRUE(local_get_refusal(
        unknown, crypto::to_hex(crypto::CurveKeyPair::from_signing_key(stranger).public_key()),
        cluster.chain_id, cluster.permissions));
    const std::string other_conn =
        crypto::to_hex(crypto::CurveKeyPair::from_signing_key(stranger).public_key());
    EXPECT_TRUE(local_get_refusal(get, other_conn, cluster.chain_id, cluster.permissions));
    auto forged = get;
    forged.key = b("app/y");
    EXPECT_TRUE(local_get_refusal(forged, conn, cluster.chain_id, cluster.permissions));
    // Another chain's signature does not verify here.
    auto foreign = client::make_local_get(reader, consensus::Digest{}, b("app/x"));
    EXPECT_TRUE(local_get_refusal(foreign, conn, cluster.chain_id, cluster.permissions));
    // The client endpoint admits the reader's derived Curve key only.
    const auto keys = permitted_client_curve_keys(cluster.permissions);
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(crypto::to_hex(*keys.begin()), conn);
}

}  // namespace
}  // namespace tob::daemon
