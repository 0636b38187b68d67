#include "daemon/log_dump.h"

#include <map>
#include <set>

#include "consensus/catch_up.h"
#include "consensus/codec.h"
#include "consensus/kv/kv_machine.h"
#include "consensus/replica.h"
#include "crypto/hash.h"
#include "daemon/storage.h"

namespace tob::daemon {

using namespace tob::consensus;

namespace {

std::string hex_or_null(const std::optional<Bytes>& b) {
    return b ? "\"" + crypto::to_hex(*b) + "\"" : "null";
}

const char* op_name(OpType t) {
    switch (t) {
        case OpType::Put:
            return "put";
        case OpType::Del:
            return "del";
        case OpType::Cas:
            return "cas";
        case OpType::Get:
            return "get";
    }
    return "?";
}

struct Tuple {
    CommitBody body;
    std::set<NodeId> signers;
};

// What the replay needs from the stored records: the proofs (blocks of each
// delivered epoch), the node's own COMMITs, and every COMMIT grouped by its
// (output digest, state digest) tuple.
struct Archive {
    std::map<Epoch, Bytes> proofs;
    std::map<Epoch, CommitBody> own;
    std::map<Epoch, std::map<Digest, Tuple>> tuples;

    // Epoch e's COMMIT tuple: the node's own, or one that t+1 signers agree on.
    const CommitBody* tuple_for(Epoch e, std::uint32_t t) const {
        if (auto it = own.find(e); it != own.end()) return &it->second;
        const CommitBody* found = nullptr;
        if (auto ts = tuples.find(e); ts != tuples.end()) {
            for (const auto& [k, tuple] : ts->second)
                if (tuple.signers.size() >= t + 1) found = &tuple.body;
        }
        return found;
    }
};

Archive collect_archive(const std::vector<DurableRecord>& records, const NodeConfig& node,
                        const Limits& limits) {
    Archive archive;
    for (const auto& rec : records) {
        if (rec.type == DurableRecord::Type::Proof) {
            archive.proofs[rec.epoch] = rec.bytes;
            continue;
        }
        if (rec.type != DurableRecord::Type::Signed && rec.type != DurableRecord::Type::Commit)
            continue;
        auto env = decode_envelope(rec.bytes, limits);
        if (!env || env.value().kind != Kind::Commit) continue;
        auto cb = decode_commit(env.value().body, limits);
        if (!cb) continue;
        const Epoch e = env.value().epoch;
        if (env.value().sender == node.node_id) archive.own[e] = cb.value();
        auto& t = archive.tuples[e][commit_key(cb.value())];  // grouped as the core groups them
        t.body = cb.value();
        t.signers.insert(env.value().sender);
    }
    return archive;
}

// The requests of a proof's blocks, in delivery order (undecodable parts skipped).
std::vector<Request> proof_requests(const FetchReply& reply, const Limits& limits) {
    std::vector<Request> ordered;
    for (const auto& raw : reply.envelopes) {
        auto env = decode_envelope(raw, limits);
        if (!env) continue;
        auto block = decode_block(env.value().body, limits);
        if (!block) continue;
        for (auto& r : block.value().requests) ordered.push_back(std::move(r));
    }
    return ordered;
}

void print_ops(std::ostream& out, const Request& req) {
    for (std::size_t k = 0; k < req.ops.size(); ++k) {
        const Op& op = req.ops[k];
        const bool has_value = op.type == OpType::Put || op.type == OpType::Cas;
        out << (k ? ", " : "") << "{\"op\": \"" << op_name(op.type) << "\", \"key\": \""
            << crypto::to_hex(op.key)
            << "\", \"value\": " << (has_value ? hex_or_null(op.value) : "null")
            << ", \"expected\": " << (op.type == OpType::Cas ? hex_or_null(op.expected) : "null")
            << (op.previous ? ", \"previous\": true" : "") << "}";
    }
}

// One JSON line: the epoch, its digests and every request with its ops and outputs.
void print_epoch(std::ostream& out, Epoch e, const CommitBody& tuple, const EpochResult& result,
                 const std::vector<Request>& ordered) {
    out << "{\"epoch\": " << e << ", \"output_digest\": \"" << crypto::to_hex(tuple.output_digest)
        << "\", \"state_digest\": \"" << crypto::to_hex(result.state_digest)
        << "\", \"requests\": [";
    for (std::size_t i = 0; i < result.results.size(); ++i) {
        const auto& r = result.results[i];
        out << (i ? ", " : "") << "{\"client\": \"" << crypto::to_hex(r.client)
            << "\", \"nonce\": " << r.nonce << ", \"status\": \""
            << (r.malformed   ? "malformed"
                : r.forbidden ? "forbidden"
                : r.duplicate ? "duplicate"
                              : "committed")
            << "\", \"ops\": [";
        if (r.position < ordered.size()) print_ops(out, ordered[r.position]);
        out << "], \"outputs\": [";
        for (std::size_t k = 0; k < r.outputs.size(); ++k) {
            out << (k ? ", " : "") << "{\"ok\": " << (r.outputs[k].ok ? "true" : "false")
                << ", \"value\": " << hex_or_null(r.outputs[k].value) << "}";
        }
        out << "]}";
    }
    out << "]}\n";
}

// Replays the archive from epoch 1 and prints every epoch; the exit code of dump_log.
int replay(const Archive& archive, const ClusterConfig& cluster, std::ostream& out,
           std::ostream& err) {
    if (archive.proofs.empty()) return 0;
    if (archive.proofs.begin()->first != 1) {
        err << "dump-log: the archive starts at epoch " << archive.proofs.begin()->first
            << ", not 1: cannot replay\n";
        return 2;
    }
    kv::MemoryKvStorage memory;
    kv::KvMachine machine(memory, cluster.chain_id, cluster.limits, cluster.permissions,
                          cluster.protocol.request_expiry_max_epochs);
    Epoch expected = 1;
    for (const auto& [e, bytes] : archive.proofs) {
        if (e != expected) {
            err << "dump-log: no proof for epoch " << expected << " (gap)\n";
            return 2;
        }
        ++expected;
        const CommitBody* tuple = archive.tuple_for(e, cluster.t);
        if (!tuple) {
            err << "dump-log: no COMMIT tuple for epoch " << e << "\n";
            return 2;
        }
        auto reply = decode_proof_record(bytes, cluster.limits);
        if (!reply) {
            err << "dump-log: epoch " << e << ": undecodable proof: " << reply.error() << "\n";
            return 2;
        }
        const std::vector<Request> ordered = proof_requests(reply.value(), cluster.limits);
        EpochResult result = machine.apply_epoch(e, tuple->output_digest, ordered);
        if (result.state_digest != tuple->state_digest) {
            err << "dump-log: epoch " << e << ": replayed state digest "
                << crypto::to_hex(result.state_digest) << " differs from the stored "
                << crypto::to_hex(tuple->state_digest) << "\n";
            return 3;
        }
        print_epoch(out, e, *tuple, result, ordered);
    }
    return 0;
}

}  // namespace

int dump_log(const NodeConfig& node, const ClusterConfig& cluster, std::ostream& out,
             std::ostream& err) {
    auto storage = NodeStorage::open(node.data_dir);
    if (!storage.ok()) {
        for (const auto& e : storage.errors) err << e << "\n";
        return 1;
    }
    auto loaded = (*storage.value)->load_records();
    for (const auto& p : loaded.problems) err << p << "\n";
    return replay(collect_archive(loaded.records, node, cluster.limits), cluster, out, err);
}

}  // namespace tob::daemon
