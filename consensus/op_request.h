#pragma once
// OpRequest: the request of the lecture protocols (naive_broadcast.h,
// sync_tob.h). It carries one numeric op (numeric_machine.h) and a unique id
// that the replicas use to apply each request at most once.
//
// The lecture protocols leave client authentication out: a request is taken
// as given (the real protocol verifies a client signature on every request,
// docs/protocol.md "Client requests"). A block of the synchronous protocol is
// a list of requests; encode_op_block / decode_op_block give it one canonical
// byte form, which is what the leader signs and Dolev–Strong agrees on.
//
// Block bytes: u32 count, then per request u64 id, u8 op length, op bytes (all
// big endian). Decoding rejects a count above the caller's bound, an op longer
// than kNumericOpBytesMax, a short or a trailing byte, so one value has exactly
// one encoding.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "consensus/numeric_machine.h"
#include "consensus/types.h"

namespace tob::consensus {

struct OpRequest {
    std::uint64_t id = 0;
    std::string op;
    bool operator==(const OpRequest&) const = default;
};

Bytes encode_op_block(const std::vector<OpRequest>& requests);
std::optional<std::vector<OpRequest>> decode_op_block(ByteView bytes, std::size_t requests_max);

}  // namespace tob::consensus
