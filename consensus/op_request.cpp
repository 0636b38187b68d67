#include "consensus/op_request.h"

namespace tob::consensus {

namespace {

void put_be(Bytes& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

bool get_be(ByteView in, std::size_t& pos, int bytes, std::uint64_t& v) {
    if (in.size() - pos < static_cast<std::size_t>(bytes)) return false;
    v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | in[pos++];
    return true;
}

}  // namespace

Bytes encode_op_block(const std::vector<OpRequest>& requests) {
    Bytes out;
    put_be(out, requests.size(), 4);
    for (const auto& r : requests) {
        put_be(out, r.id, 8);
        const std::size_t len = r.op.size() < kNumericOpBytesMax ? r.op.size() : kNumericOpBytesMax;
        put_be(out, len, 1);
        out.insert(out.end(), r.op.begin(), r.op.begin() + static_cast<std::ptrdiff_t>(len));
    }
    return out;
}

std::optional<std::vector<OpRequest>> decode_op_block(ByteView bytes, std::size_t requests_max) {
    std::size_t pos = 0;
    std::uint64_t count = 0;
    if (!get_be(bytes, pos, 4, count) || count > requests_max) return std::nullopt;
    std::vector<OpRequest> out;
    out.reserve(count);
    for (std::uint64_t i = 0; i < count; ++i) {
        OpRequest r;
        std::uint64_t len = 0;
        if (!get_be(bytes, pos, 8, r.id) || !get_be(bytes, pos, 1, len)) return std::nullopt;
        if (len > kNumericOpBytesMax || bytes.size() - pos < len) return std::nullopt;
        r.op.assign(bytes.begin() + static_cast<std::ptrdiff_t>(pos),
                    bytes.begin() + static_cast<std::ptrdiff_t>(pos + len));
        pos += len;
        out.push_back(std::move(r));
    }
    if (pos != bytes.size()) return std::nullopt;
    return out;
}

}  // namespace tob::consensus
