#pragma once
// ClientService: the client plane of one tobd node (cli/client/protocol.h,
// docs/client.md), on the event-loop thread.
//
//   on_frame      a client frame within its source's byte rate
//                 (daemon/client_rate.h; beyond it: Overloaded, nothing decoded)
//                 goes to the verification workers, in the client's own bounded queue (decoded
//                 there; a Submit's signature checked there); a full queue is answered Overloaded.
//                 Back from the workers, a status query is answered, a local read too when it is
//                 signed by a client that may read the key over its own connection
//                 (daemon/client_access.h); anything else is refused with an
//                 error and counted
//   on_verified   a checked request: a (client, nonce) the dedup table already
//                 holds is answered from it; otherwise it is remembered as pending
//                 and the node hands it to the core
//   on_committed  a delivered epoch: every pending request it ordered is
//                 answered with a reply (committed, malformed, forbidden, or the
//                 stored outcome of a retry's first copy); the Curve connection
//                 authenticates it, so only a plaintext test node signs it
//                 (docs/client.md, "Reply authentication")
//   expire        pending requests older than five minutes are forgotten (the
//                 client retries elsewhere; a late commit is then not answered
//                 here)
//
// Bounds: at most pending_max pending requests and pending_bytes_max bytes of
// them (both from the memory budget), each with at most 16 client connections
// to answer; beyond that a new request is refused as overloaded.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cli/client/protocol.h"
#include "consensus/kv/kv_machine.h"
#include "daemon/client_rate.h"
#include "daemon/config.h"
#include "daemon/memory_budget.h"
#include "daemon/node_metrics.h"
#include "daemon/transport.h"
#include "daemon/verify_pool.h"

namespace tob::daemon {

class ClientService {
  public:
    struct Options {
        consensus::NodeId self = 0;
        consensus::Digest chain_id{};
        consensus::Limits limits;     // decoding client messages
        std::size_t pending_max = 0;  // requests waiting for their outcome
        // Bytes of the pending table (memory budget, daemon/memory_budget.h).
        std::uint64_t pending_bytes_max = 16u << 20;
        // Who may read what (local reads); from the cluster file.
        consensus::kv::Permissions permissions = consensus::kv::Permissions::open_to_all();
        // Bytes per second and burst of one client source (node config
        // limits.client_bytes_per_s), and how many sources are remembered
        // (memory budget).
        std::uint64_t client_bytes_per_s = 256u << 10;
        std::uint64_t client_burst_bytes = 2u << 20;
        std::size_t client_rate_entries = 16384;
        // Each frame is charged at least this many bytes of the rate
        // (client_bytes_per_s / limits.client_requests_per_s).
        std::uint64_t client_frame_cost_min = 1024;
        // Client keys the node's state does not know that one source may bring
        // per second, and its burst (limits.client_new_keys_per_s; 0: no limit).
        std::uint64_t client_new_keys_per_s = 16;
        std::uint64_t client_new_keys_burst = 64;
        // Sign replies: only on plaintext test connections (tobd --test-no-curve);
        // a Curve connection authenticates the node to the client already.
        bool sign_replies = false;
    };
    /// Every reference must outlive the service. `status` builds the answer to a
    /// status query; `halted` refuses submissions while the node is halted.
    ClientService(Options options, const crypto::SigningKey& key, consensus::kv::KvMachine& kv,
                  Transport& transport, VerifyPool& pool, NodeMetrics& metrics,
                  const std::atomic<bool>& halted, std::function<client::StatusMsg()> status);

    /// `peer_key`: the connection's Curve key in hex (empty without Curve).
    /// Within the source's byte rate the frame goes to the verification
    /// workers (decoded there); over the rate, or with the source's queue
    /// full, it is answered Overloaded at once.
    void on_frame(const std::string& routing_id, const std::string& peer_key, consensus::Bytes body,
                  std::uint64_t now_ms);
    /// A client request back from verification. True if the node must hand
    /// `*r.request` to the core (checked, not yet committed, now pending).
    bool on_verified(const VerifyResult& r, std::uint64_t now_ms);
    /// The core refused a pending request because the pool is full and this
    /// client holds its share: every connection waiting for it hears Overloaded
    /// now, rather than waiting for a reply that never comes.
    void on_overloaded(const consensus::Request& req);
    void on_committed(const consensus::EpochResult& epoch, std::uint64_t now_ms);
    void expire(std::uint64_t now_ms);

    std::size_t pending() const { return pending_.size(); }
    std::uint64_t pending_bytes() const { return pending_bytes_; }
    std::uint64_t rates_bytes() const { return rates_.size() * kClientRateEntryBytes; }

  private:
    struct Key {
        consensus::PublicKey client;
        consensus::Nonce nonce;
        auto operator<=>(const Key&) const = default;
    };
    struct Pending {
        std::vector<std::string> routing_ids;
        consensus::Digest request_digest{};
        std::uint64_t since_ms = 0;
        std::size_t ops = 0;
    };

    void reply(const std::string& id, const client::ClientMessage& m);
    // Whether `client` is unknown here: no dedup entry, no pending request.
    bool new_client(const consensus::PublicKey& client) const;
    void on_message(const std::string& id, const std::string& peer_key,
                    const client::ClientMessage& msg);
    std::map<Key, Pending>::iterator forget(std::map<Key, Pending>::iterator it);
    void send_reply(const std::string& id, client::ReplyMsg& reply);
    void answer_from_table(const std::string& id, const consensus::Request& req,
                           const consensus::Digest& rd);
    client::ReplyMsg committed_reply(const consensus::EpochResult& epoch,
                                     const consensus::RequestResult& r, const Pending& p,
                                     std::uint64_t now_ms);

    Options options_;
    const crypto::SigningKey& key_;
    consensus::kv::KvMachine& kv_;
    Transport& transport_;
    VerifyPool& pool_;
    NodeMetrics& metrics_;
    const std::atomic<bool>& halted_;
    std::function<client::StatusMsg()> status_;
    ClientRates rates_;
    std::map<Key, Pending> pending_;
    std::uint64_t pending_bytes_ = 0;  // kPendingEntryBytes per entry + its routing ids
};

}  // namespace tob::daemon
