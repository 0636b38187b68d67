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
// a request that the state machine reports committed never enters, and committed
// ones leave after every delivered epoch. Requests submitted here are flooded to
// every peer in batches (at most flood_batch_max per envelope, and at every tick),
// so that a request given to one honest node reaches every honest pool.
//
// What a block holds
// ------------------
// Each node carries its own clients' load: its block holds, in order,
//   1. *aged* requests — in the pool for more than k = aged_epochs delivered
//      epochs — round-robin across clients, oldest first, in up to a quarter of
//      the byte budget;
//   2. local requests, oldest first;
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
// Work and the block timer: any uncommitted, not-in-flight request is *work*. The
// timer starts when work appears; a block is due when block_requests_max requests
// are proposable (local or aged) or the timer ran block_timer_ms.
//
// Bounds
// ------
//  - at most pool_requests_max requests (beyond: dropped; the client retries),
//    each at most request_bytes_max bytes (the codec's limit), so the pool holds
//    at most pool_requests_max · request_bytes_max bytes; bytes() reports the
//    encoded size actually held;
//  - in flight: digests of the requests of this node's blocks in the window, at
//    most W · block_requests_max;
//  - the verification cache: digests of the requests checked in the last
//    verified_epochs delivered epochs (copies of one request arrive within a few
//    epochs: by flood, in blocks, and in aged blocks k epochs later), and never
//    more than verified_cache_max (oldest dropped first); a dropped entry only
//    costs one more signature check;
//  - flood batch: at most flood_batch_max requests between two ticks.

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
    std::uint64_t block_timer_ms = 20;
    std::size_t verified_cache_max = std::size_t{1} << 18;
    Epoch verified_epochs = 16;  // the Replica uses aged_epochs + 2·W
    std::size_t flood_batch_max = 256;
};

class RequestPool {
  public:
    RequestPool(const PoolParams& params, const CryptoSuite& crypto);

    /// Well formed for this chain and validly signed by its client (cached).
    bool valid(const Request& request, const Digest& digest);

    /// Adds an uncommitted request (local: a client submitted it to this node; a
    /// pooled copy learnt by flood becomes local too). `delivered` dates it for
    /// aging. False if it was already pooled, is committed, or the pool is full.
    bool add(const Request& request, const Digest& digest, std::size_t encoded_bytes, bool local,
             Epoch delivered, std::uint64_t now_ms, const StateMachine& state);
    bool contains(const PublicKey& client, Nonce nonce) const {
        return ids_.count({client, nonce}) != 0;
    }
    /// Drops every pooled request the state machine reports committed.
    void remove_committed(const StateMachine& state);
    /// Epoch `delivered` was delivered: verification results older than
    /// verified_epochs expire.
    void delivered(Epoch delivered);

    // ---- proposing ---------------------------------------------------------------
    /// The requests of this node's next block (see the header comment).
    std::vector<Request> build_block(Epoch delivered) const;
    /// This node proposed `requests`: they are in flight; the timer restarts.
    void proposed(const std::vector<Request>& requests, std::uint64_t now_ms);
    /// The epoch of this node's block holding `requests` was delivered.
    void release(const std::vector<Request>& requests);
    /// Whether any pooled request is not in flight.
    bool has_work() const;
    /// Starts the block timer if there is work and it is not running; false if
    /// there is no work.
    bool note_work(std::uint64_t now_ms);
    /// A block is due: enough proposable requests, or the timer ran out.
    bool block_due(std::uint64_t now_ms, Epoch delivered) const;
    /// Counts a local submission; true once a block's worth arrived since the
    /// last proposal (the caller then checks whether a block is due).
    bool count_local() { return ++local_since_cut_ >= params_.limits.block_requests_max; }

    // ---- flooding -----------------------------------------------------------------
    /// Queues a new local request for the next flooded batch; true when the
    /// batch is full and should be sent now.
    bool queue_flood(const Request& request);
    /// The queued batch (nullopt if empty).
    std::optional<RequestBatch> take_flood();

    // ---- views --------------------------------------------------------------------
    std::size_t size() const { return entries_.size(); }
    std::size_t bytes() const { return bytes_; }
    std::size_t in_flight() const { return inflight_.size(); }
    std::size_t verified_cached() const { return verified_order_.size(); }

  private:
    struct Entry {
        Request request;
        std::size_t bytes = 0;
        Epoch added_at = 0;  // delivered epoch when it entered the pool
        bool local = false;  // submitted to this node by a client
        std::uint64_t seq = 0;
    };
    bool aged(const Entry& e, Epoch delivered) const {
        return delivered >= e.added_at + params_.aged_epochs;
    }

    PoolParams params_;
    const CryptoSuite& crypto_;
    std::map<Digest, Entry> entries_;
    std::map<std::pair<PublicKey, Nonce>, Digest> ids_;
    std::size_t bytes_ = 0;
    std::set<Digest> inflight_;  // in this node's own undelivered blocks
    std::set<Digest> verified_;
    std::deque<std::pair<Epoch, Digest>> verified_order_;  // in checking order
    Epoch delivered_ = 0;
    std::vector<Request> flood_;
    std::uint64_t seq_ = 0;
    std::optional<std::uint64_t> work_since_ms_;
    std::uint64_t local_since_cut_ = 0;  // local requests added since the last proposal
};

}  // namespace tob::consensus
