#pragma once
// Signature verification off the event loop (docs/daemon.md, "Threads and the
// loop": one event-loop thread plus signature-verification workers).
//
// The consensus core verifies what it needs through a CryptoSuite, synchronously.
// To keep that work off the event loop, the daemon gives the core a
// CachingCryptoSuite: a RealCryptoSuite whose successful verifications are
// remembered in a shared VerifyCache keyed by a digest of (what, signer, tag,
// payload, signature). Worker threads run the same checks first — the envelope
// signature (open_envelope) and, by kind, everything inside it: client request
// signatures in blocks and flooded batches, SEEN signatures in certificates, coin
// shares in ABA bundles, and the envelopes inside fetch replies — so when the core
// repeats a check on the loop it is a cache hit (a hash of ~100 bytes instead of
// 71 µs for Ed25519 or 300 µs for a coin share).
//
// The cache only ever holds "this exact signature verified": a hit returns the
// same answer as a fresh verification would, so the core stays deterministic and
// a forged input is still rejected (it was never inserted). Positives are cached
// in two generations (the older dropped when the newer fills); failures are
// remembered too, in a bounded least-recently-used memory, so that a resent
// forgery is refused without a second check: a failed verification is as
// deterministic as a successful one. Both bounds come from the memory budget.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cli/client/protocol.h"
#include "consensus/codec.h"
#include "consensus/real_crypto.h"
#include "consensus/replica.h"

namespace tob::daemon {

class FailedDigests;

class VerifyCache {
  public:
    explicit VerifyCache(std::size_t generation_max = 1u << 18, std::size_t failed_max = 32768);
    ~VerifyCache();
    void set_generation_max(std::size_t entries);
    bool contains(const consensus::Digest& key) const;
    void insert(const consensus::Digest& key);
    /// Entries held now (both generations).
    std::size_t size() const;
    /// A negative memory: verifications that failed (bounded, least recent
    /// dropped first), so the loop never repeats a failed check.
    FailedDigests& failed() { return *failed_; }
    std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }

  private:
    struct DigestHash {
        std::size_t operator()(const consensus::Digest& d) const;
    };
    mutable std::mutex mu_;
    std::size_t generation_max_;
    std::unordered_set<consensus::Digest, DigestHash> current_, previous_;
    mutable std::atomic<std::uint64_t> hits_{0};
    std::unique_ptr<FailedDigests> failed_;
};

/// RealCryptoSuite with a positive-result cache in front of every verification.
class CachingCryptoSuite final : public consensus::CryptoSuite {
  public:
    CachingCryptoSuite(consensus::RealCryptoSuite real, VerifyCache& cache)
        : real_(std::move(real)), cache_(cache) {}

    consensus::Signature sign(std::string_view tag, consensus::ByteView payload) const override {
        return real_.sign(tag, payload);
    }
    bool verify(consensus::NodeId signer, std::string_view tag, consensus::ByteView payload,
                const consensus::Signature& sig) const override;
    bool verify_client(const consensus::PublicKey& client, std::string_view tag,
                       consensus::ByteView payload, const consensus::Signature& sig) const override;
    bool verify_request(const consensus::Request& r,
                        const consensus::Digest& digest) const override;
    consensus::Bytes coin_share(consensus::ByteView name) const override {
        return real_.coin_share(name);
    }
    bool verify_coin_share(consensus::NodeId from, consensus::ByteView name,
                           consensus::ByteView share) const override;
    std::optional<bool> combine_coin(
        consensus::ByteView name,
        const std::map<consensus::NodeId, consensus::Bytes>& shares) const override {
        return real_.combine_coin(name, shares);
    }

  private:
    consensus::RealCryptoSuite real_;
    VerifyCache& cache_;
};

/// Bounded memory of digests whose check failed (least recently used dropped
/// first): a resend of the same bytes costs a hash and a lookup.
class FailedDigests {
  public:
    explicit FailedDigests(std::size_t entries_max) : max_(entries_max) {}
    bool contains(const consensus::Digest& d);  // refreshes its place
    void insert(const consensus::Digest& d);
    std::size_t size() const;

  private:
    struct DigestHash {
        std::size_t operator()(const consensus::Digest& d) const;
    };
    mutable std::mutex mu_;
    std::size_t max_;
    std::list<consensus::Digest> order_;  // most recent first
    std::unordered_map<consensus::Digest, std::list<consensus::Digest>::iterator, DigestHash>
        where_;
};

/// What a worker hands back to the loop.
struct VerifyResult {
    enum class Source : std::uint8_t { PubSub, Peer, Client };
    Source source = Source::PubSub;
    consensus::Digest raw_digest{};   // digest of the raw frame (duplicate suppression)
    consensus::Digest body_digest{};  // Block envelopes: digest of the envelope body
    // Block and request-batch envelopes: each request's digest and encoded size, as
    // the worker computed them to check its signature (handed to the core), and the
    // decoded body (consensus::Precomputed: the core does not decode it again).
    // The decoded form is held only until the loop takes the result, like the raw
    // bytes charged to the source's queue, and takes about as much memory again.
    consensus::RequestDigests request_digests;
    std::optional<consensus::Block> block;
    std::optional<consensus::RequestBatch> batch;
    std::string routing_id;  // Client: where to answer
    std::string peer_key;    // Client: the connection's Curve key (hex)
    // Envelope frames: the opened envelope or the reason it was refused.
    std::optional<consensus::Envelope> envelope;
    // Client frames other than Submit, decoded (status query, local read, ...).
    std::optional<client::ClientMessage> message;
    // Client submissions: the decoded request (its signature checked) or the reason.
    std::optional<consensus::Request> request;
    consensus::Bytes request_bytes;
    std::string error;
    std::size_t bytes = 0;
    std::size_t source_index = 0;  // internal: the queue its bytes are charged to
    bool bulk = false;             // internal: charged to the member's batch queue
};

/// The kind an encoded envelope claims (nothing checked; nullopt if the head is
/// not an envelope's).
std::optional<consensus::Kind> peek_envelope_kind(consensus::ByteView raw);

/// The byte bounds of the pool's queues (daemon/memory_budget.h).
struct VerifyPoolBounds {
    std::uint64_t member_bytes = 64u << 20;      // per member
    std::uint64_t clients_bytes = 128u << 20;    // all clients together
    std::uint64_t client_each_bytes = 8u << 20;  // one client connection
    std::size_t failed_entries = 32768;          // failed-digest memory
    std::size_t recent_generation = 65536;       // recent verified digests, per generation
};

/// Counters of the pool (running totals, read by the loop for /metrics).
struct VerifyPoolCounters {
    std::atomic<std::uint64_t> duplicates{0};      // copies of recently verified frames
    std::atomic<std::uint64_t> held_repeats{0};    // copies of blocks the core holds
    std::atomic<std::uint64_t> failed_repeats{0};  // resends of frames that failed before
    std::atomic<std::uint64_t> checks_skipped{0};  // checks the filters spared
    std::atomic<std::uint64_t> refused_full{0};    // frames refused: their source's queue full
};

/// A snapshot of the counters.
struct VerifyPoolTotals {
    std::uint64_t duplicates = 0, failed_repeats = 0, checks_skipped = 0, refused_full = 0,
                  held_repeats = 0;
};

/// A fixed pool of worker threads. submit_* never blocks: every source has a
/// queue bounded in bytes (each member its own, every client connection its
/// own within the clients' total); a frame over its source's bound is refused
/// and the caller counts the drop (a client is answered Overloaded). Workers
/// serve members before clients (three turns of four go to the members while
/// any waits), members in turn and clients in turn (round robin), so no source
/// can hold back the others. A member's flooded request batches (relayed
/// client load) wait apart from its protocol messages, in at most half of its
/// bytes, and are served after every member's protocol messages. A job's bytes stay charged until
/// the loop takes its result. Results are collected with take_results(); `wake_fd()` (an eventfd)
/// becomes readable whenever results are waiting.
///
/// Hashing and decoding happen on the workers: a frame's digest is computed
/// there, copies of recently verified frames and resends of failed ones are
/// dropped there, and client messages are decoded there.
class VerifyPool {
  public:
    VerifyPool(const consensus::CryptoSuite& suite, const consensus::ReplicaConfig& config,
               unsigned threads, VerifyPoolBounds bounds);
    ~VerifyPool();
    VerifyPool(const VerifyPool&) = delete;
    VerifyPool& operator=(const VerifyPool&) = delete;

    /// A raw envelope frame from the PUB/SUB plane or a peer's point-to-point
    /// send; `from`: the member whose connection carried it (>= n: unknown).
    bool submit_envelope(VerifyResult::Source source, consensus::NodeId from, consensus::Bytes raw);
    /// A client frame (any client message; a Submit's request is verified).
    bool submit_client(std::string routing_id, std::string peer_key, consensus::Bytes frame);

    /// The loop's view of where the core is (for the window filters).
    void set_applied(consensus::Epoch applied) { applied_.store(applied); }
    /// The node asked `peer` for something: its fetch replies are checked for a while.
    void solicit(consensus::NodeId peer, std::uint64_t for_ms);
    bool solicited(consensus::NodeId peer) const;
    /// The core holds the block this frame carries (epoch `e`): until the
    /// applied epoch reaches `e`, further copies of the frame (re-publications,
    /// late relays) are dropped after one hash, before any check; the core
    /// would have dropped them on arrival anyway. At most kHeldBlocksMax frames.
    void note_held_block(const consensus::Digest& frame, consensus::Epoch e);
    static constexpr std::size_t kHeldBlocksMax = 4096;
    /// A member's frame of at most this size (not a request batch) that arrives
    /// while the pool is idle (nothing queued, no worker busy, no worker's result
    /// untaken) is checked at once on the caller's thread; its result is ready
    /// for the next take_results(), without a hand-off to a worker and back. At
    /// low load that spares each SEEN, agreement and COMMIT message (and a small
    /// block) two thread switches and a pass of the loop, and the frames that
    /// arrive together are handled in one pass (one synced write instead of one
    /// per frame). At most kInlinePerPass frames per take_results() go this way;
    /// a frame that finds a job queued or a worker busy goes to the workers, so
    /// a burst still spreads over them.
    static constexpr std::size_t kInlineBytesMax = 4096;
    static constexpr std::size_t kInlinePerPass = 8;
    std::uint64_t inline_checked() const { return stats_inline_.load(); }

    std::vector<VerifyResult> take_results();
    int wake_fd() const { return wake_fd_; }

    /// While paused the workers take no job (jobs still queue, within their
    /// bounds). For tests that must queue several sources before any is served.
    void set_paused(bool paused);
    std::size_t queue_depth() const;
    /// Bytes charged now: the fullest member's queue and the clients' total.
    std::uint64_t member_bytes_max_used() const;
    std::uint64_t clients_bytes_used() const;
    std::size_t failed_size() const { return failed_.size(); }
    std::size_t recent_size() const;
    VerifyPoolTotals totals() const {
        return {counters_.duplicates.load(), counters_.failed_repeats.load(),
                counters_.checks_skipped.load(), counters_.refused_full.load(),
                counters_.held_repeats.load()};
    }

  private:
    struct Job {
        VerifyResult::Source source;
        consensus::Bytes raw;
        std::string routing_id;
        std::string peer_key;
        std::size_t source_index = 0;
        bool bulk = false;  // a member's flooded request batch
    };
    struct Queue {
        std::deque<Job> jobs;
        std::deque<Job> bulk;          // members: flooded request batches
        std::uint64_t bytes = 0;       // queued plus results not yet taken (bulk included)
        std::uint64_t bulk_bytes = 0;  // of which request batches
        std::string key;               // clients: the key in client_index_
    };
    void release(std::size_t index, std::uint64_t bytes, bool bulk);
    std::optional<Job> next_job();
    std::optional<Job> next_member_job();
    std::optional<Job> next_client_job();
    void run();
    std::optional<VerifyResult> work(Job& job);
    // Under mu_: nothing queued, no worker busy, no result waiting to be taken.
    bool idle_locked() const;
    // Under mu_: a finished job's result goes to results_ (true), or its bytes
    // are released (a dropped copy: false).
    bool finish_locked(std::size_t index, bool bulk, std::uint64_t charged,
                       std::optional<VerifyResult> result);
    void work_client(VerifyResult& r, consensus::Bytes frame);
    bool seen_recently(const consensus::Digest& d);
    bool held_block(const consensus::Digest& frame) const;
    void remember_verified(const consensus::Digest& d);
    // `digests` (if given) receives (digest_of(encode(r)), its size) of each request
    // of a Block or request batch, in order, when they all verified; `result` (if
    // given) the decoded body of a Block or Requests envelope, for the core.
    bool preverify(const consensus::Envelope& env, int depth,
                   consensus::RequestDigests* digests = nullptr, VerifyResult* result = nullptr);
    bool preverify_requests(const std::vector<consensus::Request>& requests,
                            consensus::RequestDigests* digests);
    void preverify_aba(const consensus::Envelope& env);
    bool in_window(consensus::Epoch e) const;

    const consensus::CryptoSuite& suite_;
    consensus::ReplicaConfig config_;
    VerifyPoolBounds bounds_;
    std::atomic<consensus::Epoch> applied_{0};
    VerifyPoolCounters counters_;
    FailedDigests failed_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    // Queues: 0..n-1 the members, n the unknown sender, n+1.. clients (by connection).
    std::vector<Queue> member_queues_;
    std::map<std::string, std::size_t> client_index_;
    std::map<std::size_t, Queue> client_queues_;
    std::deque<std::size_t> client_turns_;  // client queues with jobs, in turn order
    std::size_t next_client_index_ = 0;
    std::uint64_t clients_bytes_ = 0;
    std::size_t member_turn_ = 0, turn_ = 0, jobs_queued_ = 0;
    std::size_t busy_ = 0;  // jobs being checked now (workers and inline)
    std::vector<VerifyResult> results_;
    std::size_t inline_results_ = 0;  // of results_, checked at once (submit_envelope)
    std::size_t inline_since_take_ = 0;
    std::vector<std::uint64_t> solicited_until_;  // by member, ms since started_
    std::set<consensus::Digest> recent_now_, recent_before_;
    std::map<consensus::Digest, consensus::Epoch> held_;  // frame -> block epoch
    std::chrono::steady_clock::time_point recent_rotated_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    bool paused_ = false;  // under mu_
    std::atomic<std::uint64_t> stats_inline_{0};
    bool stop_ = false;
    int wake_fd_ = -1;
    std::vector<std::thread> threads_;
};

}  // namespace tob::daemon
