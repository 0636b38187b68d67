#pragma once
// A record's stored value (NodeStorage's "records" family; daemon/storage.h):
//
//   type byte ‖ first 16 bytes of BLAKE2b-256(type ‖ epoch u64 BE ‖ bytes) ‖ body
//
// The body is the record's bytes, or (the type byte's kIndirect and kBodyChecksum
// bits set) their indirect form with the block envelopes referenced
// (daemon/block_refs.h), and then the checksum covers that stored body. Values
// written before 2026-12-07 have kIndirect only, and the checksum covers the
// rebuilt bytes.
//
// judge() decides what a stored value is: the record, when it verifies; else the
// problem and the type it is judged by. That type is the stored type byte's only
// when the byte is one the writer produces; when the value does not verify, it is
// the type under which the checksum does verify, over the stored body or the
// rebuilt bytes, if any. So damage to the type byte, whichever bits it flips,
// cannot turn a Signed record (the sign-log) into one the store may drop.

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "consensus/step.h"

namespace tob::daemon::record_value {

constexpr std::size_t kChecksumSize = 16;
constexpr std::size_t kHeaderSize = 1 + kChecksumSize;
constexpr std::uint8_t kIndirect = 0x80;
constexpr std::uint8_t kBodyChecksum = 0x40;
constexpr std::uint8_t kTypeFlags = kIndirect | kBodyChecksum;

/// The stored value of `record`; with `indirect`, that body in its place.
std::string encode(const consensus::DurableRecord& record, const std::string* indirect = nullptr);

/// Types whose loss is harmless (they can be fetched from peers again).
bool refetchable_type(std::uint8_t type);
/// The type named by the value's type byte if the writer produces that byte.
std::optional<std::uint8_t> trusted_type(std::string_view value);
std::string type_name(std::uint8_t type);

/// Rebuilds the record's bytes from an indirect body (check_hashes: each block
/// against its hash); nullopt with `problem` set when a block is missing or bad.
using Rebuild = std::function<std::optional<consensus::Bytes>(
    consensus::ByteView body, bool check_hashes, std::string& problem)>;

struct Judged {
    std::optional<consensus::DurableRecord> record;  // set when the value verifies
    std::optional<std::uint8_t> type;                // else the type it is judged by
    std::string problem;                             // else what is wrong with it
};

Judged judge(consensus::Epoch epoch, std::string_view value, const Rebuild& rebuild);

}  // namespace tob::daemon::record_value
