#pragma once
// Basic wire types of tobd. Everything that goes on the wire has a sized type.

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "crypto/hash.h"
#include "crypto/sign.h"

namespace tob::consensus {

using NodeId = std::uint16_t;
using Epoch = std::uint64_t;
using Round = std::uint32_t;
using Nonce = std::uint64_t;
using Bytes = crypto::Bytes;
using ByteView = crypto::ByteView;
using Digest = crypto::Digest;
using PublicKey = crypto::PublicKey;
using Signature = crypto::Signature;
/// (digest_of(encode(r)), encode(r).size()) of requests, in order.
using RequestDigests = std::vector<std::pair<Digest, std::size_t>>;

/// a + b, or the largest epoch when the sum would wrap. Every sum in which a
/// peer supplies an epoch (a COMMIT for 2^64 - 1, say) goes through it.
constexpr Epoch epoch_add(Epoch a, Epoch b) { return a > ~Epoch{0} - b ? ~Epoch{0} : a + b; }

/// t = floor((n-1)/3): the number of faulty nodes tolerated.
constexpr std::uint32_t max_faulty(std::uint32_t n) { return n == 0 ? 0 : (n - 1) / 3; }
/// q = ceil((n+t+1)/2): two quorums intersect in at least t+1 nodes, hence in an honest one.
constexpr std::uint32_t quorum(std::uint32_t n, std::uint32_t t) { return (n + t + 2) / 2; }

/// Limits from the cluster file; every decoder and validator enforces them.
struct Limits {
    std::uint32_t message_bytes_max = 16u << 20;  // one envelope on the wire
    std::uint32_t block_bytes_max = 4u << 20;     // encoded block body
    std::uint32_t block_requests_max = 20000;     // requests per block
    std::uint32_t request_ops_max = 1024;         // operations per request
    std::uint32_t request_bytes_max = 1u << 20;   // one encoded request
    std::uint32_t key_bytes_max = 1024;
    std::uint32_t value_bytes_max = 256u << 10;
    std::uint32_t cert_signatures_max = 1024;  // >= n
    std::uint32_t fetch_items_max = 4096;      // envelopes in one fetch reply
    std::uint32_t aba_bundle_max = 4096;       // ABA messages in one bundle
    std::uint32_t batch_requests_max = 20000;  // requests in one flooded batch
    // The state machine's outputs (deterministic, the same on every node): one
    // request's, and one epoch's in total; a request over either is skipped.
    std::uint32_t request_output_bytes_max = 1u << 20;
    std::uint32_t epoch_output_bytes_max = 32u << 20;
};

}  // namespace tob::consensus
