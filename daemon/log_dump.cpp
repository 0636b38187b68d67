#include "daemon/log_dump.h"

#include <map>
#include <set>

#include "consensus/codec.h"
#include "consensus/kv_machine.h"
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

    std::map<Epoch, Bytes> proofs;
    std::map<Epoch, CommitBody> own;
    std::map<Epoch, std::map<Digest, Tuple>> tuples;
    for (const auto& rec : loaded.records) {
        if (rec.type == DurableRecord::Type::Proof) {
            proofs[rec.epoch] = rec.bytes;
            continue;
        }
        if (rec.type != DurableRecord::Type::Signed && rec.type != DurableRecord::Type::Commit)
            continue;
        auto env = decode_envelope(rec.bytes, cluster.limits);
        if (!env || env.value().kind != Kind::Commit) continue;
        auto cb = decode_commit(env.value().body, cluster.limits);
        if (!cb) continue;
        const Epoch e = env.value().epoch;
        if (env.value().sender == node.node_id) own[e] = cb.value();
        auto& t = tuples[e][commit_key(cb.value())];  // grouped as the core groups them
        t.body = cb.value();
        t.signers.insert(env.value().sender);
    }
    if (proofs.empty()) return 0;
    if (proofs.begin()->first != 1) {
        err << "dump-log: the archive starts at epoch " << proofs.begin()->first
            << ", not 1: cannot replay\n";
        return 2;
    }

    MemoryKvStorage memory;
    KvMachine machine(memory, cluster.chain_id, cluster.limits);
    Epoch expected = 1;
    for (const auto& [e, bytes] : proofs) {
        if (e != expected) {
            err << "dump-log: no proof for epoch " << expected << " (gap)\n";
            return 2;
        }
        ++expected;
        const CommitBody* tuple = nullptr;
        if (auto it = own.find(e); it != own.end()) {
            tuple = &it->second;
        } else if (auto ts = tuples.find(e); ts != tuples.end()) {
            for (const auto& [k, t] : ts->second)
                if (t.signers.size() >= cluster.t + 1) tuple = &t.body;
        }
        if (!tuple) {
            err << "dump-log: no COMMIT tuple for epoch " << e << "\n";
            return 2;
        }
        auto reply = decode_fetch_reply(bytes, cluster.limits);
        if (!reply) {
            err << "dump-log: epoch " << e << ": undecodable proof: " << reply.error() << "\n";
            return 2;
        }
        std::vector<Request> ordered;
        for (const auto& raw : reply.value().envelopes) {
            auto env = decode_envelope(raw, cluster.limits);
            if (!env) continue;
            auto block = decode_block(env.value().body, cluster.limits);
            if (!block) continue;
            for (auto& r : block.value().requests) ordered.push_back(std::move(r));
        }
        EpochResult result = machine.apply_epoch(e, tuple->output_digest, ordered);
        if (result.state_digest != tuple->state_digest) {
            err << "dump-log: epoch " << e << ": replayed state digest "
                << crypto::to_hex(result.state_digest) << " differs from the stored "
                << crypto::to_hex(tuple->state_digest) << "\n";
            return 3;
        }
        out << "{\"epoch\": " << e << ", \"output_digest\": \""
            << crypto::to_hex(tuple->output_digest) << "\", \"state_digest\": \""
            << crypto::to_hex(result.state_digest) << "\", \"requests\": [";
        for (std::size_t i = 0; i < result.results.size(); ++i) {
            const auto& r = result.results[i];
            const Request* req = r.position < ordered.size() ? &ordered[r.position] : nullptr;
            out << (i ? ", " : "") << "{\"client\": \"" << crypto::to_hex(r.client)
                << "\", \"nonce\": " << r.nonce << ", \"status\": \""
                << (r.malformed   ? "malformed"
                    : r.duplicate ? "duplicate"
                                  : "committed")
                << "\", \"ops\": [";
            if (req) {
                for (std::size_t k = 0; k < req->ops.size(); ++k) {
                    const Op& op = req->ops[k];
                    const bool has_value = op.type == OpType::Put || op.type == OpType::Cas;
                    out << (k ? ", " : "") << "{\"op\": \"" << op_name(op.type) << "\", \"key\": \""
                        << crypto::to_hex(op.key)
                        << "\", \"value\": " << (has_value ? hex_or_null(op.value) : "null")
                        << ", \"expected\": "
                        << (op.type == OpType::Cas ? hex_or_null(op.expected) : "null") << "}";
                }
            }
            out << "], \"outputs\": [";
            for (std::size_t k = 0; k < r.outputs.size(); ++k) {
                out << (k ? ", " : "") << "{\"ok\": " << (r.outputs[k].ok ? "true" : "false")
                    << ", \"value\": " << hex_or_null(r.outputs[k].value) << "}";
            }
            out << "]}";
        }
        out << "]}\n";
    }
    return 0;
}

}  // namespace tob::daemon
