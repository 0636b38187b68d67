#pragma once
// ClientRates: a byte and frame rate per client source at the client ROUTER
// (issue 11, "per-source ... bounded in bytes, ... clients fairly among
// themselves").
//
// Each client source (its Curve key; its connection without Curve) has a token
// bucket of `bytes_per_s` with a burst of `burst_bytes`. A frame is taken while
// the source's bucket holds tokens and is then charged its size, but at least
// `frame_cost_min` bytes (bytes_per_s / limits.client_requests_per_s): so a
// source also gets at most that many frames a second, however small (the bucket may
// go into debt by one frame, so a request of request_bytes_max always passes
// from a rested client); a frame that finds the bucket empty is refused before
// anything decodes, hashes or verifies it, and the client is answered
// Overloaded. The limit holds per node: a client that sends every request to
// all n nodes gets at most n times the rate of distinct requests into the
// cluster, and the copies that members relay to each other follow from what
// each node took.
//
// Why: the verification queues share CPU fairly by turns, not by bytes, and
// everything a node takes from a client is then flooded to every member, put
// into blocks, hashed, stored and executed on every node. One client key
// sending 1 MiB requests as fast as the queues took them stopped the cluster's
// commits (docs/attacks.md, pool_flood); the rate bounds what one source costs
// the whole cluster. The frame floor is for small requests: what a request
// costs every node (a signature check, a dedup entry written and hashed into
// the state root, its share of an epoch) does not shrink with its size. One
// connection sending 600 one-operation requests a second under fresh client
// keys took the honest clients' commit rate to a third (docs/attacks.md,
// dedup_growth).
//
// New client keys: each source may also bring at most `new_keys_per_s` client
// keys a second that this node's state does not know (no dedup entry, no
// pending request), with a burst of `new_keys_burst`. A request under a new key
// creates replicated state on every node (its dedup entry, and later that
// entry's removal); the node charges the source once the request's signature is
// checked and refuses it Overloaded over the rate, before it enters the pool.
// Clients that keep their key are not affected; a gateway that forwards many
// end users' keys over one connection raises limits.client_new_keys_per_s.
//
// Bounded: at most `entries_max` sources are remembered; a bucket that has
// refilled to its burst is forgotten (it would behave as a new one), and when
// the table is full of buckets still in use a new source is refused until
// some refill (the full table is swept for refilled buckets at most every
// kExpireGapMs, not for each new source).

#include <cstdint>
#include <map>
#include <string>

#include "daemon/token_bucket.h"

namespace tob::daemon {

/// The new-client-key rate of one source (ClientRates::admit_new_key).
struct ClientKeyRate {
    std::uint64_t per_s = 0;  // 0: new keys are not limited
    std::uint64_t burst = 0;
};

class ClientRates {
  public:
    ClientRates(std::uint64_t bytes_per_s, std::uint64_t burst_bytes, std::size_t entries_max,
                std::uint64_t frame_cost_min = 1, ClientKeyRate new_keys = {});

    /// Takes a frame of `bytes` from `source` at `now_ms` (charged
    /// max(bytes, frame_cost_min)), or false:
    /// the source's rate is used up, or the table is full.
    bool admit(const std::string& source, std::uint64_t bytes, std::uint64_t now_ms);
    /// Takes one new client key from `source` at `now_ms`, or false: the source's
    /// new-key rate is used up, or the table is full.
    bool admit_new_key(const std::string& source, std::uint64_t now_ms);
    /// Forgets the sources whose buckets have refilled to their burst.
    void expire(std::uint64_t now_ms);

    std::size_t size() const { return buckets_.size(); }
    std::size_t entries_max() const { return entries_max_; }
    std::uint64_t bytes_per_s() const { return rate_; }
    std::uint64_t frames_per_s() const { return rate_ / frame_cost_min_; }
    std::uint64_t new_keys_per_s() const { return keys_.per_s; }
    std::uint64_t expire_scans() const { return expire_scans_; }

    static constexpr std::uint64_t kExpireGapMs = 100;

  private:
    std::uint64_t rate_;
    std::uint64_t burst_;
    std::size_t entries_max_;
    struct Entry {
        TokenBucket bytes;
        TokenBucket keys;
    };
    // The source's entry, created when the table has room (nullptr: full).
    Entry* entry(const std::string& source, std::uint64_t now_ms);

    std::uint64_t frame_cost_min_;
    ClientKeyRate keys_;
    std::map<std::string, Entry> buckets_;
    std::uint64_t next_expire_ms_ = 0;  // a full table is swept again from here
    std::uint64_t expire_scans_ = 0;
};

}  // namespace tob::daemon
