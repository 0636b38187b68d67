#pragma once
// Building blocks of tobd's canonical msgpack codecs, shared by the wire codec
// (consensus/codec.cpp) and the client-plane codec (daemon/client_protocol.cpp).
// Not a public API: both codecs follow the scheme described in codec.cpp (shortest
// forms through msgpack::packer; strict conversion that throws Reject, caught at
// each codec's single entry point; re-encode equality).

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <msgpack.hpp>
#include <span>
#include <string>
#include <string_view>

#include "consensus/types.h"

namespace tob::consensus::wire {

// ---- encoding --------------------------------------------------------------

/// A msgpack::packer stream that appends to a Bytes vector.
struct ByteSink {
    Bytes& out;
    void write(const char* data, std::size_t size) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(data);
        out.insert(out.end(), p, p + size);
    }
};

using Packer = msgpack::packer<ByteSink>;

/// msgpack cannot express a bin or array longer than 2^32-1; nothing in tobd
/// comes near that, so reaching it is a bug in our own code.
inline std::uint32_t wire_length(std::size_t n) {
    if (n > std::numeric_limits<std::uint32_t>::max()) {
        std::fputs("tobd msgpack encoder: length does not fit msgpack (bug)\n", stderr);
        std::abort();
    }
    return static_cast<std::uint32_t>(n);
}

inline void put_array(Packer& p, std::size_t n) { p.pack_array(wire_length(n)); }
inline void put_uint(Packer& p, std::uint64_t v) { p.pack_uint64(v); }
inline void put_bin(Packer& p, ByteView b) {
    const std::uint32_t n = wire_length(b.size());
    p.pack_bin(n);
    if (n > 0) p.pack_bin_body(reinterpret_cast<const char*>(b.data()), n);
}

// ---- decoding --------------------------------------------------------------

/// A rejected input; thrown inside a codec only, caught at its entry point.
struct Reject {
    std::string why;
};

[[noreturn]] inline void reject(std::string_view what, std::string_view problem) {
    std::string why(what);
    why += ": ";
    why += problem;
    throw Reject{std::move(why)};
}

inline std::string type_name(const msgpack::object& o) {
    switch (o.type) {
        case msgpack::type::NIL:
            return "nil";
        case msgpack::type::BOOLEAN:
            return "bool";
        case msgpack::type::POSITIVE_INTEGER:
            return "positive int";
        case msgpack::type::NEGATIVE_INTEGER:
            return "negative int";
        case msgpack::type::FLOAT32:
            return "float32";
        case msgpack::type::FLOAT64:
            return "float64";
        case msgpack::type::STR:
            return "str";
        case msgpack::type::BIN:
            return "bin";
        case msgpack::type::ARRAY:
            return "array";
        case msgpack::type::MAP:
            return "map";
        case msgpack::type::EXT:
            return "ext";
    }
    return "unknown";
}

using Items = std::span<const msgpack::object>;

inline Items array_items(const msgpack::object& o, std::string_view what) {
    if (o.type != msgpack::type::ARRAY) reject(what, "expected array, got " + type_name(o));
    if (o.via.array.size == 0) return {};
    return {o.via.array.ptr, o.via.array.size};
}

inline std::uint64_t uint_in(const msgpack::object& o, std::uint64_t min, std::uint64_t max,
                             std::string_view what) {
    if (o.type != msgpack::type::POSITIVE_INTEGER) {
        reject(what, "expected unsigned int, got " + type_name(o));
    }
    const std::uint64_t v = o.via.u64;
    if (v < min || v > max) {
        reject(what,
               std::to_string(v) + " outside " + std::to_string(min) + ".." + std::to_string(max));
    }
    return v;
}

template <class U>
U uint_of(const msgpack::object& o, std::string_view what) {
    return static_cast<U>(uint_in(o, 0, std::numeric_limits<U>::max(), what));
}

inline ByteView bin_view(const msgpack::object& o, std::string_view what) {
    if (o.type != msgpack::type::BIN) reject(what, "expected bin, got " + type_name(o));
    if (o.via.bin.size == 0) return {};
    return {reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr), o.via.bin.size};
}

inline Bytes bin_up_to(const msgpack::object& o, std::size_t max, std::string_view what) {
    ByteView b = bin_view(o, what);
    if (b.size() > max) {
        reject(what,
               std::to_string(b.size()) + " bytes, at most " + std::to_string(max) + " allowed");
    }
    return Bytes(b.begin(), b.end());
}

template <std::size_t N>
std::array<std::uint8_t, N> bin_exact(const msgpack::object& o, std::string_view what) {
    ByteView b = bin_view(o, what);
    if (b.size() != N) {
        reject(what, std::to_string(b.size()) + " bytes, expected " + std::to_string(N));
    }
    std::array<std::uint8_t, N> out;
    std::copy(b.begin(), b.end(), out.begin());
    return out;
}

}  // namespace tob::consensus::wire
