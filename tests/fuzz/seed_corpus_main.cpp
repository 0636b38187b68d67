// Writes a seed corpus for the codec fuzz targets: a few valid encodings of each
// message type, one file each, under DIR/<target>/. Starting from valid frames
// lets libFuzzer mutate inside the structure instead of rediscovering msgpack.
//
//   tob_fuzz_seed_corpus DIR

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/client/protocol.h"
#include "consensus/codec.h"

namespace {

using namespace tob::consensus;

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

template <std::size_t N>
std::array<std::uint8_t, N> filled(std::uint8_t b) {
    std::array<std::uint8_t, N> a;
    a.fill(b);
    return a;
}

Request request(Nonce nonce) {
    Request r;
    r.chain_id = filled<32>(0xc1);
    r.client = filled<32>(0x42);
    r.nonce = nonce;
    r.expires = 100'000 + nonce;
    r.ops = {Op{OpType::Put, text("a/1"), text("hello"), std::nullopt},
             Op{OpType::Cas, text("a/2"), text("new"), text("old")},
             Op{OpType::Cas, text("a/3"), text("x"), std::nullopt},
             Op{OpType::Del, text("a/4"), {}, std::nullopt},
             Op{OpType::Get, text("a/1"), {}, std::nullopt}};
    r.sig = filled<64>(0x51);
    return r;
}

void write(const std::filesystem::path& dir, const std::string& target, int index, const Bytes& b) {
    std::filesystem::create_directories(dir / target);
    std::ofstream out(dir / target / ("seed-" + std::to_string(index)), std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path dir = argv[1];

    const Block block{300, 2, {request(1), request(70000)}};
    const Bytes block_bytes = encode(block);
    const SeenBody seen{2, digest_of(block_bytes)};
    Certificate cert{300, 2, seen.digest, {}};
    for (NodeId s : {0, 1, 3})
        cert.sigs.push_back(SignerSig{s, filled<64>(static_cast<std::uint8_t>(s))});
    const AbaBundle aba{
        {AbaMessage{2, 0, AbaType::Bval, 1, {}}, AbaMessage{2, 0, AbaType::Aux, 1, {}},
         AbaMessage{2, 0, AbaType::Conf, 3, {}}, AbaMessage{2, 0, AbaType::Coin, 0, Bytes(96, 7)},
         AbaMessage{2, 1, AbaType::Term, 1, {}}}};
    const CommitBody commit{filled<32>(1), filled<32>(2), filled<32>(3)};

    auto envelope = [&](Kind kind, Bytes body) {
        return encode(Envelope{filled<32>(0xc1), 1, 300, kind, std::move(body), filled<64>(0x99)});
    };
    const std::vector<Bytes> envelopes = {
        envelope(Kind::Block, block_bytes),
        envelope(Kind::Seen, encode(seen)),
        envelope(Kind::Cert, encode(cert)),
        envelope(Kind::Aba, encode(aba)),
        envelope(Kind::Commit, encode(commit)),
        envelope(Kind::Requests, encode(RequestBatch{{request(5)}})),
        envelope(Kind::FetchRequest, encode(FetchRequest{FetchType::Block, 2, seen.digest})),
    };

    int i = 0;
    for (const Bytes& e : envelopes) write(dir, "fuzz_envelope", i++, e);
    write(dir, "fuzz_request", 0, encode(request(9)));
    write(dir, "fuzz_request_batch", 0, encode(RequestBatch{{request(1), request(2)}}));
    write(dir, "fuzz_request_batch", 1, encode(RequestBatch{}));
    write(dir, "fuzz_block", 0, block_bytes);
    write(dir, "fuzz_block", 1, encode(Block{1, 0, {}}));
    write(dir, "fuzz_seen", 0, encode(seen));
    write(dir, "fuzz_certificate", 0, encode(cert));
    write(dir, "fuzz_aba", 0, encode(aba));
    write(dir, "fuzz_commit", 0, encode(commit));
    write(dir, "fuzz_commit", 1, encode(CommitBody{filled<32>(1), filled<32>(2), std::nullopt}));
    write(dir, "fuzz_fetch_request", 0, encode(FetchRequest{FetchType::Block, 2, seen.digest}));
    write(dir, "fuzz_fetch_request", 1, encode(FetchRequest{FetchType::EpochProof, 0, {}}));
    write(dir, "fuzz_fetch_reply", 0, encode(FetchReply{{envelopes[0], envelopes[1]}, {}}));
    write(dir, "fuzz_fetch_reply", 1, encode(FetchReply{}));

    // Client plane (cli/client/protocol.h): one message of every type.
    using namespace tob::client;
    ReplyMsg reply{2,
                   filled<32>(0x42),
                   9,
                   filled<32>(7),
                   ReplyStatus::Committed,
                   300,
                   1,
                   {OpOutput{true, text("v")}, OpOutput{false, std::nullopt}},
                   filled<64>(3)};
    StatusMsg status{1, "0.1.0", 300, 299, 3, 12, 0, filled<32>(5), true, false, 77};
    const std::vector<ClientMessage> client = {
        SubmitMsg{encode(request(9))},
        reply,
        StatusQueryMsg{},
        status,
        LocalGetMsg{text("a/1")},
        LocalValueMsg{299, text("hello")},
        LocalValueMsg{0, std::nullopt},
        ErrorMsg{ErrorCode::Overloaded, "pool full", filled<32>(7)},
        ErrorMsg{ErrorCode::BadRequest, "undecodable", std::nullopt}};
    i = 0;
    for (const auto& m : client) write(dir, "fuzz_client_message", i++, encode_client_message(m));

    // Storage records (format in fuzz_storage_records.cpp): appended records of
    // each storable type, a raw one, then damage to the first.
    auto rec = [](std::uint8_t op, std::uint8_t epoch, const std::string& payload) {
        Bytes b{op, epoch, static_cast<std::uint8_t>(payload.size() >> 8),
                static_cast<std::uint8_t>(payload.size())};
        b.insert(b.end(), payload.begin(), payload.end());
        return b;
    };
    Bytes store;
    for (std::uint8_t t = 0; t < 5; ++t) {
        const Bytes r = rec(t, static_cast<std::uint8_t>(3 + t), "record-" + std::to_string(t));
        store.insert(store.end(), r.begin(), r.end());
    }
    write(dir, "fuzz_storage_records", 0, store);
    const Bytes raw = rec(0x09, 4, std::string(1, '\x01') + std::string(16, 'c') + "raw");
    store.insert(store.end(), raw.begin(), raw.end());
    store.insert(store.end(), {0xff, 0, 5, 0x10});
    write(dir, "fuzz_storage_records", 1, store);
    return 0;
}
