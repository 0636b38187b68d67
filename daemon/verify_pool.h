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
// a forged input is still rejected (it was never inserted). Only positives are
// cached; it is bounded (two generations, the older dropped when the newer fills).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "consensus/codec.h"
#include "consensus/real_crypto.h"
#include "consensus/replica.h"

namespace tob::daemon {

class VerifyCache {
  public:
    explicit VerifyCache(std::size_t generation_max = 1u << 18) : generation_max_(generation_max) {}
    bool contains(const consensus::Digest& key) const;
    void insert(const consensus::Digest& key);
    std::uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }

  private:
    struct DigestHash {
        std::size_t operator()(const consensus::Digest& d) const;
    };
    mutable std::mutex mu_;
    std::size_t generation_max_;
    std::unordered_set<consensus::Digest, DigestHash> current_, previous_;
    mutable std::atomic<std::uint64_t> hits_{0};
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

/// What a worker hands back to the loop.
struct VerifyResult {
    enum class Source : std::uint8_t { PubSub, Peer, Client };
    Source source = Source::PubSub;
    consensus::Digest raw_digest{};  // digest of the raw frame (duplicate suppression)
    std::string routing_id;          // Client: where to answer
    // Envelope frames: the opened envelope or the reason it was refused.
    std::optional<consensus::Envelope> envelope;
    // Client submissions: the decoded request (its signature checked) or the reason.
    std::optional<consensus::Request> request;
    consensus::Bytes request_bytes;
    std::string error;
    std::size_t bytes = 0;
};

/// A fixed pool of worker threads. submit_* never blocks (the queue is bounded:
/// beyond `queue_max` jobs the frame is refused and the caller counts the drop).
/// Results are collected with take_results(); `wake_fd()` (an eventfd) becomes
/// readable whenever results are waiting, so the loop can poll it with ZeroMQ.
class VerifyPool {
  public:
    VerifyPool(const consensus::CryptoSuite& suite, const consensus::ReplicaConfig& config,
               unsigned threads, std::size_t queue_max);
    ~VerifyPool();
    VerifyPool(const VerifyPool&) = delete;
    VerifyPool& operator=(const VerifyPool&) = delete;

    /// A raw envelope frame from the PUB/SUB plane or a peer's point-to-point send.
    bool submit_envelope(VerifyResult::Source source, consensus::Bytes raw,
                         const consensus::Digest& raw_digest);
    /// A client's encoded request (from a Submit message).
    bool submit_request(std::string routing_id, consensus::Bytes request_bytes);

    std::vector<VerifyResult> take_results();
    int wake_fd() const { return wake_fd_; }
    std::size_t queue_depth() const;

  private:
    struct Job {
        VerifyResult::Source source;
        consensus::Bytes raw;
        consensus::Digest raw_digest;
        std::string routing_id;
    };
    void run();
    VerifyResult work(Job& job);
    void preverify(const consensus::Envelope& env, int depth);

    const consensus::CryptoSuite& suite_;
    consensus::ReplicaConfig config_;
    std::size_t queue_max_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    std::vector<VerifyResult> results_;
    bool stop_ = false;
    int wake_fd_ = -1;
    std::vector<std::thread> threads_;
};

}  // namespace tob::daemon
