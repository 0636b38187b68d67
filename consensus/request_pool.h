#pragma once
// RequestPool: the client requests a node knows and has not seen commit, and the
// choice of what goes into its next block (docs/protocol.md, "Client requests"
// and "Propose").
//
// Where requests come from
// ------------------------
// A request enters the pool when a client submits it to this node (*local*), when
// a peer floods it in a request batch, or when it sits in any valid block. Its
// client signature is checked once (valid(), cached by request digest, so the
// copies that arrive by flood, in blocks and in re-publications cost one check);
// a request that the state machine reports committed or expired (its expiry
// rules out the next epoch) never enters, and such ones leave after every
// delivered epoch. Requests submitted here are flooded to
// every peer in batches (at most flood_batch_max per envelope, and at every tick),
// so that a request given to one honest node reaches every honest pool.
//
// What a block holds
// ------------------
// Each node carries its own clients' load: its block holds, in order,
//   1. *aged* requests — in the pool for more than k = aged_epochs delivered
//      epochs — round-robin across clients, oldest first, in up to a quarter of
//      the byte budget;
//   2. local requests, round-robin across clients (each client's oldest first;
//      one that does not fit the byte budget is passed over), so that one
//      client's deep backlog cannot keep the others' requests out of every block;
//   3. more aged requests, round-robin, in the rest of the budget.
// Requests learnt only by flooding wait until they are aged. Why this starves no
// request: the adversary may keep up to t honest blocks out of every epoch (S
// needs only n − t members), so the block of the node a client chose may never be
// in S. But flooding puts the request into every honest pool, and once it has aged
// there every honest block reserves space for it; S always holds at least
// n − 2t ≥ t + 1 ≥ 1 honest blocks, so one of them carries it. The reserved part
// is a quarter, so local load keeps three quarters of every block; round-robin
// across clients keeps one client with a deep backlog from filling the quarter
// alone (oldest first within a client).
// A request in one of this node's own undelivered blocks (*in flight*) is not
// proposed again; it becomes proposable when that block's epoch is delivered
// without it.
//
// Work and the block timer: any uncommitted request that is neither in flight nor
// in another node's block of an undelivered epoch this node joined is *work*.
// A block is due when block_requests_max requests are proposable (local or
// aged): that always, even while this node's previous block is in flight.
// Otherwise only while the node is *idle* (none of its own blocks in an
// undelivered epoch): at once when a request is proposable, and after
// block_timer_ms of holding only other nodes' work (requests learnt by flood),
// which joins an epoch for them if their own proposer's block does not come.
// So a lone request is proposed at once, and what arrives while this node's
// block is being agreed on waits and goes into one block when that epoch is
// delivered (docs/decisions.md, "Pipelining only for full blocks" and "Cutting
// blocks at once when idle, again"). An idle node with work that receives a
// peer's block for the next epoch joins that epoch at once (Replica). (Without
// the exception for other nodes' blocks, every node that learnt a request by
// flood cut an empty block, and again after each of its proposals, while the
// epoch holding the request was still running: about 3.5 epochs per request at
// low load. A request in another block becomes work again once that epoch is
// delivered without it, so a block left out of its epoch delays the request by
// one epoch at most; docs/decisions.md.)
//
// Bounds and fairness
// --------------------
//  - at most pool_requests_max requests and pool_bytes_max encoded bytes
//    (bytes() reports what is held). When a new request does not fit, the
//    client holding the most bytes gives way if it holds more than the
//    newcomer's client would after adding it: its newest request that is not in
//    flight is evicted, until the new one fits (max-min fairness: one client, or
//    a few, cannot crowd the others out, however many requests they send). If
//    no such client is left, the new request is refused with
//    Admission::Overloaded, which the shell turns into an answer to the client
//    (never a silent drop). An evicted request is only forgotten by this node:
//    its client retries, and copies in blocks are untouched;
//  - in flight: digests of the requests of this node's blocks in the window, at
//    most W · block_requests_max;
//  - the verification cache: digests of the requests checked in the last
//    verified_epochs delivered epochs (copies of one request arrive within a few
//    epochs: by flood, in blocks, and in aged blocks k epochs later), and never
//    more than verified_cache_max (oldest dropped first); a dropped entry only
//    costs one more signature check;
//  - flood batch: at most flood_batch_max requests between two ticks, and
//    never more bytes than fit in one message (message_bytes_max less the
//    envelope): a larger batch is split, since peers refuse bigger frames.
//  - in other blocks: digests of requests in other nodes' blocks of undelivered
//    epochs in the window, at most W · n · block_requests_max, dropped at delivery.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "consensus/crypto_suite.h"
#include "consensus/messages.h"
#include "consensus/state_machine.h"

namespace tob::consensus {

struct PoolParams {
    Digest chain_id{};
    Limits limits;
    std::uint32_t aged_epochs = 8;  // k
    std::uint32_t pool_requests_max = 100000;
    std::size_t pool_bytes_max = std::size_t{256} << 20;
    std::uint64_t block_timer_ms = 20;
    std::size_t verified_cache_max = std::size_t{1} << 18;
    Epoch verified_epochs = 16;  // the Replica uses aged_epochs + 2·W
    std::size_t flood_batch_max = 256;
};

/// What became of a request offered to the pool.
enum class Admission : std::uint8_t {
    Added = 1,       // new in the pool
    Known = 2,       // already pooled (a copy; a local one marks the entry local)
    Committed = 3,   // the state machine reports it committed
    Overloaded = 4,  // full, and its client already holds at least a fair share
    Invalid = 5,     // (Replica::handle_request) bad signature, chain id or limits
    Expired = 6,     // its expiry rules out the next epoch (StateMachine::expired)
};
const char* to_string(Admission a);

class RequestPool {
  public:
    RequestPool(const PoolParams& params, const CryptoSuite& crypto);

    /// Well formed for this chain and validly signed by its client (cached).
    bool valid(const Request& request, const Digest& digest);

    /// Adds an uncommitted request (local: a client submitted it to this node; a
    /// pooled copy learnt by flood becomes local too). `delivered` dates it for
    /// aging. May evict other clients' requests (see "Bounds and fairness").
    /// `movable` (if given) is `request` itself, which the pool may move from
    /// when it keeps the request (the caller does not need it afterwards).
    Admission add(const Request& request, const Digest& digest, std::size_t encoded_bytes,
                  bool local, Epoch delivered, std::uint64_t now_ms, const StateMachine& state,
                  Request* movable = nullptr);
    bool contains(const PublicKey& client, Nonce nonce) const {
        return ids_.count({client, nonce}) != 0;
    }
    /// Holds a request of the same client and nonce with the same signature
    /// (a flooded copy; checked without hashing the request).
    bool holds_copy(const Request& request) const;
    /// Drops every pooled request the state machine reports committed, or
    /// expired (it can no longer commit in the next epoch).
    void remove_committed(const StateMachine& state);
    /// The same after an epoch that applied `applied`, without asking the state
    /// about every pooled request: only the clients with a request in `applied`
    /// can have one newly committed, and expiry goes by the pool's expiry index,
    /// lowest first (StateMachine::expired is monotone in the epoch). O(those
    /// clients' entries + the expired ones).
    void remove_applied(const StateMachine& state, const std::vector<Request>& applied);
    /// Epoch `delivered` was delivered: verification results older than
    /// verified_epochs expire.
    void delivered(Epoch delivered);
    /// The results of a delivered epoch: a request skipped for good (malformed
    /// other than for a full epoch, or forbidden) leaves the pool and its later
    /// copies are refused (Admission::Invalid) for verified_epochs, as
    /// committed ones are. Without this such a request stayed, was proposed again
    /// in every epoch until it expired and cost every node its work each time
    /// (attack big_outputs, docs/attacks.md). A request skipped because the epoch
    /// was full stays: it fits a later epoch.
    void settle(const std::vector<RequestResult>& results);
    std::size_t settled() const { return settled_order_.size(); }

    // ---- proposing ---------------------------------------------------------------
    /// The requests of this node's next block (see the header comment).
    std::vector<Request> build_block(Epoch delivered) const;
    /// This node proposed the requests of these digests (digest_of(encode(r))):
    /// they are in flight; the timer restarts.
    void proposed(const std::vector<Digest>& digests, std::uint64_t now_ms);
    /// The epoch of this node's block holding the requests of these digests was
    /// delivered.
    void release(const std::vector<Digest>& digests);
    /// Another node's block of undelivered epoch `e` holds these requests (digest,
    /// encoded size): until `e` is delivered they are not work.
    void in_block(Epoch e, const std::vector<std::pair<Digest, std::size_t>>& requests);
    /// This node has joined (proposed in) every epoch up to `e`.
    void joined(Epoch e) { joined_ = std::max(joined_, e); }
    /// Whether any pooled request is not in flight.
    bool has_work() const;
    /// Starts the block timer if there is work and it is not running; false if
    /// there is no work.
    bool note_work(std::uint64_t now_ms);
    /// A block is due: enough proposable requests for a full block; or, while
    /// `idle` (no block of this node in an undelivered epoch), a proposable
    /// request, or the block timer ran out on other nodes' work.
    bool block_due(std::uint64_t now_ms, Epoch delivered, bool idle = true) const;
    /// Requests that could go into a block now (not in flight; local, or aged at
    /// `delivered`), from the counters; proposable_by_scan() counts the same by
    /// walking the pool (for tests).
    std::size_t proposable(Epoch delivered, std::size_t enough = SIZE_MAX) const;
    std::size_t proposable_by_scan(Epoch delivered) const;
    /// Counts a local submission; true once a block's worth arrived since the
    /// last proposal (the caller then checks whether a block is due).
    bool count_local() { return ++local_since_cut_ >= params_.limits.block_requests_max; }

    // ---- flooding -----------------------------------------------------------------
    /// Queues a new local request for the next flooded batch; true when a
    /// batch is full (by count or bytes) and should be sent now.
    bool queue_flood(const Request& request, std::size_t encoded_bytes);
    /// The next batch of queued requests (nullopt if none): at most
    /// flood_batch_max requests whose batch fits in one message with its
    /// envelope; call until nullopt to send them all.
    std::optional<RequestBatch> take_flood();

    // ---- views --------------------------------------------------------------------
    std::size_t size() const { return entries_.size(); }
    std::size_t bytes() const { return bytes_; }
    std::size_t in_flight() const { return inflight_.size(); }
    std::size_t verified_cached() const { return verified_order_.size(); }
    /// Encoded bytes `client` holds in the pool.
    std::size_t client_bytes(const PublicKey& client) const;
    std::uint64_t evicted() const { return evicted_; }

  private:
    struct Entry {
        Request request;
        std::size_t bytes = 0;
        Epoch added_at = 0;  // delivered epoch when it entered the pool
        bool local = false;  // submitted to this node by a client
        std::uint64_t seq = 0;
    };
    static std::vector<const Entry*> round_robin(const std::vector<const Entry*>& list);
    bool aged(const Entry& e, Epoch delivered) const {
        return delivered >= e.added_at + params_.aged_epochs;
    }
    // The entries that are not in flight, counted as they change, so that
    // block_due costs O(epochs the pool spans), not O(pool), on every step (a pool
    // of 100,000 requests would otherwise be scanned on every message).
    void count_ready(const Digest& d, const Entry& e, int sign);
    std::size_t local_ready_ = 0;               // local, not in flight
    std::map<Epoch, std::size_t> young_ready_;  // not local, not in flight: by added_at

    /// Frees room for `bytes` more of `client`'s requests by evicting from
    /// clients that hold more (see the header comment); false if it cannot.
    bool make_room(const PublicKey& client, std::size_t bytes);
    void erase(std::map<Digest, Entry>::iterator it);

    struct ClientUse {
        std::size_t bytes = 0;
        std::map<std::uint64_t, Digest> by_seq;  // the client's entries, oldest first
    };

    PoolParams params_;
    const CryptoSuite& crypto_;
    std::map<Digest, Entry> entries_;
    std::map<PublicKey, ClientUse> clients_;
    std::set<std::pair<std::size_t, PublicKey>> by_use_;  // (bytes held, client)
    std::uint64_t evicted_ = 0;
    std::map<std::pair<PublicKey, Nonce>, Digest> ids_;
    std::size_t bytes_ = 0;
    std::set<Digest> inflight_;                     // in this node's own undelivered blocks
    std::set<std::pair<Epoch, Digest>> by_expiry_;  // every entry, by its request's expiry
    std::map<Digest, Epoch> in_others_;  // in other nodes' blocks: the highest such epoch
    // Only in an epoch this node joined: one member's block for an epoch nobody
    // else runs must not hold a request back (it would wait for that epoch forever).
    bool pending_elsewhere(const Digest& d) const {
        auto it = in_others_.find(d);
        return it != in_others_.end() && it->second > delivered_ && it->second <= joined_;
    }
    Epoch joined_ = 0;  // this node proposed in every epoch up to here
    std::set<Digest> verified_;
    std::deque<std::pair<Epoch, Digest>> verified_order_;  // in checking order
    // Requests skipped for good (settle()), dropped like verified_.
    std::set<Digest> settled_;
    std::deque<std::pair<Epoch, Digest>> settled_order_;
    Epoch delivered_ = 0;
    std::size_t flood_budget() const;
    std::vector<std::pair<Request, std::size_t>> flood_;  // (request, encoded bytes)
    std::size_t flood_bytes_ = 0;
    std::uint64_t seq_ = 0;
    std::optional<std::uint64_t> work_since_ms_;
    std::uint64_t local_since_cut_ = 0;  // local requests added since the last proposal
};

}  // namespace tob::consensus
