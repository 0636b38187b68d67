// libFuzzer target: client::decode_client_message, the client plane of the ROUTER
// socket (cli/client/protocol.h; it moves to cli/client/ in a parallel change,
// only the include path changes). Like the codec targets (fuzz_common.h) each input
// is decoded under the default and under tiny Limits, and:
//   - the decoder returns (no crash, no exception, no sanitizer report);
//   - a rejection carries a reason;
//   - an accepted input re-encodes to exactly the input bytes (canonical form) and
//     decoding those bytes again gives an equal message;
//   - a decoded Reply can be checked against a key (verify_reply must not crash on
//     whatever the decoder accepted).

#include "cli/client/protocol.h"
#include "crypto/hash.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    tob::crypto::init();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tob;
    const consensus::ByteView input(data, size);
    for (const consensus::Limits& limits : {consensus::Limits{}, fuzz::tiny_limits()}) {
        auto d = client::decode_client_message(input, limits);
        if (!d) {
            if (d.error().empty()) fuzz::finding("rejection without a reason");
            continue;
        }
        const consensus::Bytes again = client::encode_client_message(d.value());
        if (again.size() != size || !std::equal(again.begin(), again.end(), input.begin()))
            fuzz::finding("accepted client message does not re-encode to the same bytes");
        auto twice = client::decode_client_message(again, limits);
        if (!twice || !(twice.value() == d.value()))
            fuzz::finding("re-encoding does not decode to the same client message");
        if (const auto* reply = std::get_if<client::ReplyMsg>(&d.value()))
            (void)client::verify_reply(consensus::PublicKey{}, consensus::Digest{}, *reply);
    }
    return 0;
}
