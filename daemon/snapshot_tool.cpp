// tobd --export-snapshot / --import-snapshot: see daemon/snapshot_tool.h.

#include "daemon/snapshot_tool.h"

#include <algorithm>
#include <ostream>
#include <system_error>

#include "consensus/kv/kv_machine.h"
#include "consensus/kv/rooted_storage.h"
#include "consensus/real_crypto.h"
#include "consensus/state_root.h"
#include "consensus/state_transfer.h"
#include "crypto/hash.h"
#include "daemon/snapshot_files.h"
#include "daemon/storage.h"

namespace tob::daemon {

namespace fs = std::filesystem;
using namespace tob::consensus;

namespace {

struct Checked {
    HeldCheckpoint held;
    CommitBody tuple;
    std::vector<BucketHash> hashes;
    std::uint64_t entries = 0, bytes = 0;
};

// Reads `file` completely and checks it against the cluster (see the header).
std::optional<Checked> check_file(const fs::path& file, const ClusterConfig& cluster,
                                  std::ostream& err) {
    Checked c;
    c.hashes.assign(kStateBuckets, BucketHash{});
    std::string order_problem;
    Bytes prev;
    std::uint32_t prev_bucket = 0;
    auto problem =
        SnapshotFiles::read_file(file, c.held, [&](std::uint32_t b, ByteView k, ByteView v) {
            if (state_bucket(k) != b) {
                order_problem = "an entry is filed in bucket " + std::to_string(b) +
                                " but belongs to bucket " + std::to_string(state_bucket(k));
                return false;
            }
            if (b == prev_bucket && !prev.empty() &&
                !std::lexicographical_compare(prev.begin(), prev.end(), k.begin(), k.end())) {
                order_problem = "keys out of order in bucket " + std::to_string(b);
                return false;
            }
            prev.assign(k.begin(), k.end());
            prev_bucket = b;
            c.hashes[b].add(k, v);
            ++c.entries;
            c.bytes += k.size() + v.size();
            return true;
        });
    if (problem) {
        err << *problem << "\n";
        return std::nullopt;
    }
    if (!order_problem.empty()) {
        err << file.string() << ": " << order_problem << "\n";
        return std::nullopt;
    }
    std::vector<PublicKey> members;
    for (const auto& m : cluster.members) members.push_back(m.public_key);
    RealCryptoSuite verify_only(members, cluster.coin_public_key(), std::nullopt, std::nullopt);
    auto tuple = verify_certificate(c.held.epoch, c.held.certificate, verify_only, cluster.n,
                                    cluster.t, cluster.chain_id, cluster.limits);
    if (!tuple) {
        err << file.string() << ": the file does not carry t+1 = " << cluster.t + 1
            << " valid COMMITs of this cluster (chain " << crypto::to_hex(cluster.chain_id)
            << ") on one checkpoint root for epoch " << c.held.epoch << "\n";
        return std::nullopt;
    }
    auto manifest = decode_manifest(c.held.manifest);
    if (!manifest || state_root(*manifest) != *tuple->checkpoint_root ||
        c.held.root != *tuple->checkpoint_root) {
        err << file.string() << ": the manifest is not the one the COMMITs sign\n";
        return std::nullopt;
    }
    for (std::uint32_t b = 0; b < kStateBuckets; ++b) {
        if (!c.hashes[b].matches((*manifest)[b])) {
            err << file.string() << ": bucket " << b << " does not match the signed root\n";
            return std::nullopt;
        }
    }
    c.tuple = *tuple;
    return c;
}

std::optional<std::unique_ptr<NodeStorage>> open_storage(const NodeConfig& node,
                                                         std::ostream& err) {
    auto storage = NodeStorage::open(node.data_dir);
    if (!storage.ok()) {
        for (const auto& e : storage.errors) err << e << "\n";
        return std::nullopt;
    }
    return std::move(*storage.value);
}

}  // namespace

int export_snapshot(const NodeConfig& node, const ClusterConfig& cluster, const fs::path& out_file,
                    std::ostream& out, std::ostream& err) {
    auto storage = open_storage(node, err);
    if (!storage) return 1;
    SnapshotFiles& files = (*storage)->kv().files();
    const auto held = files.complete();
    if (held.empty()) {
        err << "export-snapshot: " << node.data_dir.string()
            << " holds no stable checkpoint yet (the node writes one every checkpoint_interval = "
            << cluster.protocol.checkpoint_interval << " epochs once q COMMITs agree)\n";
        return 2;
    }
    const Epoch id = held.back();
    std::error_code ec;
    const fs::path tmp = out_file.string() + ".tmp";
    if (files.is_view(id)) {
        // A view is a database of the state's table files: write it out as a file.
        auto meta = files.meta(id);
        auto problem =
            meta ? SnapshotFiles::write_file(tmp, *meta,
                                             [&](std::uint32_t b, const kv::ScanFn& fn) {
                                                 if (!files.scan(id, b, {}, fn))
                                                     ec = std::make_error_code(std::errc::io_error);
                                             })
                 : std::optional<std::string>("the checkpoint vanished");
        if (problem || ec) {
            err << "export-snapshot: " << out_file.string() << ": "
                << (problem ? *problem : "reading checkpoint " + std::to_string(id) + " failed")
                << "\n";
            fs::remove(tmp, ec);
            return 1;
        }
    } else {
        fs::copy_file(*files.path(id), tmp, fs::copy_options::overwrite_existing, ec);
    }
    if (ec) {
        err << "export-snapshot: " << out_file.string() << ": " << ec.message() << "\n";
        return 1;
    }
    auto checked = check_file(tmp, cluster, err);
    if (!checked) {
        fs::remove(tmp, ec);
        return 2;
    }
    fs::rename(tmp, out_file, ec);
    if (ec) {
        err << "export-snapshot: " << out_file.string() << ": " << ec.message() << "\n";
        return 1;
    }
    out << "exported checkpoint " << checked->held.epoch << " (" << checked->entries << " entries, "
        << checked->bytes << " bytes, root " << crypto::to_hex(checked->held.root) << ", "
        << checked->held.certificate.size() << " COMMITs) to " << out_file.string() << "\n";
    return 0;
}

int import_snapshot(const NodeConfig& node, const ClusterConfig& cluster, const fs::path& in_file,
                    std::ostream& out, std::ostream& err) {
    auto checked = check_file(in_file, cluster, err);
    if (!checked) return 2;
    auto storage = open_storage(node, err);
    if (!storage) return 1;
    kv::RootedStorage rooted((*storage)->kv());
    const Epoch applied = kv::KvMachine(rooted, cluster.chain_id, cluster.limits).last_applied();
    if (applied >= checked->held.epoch) {
        err << "import-snapshot: the node is at epoch " << applied
            << ", at or past the file's checkpoint " << checked->held.epoch << ": nothing to do\n";
        return 3;
    }
    rooted.stage_begin();
    std::vector<StateEntry> batch;
    HeldCheckpoint again;
    auto problem =
        SnapshotFiles::read_file(in_file, again, [&](std::uint32_t, ByteView k, ByteView v) {
            batch.push_back({Bytes(k.begin(), k.end()), Bytes(v.begin(), v.end())});
            if (batch.size() >= 4096) {
                rooted.stage(batch);
                batch.clear();
            }
            return true;
        });
    if (problem || again != checked->held) {
        err << "import-snapshot: " << in_file.string() << " changed while being read\n";
        return 1;
    }
    rooted.stage(batch);
    rooted.install(checked->held.epoch, checked->tuple.state_digest, checked->hashes);
    // Keep the file as this node's servable copy of the checkpoint.
    std::error_code ec;
    const fs::path copy =
        (*storage)->data_dir() / "snapshots" / (std::to_string(checked->held.epoch) + ".snap");
    fs::copy_file(in_file, copy, fs::copy_options::overwrite_existing, ec);
    out << "imported checkpoint " << checked->held.epoch << " (" << checked->entries << " entries, "
        << checked->bytes << " bytes, root " << crypto::to_hex(checked->held.root) << ") into "
        << node.data_dir.string() << "; the node continues from epoch " << checked->held.epoch + 1
        << "\n";
    return 0;
}

}  // namespace tob::daemon
