#include "consensus/crypto_suite.h"

#include <string_view>

#include "consensus/codec.h"

namespace tob::consensus {

namespace {

constexpr std::string_view kCoinTag = "tobd-coin-v1";

void put_be(Bytes& out, std::uint64_t value, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) {
        out.push_back(static_cast<std::uint8_t>((value >> (8 * i)) & 0xff));
    }
}

}  // namespace

bool CryptoSuite::verify_request(const Request& r, const Digest&) const {
    return verify_client(r.client, kRequestTag, request_sign_payload(r), r.sig);
}

// Every field has a fixed size (the tag is a constant), so plain concatenation is
// unambiguous: 12 + 32 + 8 + 2 + 4 = 58 bytes.
Bytes coin_name(const Digest& chain_id, Epoch epoch, NodeId proposer, Round round) {
    Bytes out;
    out.reserve(kCoinTag.size() + chain_id.size() + 8 + 2 + 4);
    out.insert(out.end(), kCoinTag.begin(), kCoinTag.end());
    out.insert(out.end(), chain_id.begin(), chain_id.end());
    put_be(out, epoch, 8);
    put_be(out, proposer, 2);
    put_be(out, round, 4);
    return out;
}

Bytes seal_envelope(const CryptoSuite& crypto, const Digest& chain_id, NodeId sender, Epoch epoch,
                    Kind kind, Bytes body) {
    Envelope env;
    env.chain_id = chain_id;
    env.sender = sender;
    env.epoch = epoch;
    env.kind = kind;
    env.body = std::move(body);
    if (!channel_authenticated(kind)) {  // else the signature stays 64 zero bytes
        env.sig = crypto.sign(kEnvelopeTag,
                              envelope_sign_payload(chain_id, sender, epoch, kind, env.body));
    }
    return encode(env);
}

}  // namespace tob::consensus
