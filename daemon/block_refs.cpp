#include "daemon/block_refs.h"

#include <algorithm>

#include "consensus/codec.h"

namespace tob::daemon::block_refs {

namespace {

using consensus::ByteView;
using consensus::DurableRecord;

constexpr std::uint8_t kLiteral = 0;
constexpr std::uint8_t kReference = 1;

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::uint32_t get_u32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

Piece whole(ByteView bytes) { return Piece{0, bytes.size(), crypto::blake2b256(bytes)}; }

// The blocks of a Proof record, found in its bytes in order.
std::vector<Piece> proof_pieces(ByteView bytes) {
    std::vector<Piece> out;
    auto reply = consensus::decode_proof_record(bytes, consensus::Limits{});
    if (!reply) return out;
    auto from = bytes.begin();
    for (const auto& env : reply.value().envelopes) {
        if (env.size() < kEnvelopeBytesMin) continue;
        const auto at = std::search(from, bytes.end(), env.begin(), env.end());
        if (at == bytes.end()) return {};  // not laid out as expected: store as it is
        const auto offset = static_cast<std::size_t>(at - bytes.begin());
        out.push_back(Piece{offset, env.size(), crypto::blake2b256(env)});
        from = at + static_cast<std::ptrdiff_t>(env.size());
    }
    return out;
}

}  // namespace

std::vector<Piece> pieces(const DurableRecord& record) {
    const ByteView bytes(record.bytes);
    if (bytes.size() < kEnvelopeBytesMin) return {};
    switch (record.type) {
        case DurableRecord::Type::Block:
            return {whole(bytes)};
        case DurableRecord::Type::Signed: {
            auto env = consensus::decode_envelope(bytes, consensus::Limits{});
            if (env && env.value().kind == consensus::Kind::Block) return {whole(bytes)};
            return {};
        }
        case DurableRecord::Type::Proof:
            return proof_pieces(bytes);
        default:
            return {};
    }
}

std::string key(consensus::Epoch e, const crypto::Digest& h) {
    std::string out;
    out.reserve(8 + h.size());
    put_u64(out, e);
    out.append(reinterpret_cast<const char*>(h.data()), h.size());
    return out;
}

std::string encode(ByteView bytes, const std::vector<Piece>& pieces) {
    std::string out;
    std::size_t at = 0;
    auto literal = [&](std::size_t end) {
        if (end == at) return;
        out.push_back(static_cast<char>(kLiteral));
        put_u32(out, static_cast<std::uint32_t>(end - at));
        out.append(reinterpret_cast<const char*>(bytes.data() + at), end - at);
    };
    for (const auto& p : pieces) {
        literal(p.offset);
        out.push_back(static_cast<char>(kReference));
        out.append(reinterpret_cast<const char*>(p.hash.data()), p.hash.size());
        put_u32(out, static_cast<std::uint32_t>(p.size));
        at = p.offset + p.size;
    }
    literal(bytes.size());
    return out;
}

std::optional<consensus::Bytes> rebuild(consensus::Epoch e, ByteView body, const Fetch& fetch,
                                        std::string& problem, bool check_hashes) {
    consensus::Bytes out;
    std::size_t at = 0;
    bool malformed = false;
    while (at < body.size() && !malformed) {
        const std::uint8_t tag = body[at++];
        if (tag == kLiteral && body.size() - at >= 4) {
            const std::uint32_t n = get_u32(body.data() + at);
            at += 4;
            malformed = body.size() - at < n;
            if (malformed) break;
            out.insert(out.end(), body.begin() + static_cast<std::ptrdiff_t>(at),
                       body.begin() + static_cast<std::ptrdiff_t>(at + n));
            at += n;
            continue;
        }
        crypto::Digest h{};
        malformed = tag != kReference || body.size() - at < h.size() + 4;
        if (malformed) break;
        std::copy_n(body.begin() + static_cast<std::ptrdiff_t>(at), h.size(), h.begin());
        const std::uint32_t n = get_u32(body.data() + at + h.size());
        at += h.size() + 4;
        const auto env = fetch(key(e, h));
        if (!env) {
            problem = "its block " + crypto::to_hex(ByteView(h)) + " is missing";
            return std::nullopt;
        }
        if (env->size() != n) {
            problem = "its block " + crypto::to_hex(ByteView(h)) + " has " +
                      std::to_string(env->size()) + " bytes, expected " + std::to_string(n);
            return std::nullopt;
        }
        const ByteView env_bytes(reinterpret_cast<const std::uint8_t*>(env->data()), env->size());
        if (check_hashes && crypto::blake2b256(env_bytes) != h) {
            problem = "its block " + crypto::to_hex(ByteView(h)) + " does not match its hash";
            return std::nullopt;
        }
        out.insert(out.end(), env->begin(), env->end());
    }
    if (malformed) {
        problem = "malformed block references";
        return std::nullopt;
    }
    return out;
}

}  // namespace tob::daemon::block_refs
