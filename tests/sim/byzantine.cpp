// The simulator's Byzantine behaviours (byzantine.h). Every random draw comes
// from the world's network stream, in the order written here: a seed's replay
// depends on it.

#include "tests/sim/byzantine.h"

#include <algorithm>

#include "consensus/codec.h"
#include "consensus/replica.h"
#include "consensus/snapshot_wire.h"
#include "consensus/state_root.h"

namespace tob::sim {

using namespace tob::consensus;

namespace {
constexpr std::size_t kCapturedMax = 3000;
constexpr std::size_t kKnownRequestsMax = 256;
}  // namespace

Adversary::Adversary(AdversaryWorld& world, NodeId self, const std::vector<Behaviour>& behaviours,
                     const CryptoSuite& crypto, const ReplicaConfig& config, Epoch delivered,
                     AdversaryMemory& memory)
    : world_(world),
      rng_(world.rng()),
      self_(self),
      behaviours_(behaviours),
      crypto_(crypto),
      config_(config),
      delivered_(delivered),
      memory_(memory) {}

// ---- helpers ---------------------------------------------------------------------------

bool Adversary::has(Behaviour b) const {
    return std::find(behaviours_.begin(), behaviours_.end(), b) != behaviours_.end();
}

Bytes Adversary::seal(Epoch e, Kind k, Bytes body) {
    return world_.seal_as(self_, e, k, std::move(body));
}

void Adversary::send(NodeId to, const Bytes& bytes) { world_.send(self_, to, bytes); }

void Adversary::to_subset(const Bytes& bytes) {
    for (NodeId to : random_subset()) send(to, bytes);
}

std::vector<NodeId> Adversary::others(NodeId self) const {
    std::vector<NodeId> out;
    for (NodeId i = 0; i < world_.n(); ++i)
        if (i != self) out.push_back(i);
    return out;
}

std::vector<NodeId> Adversary::random_subset() {
    std::vector<NodeId> out;
    auto all = others(self_);
    for (NodeId i : all)
        if (rng_.chance(0.5)) out.push_back(i);
    if (out.empty() && !all.empty()) out.push_back(all[rng_.below(all.size())]);
    return out;
}

Bytes Adversary::random_bytes(std::size_t len) {
    Bytes out(len);
    for (auto& b : out) b = static_cast<std::uint8_t>(rng_.next());
    return out;
}

Digest Adversary::random_digest() {
    Digest d{};
    const Bytes r = random_bytes(d.size());
    std::copy(r.begin(), r.end(), d.begin());
    return d;
}

Epoch Adversary::pick_epoch() { return delivered_ + rng_.range(1, world_.window()); }

Request Adversary::forged_request() {
    Request r;
    if (!memory_.known_requests.empty() && rng_.chance(0.7)) {
        // A stolen (client, nonce) with other operations, under the old signature.
        r = memory_.known_requests[rng_.below(memory_.known_requests.size())];
        std::string k = "stolen/" + std::to_string(rng_.next() % 1000);
        r.ops = {Op{OpType::Put, Bytes(k.begin(), k.end()), Bytes{1, 2, 3}, std::nullopt}};
        if (rng_.chance(0.5)) r.sig = Signature{};  // or a garbage signature
    } else {
        r.chain_id = world_.chain_id();
        const std::size_t clients = world_.clients();
        r.client = clients == 0 ? PublicKey{} : world_.client_key(rng_.below(clients));
        r.nonce = rng_.range(1, 50);
        r.expires = delivered_ + rng_.range(0, 100);
        r.ops = {Op{OpType::Put, Bytes{'f'}, Bytes{'x'}, std::nullopt}};
        auto sig = random_bytes(64);
        std::copy(sig.begin(), sig.end(), r.sig.begin());
    }
    return r;
}

// ---- observe ---------------------------------------------------------------------------

std::optional<Envelope> Adversary::observe(NodeId from, const Shared& bytes) {
    if (has(Behaviour::Replay)) {
        memory_.captured.push_back(bytes);
        if (memory_.captured.size() > kCapturedMax) memory_.captured.pop_front();
    }
    auto opened = open_envelope(*bytes, crypto_, config_, from);
    if (!opened) return std::nullopt;
    const Envelope& env = opened.value();
    auto remember = [this](const Request& r) {
        memory_.known_requests.push_back(r);
        if (memory_.known_requests.size() > kKnownRequestsMax) memory_.known_requests.pop_front();
    };
    if (env.kind == Kind::Requests) {
        if (auto batch = decode_request_batch(env.body, config_.limits))
            for (const auto& r : batch.value().requests) remember(r);
    } else if (env.kind == Kind::Block) {
        if (auto blk = decode_block(env.body, config_.limits)) {
            for (const auto& r : blk.value().requests) remember(r);
            memory_.known_blocks[{env.epoch, env.sender}] = digest_of(env.body);
        }
    }
    return env;
}

// ---- forward ---------------------------------------------------------------------------

void Adversary::forward(const Outgoing& m) {
    auto opened = decode_envelope(m.envelope, config_.limits);
    if (!opened || opened.value().sender != self_) {
        world_.send(self_, m.to, m.envelope);
        return;
    }
    const Envelope env = opened.value();
    const Targets targets = m.to ? Targets{*m.to} : others(self_);
    using Rule = bool (Adversary::*)(const Envelope&, const Outgoing&, const Targets&);
    static constexpr Rule kRules[] = {
        &Adversary::equivocate_block, &Adversary::corrupt_snapshot, &Adversary::withhold,
        &Adversary::lie_in_commit,    &Adversary::equivocate_seen,  &Adversary::conflict_in_seen,
        &Adversary::forge_in_block,   &Adversary::lie_in_aba,
    };
    for (Rule rule : kRules)
        if ((this->*rule)(env, m, targets)) return;
    world_.send(self_, m.to, m.envelope);
}

// equivocate: a second version of the own block for a random group, and every
// other Byzantine node SEENs the original to one side and the alternative to the
// other (the adversary colludes: the strongest one).
const std::pair<Bytes, Bytes>* Adversary::make_alternative(const Envelope& env) {
    auto blk = decode_block(env.body, config_.limits);
    if (!blk) return nullptr;
    Block alt = blk.value();
    if (alt.requests.size() >= 2 && rng_.chance(0.5))
        std::reverse(alt.requests.begin(), alt.requests.end());
    else if (!alt.requests.empty() && rng_.chance(0.5))
        alt.requests.pop_back();
    else if (!memory_.known_requests.empty())
        alt.requests.push_back(memory_.known_requests[rng_.below(memory_.known_requests.size())]);
    if (alt == blk.value()) return nullptr;
    Bytes body = encode(alt);
    SeenBody seen{self_, digest_of(body)};
    Bytes alt_env = seal(env.epoch, Kind::Block, std::move(body));
    Bytes seen_env = seal(env.epoch, Kind::Seen, encode(seen));
    auto it = memory_.alt_blocks.emplace(env.epoch, std::make_pair(alt_env, seen_env)).first;
    std::set<NodeId> group;
    for (NodeId i : random_subset()) group.insert(i);
    if (group.size() == world_.n() - 1) group.erase(group.begin());
    memory_.alt_group[env.epoch] = group;
    const SeenBody seen_orig{self_, digest_of(env.body)};
    for (NodeId other : world_.byzantine_ids()) {
        if (other == self_) continue;
        Bytes s_alt = world_.seal_as(other, env.epoch, Kind::Seen, encode(seen));
        Bytes s_orig = world_.seal_as(other, env.epoch, Kind::Seen, encode(seen_orig));
        for (NodeId to : others(other)) world_.send(other, to, group.count(to) ? s_alt : s_orig);
    }
    return &it->second;
}

bool Adversary::equivocate_block(const Envelope& env, const Outgoing& m, const Targets& targets) {
    if (env.kind != Kind::Block || !has(Behaviour::Equivocate)) return false;
    const std::pair<Bytes, Bytes>* alt = nullptr;
    if (auto it = memory_.alt_blocks.find(env.epoch); it != memory_.alt_blocks.end())
        alt = &it->second;
    else
        alt = make_alternative(env);
    if (!alt) return false;
    const auto& group = memory_.alt_group[env.epoch];
    for (NodeId to : targets) {
        if (group.count(to)) {
            send(to, alt->first);
            send(to, alt->second);
        } else {
            send(to, m.envelope);
        }
    }
    return true;
}

// corrupt-snapshot: a chunk with a changed value, a dropped or an added entry, or
// an offer whose manifest is not the signed root's; re-signed with the node's key.
// Now and then the reply goes out honestly.
bool Adversary::corrupt_snapshot(const Envelope& env, const Outgoing&, const Targets& targets) {
    if (env.kind != Kind::SnapshotReply || !has(Behaviour::CorruptSnapshot)) return false;
    auto decoded = decode_snapshot_reply(env.body, config_.limits);
    if (!decoded) return false;
    SnapshotReply reply = decoded.value();
    if (rng_.chance(0.2)) {
        for (NodeId to : targets) send(to, encode(env));
        return true;
    }
    if (reply.op == SnapshotOp::Offer) {
        if (!reply.manifest.empty()) reply.manifest[rng_.below(reply.manifest.size())] ^= 0x01;
    } else if (!reply.entries.empty()) {
        auto& e = reply.entries[rng_.below(reply.entries.size())];
        switch (rng_.below(3)) {
            case 0:
                e.value.push_back(static_cast<std::uint8_t>(rng_.next()));
                break;
            case 1:
                reply.entries.erase(reply.entries.begin() +
                                    static_cast<std::ptrdiff_t>(rng_.below(reply.entries.size())));
                break;
            default: {
                StateEntry fake = e;  // a new key right after e, in its bucket or not
                fake.key.push_back(static_cast<std::uint8_t>(rng_.next()));
                reply.entries.push_back(fake);
                std::sort(reply.entries.begin(), reply.entries.end(),
                          [](const StateEntry& x, const StateEntry& y) {
                              const auto bx = state_bucket(x.key), by = state_bucket(y.key);
                              return bx != by ? bx < by : x.key < y.key;
                          });
                break;
            }
        }
    } else {
        reply.entries.push_back({Bytes{'x'}, Bytes{'y'}});
    }
    const Bytes out = seal(env.epoch, Kind::SnapshotReply, encode(reply));
    for (NodeId to : targets) send(to, out);
    return true;
}

// withhold: the own block to q-1 others only (with the own SEEN exactly a
// certificate: everyone else must fetch it from the signers); no fetch answers.
bool Adversary::withhold(const Envelope& env, const Outgoing& m, const Targets& targets) {
    if (!has(Behaviour::Withhold)) return false;
    // never helps anyone catch up
    if (env.kind == Kind::FetchReply || env.kind == Kind::SnapshotReply) return true;
    if (env.kind != Kind::Block) return false;
    auto& chosen = memory_.alt_group[env.epoch];
    if (chosen.empty()) {
        auto all = others(self_);
        for (std::size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[rng_.below(i)]);
        const std::uint32_t q = quorum(world_.n(), world_.t());
        for (std::size_t i = 0; i + 1 < q && i < all.size(); ++i) chosen.insert(all[i]);
    }
    for (NodeId to : targets)
        if (chosen.count(to)) send(to, m.envelope);
    return true;
}

// lying-commit: most receivers get a COMMIT with a made-up output or state digest.
bool Adversary::lie_in_commit(const Envelope& env, const Outgoing& m, const Targets& targets) {
    if (env.kind != Kind::Commit || !has(Behaviour::LyingCommit)) return false;
    auto c = decode_commit(env.body, config_.limits);
    if (!c) return false;
    for (NodeId to : targets) {
        if (rng_.chance(0.3)) {
            send(to, m.envelope);
            continue;
        }
        CommitBody lie = c.value();
        const Digest r1 = random_digest();
        if (lie.checkpoint_root && rng_.chance(0.5))
            lie.checkpoint_root = r1;  // a lying checkpoint vote: right tuple, made-up root
        else if (rng_.chance(0.5))
            lie.state_digest = r1;
        else
            lie.output_digest = r1;
        send(to, seal(env.epoch, Kind::Commit, encode(lie)));
    }
    return true;
}

// equivocate: the own SEEN of the own block matches the version each receiver got.
bool Adversary::equivocate_seen(const Envelope& env, const Outgoing& m, const Targets& targets) {
    if (env.kind != Kind::Seen || !has(Behaviour::Equivocate)) return false;
    auto s = decode_seen(env.body, config_.limits);
    if (!s || s.value().proposer != self_ || !memory_.alt_blocks.count(env.epoch)) return false;
    const auto& group = memory_.alt_group[env.epoch];
    for (NodeId to : targets)
        send(to, group.count(to) ? memory_.alt_blocks[env.epoch].second : m.envelope);
    return true;
}

// conflicting-seen: half the SEENs go with a random digest to a random half.
bool Adversary::conflict_in_seen(const Envelope& env, const Outgoing& m, const Targets& targets) {
    if (env.kind != Kind::Seen || !has(Behaviour::ConflictingSeen) || !rng_.chance(0.5))
        return false;
    auto s = decode_seen(env.body, config_.limits);
    if (!s) return false;
    SeenBody other = s.value();
    other.digest = random_digest();
    Bytes alt = seal(env.epoch, Kind::Seen, encode(other));
    for (NodeId to : targets) send(to, rng_.chance(0.5) ? alt : m.envelope);
    return true;
}

// forge-request: a forged request inside the own block.
bool Adversary::forge_in_block(const Envelope& env, const Outgoing& m, const Targets&) {
    if (env.kind != Kind::Block || !has(Behaviour::ForgeRequest) || !rng_.chance(0.3)) return false;
    auto blk = decode_block(env.body, config_.limits);
    if (!blk) return false;
    Block bad = blk.value();
    bad.requests.push_back(forged_request());
    world_.send(self_, m.to, seal(env.epoch, Kind::Block, encode(bad)));
    return true;
}

// lying-aba: values flipped per receiver; bad-coin: coin shares made invalid.
bool Adversary::lie_in_aba(const Envelope& env, const Outgoing& m, const Targets& targets) {
    if (env.kind != Kind::Aba || !(has(Behaviour::LyingAba) || has(Behaviour::BadCoin)))
        return false;
    auto bundle = decode_aba_bundle(env.body, config_.limits);
    if (!bundle) return false;
    for (NodeId to : targets) {
        AbaBundle out = bundle.value();
        bool changed = false;
        for (auto& msg : out.messages) {
            if (has(Behaviour::BadCoin) && msg.type == AbaType::Coin) {
                const auto v = rng_.below(3);
                if (v == 0)
                    msg.coin_share = random_bytes(msg.coin_share.size());
                else if (v == 1)
                    msg.coin_share = crypto_.coin_share(
                        coin_name(world_.chain_id(), env.epoch, msg.proposer, msg.round + 1));
                else
                    msg.coin_share.back() ^= 1;
                changed = true;
            }
            if (has(Behaviour::LyingAba) && rng_.chance(0.5)) {
                if (msg.type == AbaType::Bval || msg.type == AbaType::Aux ||
                    msg.type == AbaType::Term) {
                    msg.value ^= 1;
                    changed = true;
                } else if (msg.type == AbaType::Conf) {
                    msg.value = static_cast<std::uint8_t>(rng_.range(1, 3));
                    changed = true;
                }
            }
        }
        send(to, changed ? seal(env.epoch, Kind::Aba, encode(out)) : m.envelope);
    }
    return true;
}

// ---- act -------------------------------------------------------------------------------

void Adversary::act() {
    conflicting_seens();
    lying_aba_messages();
    bad_coin_shares();
    forgeries();
    replays();
    junk();
    forged_requests();
    lying_commits();
    window_edge();
}

// conflicting-seen: two SEENs for one (e, j), one to each receiver.
void Adversary::conflicting_seens() {
    if (!has(Behaviour::ConflictingSeen) || !rng_.chance(0.3)) return;
    const Epoch e = pick_epoch();
    const NodeId j = static_cast<NodeId>(rng_.below(world_.n()));
    SeenBody s1{j, {}}, s2{j, {}};
    auto it = memory_.known_blocks.find({e, j});
    s1.digest = random_digest();
    s2.digest = random_digest();
    if (it != memory_.known_blocks.end() && rng_.chance(0.5)) s1.digest = it->second;
    Bytes e1 = seal(e, Kind::Seen, encode(s1));
    Bytes e2 = seal(e, Kind::Seen, encode(s2));
    for (NodeId to : others(self_)) send(to, rng_.chance(0.5) ? e1 : e2);
}

// lying-aba: made-up BVAL/AUX/CONF/TERM bundles.
void Adversary::lying_aba_messages() {
    if (!has(Behaviour::LyingAba) || !rng_.chance(0.3)) return;
    AbaBundle bundle;
    const Epoch e = pick_epoch();
    const std::uint64_t count = rng_.range(1, 6);
    for (std::uint64_t i = 0; i < count; ++i) {
        AbaMessage msg;
        msg.proposer = static_cast<NodeId>(rng_.below(world_.n()));
        msg.round = static_cast<Round>(rng_.below(4));
        msg.type = static_cast<AbaType>(rng_.range(1, 4));
        msg.value =
            static_cast<std::uint8_t>(msg.type == AbaType::Conf ? rng_.range(1, 3) : rng_.below(2));
        bundle.messages.push_back(msg);
    }
    to_subset(seal(e, Kind::Aba, encode(bundle)));
}

// bad-coin: random coin shares, or shares for another chain's coin.
void Adversary::bad_coin_shares() {
    if (!has(Behaviour::BadCoin) || !rng_.chance(0.2)) return;
    AbaBundle bundle;
    const Epoch e = pick_epoch();
    AbaMessage msg;
    msg.proposer = static_cast<NodeId>(rng_.below(world_.n()));
    // Mostly rounds that draw the threshold coin (2, 5), where a share is verified;
    // a share for a fixed round (0, 1, 3) is refused unverified.
    msg.round = static_cast<Round>(rng_.chance(0.75) ? 2 + 3 * rng_.below(2) : rng_.below(4));
    msg.type = AbaType::Coin;
    msg.coin_share =
        rng_.chance(0.5)
            ? random_bytes(96)
            : crypto_.coin_share(coin_name(world_.foreign_chain_id(), e, msg.proposer, msg.round));
    bundle.messages.push_back(msg);
    to_subset(seal(e, Kind::Aba, encode(bundle)));
}

// forge: one of six forgeries.
void Adversary::forgeries() {
    if (!has(Behaviour::Forge) || !rng_.chance(0.3)) return;
    const Epoch e = pick_epoch();
    switch (rng_.below(6)) {
        case 0:
            return forge_sender_name(e);
        case 1:
            return forge_flipped_signature(e);
        case 2:
            return forge_foreign_chain(e);
        case 3:
            return forge_certificate(e);
        case 4:
            return forge_fetch_reply(e);
        default:
            return forge_non_member(e);
    }
}

// Someone else's name on our signature (a SEEN); in even epochs, every member's
// name on an agreement bundle instead (below).
void Adversary::forge_sender_name(Epoch e) {
    SeenBody s{static_cast<NodeId>(rng_.below(world_.n())), {}};
    const auto sender = static_cast<NodeId>(rng_.below(world_.n()));
    if (e % 2 == 0) return forge_aba_names(e, s.proposer);
    Bytes body = encode(s);
    Envelope env;
    env.chain_id = world_.chain_id();
    env.sender = sender;
    env.epoch = e;
    env.kind = Kind::Seen;
    env.body = body;
    env.sig = crypto_.sign(kEnvelopeTag,
                           envelope_sign_payload(world_.chain_id(), self_, e, Kind::Seen, body));
    to_subset(encode(env));
}

// Agreement bundles carry no signature: only the link names their sender
// (open_envelope). One bundle per member name, each deciding ABA(e, j) for v
// (BVAL, AUX and TERM of round 0), v alternating with the epoch, to a random part
// of the others: believed, t+1 such names decide it there whatever the honest
// nodes decide (the plant trust-aba-sender shows the agreement check catching it).
// Drawn like the SEEN forgery, so the sweeps' schedules do not move.
void Adversary::forge_aba_names(Epoch e, NodeId j) {
    const auto v = static_cast<std::uint8_t>((e / 2) % 2);
    AbaBundle bundle;
    for (AbaType type : {AbaType::Bval, AbaType::Aux, AbaType::Term})
        bundle.messages.push_back(AbaMessage{j, 0, type, v, {}});
    const Bytes body = encode(bundle);
    for (NodeId to : random_subset()) {
        for (NodeId name = 0; name < world_.n(); ++name) {
            if (name == to) continue;
            send(to, seal_envelope(crypto_, world_.chain_id(), name, e, Kind::Aba, body));
        }
    }
}

// Our envelope with its signature flipped.
void Adversary::forge_flipped_signature(Epoch e) {
    Block blk{e, self_, {}};
    Bytes env_bytes = seal(e, Kind::Block, encode(blk));
    auto env = decode_envelope(env_bytes, config_.limits).value();
    env.sig[rng_.below(64)] ^= 0x20;
    to_subset(encode(env));
}

// Our envelope for another cluster.
void Adversary::forge_foreign_chain(Epoch e) {
    Block blk{e, self_, {}};
    to_subset(
        seal_envelope(crypto_, world_.foreign_chain_id(), self_, e, Kind::Block, encode(blk)));
}

// A certificate with forged signer signatures (only our own is real).
void Adversary::forge_certificate(Epoch e) {
    Certificate c;
    c.epoch = e;
    c.proposer = static_cast<NodeId>(rng_.below(world_.n()));
    c.digest = random_digest();
    for (NodeId s = 0; s < world_.n(); ++s) {
        SignerSig ss;
        ss.signer = s;
        if (s == self_) {
            ss.sig = crypto_.sign(kEnvelopeTag,
                                  envelope_sign_payload(world_.chain_id(), self_, e, Kind::Seen,
                                                        encode(SeenBody{c.proposer, c.digest})));
        } else {
            auto sg = random_bytes(64);
            std::copy(sg.begin(), sg.end(), ss.sig.begin());
        }
        c.sigs.push_back(ss);
    }
    to_subset(seal(e, Kind::Cert, encode(c)));
}

// A fetch reply carrying forged envelopes in honest names.
void Adversary::forge_fetch_reply(Epoch e) {
    FetchReply reply;
    for (int i = 0; i < 3; ++i) {
        Envelope env;
        env.chain_id = world_.chain_id();
        env.sender = static_cast<NodeId>(rng_.below(world_.n()));
        env.epoch = e;
        env.kind = Kind::Block;
        env.body = encode(Block{e, env.sender, {}});
        auto sg = random_bytes(64);
        std::copy(sg.begin(), sg.end(), env.sig.begin());
        reply.envelopes.push_back(encode(env));
    }
    to_subset(seal(e, Kind::FetchReply, encode(reply)));
}

// A sender id that is not a member.
void Adversary::forge_non_member(Epoch e) {
    Envelope env;
    env.chain_id = world_.chain_id();
    env.sender = static_cast<NodeId>(world_.n() + rng_.below(5));
    env.epoch = e;
    env.kind = Kind::Block;
    env.body = encode(Block{e, env.sender, {}});
    env.sig = crypto_.sign(
        kEnvelopeTag, envelope_sign_payload(world_.chain_id(), env.sender, e, env.kind, env.body));
    to_subset(encode(env));
}

// replay: captured envelopes again (biased towards old ones), and sometimes one of
// them re-signed for another epoch.
void Adversary::replays() {
    if (!has(Behaviour::Replay) || memory_.captured.empty() || !rng_.chance(0.4)) return;
    const auto& captured = memory_.captured;
    const std::uint64_t count = rng_.range(1, 4);
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::size_t k = std::min(rng_.below(captured.size()), rng_.below(captured.size()));
        const Shared& bytes = captured[k];
        const NodeId to = static_cast<NodeId>(rng_.below(world_.n()));
        if (to != self_) world_.send_shared(self_, to, bytes);
    }
    if (rng_.chance(0.3)) {
        const Shared& bytes = captured[rng_.below(captured.size())];
        auto env = decode_envelope(*bytes, config_.limits);
        if (env && env.value().kind != Kind::Requests) {
            const Epoch e = env.value().epoch + rng_.range(1, 3);
            to_subset(seal(e, env.value().kind, env.value().body));
        }
    }
}

// junk: random bytes, msgpack length bombs, truncated and junk-bodied envelopes.
void Adversary::junk() {
    if (!has(Behaviour::Junk) || !rng_.chance(0.3)) return;
    switch (rng_.below(4)) {
        case 0:
            to_subset(random_bytes(rng_.below(300)));
            break;
        case 1: {  // msgpack-looking junk: a big array header, a bin32 with a huge length
            Bytes j = {0xdd, 0xff, 0x00, 0x00, 0x00};
            if (rng_.chance(0.5)) j = {0x96, 0xc6, 0xff, 0xff, 0xff, 0xff};
            to_subset(j);
            break;
        }
        case 2: {  // a truncated valid envelope
            Bytes env = seal(pick_epoch(), Kind::Block, encode(Block{pick_epoch(), self_, {}}));
            env.resize(rng_.below(env.size()));
            to_subset(env);
            break;
        }
        default: {  // a properly signed envelope with a junk body
            const auto kind = static_cast<Kind>(rng_.range(1, kKindMax));
            to_subset(seal(kind == Kind::Requests ? 0 : pick_epoch(), kind,
                           random_bytes(rng_.below(120))));
            break;
        }
    }
}

// forge-request: a batch with a forged request, flooded.
void Adversary::forged_requests() {
    if (!has(Behaviour::ForgeRequest) || !rng_.chance(0.3)) return;
    RequestBatch batch;
    batch.requests.push_back(forged_request());
    to_subset(seal(0, Kind::Requests, encode(batch)));
}

// lying-commit: a COMMIT for an epoch nobody reached, or a made-up one for a past epoch.
void Adversary::lying_commits() {
    if (!has(Behaviour::LyingCommit) || !rng_.chance(0.1)) return;
    CommitBody lie;
    lie.output_digest = random_digest();
    lie.state_digest = random_digest();
    const Epoch d = delivered_;
    const Epoch e =
        rng_.chance(0.5) ? d + rng_.range(1, world_.window()) : (d > 0 ? rng_.range(1, d) : 1);
    to_subset(seal(e, Kind::Commit, encode(lie)));
}

// window-edge: a block, a BVAL and a SEEN at exactly delivered+W (or +W+1), to a
// random part of the honest nodes only.
void Adversary::window_edge() {
    if (!has(Behaviour::WindowEdge) || !rng_.chance(0.2)) return;
    const Epoch e = delivered_ + world_.window() + (rng_.chance(0.3) ? 1 : 0);
    Block blk{e, self_, {}};
    if (!memory_.known_requests.empty())
        blk.requests.push_back(memory_.known_requests[rng_.below(memory_.known_requests.size())]);
    std::vector<NodeId> targets;
    for (NodeId i : others(self_))
        if (world_.honest(i) && rng_.chance(0.5)) targets.push_back(i);
    Bytes block_env = seal(e, Kind::Block, encode(blk));
    AbaBundle bundle;
    bundle.messages.push_back(AbaMessage{static_cast<NodeId>(rng_.below(world_.n())),
                                         0,
                                         AbaType::Bval,
                                         static_cast<std::uint8_t>(rng_.below(2)),
                                         {}});
    Bytes aba_env = seal(e, Kind::Aba, encode(bundle));
    Bytes seen_env = seal(e, Kind::Seen, encode(SeenBody{self_, digest_of(encode(blk))}));
    for (NodeId to : targets) {
        send(to, block_env);
        send(to, aba_env);
        send(to, seen_env);
    }
}

}  // namespace tob::sim
