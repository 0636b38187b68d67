#pragma once
// Shared body of the libFuzzer targets in this folder: one target per decoder of
// consensus/codec.h. Each input is decoded twice, under the default Limits and
// under tiny ones (so the limit paths are reached with small inputs). The
// properties checked, any violation of which aborts (= a finding):
//   - the decoder returns (no crash, no exception, no sanitizer report);
//   - a rejection carries a reason;
//   - an accepted input re-encodes to exactly the input bytes (canonical form),
//     and decoding those bytes again gives an equal value.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "consensus/codec.h"

namespace tob::fuzz {

inline consensus::Limits tiny_limits() {
    consensus::Limits l;
    l.message_bytes_max = 4096;
    l.block_bytes_max = 4096;
    l.block_requests_max = 4;
    l.request_ops_max = 4;
    l.request_bytes_max = 1024;
    l.key_bytes_max = 16;
    l.value_bytes_max = 64;
    l.cert_signatures_max = 8;
    l.fetch_items_max = 4;
    l.aba_bundle_max = 8;
    l.batch_requests_max = 4;
    return l;
}

[[noreturn]] inline void finding(const char* what) {
    std::fprintf(stderr, "codec fuzz finding: %s\n", what);
    std::abort();
}

template <class T>
void check_decoder(consensus::Decoded<T> (*decoder)(consensus::ByteView, const consensus::Limits&),
                   const std::uint8_t* data, std::size_t size) {
    const consensus::ByteView input(data, size);
    for (const consensus::Limits& limits : {consensus::Limits{}, tiny_limits()}) {
        consensus::Decoded<T> d = decoder(input, limits);
        if (!d) {
            if (d.error().empty()) finding("rejection without a reason");
            continue;
        }
        const consensus::Bytes again = consensus::encode(d.value());
        if (again.size() != size || !std::equal(again.begin(), again.end(), input.begin())) {
            finding("accepted input does not re-encode to the same bytes");
        }
        consensus::Decoded<T> twice = decoder(again, limits);
        if (!twice || !(twice.value() == d.value()))
            finding("re-encoding does not decode to the same value");
    }
}

}  // namespace tob::fuzz
