// Tests of the client plane (cli/client/protocol.h) and of the client library
// (cli/client/client.h, cli/client/format.h), linked as the library tob_client.
//
// Codec: every message type round-trips; truncations, trailing bytes,
// non-canonical integers and headers, wrong bin sizes, wrong types, unknown
// message types and over-limit sizes are rejected; a seeded stream of random
// mutations never crashes and whatever is accepted re-encodes to its input.
// Reply signatures verify and break when any signed field changes;
// replies_match compares exactly request_digest, status and outputs.
//
// Client: fake nodes (ROUTER sockets on 127.0.0.1 in threads, signing replies
// with the node keys of a testnet written by write_testnet) check submit, the
// retry at the next node, quorum with forged and lying replies, status, local
// reads, pipelining, client keys and the nonce counter.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "cli/client/client.h"
#include "cli/client/format.h"
#include "cli/client/protocol.h"
#include "consensus/codec.h"
#include "crypto/hash.h"
#include "crypto/keyfile.h"
#include "daemon/config.h"
#include "daemon/testnet.h"
#include "tests/unit/msgpack_raw.h"
#include "tests/unit/test_util.h"

namespace tob::client {
namespace {

using consensus::OpOutput;

// ---- helpers -----------------------------------------------------------------

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

template <std::size_t N>
std::array<std::uint8_t, N> filled(std::uint8_t v) {
    std::array<std::uint8_t, N> a;
    a.fill(v);
    return a;
}

namespace raw = test_util::raw;
using test_util::operator+;

ReplyMsg sample_reply() {
    ReplyMsg r;
    r.node = 3;
    r.client = filled<32>(0x11);
    r.nonce = 1'700'000'000'000'123ull;
    r.request_digest = filled<32>(0x22);
    r.status = ReplyStatus::Committed;
    r.epoch = 4242;
    r.position = 7;
    r.outputs = {OpOutput{true, std::nullopt}, OpOutput{false, text("old")},
                 OpOutput{true, Bytes(300, 0xab)}};
    r.sig = filled<64>(0x33);
    return r;
}

StatusMsg sample_status() {
    StatusMsg s;
    s.node = 2;
    s.version = "tobd 0.1.0";
    s.epoch = 100000;
    s.applied = 99998;
    s.peers_connected = 3;
    s.pool = 70000;
    s.faults = 1;
    s.state_digest = filled<32>(0x44);
    s.voting = false;
    s.halted = true;
    s.uptime_s = 86400;
    s.checkpoint = 99968;
    s.pruned_below = 99712;
    s.snapshot_active = true;
    s.snapshot_epoch = 99904;
    s.snapshot_bytes_total = 15'000'000;
    s.snapshot_bytes_done = 6'000'000;
    s.snapshot_eta_s = 3;
    s.snapshot_chunks_rejected = 2;
    return s;
}

std::vector<ClientMessage> samples() {
    std::vector<ClientMessage> v;
    v.push_back(SubmitMsg{text("encoded request bytes")});
    v.push_back(SubmitMsg{Bytes(70000, 0x5a)});
    v.push_back(sample_reply());
    ReplyMsg dup = sample_reply();
    dup.status = ReplyStatus::Duplicate;
    dup.epoch = 0;
    dup.position = 0;
    dup.outputs.clear();
    dup.node = 0;
    dup.nonce = 0;
    v.push_back(dup);
    ReplyMsg mal = sample_reply();
    mal.status = ReplyStatus::Malformed;
    mal.outputs = std::vector<OpOutput>(20, OpOutput{true, Bytes{}});  // array16 header
    mal.node = 65535;
    mal.position = 0xffffffffu;
    mal.epoch = ~Epoch{0};
    v.push_back(mal);
    v.push_back(StatusQueryMsg{});
    v.push_back(sample_status());
    v.push_back(StatusMsg{});
    v.push_back(LocalGetMsg{text("key")});
    v.push_back(LocalGetMsg{Bytes{}});
    v.push_back(LocalValueMsg{12, text("value")});
    v.push_back(LocalValueMsg{0, std::nullopt});
    v.push_back(ErrorMsg{ErrorCode::Overloaded, "pool full", filled<32>(0x55)});
    v.push_back(ErrorMsg{ErrorCode::BadRequest, "", std::nullopt});
    v.push_back(ErrorMsg{ErrorCode::ReplyTooLarge, "too large", std::nullopt});
    return v;
}

const consensus::Limits kLimits{};

// ---- codec ---------------------------------------------------------------------

TEST(ClientCodec, RoundTripsEveryMessageType) {
    std::set<std::size_t> types;
    for (const ClientMessage& m : samples()) {
        types.insert(m.index());
        const Bytes bytes = encode_client_message(m);
        auto decoded = decode_client_message(bytes, kLimits);
        ASSERT_TRUE(decoded) << decoded.error();
        EXPECT_EQ(decoded.value(), m);
        EXPECT_EQ(encode_client_message(decoded.value()), bytes);
    }
    EXPECT_EQ(types.size(), std::variant_size_v<ClientMessage>);
}

TEST(ClientCodec, ExactLayouts) {
    EXPECT_EQ(encode_client_message(StatusQueryMsg{}), (Bytes{0x91, 0x03}));
    {
        Bytes local_get{0x94, 0x05, 0xc4, 0x01, 'k', 0xc4, 0x20};
        local_get.insert(local_get.end(), 32, 0x11);  // client
        local_get.insert(local_get.end(), {0xc4, 0x40});
        local_get.insert(local_get.end(), 64, 0x22);  // sig
        LocalGetMsg m{text("k"), {}, {}};
        m.client.fill(0x11);
        m.sig.fill(0x22);
        EXPECT_EQ(encode_client_message(m), local_get);
    }
    EXPECT_EQ(encode_client_message(LocalValueMsg{5, std::nullopt}),
              (Bytes{0x93, 0x06, 0x05, 0xc0}));
    EXPECT_EQ(encode_client_message(ErrorMsg{ErrorCode::Halted, "x", std::nullopt}),
              (Bytes{0x94, 0x07, 0x04, 0xc4, 0x01, 'x', 0xc0}));
    // Booleans are the integers 0/1: [ok, value] of an output.
    const ReplyMsg r = sample_reply();
    const Bytes expected = raw::array(
        {raw::uint(2), raw::uint(r.node), raw::bin(r.client), raw::uint(r.nonce),
         raw::bin(r.request_digest), raw::uint(1), raw::uint(r.epoch), raw::uint(r.position),
         raw::array({raw::array({raw::uint(1), raw::nil}),
                     raw::array({raw::uint(0), raw::bin(text("old"))}),
                     raw::array({raw::uint(1), raw::bin(300, 0xab)})}),
         raw::bin(r.sig)});
    EXPECT_EQ(encode_client_message(r), expected);
}

TEST(ClientCodec, RejectsEveryTruncation) {
    for (const ClientMessage& m : samples()) {
        const Bytes bytes = encode_client_message(m);
        const std::size_t step = bytes.size() > 2000 ? 97 : 1;
        for (std::size_t len = 0; len < bytes.size(); len += step) {
            auto d = decode_client_message(ByteView(bytes.data(), len), kLimits);
            EXPECT_FALSE(d) << "prefix " << len << " of " << bytes.size() << " accepted";
        }
    }
}

TEST(ClientCodec, RejectsTrailingBytes) {
    for (const ClientMessage& m : samples()) {
        const Bytes bytes = encode_client_message(m) + Bytes{0xc0};
        auto d = decode_client_message(bytes, kLimits);
        ASSERT_FALSE(d);
        EXPECT_NE(d.error().find("trailing"), std::string::npos) << d.error();
    }
}

TEST(ClientCodec, RejectsNonCanonicalForms) {
    const std::vector<Bytes> bad = {
        {0x91, 0xcc, 0x03},                    // type as uint8
        {0x91, 0xd0, 0x03},                    // type as int8
        {0xdc, 0x00, 0x01, 0x03},              // array16 for one element
        {0x93, 0x06, 0xcd, 0x00, 0x05, 0xc0},  // applied 5 as uint16
        {0x92, 0x05, 0xc5, 0x00, 0x01, 'k'},   // bin16 for a 1-byte key
        {0x92, 0x05, 0xa1, 'k'},               // str for bin
        {0x93, 0x06, 0x05, 0xc2},              // bool where nil|bin is expected
    };
    for (const Bytes& b : bad) {
        auto d = decode_client_message(b, kLimits);
        EXPECT_FALSE(d) << crypto::to_hex(b);
    }
    // Booleans must be 0/1 integers, not msgpack bool and not 2.
    StatusMsg s = sample_status();
    Bytes good = encode_client_message(s);
    ASSERT_TRUE(decode_client_message(good, kLimits));
    auto status_with = [&](const Bytes& voting) {
        return raw::array({raw::uint(4),
                           raw::uint(s.node),
                           raw::bin(text(s.version)),
                           raw::uint(s.epoch),
                           raw::uint(s.applied),
                           raw::uint(s.peers_connected),
                           raw::uint(s.pool),
                           raw::uint(s.faults),
                           raw::bin(s.state_digest),
                           voting,
                           raw::uint(1),
                           raw::uint(s.uptime_s),
                           raw::uint(s.checkpoint),
                           raw::uint(s.pruned_below),
                           raw::uint(s.snapshot_active ? 1 : 0),
                           raw::uint(s.snapshot_epoch),
                           raw::uint(s.snapshot_bytes_total),
                           raw::uint(s.snapshot_bytes_done),
                           raw::uint(s.snapshot_eta_s),
                           raw::uint(s.snapshot_chunks_rejected)});
    };
    EXPECT_EQ(status_with(raw::uint(0)), good);
    EXPECT_FALSE(decode_client_message(status_with(Bytes{0xc2}), kLimits));
    EXPECT_FALSE(decode_client_message(status_with(raw::uint(2)), kLimits));
}

TEST(ClientCodec, RejectsWrongSizesAndArity) {
    const ReplyMsg r = sample_reply();
    auto reply_with = [&](const Bytes& client, const Bytes& digest, const Bytes& sig) {
        return raw::array({raw::uint(2), raw::uint(r.node), client, raw::uint(r.nonce), digest,
                           raw::uint(1), raw::uint(r.epoch), raw::uint(r.position), raw::array({}),
                           sig});
    };
    const Bytes ok32 = raw::bin(32, 1);
    const Bytes ok64 = raw::bin(64, 2);
    EXPECT_TRUE(decode_client_message(reply_with(ok32, ok32, ok64), kLimits));
    EXPECT_FALSE(decode_client_message(reply_with(raw::bin(31, 1), ok32, ok64), kLimits));
    EXPECT_FALSE(decode_client_message(reply_with(ok32, raw::bin(33, 1), ok64), kLimits));
    EXPECT_FALSE(decode_client_message(reply_with(ok32, ok32, raw::bin(63, 2)), kLimits));
    EXPECT_FALSE(decode_client_message(reply_with(ok32, ok32, raw::nil), kLimits));
    // Arity: one field too few / too many.
    EXPECT_FALSE(decode_client_message(raw::array({raw::uint(3), raw::nil}), kLimits));
    EXPECT_FALSE(decode_client_message(raw::array({raw::uint(5)}), kLimits));
    EXPECT_FALSE(decode_client_message(raw::array({raw::uint(6), raw::uint(1), raw::nil, raw::nil}),
                                       kLimits));
    // Output entries are [ok, value].
    auto reply_outputs = [&](const Bytes& outputs) {
        return raw::array({raw::uint(2), raw::uint(r.node), ok32, raw::uint(r.nonce), ok32,
                           raw::uint(1), raw::uint(r.epoch), raw::uint(r.position), outputs, ok64});
    };
    EXPECT_TRUE(decode_client_message(
        reply_outputs(raw::array({raw::array({raw::uint(1), raw::nil})})), kLimits));
    EXPECT_FALSE(
        decode_client_message(reply_outputs(raw::array({raw::array({raw::uint(1)})})), kLimits));
    EXPECT_FALSE(decode_client_message(
        reply_outputs(raw::array({raw::array({raw::uint(1), raw::nil, raw::nil})})), kLimits));
    // Error digest must be nil or 32 bytes.
    EXPECT_FALSE(decode_client_message(
        raw::array({raw::uint(7), raw::uint(2), raw::bin(text("x")), raw::bin(31, 0)}), kLimits));
}

TEST(ClientCodec, RejectsUnknownTypesAndEnums) {
    for (std::uint64_t type : {0ull, 8ull, 200ull, 70000ull}) {
        auto d = decode_client_message(raw::array({raw::uint(type)}), kLimits);
        EXPECT_FALSE(d) << type;
    }
    EXPECT_FALSE(decode_client_message(Bytes{0x90}, kLimits));  // no type at all
    EXPECT_FALSE(decode_client_message(Bytes{0x03}, kLimits));  // not an array
    EXPECT_FALSE(decode_client_message(Bytes{}, kLimits));
    // Reply status 0 and 9, error code 0 and 8.
    ReplyMsg r = sample_reply();
    Bytes b = encode_client_message(r);
    // status is the 6th element: after header(1) type(1) node(1) client(34) nonce(9) digest(34).
    const std::size_t at = 1 + 1 + 1 + 34 + 9 + 34;
    ASSERT_EQ(b[at], 0x01);
    for (std::uint8_t v : {0, 9}) {
        Bytes c = b;
        c[at] = v;
        EXPECT_FALSE(decode_client_message(c, kLimits));
    }
    for (std::uint64_t code : {0ull, 8ull}) {
        EXPECT_FALSE(decode_client_message(
            raw::array({raw::uint(7), raw::uint(code), raw::bin(text("x")), raw::nil}), kLimits));
    }
    // Out-of-range integers for narrow fields.
    EXPECT_FALSE(decode_client_message(
        raw::array({raw::uint(4), raw::uint(65536), raw::bin(text("v")), raw::uint(0), raw::uint(0),
                    raw::uint(0), raw::uint(0), raw::uint(0), raw::bin(32, 0), raw::uint(1),
                    raw::uint(0), raw::uint(0)}),
        kLimits));
}

TEST(ClientCodec, EnforcesLimits) {
    consensus::Limits lim;
    lim.key_bytes_max = 8;
    lim.value_bytes_max = 16;
    lim.request_ops_max = 4;
    lim.request_bytes_max = 100;
    lim.message_bytes_max = 4096;

    EXPECT_TRUE(decode_client_message(encode_client_message(LocalGetMsg{Bytes(8, 1)}), lim));
    EXPECT_FALSE(decode_client_message(encode_client_message(LocalGetMsg{Bytes(9, 1)}), lim));
    EXPECT_TRUE(decode_client_message(encode_client_message(LocalValueMsg{1, Bytes(16, 1)}), lim));
    EXPECT_FALSE(decode_client_message(encode_client_message(LocalValueMsg{1, Bytes(17, 1)}), lim));
    EXPECT_TRUE(decode_client_message(encode_client_message(SubmitMsg{Bytes(100, 1)}), lim));
    EXPECT_FALSE(decode_client_message(encode_client_message(SubmitMsg{Bytes(101, 1)}), lim));

    ReplyMsg r = sample_reply();
    r.outputs = std::vector<OpOutput>(4, OpOutput{true, Bytes(16, 1)});
    EXPECT_TRUE(decode_client_message(encode_client_message(r), lim));
    r.outputs.push_back(OpOutput{});
    EXPECT_FALSE(decode_client_message(encode_client_message(r), lim));
    r.outputs = {OpOutput{true, Bytes(17, 1)}};
    EXPECT_FALSE(decode_client_message(encode_client_message(r), lim));

    // The whole input is bounded by message_bytes_max before parsing.
    auto d = decode_client_message(Bytes(4097, 0x90), lim);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("limit"), std::string::npos) << d.error();

    // Text is bounded; the encoder cuts it so that what it writes always decodes.
    const std::string long_text(kClientTextBytesMax + 10, 'x');
    const Bytes cut = encode_client_message(ErrorMsg{ErrorCode::Overloaded, long_text, {}});
    auto e = decode_client_message(cut, kLimits);
    ASSERT_TRUE(e) << e.error();
    EXPECT_EQ(std::get<ErrorMsg>(e.value()).text.size(), kClientTextBytesMax);
    EXPECT_FALSE(decode_client_message(
        raw::array({raw::uint(7), raw::uint(2), raw::bin(kClientTextBytesMax + 1, 'x'), raw::nil}),
        kLimits));

    // Huge declared sizes fail without allocating them.
    EXPECT_FALSE(decode_client_message(Bytes{0x92, 0x01, 0xc6, 0x7f, 0xff, 0xff, 0xff}, kLimits));
    EXPECT_FALSE(decode_client_message(Bytes{0xdd, 0x7f, 0xff, 0xff, 0xff}, kLimits));
    // Nesting deeper than a reply's outputs.
    EXPECT_FALSE(decode_client_message(Bytes{0x91, 0x91, 0x91, 0x91, 0x01}, kLimits));
}

TEST(ClientCodec, RandomMutationsNeverCrash) {
    std::mt19937_64 rng(20240601);
    std::vector<Bytes> seeds;
    for (const ClientMessage& m : samples()) {
        Bytes b = encode_client_message(m);
        if (b.size() < 4000) seeds.push_back(std::move(b));
    }
    consensus::Limits small;
    small.key_bytes_max = 64;
    small.value_bytes_max = 512;
    small.request_ops_max = 8;
    small.request_bytes_max = 1024;
    small.message_bytes_max = 8192;
    std::size_t accepted = 0;
    for (int i = 0; i < 10000; ++i) {
        Bytes b = seeds[rng() % seeds.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < edits && !b.empty(); ++k) {
            const std::size_t at = rng() % b.size();
            switch (rng() % 5) {
                case 0:
                    b[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                    break;
                case 1:
                    b[at] = static_cast<std::uint8_t>(rng());
                    break;
                case 2:
                    b.insert(b.begin() + static_cast<std::ptrdiff_t>(at),
                             static_cast<std::uint8_t>(rng()));
                    break;
                case 3:
                    b.erase(b.begin() + static_cast<std::ptrdiff_t>(at));
                    break;
                default:
                    b.resize(at);
            }
        }
        for (const consensus::Limits* lim :
             {&kLimits, static_cast<const consensus::Limits*>(&small)}) {
            Decoded<ClientMessage> d = Decoded<ClientMessage>::fail("not run");
            ASSERT_NO_THROW(d = decode_client_message(b, *lim));
            if (d) {
                ++accepted;
                EXPECT_EQ(encode_client_message(d.value()), b);
            }
        }
    }
    // Some mutations (a flipped payload byte) stay valid; most must not.
    EXPECT_GT(accepted, 0u);
    EXPECT_LT(accepted, 20000u);
}

// ---- reply signatures and matching -------------------------------------------------

TEST(ReplySignature, VerifiesAndBreaksOnEverySignedField) {
    crypto::init();
    const auto key = crypto::SigningKey::generate();
    const auto other = crypto::SigningKey::generate();
    const Digest chain = filled<32>(0x77);
    ReplyMsg r = sample_reply();
    r.sig = sign_reply(key, chain, r);
    EXPECT_TRUE(verify_reply(key.public_key(), chain, r));
    EXPECT_TRUE(crypto::verify(key.public_key(), kReplyTag, reply_sign_payload(chain, r), r.sig));
    EXPECT_FALSE(verify_reply(other.public_key(), chain, r));
    EXPECT_FALSE(verify_reply(key.public_key(), filled<32>(0x78), r));
    // The payload is [chain_id, node, client, nonce, request_digest, status, epoch,
    // position, outputs] and ignores the signature itself.
    ReplyMsg unsigned_r = r;
    unsigned_r.sig = {};
    EXPECT_EQ(reply_sign_payload(chain, unsigned_r), reply_sign_payload(chain, r));
    EXPECT_EQ(reply_sign_payload(chain, r)[0], 0x99);

    const std::vector<std::function<void(ReplyMsg&)>> changes = {
        [](ReplyMsg& m) { m.node ^= 1; },
        [](ReplyMsg& m) { m.client[0] ^= 1; },
        [](ReplyMsg& m) { m.nonce += 1; },
        [](ReplyMsg& m) { m.request_digest[31] ^= 1; },
        [](ReplyMsg& m) { m.status = ReplyStatus::Duplicate; },
        [](ReplyMsg& m) { m.epoch += 1; },
        [](ReplyMsg& m) { m.position += 1; },
        [](ReplyMsg& m) { m.outputs[0].ok = !m.outputs[0].ok; },
        [](ReplyMsg& m) { m.outputs[0].value = Bytes{}; },
        [](ReplyMsg& m) { m.outputs[1].value->push_back('x'); },
        [](ReplyMsg& m) { m.outputs[1].value.reset(); },
        [](ReplyMsg& m) { m.outputs.pop_back(); },
        [](ReplyMsg& m) { m.outputs.push_back(OpOutput{}); },
        [](ReplyMsg& m) { m.sig[0] ^= 1; },
    };
    for (std::size_t i = 0; i < changes.size(); ++i) {
        ReplyMsg m = r;
        changes[i](m);
        EXPECT_FALSE(verify_reply(key.public_key(), chain, m)) << "change " << i;
    }
}

TEST(ReplyMatching, ComparesDigestStatusAndOutputsOnly) {
    const ReplyMsg a = sample_reply();
    ReplyMsg b = a;
    b.node = 1;
    b.epoch = 0;
    b.position = 99;
    b.sig = filled<64>(9);
    b.client = filled<32>(1);
    b.nonce = 5;
    EXPECT_TRUE(replies_match(a, b));
    EXPECT_TRUE(replies_match(b, a));

    b = a;
    b.request_digest[0] ^= 1;
    EXPECT_FALSE(replies_match(a, b));
    b = a;
    b.status = ReplyStatus::Duplicate;
    EXPECT_FALSE(replies_match(a, b));
    b = a;
    b.outputs[1].ok = true;
    EXPECT_FALSE(replies_match(a, b));
    b = a;
    b.outputs[0].value = Bytes{};  // empty value differs from absent
    EXPECT_FALSE(replies_match(a, b));
    b = a;
    b.outputs.pop_back();
    EXPECT_FALSE(replies_match(a, b));
}

}  // namespace
}  // namespace tob::client

// ---- the client library ------------------------------------------------------------------

namespace tob::client {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using test_util::TempDir;

// Replies are authenticated as the real node's are (docs/client.md, "Reply
// authentication"): by the Curve connection, unsigned; on a plaintext test
// connection, signed with the node's key.
enum class Mode {
    Honest,       // reply with the true outputs
    Silent,       // never answers
    Forge,        // reply signed by a key that is not the node's
    Impersonate,  // reply with the true outputs naming the next node, not this one
    Lie,          // authentic reply with other outputs
    Overloaded,   // Error Overloaded
    BadRequest,   // Error BadRequest
    OtherDigest,  // authentic reply for another request
};

/// A node's client plane: a ROUTER on 127.0.0.1 answering in a thread.
class FakeNode {
  public:
    /// `curve` null: a plaintext endpoint (as `tobd --test-no-curve`), whose
    /// replies are signed.
    FakeNode(zmq::context_t& ctx, NodeId id, crypto::SigningKey key, Digest chain_id, Mode mode,
             const crypto::CurveKeyPair* curve)
        : id_(id),
          key_(std::move(key)),
          chain_id_(chain_id),
          mode_(mode),
          signs_(curve == nullptr),
          socket_(ctx, zmq::socket_type::router) {
        socket_.set(zmq::sockopt::linger, 0);
        // A Curve server with the node's key, as the real client endpoint (no ZAP
        // handler here: any client key is let in).
        if (curve != nullptr) {
            const int one = 1;
            zmq_setsockopt(socket_.handle(), ZMQ_CURVE_SERVER, &one, sizeof one);
            zmq_setsockopt(socket_.handle(), ZMQ_CURVE_SECRETKEY, curve->secret_key().data(), 32);
        }
        socket_.bind("tcp://127.0.0.1:*");
        endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
        thread_ = std::thread([this] { run(); });
    }
    ~FakeNode() {
        stop_ = true;
        thread_.join();
    }
    const std::string& endpoint() const { return endpoint_; }
    std::vector<Bytes> submits() {
        std::lock_guard lock(mu_);
        return submits_;
    }

    /// The outputs an honest node reports for a request: PUT/DEL/CAS the
    /// "previous" value, GET the value, CAS ok.
    static std::vector<consensus::OpOutput> outputs_for(const consensus::Request& r) {
        std::vector<consensus::OpOutput> out;
        for (const consensus::Op& op : r.ops) {
            Bytes v = op.key;
            v.push_back('=');
            out.push_back(consensus::OpOutput{true, v});
        }
        return out;
    }

  private:
    void run() {
        while (!stop_) {
            zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, std::chrono::milliseconds(10));
            if (!(item.revents & ZMQ_POLLIN)) continue;
            std::vector<zmq::message_t> parts;
            while (true) {
                zmq::message_t part;
                if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
                const bool more = part.more();
                parts.push_back(std::move(part));
                if (!more) break;
            }
            if (parts.size() != 3) continue;
            const consensus::ByteView body(static_cast<const std::uint8_t*>(parts[2].data()),
                                           parts[2].size());
            auto decoded = decode_client_message(body, consensus::Limits{});
            if (!decoded) continue;
            if (auto answer = handle(decoded.value())) {
                zmq::message_t route(parts[0].data(), parts[0].size());
                zmq::message_t channel(&kChannelClient, 1);
                const Bytes bytes = encode_client_message(*answer);
                socket_.send(route, zmq::send_flags::sndmore);
                socket_.send(channel, zmq::send_flags::sndmore);
                socket_.send(zmq::buffer(bytes.data(), bytes.size()));
            }
        }
    }

    std::optional<ClientMessage> handle(const ClientMessage& m) {
        if (std::holds_alternative<StatusQueryMsg>(m)) {
            if (mode_ == Mode::Silent) return std::nullopt;
            StatusMsg s;
            s.node = id_;
            s.version = "fake";
            s.epoch = 10 + id_;
            s.applied = 9;
            if (mode_ == Mode::Lie) s.applied = 1'000'000'000;  // a bogus epoch
            return s;
        }
        if (const auto* get = std::get_if<LocalGetMsg>(&m)) {
            if (mode_ == Mode::Silent) return std::nullopt;
            if (!verify_local_get(chain_id_, *get)) {
                return ErrorMsg{ErrorCode::Forbidden, "bad signature", std::nullopt};
            }
            Bytes v = get->key;
            v.push_back('=');
            return LocalValueMsg{7, v};
        }
        const auto* submit = std::get_if<SubmitMsg>(&m);
        if (submit == nullptr) return std::nullopt;
        {
            std::lock_guard lock(mu_);
            submits_.push_back(submit->request);
        }
        auto request = consensus::decode_request(submit->request, consensus::Limits{});
        if (!request) return std::nullopt;
        const Digest digest = consensus::digest_of(submit->request);
        switch (mode_) {
            case Mode::Silent:
                return std::nullopt;
            case Mode::Overloaded:
                return ErrorMsg{ErrorCode::Overloaded, "pool full", digest};
            case Mode::BadRequest:
                return ErrorMsg{ErrorCode::BadRequest, "bad signature", std::nullopt};
            default:
                break;
        }
        ReplyMsg r;
        r.node = id_;
        r.client = request.value().client;
        r.nonce = request.value().nonce;
        r.request_digest = digest;
        r.status = ReplyStatus::Committed;
        r.epoch = 5;
        r.position = id_;  // informational: differs per node, must not break matching
        r.outputs = outputs_for(request.value());
        if (mode_ == Mode::Lie) r.outputs.front().value = text("lie");
        if (mode_ == Mode::OtherDigest) r.request_digest[0] ^= 1;
        if (mode_ == Mode::Impersonate) r.node = static_cast<NodeId>((id_ + 1) % 4);
        if (mode_ == Mode::Forge) {
            r.sig =
                crypto::SigningKey::generate().sign(kReplyTag, reply_sign_payload(chain_id_, r));
        } else if (signs_) {
            r.sig = sign_reply(key_, chain_id_, r);
        }
        return r;
    }

    NodeId id_;
    crypto::SigningKey key_;
    Digest chain_id_;
    Mode mode_;
    bool signs_;
    zmq::socket_t socket_;
    std::string endpoint_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<Bytes> submits_;
    std::thread thread_;
};

/// A 4-node testnet (t = 1) whose nodes are FakeNodes in the given modes; a
/// nullopt mode leaves that node's endpoint closed (nothing listens). `curve_on`
/// false: plaintext endpoints with signed replies (for a client made under
/// PlaintextClients).
class FakeCluster {
  public:
    explicit FakeCluster(const std::vector<std::optional<Mode>>& modes, bool curve_on = true) {
        crypto::init();
        daemon::TestnetOptions options;
        options.dir = dir_.path() / "testnet";
        options.nodes = static_cast<std::uint32_t>(modes.size());
        auto written = daemon::write_testnet(options);
        if (!written.ok()) {
            ADD_FAILURE() << "write_testnet failed: "
                          << (written.errors.empty() ? "" : written.errors.front());
            return;
        }
        auto loaded = daemon::load_cluster_config(written.value->cluster_file);
        if (!loaded.ok()) {
            ADD_FAILURE() << "load_cluster_config failed";
            return;
        }
        cluster = std::move(*loaded.value);
        for (std::size_t i = 0; i < modes.size(); ++i) {
            auto key = crypto::load_signing_key(written.value->nodes[i].dir / "node.key");
            auto curve = crypto::load_curve_key(written.value->nodes[i].dir / "curve.key");
            if (!std::holds_alternative<crypto::SigningKey>(key) ||
                !std::holds_alternative<crypto::CurveKeyPair>(curve)) {
                ADD_FAILURE() << "node key " << i;
                return;
            }
            if (modes[i]) {
                nodes.push_back(std::make_unique<FakeNode>(
                    ctx_, static_cast<NodeId>(i), std::get<crypto::SigningKey>(key),
                    cluster.chain_id, *modes[i],
                    curve_on ? &std::get<crypto::CurveKeyPair>(curve) : nullptr));
                cluster.members[i].client_endpoint = nodes.back()->endpoint();
            } else {
                nodes.push_back(nullptr);
                cluster.members[i].client_endpoint = closed_endpoint();
            }
        }
    }

    /// An endpoint on which nothing listens: a port bound and released again.
    std::string closed_endpoint() {
        zmq::socket_t s(ctx_, zmq::socket_type::router);
        s.set(zmq::sockopt::linger, 0);
        s.bind("tcp://127.0.0.1:*");
        std::string e = s.get(zmq::sockopt::last_endpoint);
        s.close();
        return e;
    }

    TempDir dir_;
    zmq::context_t ctx_{1};
    daemon::ClusterConfig cluster;
    std::vector<std::unique_ptr<FakeNode>> nodes;
};

consensus::Op put(std::string_view key, std::string_view value) {
    return consensus::Op{consensus::OpType::Put, text(key), text(value), std::nullopt};
}

double elapsed_ms(Clock::time_point since) {
    return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

TEST(Client, RequestsExpireOneHorizonAfterTheEpochOfTheNodesStatus) {
    FakeCluster fc({Mode::Honest, Mode::Honest, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    EXPECT_EQ(client.expiry_horizon(), kDefaultExpiryHorizon);
    client.set_expiry_horizon(50);
    EXPECT_EQ(client.build_request({put("a", "1")}, 1).expires, 9u + 50u);  // applied 9
    client.note_epoch(30);  // a verified reply of a later epoch
    EXPECT_EQ(client.build_request({put("a", "1")}, 2).expires, 30u + 50u);
    client.note_epoch(30 + 51);  // more than one horizon ahead: ignored
    EXPECT_EQ(client.known_epoch(), 30u);
    // The horizon never exceeds the cluster's request_expiry_max_epochs.
    client.set_expiry_horizon(~Epoch{0});
    EXPECT_EQ(client.expiry_horizon(), fc.cluster.protocol.request_expiry_max_epochs);
    EXPECT_EQ(client.build_request({put("a", "1")}, 3, 77).expires, 77u);
}

TEST(Client, OneNodeReportingABogusEpochDoesNotMoveTheExpiry) {
    // t = 1: the second highest answer is never above what an honest node applied.
    FakeCluster fc({Mode::Lie, Mode::Honest, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    auto e = client.refresh_epoch(Millis(2000));
    ASSERT_TRUE(e.ok()) << e.error;
    EXPECT_EQ(*e.value, 9u);
    EXPECT_EQ(client.next_expiry(), 9u + kDefaultExpiryHorizon);
}

TEST(Client, BuildsSignedRequests) {
    FakeCluster fc({Mode::Honest, Mode::Honest, Mode::Honest, Mode::Honest});
    const auto key = crypto::SigningKey::generate();
    Client client(fc.cluster, key);
    const consensus::Request r = client.build_request({put("a", "1"), put("b", "2")}, 42);
    EXPECT_EQ(r.chain_id, fc.cluster.chain_id);
    EXPECT_EQ(r.client, key.public_key());
    EXPECT_EQ(r.nonce, 42u);
    EXPECT_EQ(r.ops.size(), 2u);
    EXPECT_TRUE(crypto::verify(key.public_key(), consensus::kRequestTag,
                               consensus::request_sign_payload(r), r.sig));
    const Client::Prepared p = Client::prepare(r);
    EXPECT_EQ(p.request_digest, consensus::digest_of(consensus::encode(r)));
    auto d = decode_client_message(p.body, fc.cluster.limits);
    ASSERT_TRUE(d);
    EXPECT_EQ(std::get<SubmitMsg>(d.value()).request, consensus::encode(r));
}

TEST(Client, SubmitGetsAVerifiedReply) {
    FakeCluster fc({Mode::Honest, Mode::Honest, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    const consensus::Request r = client.build_request({put("k", "v")}, 1);
    SubmitOptions options;
    options.node = 2;
    options.deadline = Millis(3000);
    auto result = client.submit(r, options);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_EQ(result.value->reply.node, 2);
    EXPECT_EQ(result.value->nodes, std::vector<NodeId>{2});
    EXPECT_EQ(result.value->reply.outputs, FakeNode::outputs_for(r));
    EXPECT_EQ(fc.nodes[2]->submits().size(), 1u);
    EXPECT_TRUE(fc.nodes[0]->submits().empty());
}

TEST(Client, RetriesTheSameBytesAtTheNextNodeWhenSilent) {
    FakeCluster fc({Mode::Silent, Mode::Honest, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    const consensus::Request r = client.build_request({put("k", "v")}, 7);
    SubmitOptions options;
    options.node = 0;
    options.attempt_timeout = Millis(200);
    options.deadline = Millis(3000);
    const auto start = Clock::now();
    auto result = client.submit(r, options);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_GE(elapsed_ms(start), 190.0);
    EXPECT_EQ(result.value->reply.node, 1);
    const auto at0 = fc.nodes[0]->submits();
    const auto at1 = fc.nodes[1]->submits();
    ASSERT_EQ(at0.size(), 1u);
    ASSERT_EQ(at1.size(), 1u);
    EXPECT_EQ(at0.front(), at1.front());
    EXPECT_EQ(at0.front(), consensus::encode(r));
}

TEST(Client, RetriesWhenTheFirstNodeIsDown) {
    FakeCluster fc({std::nullopt, Mode::Honest, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    SubmitOptions options;
    options.node = 0;
    options.attempt_timeout = Millis(150);
    options.deadline = Millis(3000);
    auto result = client.submit(client.build_request({put("k", "v")}, 8), options);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_EQ(result.value->reply.node, 1);
}

TEST(Client, OverloadedNodeIsSkippedAtOnce) {
    FakeCluster fc({Mode::Overloaded, Mode::Honest, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    SubmitOptions options;
    options.node = 0;
    options.attempt_timeout = Millis(2000);
    options.deadline = Millis(4000);
    const auto start = Clock::now();
    auto result = client.submit(client.build_request({put("k", "v")}, 9), options);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_LT(elapsed_ms(start), 1000.0);
    EXPECT_EQ(result.value->reply.node, 1);
}

TEST(Client, BadRequestFromTPlusOneNodesFails) {
    FakeCluster fc({Mode::BadRequest, Mode::BadRequest, Mode::Silent, Mode::Silent});
    Client client(fc.cluster, crypto::SigningKey::generate());
    SubmitOptions options;
    options.node = 0;
    options.attempt_timeout = Millis(2000);
    options.deadline = Millis(4000);
    // Built first: with two silent nodes, learning the epoch waits its timeout.
    const consensus::Request request = client.build_request({put("k", "v")}, 10);
    const auto start = Clock::now();
    auto result = client.submit(request, options);
    ASSERT_FALSE(result.ok());
    EXPECT_LT(elapsed_ms(start), 1000.0);
    EXPECT_NE(result.error.find("refused by 2 nodes"), std::string::npos) << result.error;
    ASSERT_TRUE(result.node_error);
    EXPECT_EQ(result.node_error->code, ErrorCode::BadRequest);
}

/// What one put sent to node 0 of a FakeCluster in `modes` came to, and how many
/// replies the client dropped as not authentic. `curve_on` false: plaintext
/// endpoints and client (TOBCTL_TEST_NO_CURVE=1 while the client is made).
struct NodeZeroOutcome {
    bool ok = false;
    std::string error;
    std::vector<NodeId> nodes;
    std::uint64_t bad_replies = 0;
};

NodeZeroOutcome submit_to_node_zero(const std::vector<std::optional<Mode>>& modes, bool curve_on,
                                    Millis deadline) {
    FakeCluster fc(modes, curve_on);
    if (!curve_on) ::setenv("TOBCTL_TEST_NO_CURVE", "1", 1);
    Client client(fc.cluster, crypto::SigningKey::generate());
    ::unsetenv("TOBCTL_TEST_NO_CURVE");
    SubmitOptions options;
    options.node = 0;
    options.attempt_timeout = Millis(300);
    options.deadline = deadline;
    auto result = client.submit(client.build_request({put("k", "v")}, 11), options);
    NodeZeroOutcome out{result.ok(), result.error, {}, client.stats().bad_replies};
    if (result.ok()) out.nodes = result.value->nodes;
    return out;
}

TEST(Client, IgnoresImpersonatingAndUnrelatedReplies) {
    // Node 0 answers in node 1's name: its connection is node 0's, so the reply
    // is not node 1's, whatever it says.
    auto out = submit_to_node_zero(
        {Mode::Impersonate, Mode::OtherDigest, Mode::Silent, Mode::Silent}, true, Millis(700));
    ASSERT_FALSE(out.ok);
    EXPECT_NE(out.error.find("no verified reply"), std::string::npos) << out.error;
    EXPECT_GE(out.bad_replies, 1u);
}

TEST(Client, OnPlaintextConnectionsRepliesMustCarryTheNodesSignature) {
    // A reply signed by another key, in the node's own name, on its own
    // connection: nothing authenticates it, so it is dropped.
    auto forged = submit_to_node_zero({Mode::Forge, Mode::Silent, Mode::Silent, Mode::Silent},
                                      false, Millis(600));
    ASSERT_FALSE(forged.ok);
    EXPECT_NE(forged.error.find("no verified reply"), std::string::npos) << forged.error;
    EXPECT_GE(forged.bad_replies, 1u);
    auto honest = submit_to_node_zero({Mode::Honest, Mode::Silent, Mode::Silent, Mode::Silent},
                                      false, Millis(3000));
    ASSERT_TRUE(honest.ok) << honest.error;
    EXPECT_EQ(honest.bad_replies, 0u);
}

TEST(Client, OnCurveConnectionsTheConnectionAuthenticatesTheReply) {
    // Unsigned (Honest) and wrongly signed (Forge) replies on the node's own
    // Curve connection are both the node's: nobody else can write on it.
    for (const Mode mode : {Mode::Honest, Mode::Forge}) {
        auto out = submit_to_node_zero({mode, Mode::Silent, Mode::Silent, Mode::Silent}, true,
                                       Millis(3000));
        ASSERT_TRUE(out.ok) << out.error;
        EXPECT_EQ(out.nodes, (std::vector<NodeId>{0}));
        EXPECT_EQ(out.bad_replies, 0u);
    }
}

TEST(Client, QuorumNeedsTPlusOneMatchingReplies) {
    // Node 0's reply in node 1's name would make {1, 2} a quorum if it counted.
    FakeCluster fc({Mode::Impersonate, Mode::Lie, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    const consensus::Request r = client.build_request({put("k", "v")}, 12);
    SubmitOptions options;
    options.quorum = true;
    options.deadline = Millis(3000);
    auto result = client.submit(r, options);
    ASSERT_TRUE(result.ok()) << result.error;
    EXPECT_EQ(result.value->nodes, (std::vector<NodeId>{2, 3}));
    EXPECT_EQ(result.value->reply.outputs, FakeNode::outputs_for(r));
    // The client sent to all four at once and returns on the second matching
    // reply: a node's thread may record its copy a moment later. Wait for the
    // four copies (not for a fixed time), then check that none was sent twice.
    const auto all_arrived = [&] {
        for (const auto& node : fc.nodes)
            if (node->submits().empty()) return false;
        return true;
    };
    const auto start = Clock::now();
    while (!all_arrived() && elapsed_ms(start) < 3000.0)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const auto& node : fc.nodes) EXPECT_EQ(node->submits().size(), 1u);
}

TEST(Client, QuorumFailsWhenRepliesDisagree) {
    FakeCluster fc({Mode::Impersonate, Mode::Lie, Mode::Honest, Mode::Silent});
    Client client(fc.cluster, crypto::SigningKey::generate());
    SubmitOptions options;
    options.quorum = true;
    options.attempt_timeout = Millis(300);
    options.deadline = Millis(800);
    auto result = client.submit(client.build_request({put("k", "v")}, 13), options);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error.find("no 2 matching verified replies"), std::string::npos)
        << result.error;
    EXPECT_NE(result.error.find("2 distinct outcomes"), std::string::npos) << result.error;
    // The silent node was asked again after the attempt timeout.
    EXPECT_GE(fc.nodes[3]->submits().size(), 2u);
}

TEST(Client, StatusMarksUnreachableNodes) {
    FakeCluster fc({Mode::Honest, Mode::Honest, Mode::Honest, std::nullopt});
    Client client(fc.cluster, crypto::SigningKey::generate());
    const auto start = Clock::now();
    auto results = client.status_all({0, 1, 2, 3}, Millis(300));
    EXPECT_LT(elapsed_ms(start), 1500.0);
    ASSERT_EQ(results.size(), 4u);
    for (NodeId i = 0; i < 3; ++i) {
        ASSERT_TRUE(results[i].ok()) << results[i].error;
        EXPECT_EQ(results[i].value->node, i);
        EXPECT_EQ(results[i].value->epoch, 10u + i);
    }
    EXPECT_FALSE(results[3].ok());
    auto one = client.status(1, Millis(1000));
    ASSERT_TRUE(one.ok()) << one.error;
    EXPECT_EQ(one.value->node, 1);
}

TEST(Client, LocalGet) {
    FakeCluster fc({Mode::Honest, Mode::Honest, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    auto v = client.local_get(3, text("key"), Millis(1000));
    ASSERT_TRUE(v.ok()) << v.error;
    EXPECT_EQ(v.value->applied, 7u);
    EXPECT_EQ(v.value->value, text("key="));
    EXPECT_FALSE(client.local_get(9, text("key"), Millis(100)).ok());
}

TEST(Client, PipelinedRequestsAllGetVerifiedReplies) {
    FakeCluster fc({Mode::Honest, Mode::Honest, Mode::Honest, Mode::Honest});
    Client client(fc.cluster, crypto::SigningKey::generate());
    std::set<Digest> open;
    for (Nonce nonce = 1; nonce <= 200; ++nonce) {
        auto p =
            Client::prepare(client.build_request({put("k" + std::to_string(nonce), "v")}, nonce));
        ASSERT_TRUE(client.send(static_cast<NodeId>(nonce % 4), p.body));
        open.insert(p.request_digest);
    }
    std::vector<Incoming> in;
    const auto deadline = Clock::now() + std::chrono::seconds(4);
    while (!open.empty() && Clock::now() < deadline) {
        in.clear();
        client.poll(Millis(100), in);
        for (const Incoming& i : in) {
            const auto* r = std::get_if<ReplyMsg>(&i.message);
            ASSERT_NE(r, nullptr);
            EXPECT_EQ(r->node, i.from);
            EXPECT_EQ(open.erase(r->request_digest), 1u);
        }
    }
    EXPECT_TRUE(open.empty());
    EXPECT_FALSE(client.send(17, Bytes{1}));
}

// ---- keys and nonces ---------------------------------------------------------------------

TEST(ClientKey, CreatedOnFirstUseWithPrivateModes) {
    crypto::init();
    TempDir dir;
    const fs::path path = dir.path() / "a" / "b" / "client.key";
    auto first = load_or_create_client_key(path);
    ASSERT_TRUE(first.ok()) << first.error;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir.path() / "a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077, 0u);
    ASSERT_EQ(::stat((dir.path() / "a" / "b").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077, 0u);
    auto second = load_or_create_client_key(path);
    ASSERT_TRUE(second.ok()) << second.error;
    EXPECT_EQ(first.value->public_key(), second.value->public_key());
    // A key file readable by others is refused, not replaced.
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    EXPECT_FALSE(load_or_create_client_key(path).ok());
}

TEST(ClientKey, DefaultPathFollowsTheEnvironment) {
    const char* names[] = {"TOBCTL_KEY_FILE", "XDG_CONFIG_HOME", "HOME"};
    std::vector<std::optional<std::string>> saved;
    for (const char* n : names) {
        const char* v = std::getenv(n);
        saved.push_back(v ? std::optional<std::string>(v) : std::nullopt);
    }
    ::setenv("TOBCTL_KEY_FILE", "/k/file", 1);
    ::setenv("XDG_CONFIG_HOME", "/xdg", 1);
    ::setenv("HOME", "/home/u", 1);
    EXPECT_EQ(default_client_key_path(), fs::path("/k/file"));
    ::unsetenv("TOBCTL_KEY_FILE");
    EXPECT_EQ(default_client_key_path(), fs::path("/xdg/tobctl/client.key"));
    ::unsetenv("XDG_CONFIG_HOME");
    EXPECT_EQ(default_client_key_path(), fs::path("/home/u/.config/tobctl/client.key"));
    ::unsetenv("HOME");
    EXPECT_EQ(default_client_key_path(), std::nullopt);
    for (std::size_t i = 0; i < saved.size(); ++i) {
        if (saved[i]) {
            ::setenv(names[i], saved[i]->c_str(), 1);
        } else {
            ::unsetenv(names[i]);
        }
    }
    EXPECT_EQ(nonce_file_for("/x/client.key"), fs::path("/x/client.key.nonce"));
}

TEST(Nonces, StartFromTheClockThenCountUp) {
    TempDir dir;
    const fs::path file = dir.path() / "client.key.nonce";
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    auto first = reserve_nonces(file);
    ASSERT_TRUE(first.ok()) << first.error;
    EXPECT_GE(*first.value, static_cast<Nonce>(now_ms) * 1000);
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto block = reserve_nonces(file, 10);
    ASSERT_TRUE(block.ok());
    EXPECT_EQ(*block.value, *first.value + 1);
    auto next = reserve_nonces(file);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(*next.value, *first.value + 11);
    EXPECT_FALSE(reserve_nonces(file, 0).ok());
}

TEST(Nonces, TornCounterRestartsFromTheClock) {
    TempDir dir;
    const fs::path file = dir.path() / "n";
    {
        std::FILE* f = std::fopen(file.c_str(), "w");
        std::fputs("12", f);  // no newline: a torn write
        std::fclose(f);
    }
    auto n = reserve_nonces(file);
    ASSERT_TRUE(n.ok());
    EXPECT_GT(*n.value, 1'000'000'000'000'000ull);
    {
        std::FILE* f = std::fopen(file.c_str(), "w");
        std::fputs("12\n", f);
        std::fclose(f);
    }
    n = reserve_nonces(file);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n.value, 13u);
}

TEST(Nonces, ConcurrentReservationsAreDistinctAndConsecutive) {
    TempDir dir;
    const fs::path file = dir.path() / "n";
    constexpr int kThreads = 4;
    constexpr int kEach = 50;
    std::vector<std::vector<Nonce>> got(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                auto n = reserve_nonces(file);  // own open(): flock excludes the other threads
                if (n.ok()) got[t].push_back(*n.value);
            }
        });
    }
    for (auto& th : threads) th.join();
    std::set<Nonce> all;
    for (const auto& v : got) all.insert(v.begin(), v.end());
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
    EXPECT_EQ(*all.rbegin() - *all.begin(), static_cast<Nonce>(kThreads * kEach - 1));
}

TEST(Formatting, JsonAndDisplay) {
    EXPECT_EQ(json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
    EXPECT_EQ(json_string("h\xc3\xa9"), "\"h\xc3\xa9\"");
    EXPECT_EQ(json_string("\xff"), "\"\\ufffd\"");
    EXPECT_EQ(display_bytes(text("hello")), "hello");
    EXPECT_EQ(display_bytes(Bytes{0x00, 0xff}), "0x00ff");
    EXPECT_EQ(json_value(std::nullopt), "null");
    EXPECT_EQ(json_value(text("v")), "\"v\"");
    EXPECT_EQ(json_value(Bytes{0xc0, 0x80}), "{\"hex\": \"c080\"}");  // overlong
    EXPECT_FALSE(printable_text(Bytes{0xed, 0xa0, 0x80}));            // surrogate
    EXPECT_EQ(to_string(ReplyStatus::Committed), "committed");
    EXPECT_EQ(to_string(ReplyStatus::Malformed), "malformed");
    EXPECT_EQ(to_string(ErrorCode::BadRequest), "bad request");
    EXPECT_EQ(to_string(ErrorCode::ReplyTooLarge), "reply too large");
    EXPECT_EQ(to_string(static_cast<ErrorCode>(0)), "unknown error");
    EXPECT_EQ(to_string(static_cast<ReplyStatus>(9)), "unknown");
}

TEST(Client, TalksOnlyToTheCurveKeyPinnedInTheClusterFile) {
    FakeCluster fc({Mode::Honest, Mode::Honest, Mode::Honest, Mode::Honest});
    // The cluster file now names another Curve key for node 1: whatever answers at
    // node 1's endpoint with its real key cannot complete the handshake.
    fc.cluster.members[1].curve_key = crypto::CurveKeyPair::generate().public_key();
    Client client(fc.cluster, crypto::SigningKey::generate());
    auto results = client.status_all({0, 1}, Millis(700));
    ASSERT_EQ(results.size(), 2u);
    EXPECT_TRUE(results[0].ok()) << results[0].error;
    EXPECT_FALSE(results[1].ok());
}

}  // namespace
}  // namespace tob::client
