#pragma once
// Block envelopes stored once (NodeStorage, column family "blocks").
//
// The same block envelope reaches the records twice: when it is accepted (a Block
// record, or this node's own block in its sign-log, a Signed record) and again in
// the Proof record of its epoch once delivered. NodeStorage stores each such
// envelope once, under key = epoch (u64 BE) ‖ BLAKE2b-256(envelope) in the
// "blocks" family, and the record's value holds a reference in its place. The
// "indirect" value body built here is a sequence of pieces:
//   0x00 ‖ u32 length ‖ bytes        literal bytes of the record
//   0x01 ‖ 32-byte hash ‖ u32 length an envelope of the record's epoch, by hash
// Rebuilding concatenates them. The record's checksum covers its stored indirect
// body and each referenced envelope is checked against its hash as it is read, so
// a missing or damaged envelope is a corrupt record (a damaged sign-log if it is a
// Signed one), and a write hashes each envelope once, for its key. (Values written
// before 2026-12-07 carry a checksum over the rebuilt bytes instead; NodeStorage
// still reads them.)
//
// Which envelopes are referenced: the whole bytes of a Block record, of a Signed
// record that is a Block envelope, and each block of a Proof record, from
// kEnvelopeBytesMin bytes on. A record that does not decode is stored as it is.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "consensus/step.h"
#include "crypto/hash.h"

namespace tob::daemon::block_refs {

/// Smaller envelopes (empty blocks) stay inside their records.
inline constexpr std::size_t kEnvelopeBytesMin = 512;

/// One envelope inside a record's bytes.
struct Piece {
    std::size_t offset = 0;
    std::size_t size = 0;
    crypto::Digest hash{};
};

/// The envelopes of `record` to store once, in order and not overlapping (see the
/// header comment); empty when the record is stored as it is.
std::vector<Piece> pieces(const consensus::DurableRecord& record);

/// The "blocks" family key of an envelope of epoch e with hash h.
std::string key(consensus::Epoch e, const crypto::Digest& h);

/// The indirect body of `bytes` with `pieces` (from pieces()) referenced.
std::string encode(consensus::ByteView bytes, const std::vector<Piece>& pieces);

/// The stored envelope under a "blocks" key, or nullopt when it is missing.
using Fetch = std::function<std::optional<std::string>(const std::string& key)>;

/// The record bytes rebuilt from an indirect body of epoch e; nullopt with
/// `problem` set when the body is malformed or an envelope is missing, of another
/// length than recorded or (`check_hashes`) not the envelope its hash names.
std::optional<consensus::Bytes> rebuild(consensus::Epoch e, consensus::ByteView body,
                                        const Fetch& fetch, std::string& problem,
                                        bool check_hashes = true);

}  // namespace tob::daemon::block_refs
