#pragma once
// The signing high-water mark (docs/protocol.md, "Safety rules"): the
// highest epoch this node has signed in, kept in a small file beside the node key
// (default: <key dir>/sign-high-water), so that a node whose data directory was
// lost but whose key directory survived never signs again in an epoch it may
// already have signed in.
//
// Format (mode 0600): exactly kHighWaterFileBytes bytes, two slots of
// kHighWaterSlotBytes, each the line
//   "tobd-high-water-v2 <epoch> <check>"
// padded with spaces to 127 bytes and ended by "\n", where <epoch> is decimal (no
// sign, no leading zeros, fits in u64) and <check> is the lowercase hex
// BLAKE2b-256 of the bytes before the last space, i.e. of
// "tobd-high-water-v2 <epoch>". The mark is the higher epoch of the slots that
// check; a file in which neither checks is corrupt. The one-line file of earlier
// versions, "tobd-high-water-v1 <epoch> <check>\n" (same rules), is still read,
// and the first raise replaces it with a two-slot file.
//
// The dealer (`tobctl testnet`, daemon/testnet.cpp) writes the file with epoch 0
// next to every key it writes. A node whose key exists but whose mark is missing
// or corrupt refuses to sign (it runs as a non-voting follower): a missing mark
// is never read as "0".
//
// Writing is durable. A raise overwrites, in place, the slot that does not hold
// the higher mark and syncs the data (fdatasync; the file keeps its size): a
// crash in the middle tears at most that slot, and the other still holds the
// previous mark, which covers every signature that left (the caller sends a
// step's signatures only after the raise returns). When the file is missing, is
// the one-line format or has no slot that checks, it is replaced whole: a temp
// file in the same directory is written and fsynced, renamed over the mark, and
// the directory is fsynced (a crash leaves the old or the new file, and possibly
// a stray "<name>.tmp-XXXXXX" file, which is harmless). The caller raises the
// mark before its first signature in a new epoch and must never lower it; this
// module does not check monotonicity.

#include <filesystem>
#include <optional>
#include <string>

#include "consensus/types.h"

namespace tob::daemon {

enum class MarkState {
    Ok,       // the file exists and is well formed; epoch is valid
    Missing,  // no such file (ENOENT)
    Corrupt,  // anything else: unreadable, oversized, truncated, bad checksum, ...
};

struct MarkRead {
    MarkState state = MarkState::Missing;
    consensus::Epoch epoch = 0;  // valid only when state == Ok
    std::string error;           // for Missing/Corrupt: names the file and the problem
};

/// Files larger than this are refused unread (Corrupt).
inline constexpr std::uintmax_t kHighWaterFileBytesMax = 4096;
/// The two-slot file and one of its slots.
inline constexpr std::size_t kHighWaterSlotBytes = 128;
inline constexpr std::size_t kHighWaterFileBytes = 2 * kHighWaterSlotBytes;

/// Reads and checks the mark. Never throws.
MarkRead read_high_water(const std::filesystem::path& path);

/// Replaces the mark durably (see above). Returns an error message naming the file
/// on failure (e.g. ENOSPC), nullopt once the new mark is on disk.
std::optional<std::string> write_high_water(const std::filesystem::path& path,
                                            consensus::Epoch epoch);

/// The mark's default location: key_file's directory / "sign-high-water".
std::filesystem::path default_high_water_path(const std::filesystem::path& key_file);

/// The exact file contents for `epoch`, both slots at `epoch` (exposed for tests
/// and tools), and the one-line file of earlier versions.
std::string format_high_water(consensus::Epoch epoch);
std::string format_high_water_v1(consensus::Epoch epoch);

}  // namespace tob::daemon
