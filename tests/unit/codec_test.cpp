// Tests of the canonical wire codec (consensus/codec.h, docs/wire-format.md).
//
// Every decoder is fed: valid encodings (round trip), hand-made non-canonical
// variants of valid encodings (each must be rejected), inputs beyond every Limits
// bound, parser bombs, every truncation of valid frames, and a seeded stream of
// random mutations. The property throughout: a decoder returns an error and never
// crashes or throws, and whatever it accepts re-encodes to exactly its input.

#include "consensus/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.h"
#include "tests/unit/msgpack_raw.h"

namespace tob::consensus {
namespace {

// ---- helpers -----------------------------------------------------------------

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string hex(ByteView b) { return crypto::to_hex(b); }

namespace raw = test_util::raw;
using test_util::operator+;

/// Deterministic test data: everything derives from one seed.
class Gen {
  public:
    explicit Gen(std::uint64_t seed) : rng_(seed) {}
    std::mt19937_64& rng() { return rng_; }
    std::uint64_t next() { return rng_(); }
    Bytes bytes(std::size_t n) {
        Bytes out(n);
        for (auto& b : out) b = static_cast<std::uint8_t>(rng_());
        return out;
    }
    template <std::size_t N>
    std::array<std::uint8_t, N> fixed() {
        std::array<std::uint8_t, N> out;
        for (auto& b : out) b = static_cast<std::uint8_t>(rng_());
        return out;
    }

  private:
    std::mt19937_64 rng_;
};

Digest chain_id() {
    Digest d;
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<std::uint8_t>(0xa0 + i);
    return d;
}

Request sample_request(Gen& g, Nonce nonce) {
    Request r;
    r.chain_id = chain_id();
    r.client = g.fixed<32>();
    r.nonce = nonce;
    r.expires = 70'000 + nonce;  // needs the uint32 form
    r.ops.push_back(Op{OpType::Put, text("accounts/alice"), g.bytes(200), std::nullopt});
    r.ops.push_back(Op{OpType::Cas, text("accounts/bob"), text("balance=90"), text("balance=100")});
    r.ops.push_back(Op{OpType::Cas, text("locks/job-17"), text("owner=alice"), std::nullopt});
    r.ops.push_back(Op{OpType::Del, text("sessions/7f3a"), {}, std::nullopt});
    r.ops.push_back(Op{OpType::Get, text("accounts/alice"), {}, std::nullopt});
    r.sig = g.fixed<64>();
    return r;
}

Block sample_block(Gen& g) {
    Block b;
    b.epoch = 1234567;  // needs the uint32 form
    b.proposer = 3;
    for (Nonce n : {1ull, 200ull, 70000ull, 1ull << 40}) b.requests.push_back(sample_request(g, n));
    return b;
}

Envelope sample_envelope(Gen& g, Kind kind, Bytes body) {
    Envelope e;
    e.chain_id = chain_id();
    e.sender = 5;
    e.epoch = 1234567;
    e.kind = kind;
    e.body = std::move(body);
    e.sig = g.fixed<64>();
    return e;
}

Certificate sample_certificate(Gen& g) {
    Certificate c;
    c.epoch = 42;
    c.proposer = 2;
    c.digest = g.fixed<32>();
    for (NodeId s : {0, 1, 3, 300}) c.sigs.push_back(SignerSig{s, g.fixed<64>()});
    return c;
}

AbaBundle sample_bundle(Gen& g) {
    AbaBundle b;
    b.messages.push_back(AbaMessage{0, 0, AbaType::Bval, 1, {}});
    b.messages.push_back(AbaMessage{1, 0, AbaType::Bval, 0, {}});
    b.messages.push_back(AbaMessage{1, 0, AbaType::Aux, 0, {}});
    for (std::uint8_t set : {1, 2, 3})
        b.messages.push_back(AbaMessage{2, 1, AbaType::Conf, set, {}});
    b.messages.push_back(AbaMessage{3, 300, AbaType::Coin, 0, g.bytes(96)});
    b.messages.push_back(AbaMessage{65535, 70000, AbaType::Term, 1, {}});
    return b;
}

CommitBody sample_commit(Gen& g, bool checkpoint) {
    CommitBody c;
    c.output_digest = g.fixed<32>();
    c.state_digest = g.fixed<32>();
    if (checkpoint) c.checkpoint_root = g.fixed<32>();
    return c;
}

// ---- a uniform view of every decoder, for the table-driven tests ---------------

/// Decodes and, on success, returns the re-encoding of the decoded value.
using DecodeFn = std::function<std::optional<Bytes>(ByteView, const Limits&)>;

template <class T>
DecodeFn reencoder(Decoded<T> (*decoder)(ByteView, const Limits&)) {
    return [decoder](ByteView b, const Limits& l) -> std::optional<Bytes> {
        Decoded<T> d = decoder(b, l);
        if (!d) {
            EXPECT_FALSE(d.error().empty());
            return std::nullopt;
        }
        return encode(d.value());
    };
}

struct NamedDecoder {
    std::string name;
    DecodeFn decode;
};

std::vector<NamedDecoder> all_decoders() {
    return {
        {"envelope", reencoder(decode_envelope)},
        {"request", reencoder(decode_request)},
        {"request_batch", reencoder(decode_request_batch)},
        {"block", reencoder(decode_block)},
        {"seen", reencoder(decode_seen)},
        {"certificate", reencoder(decode_certificate)},
        {"aba_bundle", reencoder(decode_aba_bundle)},
        {"commit", reencoder(decode_commit)},
        {"fetch_request", reencoder(decode_fetch_request)},
        {"fetch_reply", reencoder(decode_fetch_reply)},
    };
}

struct Sample {
    std::string name;
    Bytes bytes;
    DecodeFn decode;
};

/// Valid encodings of every message type (several shapes of some).
std::vector<Sample> all_samples() {
    Gen g(7);
    const Block block = sample_block(g);
    const Bytes block_bytes = encode(block);
    const Envelope block_env = sample_envelope(g, Kind::Block, block_bytes);
    std::vector<Sample> s;
    s.push_back({"envelope(block)", encode(block_env), reencoder(decode_envelope)});
    s.push_back(
        {"envelope(seen)",
         encode(sample_envelope(g, Kind::Seen, encode(SeenBody{3, digest_of(block_bytes)}))),
         reencoder(decode_envelope)});
    s.push_back({"request", encode(sample_request(g, 9)), reencoder(decode_request)});
    s.push_back({"request_batch",
                 encode(RequestBatch{{sample_request(g, 1), sample_request(g, 2)}}),
                 reencoder(decode_request_batch)});
    s.push_back({"request_batch(empty)", encode(RequestBatch{}), reencoder(decode_request_batch)});
    s.push_back({"block", block_bytes, reencoder(decode_block)});
    s.push_back({"block(empty)", encode(Block{9, 0, {}}), reencoder(decode_block)});
    s.push_back({"seen", encode(SeenBody{3, digest_of(block_bytes)}), reencoder(decode_seen)});
    s.push_back({"certificate", encode(sample_certificate(g)), reencoder(decode_certificate)});
    s.push_back({"aba_bundle", encode(sample_bundle(g)), reencoder(decode_aba_bundle)});
    s.push_back({"commit", encode(sample_commit(g, false)), reencoder(decode_commit)});
    s.push_back({"commit(checkpoint)", encode(sample_commit(g, true)), reencoder(decode_commit)});
    s.push_back({"fetch_request(block)", encode(FetchRequest{FetchType::Block, 1, g.fixed<32>()}),
                 reencoder(decode_fetch_request)});
    s.push_back({"fetch_request(proof)", encode(FetchRequest{FetchType::EpochProof, 0, {}}),
                 reencoder(decode_fetch_request)});
    s.push_back({"fetch_reply",
                 encode(FetchReply{
                     {encode(block_env),
                      encode(sample_envelope(g, Kind::Commit, encode(sample_commit(g, true))))},
                     {BlockRef{2, g.fixed<32>()}, BlockRef{0, g.fixed<32>()}}}),
                 reencoder(decode_fetch_reply)});
    return s;
}

template <class T>
void expect_round_trip(const T& value, Decoded<T> (*decoder)(ByteView, const Limits&),
                       const Limits& limits = Limits{}) {
    const Bytes bytes = encode(value);
    EXPECT_EQ(bytes, encode(value)) << "encoding is not deterministic";
    Decoded<T> d = decoder(bytes, limits);
    ASSERT_TRUE(d) << d.error();
    EXPECT_EQ(d.value(), value);
    EXPECT_EQ(encode(d.value()), bytes);
}

template <class T>
void expect_rejected(const Bytes& bytes, Decoded<T> (*decoder)(ByteView, const Limits&),
                     const Limits& limits = Limits{}) {
    Decoded<T> d = decoder(bytes, limits);
    EXPECT_FALSE(d) << "accepted " << hex(bytes).substr(0, 200);
    if (!d) {
        EXPECT_FALSE(d.error().empty());
    }
}

/// Rejected, and the error names the reason (so that a later, more general check
/// such as the canonical re-encoding cannot hide a missing specific one).
template <class T>
void expect_rejected_because(const Bytes& bytes, Decoded<T> (*decoder)(ByteView, const Limits&),
                             std::string_view reason, const Limits& limits = Limits{}) {
    Decoded<T> d = decoder(bytes, limits);
    ASSERT_FALSE(d) << "accepted " << hex(bytes).substr(0, 200);
    EXPECT_NE(d.error().find(reason), std::string::npos)
        << "error \"" << d.error() << "\" does not mention \"" << reason << "\"";
}

// ---- round trips ---------------------------------------------------------------

TEST(Codec, round_trip_every_message_type) {
    Gen g(1);
    const Block block = sample_block(g);
    expect_round_trip(block, decode_block);
    expect_round_trip(Block{0, 0, {}}, decode_block);
    expect_round_trip(sample_request(g, 0), decode_request);
    expect_round_trip(sample_request(g, ~0ull), decode_request);
    expect_round_trip(RequestBatch{{sample_request(g, 1), sample_request(g, 2)}},
                      decode_request_batch);
    expect_round_trip(RequestBatch{}, decode_request_batch);
    expect_round_trip(SeenBody{65535, g.fixed<32>()}, decode_seen);
    expect_round_trip(sample_certificate(g), decode_certificate);
    expect_round_trip(Certificate{1, 0, g.fixed<32>(), {}}, decode_certificate);
    expect_round_trip(sample_bundle(g), decode_aba_bundle);
    expect_round_trip(sample_commit(g, false), decode_commit);
    expect_round_trip(sample_commit(g, true), decode_commit);
    expect_round_trip(FetchRequest{FetchType::Block, 4, g.fixed<32>()}, decode_fetch_request);
    expect_round_trip(FetchRequest{FetchType::Cert, 4, {}}, decode_fetch_request);
    expect_round_trip(FetchRequest{FetchType::Aba, 4, {}}, decode_fetch_request);
    expect_round_trip(FetchRequest{FetchType::EpochProof, 0, {}}, decode_fetch_request);
    for (std::uint8_t k = 1; k <= kKindMax; ++k) {
        expect_round_trip(sample_envelope(g, static_cast<Kind>(k), encode(block)), decode_envelope);
    }
    expect_round_trip(sample_envelope(g, Kind::Seen, {}), decode_envelope);
    const Bytes env = encode(sample_envelope(g, Kind::Block, encode(block)));
    expect_round_trip(FetchReply{{env, env}, {}}, decode_fetch_reply);
    expect_round_trip(FetchReply{}, decode_fetch_reply);
}

TEST(Codec, integers_at_every_form_boundary_round_trip) {
    for (std::uint64_t v : {0ull, 127ull, 128ull, 255ull, 256ull, 65535ull, 65536ull, 0xffffffffull,
                            0x100000000ull, ~0ull}) {
        Block b{v, static_cast<NodeId>(v), {}};
        expect_round_trip(b, decode_block);
        Gen g(v);
        expect_round_trip(sample_request(g, v), decode_request);
    }
}

TEST(Codec, equal_values_encode_to_identical_bytes) {
    Gen a(3), b(3);
    EXPECT_EQ(encode(sample_block(a)), encode(sample_block(b)));
    EXPECT_EQ(encode(sample_bundle(a)), encode(sample_bundle(b)));
    for (const Sample& s : all_samples()) {
        std::optional<Bytes> again = s.decode(s.bytes, Limits{});
        ASSERT_TRUE(again) << s.name;
        EXPECT_EQ(*again, s.bytes) << s.name;
    }
}

TEST(Codec, encodings_match_the_documented_layout) {
    // docs/wire-format.md gives these byte strings as examples.
    Digest d;
    d.fill(0x11);
    EXPECT_EQ(hex(encode(SeenBody{5, d})), "9205c420" + std::string(64, '1'));
    EXPECT_EQ(hex(encode(Op{OpType::Get, text("k"), {}, std::nullopt})), "9404c4016bc400c0");
    EXPECT_EQ(hex(encode(Op{OpType::Cas, text("k"), text("v"), Bytes{}})), "9403c4016bc40176c400");
    EXPECT_EQ(hex(encode(FetchRequest{FetchType::Cert, 300, {}})),
              "9302cd012cc420" + std::string(64, '0'));
    EXPECT_EQ(hex(encode(AbaBundle{{AbaMessage{1, 2, AbaType::Conf, 3, {}}}})),
              "91919501020303c400");
    CommitBody c{d, d, std::nullopt};
    EXPECT_EQ(hex(encode(c)),
              "93c420" + std::string(64, '1') + "c420" + std::string(64, '1') + "c0");
    EXPECT_EQ(hex(encode(RequestBatch{})), "9190");
}

TEST(Codec, sign_payloads_cover_every_field) {
    Gen g(5);
    const Envelope e = sample_envelope(g, Kind::Aba, encode(sample_bundle(g)));
    const Bytes payload = envelope_sign_payload(e.chain_id, e.sender, e.epoch, e.kind, e.body);
    const Bytes full = encode(e);
    // [a, b, c, d, digest_of(body)] against [a, b, c, d, body, sig]: the same head
    // fields, then the body's digest where the encoding has the body.
    ASSERT_EQ(payload[0], 0x95);
    ASSERT_EQ(full[0], 0x96);
    const std::size_t head = full.size() - 1 - raw::bin(e.body).size() - 66;
    Bytes expected{0x95};
    expected.insert(expected.end(), full.begin() + 1, full.begin() + 1 + head);
    const Digest body_digest = digest_of(e.body);
    const Bytes digest_bin = raw::bin(Bytes(body_digest.begin(), body_digest.end()));
    expected.insert(expected.end(), digest_bin.begin(), digest_bin.end());
    EXPECT_EQ(payload, expected);
    EXPECT_EQ(payload,
              envelope_sign_payload_of(e.chain_id, e.sender, e.epoch, e.kind, body_digest));
    EXPECT_EQ(Bytes(full.end() - 66, full.end()), raw::bin(e.sig));
    Bytes other_body = e.body;
    other_body.push_back(0);
    EXPECT_NE(payload, envelope_sign_payload(e.chain_id, e.sender, e.epoch, e.kind, other_body))
        << "the body is signed (by its digest)";

    const Request r = sample_request(g, 77);
    const Bytes rp = request_sign_payload(r);
    const Bytes rf = encode(r);
    ASSERT_EQ(rp[0], 0x95);
    ASSERT_EQ(rf[0], 0x96);
    EXPECT_EQ(Bytes(rf.begin() + 1, rf.end() - 66), Bytes(rp.begin() + 1, rp.end()));

    // Every field is covered: changing any one changes the payload.
    EXPECT_NE(payload, envelope_sign_payload(e.chain_id, e.sender + 1, e.epoch, e.kind, e.body));
    EXPECT_NE(payload, envelope_sign_payload(e.chain_id, e.sender, e.epoch + 1, e.kind, e.body));
    EXPECT_NE(payload, envelope_sign_payload(e.chain_id, e.sender, e.epoch, Kind::Seen, e.body));
    Request r2 = r;
    r2.nonce++;
    EXPECT_NE(rp, request_sign_payload(r2));
    r2 = r;
    r2.expires++;
    EXPECT_NE(rp, request_sign_payload(r2)) << "the expiry is signed";
    r2 = r;
    r2.sig[0] ^= 1;
    EXPECT_EQ(rp, request_sign_payload(r2)) << "the signature must not cover itself";
}

TEST(Codec, digest_of_is_blake2b_256) {
    crypto::init();
    EXPECT_EQ(hex(digest_of({})),
              "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    EXPECT_EQ(hex(digest_of(text("abc"))),
              "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    Gen g(2);
    const Bytes b = encode(sample_block(g));
    EXPECT_EQ(digest_of(b), crypto::blake2b256(b));
}

// ---- non-canonical and malformed envelopes, built field by field ---------------

/// The six envelope fields as separately encoded pieces; raw::array(fields)
/// equals encode(envelope).
std::vector<Bytes> envelope_fields(const Envelope& e) {
    return {raw::bin(e.chain_id), raw::uint(e.sender),
            raw::uint(e.epoch),   raw::uint(static_cast<std::uint8_t>(e.kind)),
            raw::bin(e.body),     raw::bin(e.sig)};
}

class EnvelopeBytes : public ::testing::Test {
  protected:
    EnvelopeBytes()
        : g_(11), env_(sample_envelope(g_, Kind::Seen, encode(SeenBody{1, g_.fixed<32>()}))) {}

    /// The envelope with field i replaced by `piece`.
    Bytes with(std::size_t i, Bytes piece) {
        std::vector<Bytes> f = envelope_fields(env_);
        f[i] = std::move(piece);
        return raw::array(f);
    }

    Gen g_;
    Envelope env_;
};

TEST_F(EnvelopeBytes, hand_built_encoding_matches_and_decodes) {
    ASSERT_EQ(raw::array(envelope_fields(env_)), encode(env_));
    Decoded<Envelope> d = decode_envelope(raw::array(envelope_fields(env_)), Limits{});
    ASSERT_TRUE(d) << d.error();
    EXPECT_EQ(d.value(), env_);
}

TEST_F(EnvelopeBytes, non_minimal_integers_are_rejected) {
    // sender = 5 in every longer form msgpack allows
    for (Bytes five : {Bytes{0xcc, 0x05}, Bytes{0xcd, 0x00, 0x05}, Bytes{0xce, 0, 0, 0, 0x05},
                       Bytes{0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05}, Bytes{0xd0, 0x05},
                       Bytes{0xd1, 0x00, 0x05}, Bytes{0xd2, 0, 0, 0, 0x05}}) {
        Decoded<Envelope> d = decode_envelope(with(1, five), Limits{});
        EXPECT_FALSE(d) << hex(five);
        if (!d) {
            EXPECT_NE(d.error().find("canonical"), std::string::npos) << d.error();
        }
    }
    // epoch 1234567 as uint64 instead of uint32
    expect_rejected(with(2, Bytes{0xcf, 0, 0, 0, 0, 0x00, 0x12, 0xd6, 0x87}), decode_envelope);
    // array header in the 16-bit form
    const Bytes canonical = encode(env_);
    Bytes long_header = Bytes{0xdc, 0x00, 0x06} + Bytes(canonical.begin() + 1, canonical.end());
    expect_rejected(long_header, decode_envelope);
    // a short bin in the bin16 form
    Bytes chain_bin16 = Bytes{0xc5, 0x00, 0x20} + Bytes(env_.chain_id.begin(), env_.chain_id.end());
    expect_rejected(with(0, chain_bin16), decode_envelope);
}

TEST_F(EnvelopeBytes, str_instead_of_bin_is_rejected) {
    expect_rejected(with(0, raw::str8(env_.chain_id)), decode_envelope);
    expect_rejected(with(4, raw::str8(env_.body)), decode_envelope);
    expect_rejected(with(4, Bytes{0xa0}), decode_envelope);  // empty fixstr for a bin
    expect_rejected(with(5, raw::str8(env_.sig)), decode_envelope);
}

TEST_F(EnvelopeBytes, wrong_types_are_rejected) {
    const std::vector<Bytes> wrong = {
        raw::nil,
        Bytes{0xc2},                                // false
        Bytes{0xc3},                                // true
        Bytes{0xff},                                // -1
        Bytes{0xca, 0x40, 0xa0, 0x00, 0x00},        // float32 5.0
        Bytes{0xcb, 0x40, 0x14, 0, 0, 0, 0, 0, 0},  // float64 5.0
        Bytes{0x90},                                // []
        Bytes{0x80},                                // {}
        Bytes{0x81, 0x01, 0x02},                    // {1: 2}
        Bytes{0xd4, 0x01, 0x05},                    // fixext1
    };
    for (std::size_t field = 0; field < 6; ++field) {
        for (const Bytes& w : wrong) {
            SCOPED_TRACE("field " + std::to_string(field) + " = " + hex(w));
            expect_rejected(with(field, w), decode_envelope);
        }
    }
}

TEST_F(EnvelopeBytes, wrong_sizes_and_ranges_are_rejected) {
    expect_rejected_because(with(0, raw::bin(g_.bytes(31))), decode_envelope, "envelope.chain_id");
    expect_rejected(with(0, raw::bin(g_.bytes(33))), decode_envelope);
    expect_rejected(with(5, raw::bin(g_.bytes(63))), decode_envelope);
    expect_rejected(with(5, raw::bin(g_.bytes(65))), decode_envelope);
    expect_rejected_because(with(1, raw::uint(65536)), decode_envelope, "envelope.sender");
    expect_rejected_because(with(3, raw::uint(0)), decode_envelope, "envelope.kind");
    expect_rejected_because(with(3, raw::uint(kKindMax + 1)), decode_envelope, "envelope.kind");
    expect_rejected_because(with(3, raw::uint(255)), decode_envelope, "envelope.kind");
    // would truncate to 1 if the range were checked after the cast
    expect_rejected_because(with(3, raw::uint(256 + 1)), decode_envelope, "envelope.kind");
    EXPECT_TRUE(decode_envelope(with(1, raw::uint(65535)), Limits{}));
}

TEST_F(EnvelopeBytes, extra_missing_and_trailing_bytes_are_rejected) {
    std::vector<Bytes> f = envelope_fields(env_);
    std::vector<Bytes> extra = f;
    extra.push_back(raw::nil);
    expect_rejected(raw::array(extra), decode_envelope);
    std::vector<Bytes> missing(f.begin(), f.end() - 1);
    expect_rejected(raw::array(missing), decode_envelope);
    expect_rejected(raw::array({}), decode_envelope);
    expect_rejected_because(encode(env_) + Bytes{0x00}, decode_envelope, "trailing");
    expect_rejected_because(encode(env_) + encode(env_), decode_envelope, "trailing");
    expect_rejected_because(encode(env_) + Bytes{0xc0}, decode_envelope, "trailing");
    // a map with the right number of entries is not an array
    Bytes as_map{0x86};
    for (std::size_t i = 0; i < f.size(); ++i) as_map = as_map + raw::uint(i) + f[i];
    expect_rejected(as_map, decode_envelope);
}

TEST_F(EnvelopeBytes, every_truncation_is_rejected) {
    const Bytes full = encode(env_);
    for (std::size_t n = 0; n < full.size(); ++n) {
        Decoded<Envelope> d = decode_envelope(ByteView(full.data(), n), Limits{});
        ASSERT_FALSE(d) << "prefix of length " << n;
    }
}

TEST(Codec, every_truncation_of_every_sample_is_rejected) {
    for (const Sample& s : all_samples()) {
        for (std::size_t n = 0; n < s.bytes.size(); ++n) {
            ASSERT_FALSE(s.decode(ByteView(s.bytes.data(), n), Limits{}))
                << s.name << " prefix " << n;
        }
    }
}

// ---- field rules of the inner messages ------------------------------------------

Bytes op_bytes(std::uint64_t type, const Bytes& key, const Bytes& value, const Bytes& expected) {
    return raw::array({raw::uint(type), raw::bin(key), raw::bin(value), expected});
}

/// A request holding exactly one op given as raw bytes.
Bytes request_with_op(const Bytes& op) {
    Gen g(13);
    const Request r = sample_request(g, 1);
    return raw::array({raw::bin(r.chain_id), raw::bin(r.client), raw::uint(r.nonce),
                       raw::uint(r.expires), raw::array({op}), raw::bin(r.sig)});
}

TEST(Codec, op_rules) {
    const Bytes k = text("key");
    const Bytes v = text("value");
    // the accepted shapes
    for (const Bytes& op :
         {op_bytes(1, k, v, raw::nil), op_bytes(1, k, {}, raw::nil), op_bytes(2, k, {}, raw::nil),
          op_bytes(4, k, {}, raw::nil), op_bytes(3, k, v, raw::nil), op_bytes(3, k, v, raw::bin(v)),
          op_bytes(3, k, {}, raw::bin({})), op_bytes(1, {}, v, raw::nil)}) {
        Decoded<Request> d = decode_request(request_with_op(op), Limits{});
        EXPECT_TRUE(d) << hex(op) << ": " << (d ? "" : d.error());
    }
    // the rejected ones
    for (const Bytes& op : {
             op_bytes(0, k, v, raw::nil),       // type 0
             op_bytes(5, k, v, raw::nil),       // type 5
             op_bytes(2, k, v, raw::nil),       // DEL with a value
             op_bytes(4, k, v, raw::nil),       // GET with a value
             op_bytes(1, k, v, raw::bin(v)),    // PUT with expected
             op_bytes(2, k, {}, raw::bin({})),  // DEL with expected (even empty)
             op_bytes(4, k, {}, raw::bin(v)),   // GET with expected
             op_bytes(3, k, v, Bytes{0xc2}),    // CAS expected = false
             op_bytes(3, k, v, raw::str8(v)),   // CAS expected as str
             raw::array({raw::uint(1), raw::bin(k), raw::bin(v)}),                      // 3 fields
             raw::array({raw::uint(1), raw::bin(k), raw::bin(v), raw::nil, raw::nil}),  // 5 fields
         }) {
        expect_rejected(request_with_op(op), decode_request);
    }
}

// Issue 11, finding 2: PUT and DEL ask for the previous value with a fifth
// field, 1; four fields mean "not asked" (one encoding per op).
TEST(Codec, op_previous_flag) {
    const Bytes k = text("key");
    const Bytes v = text("value");
    auto with = [&](std::uint8_t type, const Bytes& value, const Bytes& fifth) {
        return raw::array({raw::uint(type), raw::bin(k), raw::bin(value), raw::nil, fifth});
    };
    for (const Bytes& op : {with(1, v, raw::uint(1)), with(2, {}, raw::uint(1))}) {
        Decoded<Request> d = decode_request(request_with_op(op), Limits{});
        ASSERT_TRUE(d) << hex(op) << ": " << d.error();
        EXPECT_TRUE(d.value().ops[0].previous);
        EXPECT_EQ(encode(d.value()), request_with_op(op));
    }
    for (const Bytes& op : {with(1, v, raw::uint(0)), with(1, v, raw::uint(2)),
                            with(4, {}, raw::uint(1)), with(1, v, Bytes{0xc3})}) {
        expect_rejected(request_with_op(op), decode_request);
    }
    Op put{OpType::Put, k, v, std::nullopt, true};
    Op plain = put;
    plain.previous = false;
    EXPECT_EQ(encode(put).size(), encode(plain).size() + 1);
    Request r;
    r.ops = {put, plain};
    EXPECT_EQ(decode_request(encode(r), Limits{}).value(), r);
}

// Issue 11, finding 10: the expiry is a field of its own, in one encoding only.
TEST(Codec, request_expiry_is_canonical_and_required) {
    Gen g(23);
    const Request r = sample_request(g, 3);
    const Bytes op = encode(r.ops.front());
    auto fields = [&](Bytes expires) {
        return raw::array({raw::bin(r.chain_id), raw::bin(r.client), raw::uint(r.nonce), expires,
                           raw::array({op}), raw::bin(r.sig)});
    };
    Request one = r;
    one.ops = {r.ops.front()};
    EXPECT_EQ(decode_request(fields(raw::uint(r.expires)), Limits{}).value(), one);
    // r.expires (70,003) needs the uint32 form; the uint64 form is not canonical.
    Bytes wide{0xcf, 0, 0, 0, 0};
    for (int i = 3; i >= 0; --i) wide.push_back(static_cast<std::uint8_t>(r.expires >> (8 * i)));
    expect_rejected(fields(wide), decode_request);
    expect_rejected(fields(raw::nil), decode_request);
    // A request without the field (the layout before expiry) does not decode.
    expect_rejected(raw::array({raw::bin(r.chain_id), raw::bin(r.client), raw::uint(r.nonce),
                                raw::array({op}), raw::bin(r.sig)}),
                    decode_request);
}

TEST(Codec, key_value_and_op_count_limits) {
    Gen g(17);
    Limits l;
    Request r = sample_request(g, 1);
    r.ops = {
        Op{OpType::Put, Bytes(l.key_bytes_max, 'k'), Bytes(l.value_bytes_max, 'v'), std::nullopt}};
    expect_round_trip(r, decode_request, l);
    r.ops[0].key.push_back('k');
    expect_rejected(encode(r), decode_request, l);
    r.ops[0].key.pop_back();
    r.ops[0].value.push_back('v');
    expect_rejected(encode(r), decode_request, l);
    r.ops[0] = Op{OpType::Cas, text("k"), {}, Bytes(l.value_bytes_max + 1, 'e')};
    expect_rejected(encode(r), decode_request, l);

    l.request_ops_max = 3;
    r.ops.assign(3, Op{OpType::Get, text("k"), {}, std::nullopt});
    expect_round_trip(r, decode_request, l);
    const Op get = r.ops[0];
    r.ops.push_back(get);  // 4 > 3: caught by the conversion
    expect_rejected(encode(r), decode_request, l);
    r.ops.assign(40, get);  // 40: caught by the parser's array limit
    expect_rejected(encode(r), decode_request, l);
    r.ops.clear();  // a request has at least one op
    expect_rejected(encode(r), decode_request, l);
}

TEST(Codec, request_size_limit_applies_inside_blocks_and_batches) {
    // Sizes straddling every msgpack length boundary, so that the size the
    // decoder computes for a request inside a block must match encode() exactly.
    Gen g(19);
    for (std::size_t key : {0u, 1u, 255u, 256u, 1024u}) {
        for (std::size_t value : {0u, 31u, 255u, 256u, 65535u, 65536u}) {
            for (std::uint64_t nonce : {0ull, 127ull, 128ull, 70000ull, 1ull << 33}) {
                Request r = sample_request(g, nonce);
                r.ops.push_back(Op{OpType::Put, Bytes(key, 'k'), Bytes(value, 'v'), std::nullopt});
                const Bytes one = encode(r);
                Limits l;
                l.request_bytes_max = static_cast<std::uint32_t>(one.size());
                expect_round_trip(r, decode_request, l);
                expect_round_trip(Block{1, 1, {r, r}}, decode_block, l);
                expect_round_trip(RequestBatch{{r}}, decode_request_batch, l);
                l.request_bytes_max -= 1;
                expect_rejected(one, decode_request, l);
                expect_rejected(encode(Block{1, 1, {r}}), decode_block, l);
                expect_rejected(encode(RequestBatch{{r}}), decode_request_batch, l);
            }
        }
    }
}

TEST(Codec, block_and_batch_count_and_size_limits) {
    Gen g(23);
    Limits l;
    l.block_requests_max = 3;
    l.batch_requests_max = 2;
    Block b{5, 1, {}};
    for (int i = 0; i < 3; ++i) b.requests.push_back(sample_request(g, i));
    expect_round_trip(b, decode_block, l);
    b.requests.push_back(sample_request(g, 9));
    expect_rejected(encode(b), decode_block, l);
    expect_round_trip(RequestBatch{{b.requests[0], b.requests[1]}}, decode_request_batch, l);
    expect_rejected(encode(RequestBatch{{b.requests[0], b.requests[1], b.requests[2]}}),
                    decode_request_batch, l);

    Limits small;
    const Bytes bb = encode(b);
    small.block_bytes_max = static_cast<std::uint32_t>(bb.size());
    expect_round_trip(b, decode_block, small);
    small.block_bytes_max -= 1;
    expect_rejected(bb, decode_block, small);
    // a block that fits block_bytes_max may still not be a valid envelope body
    // (and vice versa): the two bounds are checked separately.
    Limits tiny;
    tiny.message_bytes_max = 200;
    expect_rejected(encode(sample_envelope(g, Kind::Block, bb)), decode_envelope, tiny);
    expect_rejected(encode(RequestBatch{{b.requests[0]}}), decode_request_batch, tiny);
}

TEST(Codec, envelope_size_limit_is_exact) {
    Gen g(29);
    const Envelope e = sample_envelope(g, Kind::Block, g.bytes(1000));
    const Bytes bytes = encode(e);
    Limits l;
    l.message_bytes_max = static_cast<std::uint32_t>(bytes.size());
    expect_round_trip(e, decode_envelope, l);
    l.message_bytes_max -= 1;
    Decoded<Envelope> d = decode_envelope(bytes, l);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("limit"), std::string::npos) << d.error();
    // oversized input is refused even when it is garbage that would fail parsing
    Bytes junk(static_cast<std::size_t>(l.message_bytes_max) + 1, 0xc1);
    d = decode_envelope(junk, l);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("limit"), std::string::npos) << d.error();
}

TEST(Codec, certificate_signers_must_strictly_increase) {
    Gen g(31);
    Certificate c = sample_certificate(g);
    expect_round_trip(c, decode_certificate);
    Certificate unsorted = c;
    std::swap(unsorted.sigs[0], unsorted.sigs[1]);
    expect_rejected(encode(unsorted), decode_certificate);
    Certificate duplicate = c;
    duplicate.sigs[1].signer = duplicate.sigs[0].signer;
    expect_rejected(encode(duplicate), decode_certificate);
    Certificate last_duplicate = c;
    last_duplicate.sigs.push_back(last_duplicate.sigs.back());
    expect_rejected(encode(last_duplicate), decode_certificate);

    Limits l;
    l.cert_signatures_max = 4;
    expect_round_trip(c, decode_certificate, l);
    c.sigs.push_back(SignerSig{1000, g.fixed<64>()});
    expect_rejected(encode(c), decode_certificate, l);
    c.sigs.back().signer = 65535;
    expect_round_trip(c, decode_certificate);
}

Bytes bundle_with(std::uint64_t type, std::uint64_t value, const Bytes& share,
                  std::uint64_t round = 0) {
    return raw::array({raw::array(
        {raw::array({raw::uint(1), raw::uint(round), raw::uint(type), raw::uint(value), share})})});
}

TEST(Codec, aba_message_rules) {
    Gen g(37);
    const Bytes share = raw::bin(g.bytes(96));
    const Bytes none = raw::bin({});
    for (std::uint64_t t : {1, 2, 4}) {
        EXPECT_TRUE(decode_aba_bundle(bundle_with(t, 0, none), Limits{}));
        EXPECT_TRUE(decode_aba_bundle(bundle_with(t, 1, none), Limits{}));
        expect_rejected(bundle_with(t, 2, none), decode_aba_bundle);
        expect_rejected(bundle_with(t, 1, share), decode_aba_bundle);
    }
    for (std::uint64_t set : {1, 2, 3})
        EXPECT_TRUE(decode_aba_bundle(bundle_with(3, set, none), Limits{}));
    expect_rejected(bundle_with(3, 0, none), decode_aba_bundle);
    expect_rejected(bundle_with(3, 4, none), decode_aba_bundle);
    EXPECT_TRUE(decode_aba_bundle(bundle_with(5, 0, share), Limits{}));
    expect_rejected(bundle_with(5, 1, share), decode_aba_bundle);
    expect_rejected(bundle_with(5, 0, none), decode_aba_bundle);
    expect_rejected(bundle_with(5, 0, raw::bin(g.bytes(95))), decode_aba_bundle);
    expect_rejected(bundle_with(5, 0, raw::bin(g.bytes(97))), decode_aba_bundle);
    expect_rejected(bundle_with(5, 0, raw::str8(g.bytes(96))), decode_aba_bundle);
    expect_rejected(bundle_with(1, 0, Bytes{0xa0}), decode_aba_bundle);  // empty str, not bin
    expect_rejected(bundle_with(1, 0, raw::nil), decode_aba_bundle);
    expect_rejected(bundle_with(0, 0, none), decode_aba_bundle);
    expect_rejected(bundle_with(6, 0, none), decode_aba_bundle);
    EXPECT_TRUE(decode_aba_bundle(bundle_with(1, 0, none, 0xffffffffu), Limits{}));
    expect_rejected_because(bundle_with(1, 0, none, 0x100000000ull), decode_aba_bundle,
                            "aba.round");
    expect_rejected_because(bundle_with(1, 256, none), decode_aba_bundle, "aba.value");

    // bundle sizes: 1..aba_bundle_max
    expect_rejected(encode(AbaBundle{}), decode_aba_bundle);
    Limits l;
    l.aba_bundle_max = 8;
    AbaBundle b = sample_bundle(g);
    ASSERT_EQ(b.messages.size(), 8u);
    expect_round_trip(b, decode_aba_bundle, l);
    b.messages.push_back(b.messages[0]);
    expect_rejected(encode(b), decode_aba_bundle, l);
}

TEST(Codec, commit_and_fetch_rules) {
    Gen g(41);
    const Bytes d = raw::bin(g.bytes(32));
    EXPECT_TRUE(decode_commit(raw::array({d, d, raw::nil}), Limits{}));
    EXPECT_TRUE(decode_commit(raw::array({d, d, d}), Limits{}));
    expect_rejected(raw::array({d, d, raw::bin({})}), decode_commit);
    expect_rejected(raw::array({d, d, raw::bin(g.bytes(31))}), decode_commit);
    expect_rejected(raw::array({d, d}), decode_commit);
    expect_rejected(raw::array({d, d, raw::nil, raw::nil}), decode_commit);
    expect_rejected(raw::array({d, raw::nil, raw::nil}), decode_commit);

    const Bytes zero = raw::bin(Bytes(32, 0));
    for (std::uint64_t t : {1, 2, 3, 4})
        EXPECT_TRUE(decode_fetch_request(raw::array({raw::uint(t), raw::uint(2), zero}), Limits{}));
    EXPECT_TRUE(decode_fetch_request(raw::array({raw::uint(1), raw::uint(2), d}), Limits{}));
    for (std::uint64_t t : {2, 3, 4})
        expect_rejected(raw::array({raw::uint(t), raw::uint(2), d}), decode_fetch_request);
    expect_rejected(raw::array({raw::uint(0), raw::uint(2), zero}), decode_fetch_request);
    expect_rejected(raw::array({raw::uint(5), raw::uint(2), zero}), decode_fetch_request);
    expect_rejected_because(raw::array({raw::uint(1), raw::uint(65536), zero}),
                            decode_fetch_request, "fetch request.proposer");

    Limits l;
    l.fetch_items_max = 2;
    const Bytes env = encode(sample_envelope(g, Kind::Seen, {}));
    expect_round_trip(FetchReply{{env, env}, {}}, decode_fetch_reply, l);
    expect_rejected(encode(FetchReply{{env, env, env}, {}}), decode_fetch_reply, l);
    expect_rejected(raw::array({raw::array({raw::str8(env)})}), decode_fetch_reply);
    expect_rejected(raw::array({raw::array({env})}), decode_fetch_reply);  // not wrapped in bin
}

// ---- parser bombs and garbage -----------------------------------------------------

TEST(Codec, depth_bombs_are_rejected_by_every_decoder) {
    Bytes nested_fix(10000, 0x91);
    nested_fix.push_back(0xc0);
    Bytes nested_wide;
    for (int i = 0; i < 10000; ++i) nested_wide = nested_wide + Bytes{0xdc, 0x00, 0x01};
    nested_wide.push_back(0xc0);
    Bytes nested_maps(10000, 0x81);
    nested_maps.push_back(0xc0);
    for (const NamedDecoder& d : all_decoders()) {
        EXPECT_FALSE(d.decode(nested_fix, Limits{})) << d.name;
        EXPECT_FALSE(d.decode(nested_wide, Limits{})) << d.name;
        EXPECT_FALSE(d.decode(nested_maps, Limits{})) << d.name;
    }
}

TEST(Codec, huge_headers_are_rejected_by_every_decoder) {
    const std::vector<Bytes> bombs = {
        {0xdd, 0xff, 0x00, 0x00, 0x00},  // array32 of 4 278 190 080 elements
        {0xdd, 0xff, 0xff, 0xff, 0xff},       {0xdc, 0xff, 0xff},  // array16 of 65535
        {0xdf, 0xff, 0xff, 0xff, 0xff},                            // map32
        {0xc6, 0xff, 0xff, 0xff, 0xff},                            // bin32
        {0xdb, 0xff, 0xff, 0xff, 0xff},                            // str32
        {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},                      // ext32
        {0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff},                      // nested
        {0x96, 0xc6, 0x7f, 0xff, 0xff, 0xff},  // envelope whose chain_id claims 2 GiB
    };
    // Many headers in a row, each claiming the largest array the limits allow.
    Bytes stacked;
    for (int i = 0; i < 8; ++i) stacked = stacked + Bytes{0xdc, 0x4e, 0x20};  // 20000 each
    for (const NamedDecoder& d : all_decoders()) {
        for (const Bytes& b : bombs) EXPECT_FALSE(d.decode(b, Limits{})) << d.name << " " << hex(b);
        EXPECT_FALSE(d.decode(stacked, Limits{})) << d.name;
    }
}

TEST(Codec, random_garbage_is_rejected_without_crash) {
    std::mt19937_64 rng(43);
    const auto decoders = all_decoders();
    int accepted = 0;
    for (int i = 0; i < 3000; ++i) {
        Bytes b(rng() % 80);
        for (auto& x : b) x = static_cast<std::uint8_t>(rng());
        for (const NamedDecoder& d : decoders) {
            std::optional<Bytes> again = d.decode(b, Limits{});
            if (again) {
                ++accepted;
                ASSERT_EQ(*again, b) << d.name;
            }
        }
    }
    EXPECT_LT(accepted, 10);  // random bytes are essentially never a valid message
}

// ---- mutation fuzzing ---------------------------------------------------------------

Bytes mutate(Bytes b, const std::vector<Sample>& samples, std::mt19937_64& rng) {
    static const std::uint8_t kInteresting[] = {
        0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4,
        0xc5, 0xc6, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
    const int rounds = 1 + static_cast<int>(rng() % 3);
    for (int r = 0; r < rounds; ++r) {
        const std::size_t pos = b.empty() ? 0 : rng() % b.size();
        switch (rng() % 7) {
            case 0:  // bit flip
                if (!b.empty()) b[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                break;
            case 1:  // insert a random byte
                b.insert(
                    b.begin() + static_cast<std::ptrdiff_t>(b.empty() ? 0 : rng() % (b.size() + 1)),
                    static_cast<std::uint8_t>(rng()));
                break;
            case 2:  // delete a byte
                if (!b.empty()) b.erase(b.begin() + static_cast<std::ptrdiff_t>(pos));
                break;
            case 3:  // truncate
                b.resize(b.empty() ? 0 : rng() % b.size());
                break;
            case 4: {  // splice: our prefix, another sample's suffix
                const Bytes& other = samples[rng() % samples.size()].bytes;
                const std::size_t cut = other.empty() ? 0 : rng() % other.size();
                b.resize(pos);
                b.insert(b.end(), other.begin() + static_cast<std::ptrdiff_t>(cut), other.end());
                break;
            }
            case 5:  // overwrite with a msgpack type byte
                if (!b.empty()) b[pos] = kInteresting[rng() % sizeof(kInteresting)];
                break;
            case 6: {  // duplicate a chunk in place
                if (b.empty()) break;
                const std::size_t len = 1 + rng() % std::min<std::size_t>(16, b.size() - pos);
                Bytes chunk(b.begin() + static_cast<std::ptrdiff_t>(pos),
                            b.begin() + static_cast<std::ptrdiff_t>(pos + len));
                b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos), chunk.begin(), chunk.end());
                break;
            }
        }
    }
    return b;
}

TEST(Codec, random_mutations_never_crash_and_accepted_inputs_are_canonical) {
    const std::vector<Sample> samples = all_samples();
    const auto decoders = all_decoders();
    std::mt19937_64 rng(0x70bd);
    constexpr int kMutations = 20000;
    int accepted = 0;
    for (int i = 0; i < kMutations; ++i) {
        const Sample& s = samples[static_cast<std::size_t>(i) % samples.size()];
        const Bytes m = mutate(s.bytes, samples, rng);
        // its own decoder, and one other picked at random
        const NamedDecoder& other = decoders[rng() % decoders.size()];
        for (const NamedDecoder& d : {NamedDecoder{s.name, s.decode}, other}) {
            std::optional<Bytes> again = d.decode(m, Limits{});
            if (!again) continue;
            ++accepted;
            ASSERT_EQ(hex(*again), hex(m)) << d.name << " accepted a non-canonical mutation of "
                                           << s.name << " (iteration " << i << ")";
        }
    }
    // Flips inside digests, keys and signatures keep a message valid, so a fair
    // share must decode; otherwise the loop would test nothing but rejection.
    EXPECT_GT(accepted, kMutations / 50);
}

}  // namespace
}  // namespace tob::consensus
