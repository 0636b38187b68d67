#include "daemon/record_value.h"

#include <algorithm>
#include <vector>

#include "crypto/hash.h"

namespace tob::daemon::record_value {

using consensus::DurableRecord;

namespace {

std::array<std::uint8_t, kChecksumSize> record_checksum(std::uint8_t type, consensus::Epoch epoch,
                                                        consensus::ByteView bytes) {
    const std::uint8_t type_byte[1] = {type};
    crypto::Hasher h;
    h.raw(type_byte).u64(epoch).raw(bytes);
    const crypto::Digest d = h.finish();
    std::array<std::uint8_t, kChecksumSize> out{};
    std::copy_n(d.begin(), kChecksumSize, out.begin());
    return out;
}

}  // namespace

// type ‖ checksum ‖ body: the record's bytes and their checksum, or (the type
// byte's kIndirect and kBodyChecksum bits set) their indirect form with the block
// envelopes referenced, and its checksum: a block is not hashed a second time for
// the checksum (a Proof record holds every block of its epoch).
std::string encode(const DurableRecord& record, const std::string* indirect) {
    const auto type = static_cast<std::uint8_t>(record.type);
    const auto check = record_checksum(
        type, record.epoch,
        indirect ? crypto::view(std::string_view(*indirect)) : consensus::ByteView(record.bytes));
    std::string value;
    value.reserve(kHeaderSize + (indirect ? indirect->size() : record.bytes.size()));
    value.push_back(static_cast<char>(indirect ? type | kIndirect | kBodyChecksum : type));
    value.append(reinterpret_cast<const char*>(check.data()), check.size());
    if (indirect) {
        value.append(*indirect);
    } else {
        value.append(reinterpret_cast<const char*>(record.bytes.data()), record.bytes.size());
    }
    return value;
}

namespace {

// Types that may be stored (everything the core persists except HighWater).
bool storable_type(std::uint8_t type) {
    switch (static_cast<DurableRecord::Type>(type)) {
        case DurableRecord::Type::Signed:
        case DurableRecord::Type::Block:
        case DurableRecord::Type::Cert:
        case DurableRecord::Type::Proof:
        case DurableRecord::Type::Commit:
        case DurableRecord::Type::Floor:
            return true;
        case DurableRecord::Type::HighWater:
            return false;
    }
    return false;
}

// The type bytes the writer produces: a storable type, direct; or a type whose
// records block_refs may store in the indirect form (Signed, Block, Proof) with
// kIndirect (values written before 2026-12-07) or kIndirect | kBodyChecksum. Any
// other byte was damaged, and the type it names cannot be trusted.
bool written_type_byte(std::uint8_t byte) {
    const auto type = static_cast<std::uint8_t>(byte & ~kTypeFlags);
    const auto flags = static_cast<std::uint8_t>(byte & kTypeFlags);
    if (!storable_type(type)) return false;
    if (flags == 0) return true;
    if (flags == kBodyChecksum) return false;
    switch (static_cast<DurableRecord::Type>(type)) {
        case DurableRecord::Type::Signed:
        case DurableRecord::Type::Block:
        case DurableRecord::Type::Proof:
            return true;
        default:
            return false;
    }
}

}  // namespace

// Types whose loss is harmless (they can be fetched from peers again).
bool refetchable_type(std::uint8_t type) {
    return storable_type(type) && type != static_cast<std::uint8_t>(DurableRecord::Type::Signed) &&
           type != static_cast<std::uint8_t>(DurableRecord::Type::Floor);
}

std::string type_name(std::uint8_t type) {
    switch (static_cast<DurableRecord::Type>(type)) {
        case DurableRecord::Type::Signed:
            return "Signed";
        case DurableRecord::Type::Block:
            return "Block";
        case DurableRecord::Type::Cert:
            return "Cert";
        case DurableRecord::Type::HighWater:
            return "HighWater";
        case DurableRecord::Type::Proof:
            return "Proof";
        case DurableRecord::Type::Commit:
            return "Commit";
        case DurableRecord::Type::Floor:
            return "Floor";
    }
    return "unknown type " + std::to_string(type);
}

std::optional<std::uint8_t> trusted_type(std::string_view value) {
    if (value.empty() || !written_type_byte(static_cast<std::uint8_t>(value[0])))
        return std::nullopt;
    return static_cast<std::uint8_t>(static_cast<std::uint8_t>(value[0]) & ~kTypeFlags);
}

Judged judge(consensus::Epoch epoch, std::string_view value, const Rebuild& rebuild) {
    Judged out;
    const auto type_byte = !value.empty() ? static_cast<std::uint8_t>(value[0]) : 0;
    const bool indirect = (type_byte & kIndirect) != 0;
    const bool body_checksum = indirect && (type_byte & kBodyChecksum) != 0;
    out.type = trusted_type(value);
    const bool written = out.type.has_value();
    const consensus::ByteView body(
        reinterpret_cast<const std::uint8_t*>(value.data()) + std::min(kHeaderSize, value.size()),
        value.size() >= kHeaderSize ? value.size() - kHeaderSize : 0);
    const auto* stored = reinterpret_cast<const std::uint8_t*>(value.data()) + 1;
    auto matches = [&](std::uint8_t t, consensus::ByteView checked) {
        const auto check = record_checksum(t, epoch, checked);
        return std::equal(check.begin(), check.end(), stored);
    };
    std::optional<consensus::Bytes> rebuilt;
    // The type under which the checksum verifies, over the stored body or the
    // rebuilt bytes (the stored type verifying over the other one confirms it).
    auto recover_type = [&] {
        std::vector<consensus::ByteView> candidates{body};
        if (rebuilt) candidates.emplace_back(*rebuilt);
        for (const auto& checked : candidates) {
            for (std::uint8_t t = 0; t < 16; ++t) {
                if (!matches(t, checked)) continue;
                if (out.type != t) {
                    out.problem += " (type byte damaged: stored " + std::to_string(type_byte) +
                                   ", checksum matches " + type_name(t) + ")";
                }
                out.type = t;
                return;
            }
        }
    };
    if (value.size() < kHeaderSize) {
        out.problem = "value truncated to " + std::to_string(value.size()) + " bytes";
    } else if (!written) {
        out.problem = "type byte " + std::to_string(type_byte) + " is not one tobd writes";
        recover_type();
    } else if (indirect && !(rebuilt = rebuild(body, body_checksum, out.problem))) {
        // the problem says which block is missing; a damaged type byte may have
        // made a direct record look indirect
        recover_type();
    } else {
        const consensus::ByteView bytes = rebuilt ? consensus::ByteView(*rebuilt) : body;
        const consensus::ByteView checked = body_checksum ? body : bytes;
        if (!matches(*out.type, checked)) {
            out.problem = "checksum mismatch";
            recover_type();
        } else {
            out.record = DurableRecord{static_cast<DurableRecord::Type>(*out.type), epoch,
                                       consensus::Bytes(bytes.begin(), bytes.end())};
        }
    }
    return out;
}

}  // namespace tob::daemon::record_value
