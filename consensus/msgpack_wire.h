#pragma once
// Building blocks of tobd's canonical msgpack codecs, shared by the wire codec
// (consensus/codec.cpp) and the client-plane codec (cli/client/protocol.cpp).
// Not a public API: both codecs follow the scheme described in codec.cpp (shortest
// forms through msgpack::packer; strict conversion that throws Reject; one decode
// driver, decode_canonical below, that bounds, parses, converts, re-encodes and
// catches every exception).

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <msgpack.hpp>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "consensus/codec.h"
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

// ---- the decode driver ---------------------------------------------------------

/// Parser bounds for one message type. Every bound is at least what a valid
/// message needs and no more: `arrays` is the longest array, `bins` the longest
/// bin, `depth` the deepest array nesting (the outer array counts as 1).
struct Shape {
    const char* what;  // prefix of every error message, e.g. "block"
    std::size_t bytes_max;
    std::size_t arrays;
    std::size_t bins;
    std::size_t depth;
};

/// The scaffold every decoder runs through: size bound, parse within `shape`
/// (str, map and ext capped at 0), no trailing bytes, typed conversion
/// (`convert(const msgpack::object&) -> T`, which may throw Reject), and
/// canonical re-encoding (`encode(const T&) -> Bytes` must give the input back).
/// Never throws.
template <class T, class Convert, class Encode>
Decoded<T> decode_canonical(ByteView bytes, const Shape& shape, Convert convert, Encode encode) {
    auto fail = [&](std::string_view problem) {
        return Decoded<T>::fail(std::string(shape.what) + ": " + std::string(problem));
    };
    if (bytes.size() > shape.bytes_max) {
        return fail(std::to_string(bytes.size()) + " bytes, limit is " +
                    std::to_string(shape.bytes_max));
    }
    if (bytes.empty()) return fail("empty input");
    try {
        // Objects refer into `bytes` instead of copying bins into the zone: the
        // handle dies before this function returns.
        msgpack::unpack_reference_func refer = [](msgpack::type::object_type, std::size_t, void*) {
            return true;
        };
        const msgpack::unpack_limit limit(shape.arrays, /*map=*/0, /*str=*/0, shape.bins,
                                          /*ext=*/0, shape.depth);
        std::size_t offset = 0;
        msgpack::object_handle handle =
            msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), offset,
                            refer, nullptr, limit);
        if (offset != bytes.size()) {
            return fail("trailing bytes after the message (" +
                        std::to_string(bytes.size() - offset) + ")");
        }
        T value = convert(handle.get());
        const Bytes again = encode(value);
        if (!std::equal(again.begin(), again.end(), bytes.begin(), bytes.end())) {
            return fail("not in canonical form");
        }
        return Decoded<T>(std::move(value));
    } catch (const Reject& r) {
        return fail(r.why);
    } catch (const msgpack::insufficient_bytes&) {
        return fail("truncated");
    } catch (const std::bad_alloc&) {
        return fail("out of memory");
    } catch (const std::exception& e) {
        return fail(std::string("malformed msgpack (") + e.what() + ")");
    } catch (...) {
        return fail("malformed msgpack");
    }
}

}  // namespace tob::consensus::wire
