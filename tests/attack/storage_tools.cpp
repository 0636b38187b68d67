// tobattack storage tools, run on a STOPPED node's data dir (the harness stops it):
//
//   signlog     one line per signed Block / SEEN / COMMIT record of the sign-log:
//               "KIND EPOCH SLOT BODY_DIGEST" (SLOT: the proposer for SEEN, else -).
//               Two dumps of one node that disagree on a (KIND, EPOCH, SLOT) are a
//               double signature (finding 8).
//   corrupt-kv  damages entries of the replicated state in the "kv" column family:
//               --variant dedup (default) truncates every dedup-table entry,
//               --variant out truncates every stored-outputs entry, --variant user
//               flips one byte of every user value (finding 11).
//   kv-count    counts the kv column family's entries: dedup, out, user.
//   proof-sizes the size of every stored epoch proof (finding 5).
//
// RocksDB is opened directly (not through NodeStorage) so the tools can iterate and
// write what the daemon never would.

#include <rocksdb/db.h>

#include <iostream>
#include <memory>

#include "daemon/storage.h"
#include "tests/attack/attacks.h"

namespace tob::attack {

using namespace tob::consensus;

namespace {

const std::string kDedup("\x00tob/dedup/", 11);
const std::string kOut("\x00tob/out/", 9);

bool starts_with(const rocksdb::Slice& s, const std::string& p) {
    return s.size() >= p.size() && std::memcmp(s.data(), p.data(), p.size()) == 0;
}

int signlog(const MemberIdentity& m) {
    auto storage = daemon::NodeStorage::open(m.node.data_dir);
    if (!storage.ok()) {
        for (const auto& e : storage.errors) std::cerr << "tobattack: " << e << "\n";
        return 1;
    }
    auto loaded = (*storage.value)->load_records();
    for (const auto& rec : loaded.records) {
        if (rec.type != DurableRecord::Type::Signed) continue;
        auto env = decode_envelope(rec.bytes, m.cluster.limits);
        if (!env) continue;
        const Envelope& e = env.value();
        const std::string d = crypto::to_hex(digest_of(e.body));
        if (e.kind == Kind::Block) {
            std::cout << "block " << e.epoch << " - " << d << "\n";
        } else if (e.kind == Kind::Seen) {
            auto sb = decode_seen(e.body, m.cluster.limits);
            if (sb)
                std::cout << "seen " << e.epoch << " " << sb.value().proposer << " " << d << "\n";
        } else if (e.kind == Kind::Commit) {
            std::cout << "commit " << e.epoch << " - " << d << "\n";
        }
    }
    return loaded.sign_log_ok ? 0 : 3;
}

struct RawDb {
    std::unique_ptr<rocksdb::DB> db;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::ColumnFamilyHandle* kv = nullptr;
    ~RawDb() {
        for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    }
};

bool open_raw(const MemberIdentity& m, RawDb& raw) {
    const std::string path = (m.node.data_dir / "db").string();
    std::vector<std::string> names;
    rocksdb::Options options;
    auto st = rocksdb::DB::ListColumnFamilies(options, path, &names);
    if (!st.ok()) {
        std::cerr << "tobattack: " << path << ": " << st.ToString() << "\n";
        return false;
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* db = nullptr;
    st = rocksdb::DB::Open(options, path, families, &raw.handles, &db);
    if (!st.ok()) {
        std::cerr << "tobattack: " << path << ": " << st.ToString() << "\n";
        return false;
    }
    raw.db.reset(db);
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == "kv") raw.kv = raw.handles[i];
    return raw.kv != nullptr;
}

int kv_tool(const MemberIdentity& m, const std::string& tool, const Common& opt) {
    RawDb raw;
    if (!open_raw(m, raw)) return 1;
    std::uint64_t dedup = 0, out = 0, user = 0, changed = 0;
    const std::string variant = opt.variant.empty() ? "dedup" : opt.variant;
    rocksdb::WriteBatch batch;
    // Both tools read the state where it lives: under L ‖ bucket u16 ‖ key, L the
    // live prefix ("\x00tobroot/live", absent: 0x10; consensus/kv/rooted_storage.h).
    char live = 0x10;
    if (std::string v;
        raw.db->Get(rocksdb::ReadOptions(), raw.kv, rocksdb::Slice("\x00tobroot/live", 13), &v)
            .ok() &&
        v.size() == 1)
        live = v[0];
    std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator(rocksdb::ReadOptions(), raw.kv));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
        const auto k = it->key();
        rocksdb::Slice logical = k;
        if (k.size() >= 3 && k[0] == live) logical = rocksdb::Slice(k.data() + 3, k.size() - 3);
        const bool is_dedup = starts_with(logical, kDedup), is_out = starts_with(logical, kOut);
        const bool is_user = logical.size() > 0 && logical[0] == 0x01;
        dedup += is_dedup;
        out += is_out;
        user += is_user;
        if (tool != "corrupt-kv" || (opt.count != 0 && changed >= opt.count)) continue;
        std::string v = it->value().ToString();
        if ((variant == "dedup" && is_dedup) || (variant == "out" && is_out)) {
            v.resize(v.size() / 2);  // a torn value: its length no longer parses
        } else if (variant == "user" && is_user && !v.empty()) {
            v[v.size() / 2] = static_cast<char>(v[v.size() / 2] ^ 0x20);
        } else {
            continue;
        }
        batch.Put(raw.kv, k, v);
        ++changed;
    }
    if (!it->status().ok()) std::cerr << "tobattack: iterator: " << it->status().ToString() << "\n";
    it.reset();
    if (changed > 0) {
        rocksdb::WriteOptions wo;
        wo.sync = true;
        auto st = raw.db->Write(wo, &batch);
        if (!st.ok()) {
            std::cerr << "tobattack: write: " << st.ToString() << "\n";
            return 1;
        }
    }
    report("kv dedup=" + std::to_string(dedup) + " out=" + std::to_string(out) +
           " user=" + std::to_string(user) + " corrupted=" + std::to_string(changed) +
           (tool == "corrupt-kv" ? " variant=" + variant : ""));
    return 0;
}

// The size of each stored epoch proof (its blocks, as the catch-up reply carries
// them), to compare with message_bytes_max: "proof EPOCH BYTES".
int proof_sizes(const MemberIdentity& m) {
    auto storage = daemon::NodeStorage::open(m.node.data_dir);
    if (!storage.ok()) {
        for (const auto& e : storage.errors) std::cerr << "tobattack: " << e << "\n";
        return 1;
    }
    auto loaded = (*storage.value)->load_records();
    std::uint64_t largest = 0;
    for (const auto& rec : loaded.records) {
        if (rec.type != DurableRecord::Type::Proof) continue;
        std::cout << "proof " << rec.epoch << " " << rec.bytes.size() << "\n";
        largest = std::max<std::uint64_t>(largest, rec.bytes.size());
    }
    report("largest_proof_bytes=" + std::to_string(largest) +
           " message_bytes_max=" + std::to_string(m.cluster.limits.message_bytes_max));
    return 0;
}

}  // namespace

int run_storage(const std::string& tool, const std::string& config, const Common& opt) {
    const MemberIdentity m = load_member(config);
    if (tool == "signlog") return signlog(m);
    if (tool == "proof-sizes") return proof_sizes(m);
    if (tool == "corrupt-kv" || tool == "kv-count") return kv_tool(m, tool, opt);
    report("error=unknown-storage-tool name=" + tool);
    return 2;
}

}  // namespace tob::attack
