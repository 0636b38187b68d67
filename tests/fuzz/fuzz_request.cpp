// libFuzzer target: consensus::decode_request (see fuzz_common.h for the properties checked).
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    tob::fuzz::check_decoder(tob::consensus::decode_request, data, size);
    return 0;
}
