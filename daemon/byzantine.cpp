#include "daemon/byzantine.h"

#include <spdlog/spdlog.h>

#include "consensus/codec.h"
#include "consensus/snapshot_wire.h"

namespace tob::daemon {

using namespace tob::consensus;

ByzantineShim::ByzantineShim(Byzantine mode, const CryptoSuite& suite, const ReplicaConfig& config,
                             std::uint64_t seed)
    : mode_(mode), suite_(suite), config_(config), rng_(seed) {}

void ByzantineShim::observe(const Envelope& env, std::size_t) {
    if (mode_ == Byzantine::Collude && env.kind == Kind::Block) {
        // Another colluder's block (proposer not 0 or 1): once both of its versions
        // arrived, SEEN the lower digest for node 0 and the higher for node 1 only.
        auto b = decode_block(env.body, config_.limits);
        if (b && b.value().proposer > 1 && b.value().proposer != config_.self) {
            auto& v = versions_[{env.epoch, b.value().proposer}];
            v.insert(digest_of(env.body));
            if (v.size() == 2 && !seen_signed_.count({env.epoch, *v.begin()})) {
                seen_signed_.insert({env.epoch, *v.begin()});
                targeted_seens(env.epoch, b.value().proposer, *v.begin(), *v.rbegin(), pending_);
            }
        }
    }
    if (mode_ == Byzantine::Replay && env.sender != config_.self &&
        (env.kind == Kind::Seen || env.kind == Kind::Aba || env.kind == Kind::Block ||
         env.kind == Kind::Commit || env.kind == Kind::Cert)) {
        replayable_.push_back(Outgoing{std::nullopt, encode(env), env.kind});
        if (replayable_.size() > 2000) replayable_.pop_front();
    }
    if ((mode_ == Byzantine::Equivocate || mode_ == Byzantine::Collude) &&
        env.kind == Kind::Block && spare_requests_.size() < 64) {
        auto b = decode_block(env.body, config_.limits);
        if (b && !b.value().requests.empty()) spare_requests_.push_back(b.value().requests.front());
    }
}

Bytes ByzantineShim::reseal(const Envelope& env, Bytes body) const {
    return seal_envelope(suite_, config_.chain_id, config_.self, env.epoch, env.kind,
                         std::move(body));
}

void ByzantineShim::equivocate(const Envelope& env, std::vector<Outgoing>& out) {
    auto b = decode_block(env.body, config_.limits);
    if (!b) return;
    Block alt = b.value();
    if (alt.requests.size() >= 2) {
        alt.requests.resize(alt.requests.size() / 2);
    } else if (!alt.requests.empty()) {
        alt.requests.clear();
    } else if (!spare_requests_.empty()) {
        alt.requests.push_back(spare_requests_[rng_() % spare_requests_.size()]);
    } else {
        return;  // nothing to vary: an empty block stays one block
    }
    const Bytes original = encode(env);
    const Bytes other = reseal(env, encode(alt));
    for (NodeId j = 0; j < config_.n; ++j) {
        if (j == config_.self) continue;
        out.push_back(Outgoing{j, j < config_.n / 2 ? original : other, Kind::Block});
    }
}

void ByzantineShim::collude_block(const Envelope& env, std::vector<Outgoing>& out) {
    auto b = decode_block(env.body, config_.limits);
    if (!b) return;
    Block alt = b.value();
    if (!spare_requests_.empty()) {
        alt.requests.push_back(spare_requests_[rng_() % spare_requests_.size()]);
    } else if (!alt.requests.empty()) {
        alt.requests.pop_back();
    } else {
        out.push_back(Outgoing{std::nullopt, encode(env), Kind::Block});
        return;
    }
    Bytes lo = encode(env);
    Bytes hi = reseal(env, encode(alt));
    Digest dlo = digest_of(env.body), dhi = digest_of(encode(alt));
    if (dhi < dlo) {
        std::swap(lo, hi);
        std::swap(dlo, dhi);
    }
    spdlog::debug("collude: epoch {} block versions {} / {}", env.epoch,
                  crypto::to_hex(dlo).substr(0, 8), crypto::to_hex(dhi).substr(0, 8));
    // The lower digest to node 0, the higher to node 1, both to the other colluders
    // (every node but 0 and 1), and SEENs targeted the same way.
    for (NodeId j = 0; j < config_.n; ++j) {
        if (j == config_.self) continue;
        if (j != 1) out.push_back(Outgoing{j, lo, Kind::Block});
        if (j != 0) out.push_back(Outgoing{j, hi, Kind::Block});
    }
    seen_signed_.insert({env.epoch, dlo});
    targeted_seens(env.epoch, config_.self, dlo, dhi, out);
}

void ByzantineShim::targeted_seens(Epoch e, NodeId proposer, const Digest& lo, const Digest& hi,
                                   std::vector<Outgoing>& out) {
    auto seen = [&](const Digest& d) {
        return seal_envelope(suite_, config_.chain_id, config_.self, e, Kind::Seen,
                             encode(SeenBody{proposer, d}));
    };
    out.push_back(Outgoing{NodeId{0}, seen(lo), Kind::Seen});
    out.push_back(Outgoing{NodeId{1}, seen(hi), Kind::Seen});
}

void ByzantineShim::rewrite(Step& step, std::uint64_t now_ms) {
    if (mode_ == Byzantine::Silent) {
        step.messages.clear();
        return;
    }
    std::vector<Outgoing> out = std::move(pending_);
    pending_.clear();
    for (auto& m : step.messages) {
        auto envd = decode_envelope(m.envelope, config_.limits);
        if (!envd || envd.value().sender != config_.self) {
            out.push_back(std::move(m));
            continue;
        }
        const Envelope& env = envd.value();
        switch (mode_) {
            case Byzantine::Equivocate:
                if (env.kind == Kind::Block && !m.to) {
                    equivocate(env, out);
                    continue;
                }
                break;
            case Byzantine::Collude:
                if (env.kind == Kind::Block && !m.to) {
                    collude_block(env, out);
                    continue;
                }
                if (env.kind == Kind::Seen) {
                    auto sb = decode_seen(env.body, config_.limits);
                    if (sb && sb.value().proposer > 1) continue;  // targeted ones instead
                }
                break;
            case Byzantine::ConflictingSeen:
                if (env.kind == Kind::Seen) {
                    auto s = decode_seen(env.body, config_.limits);
                    if (s) {
                        SeenBody other = s.value();
                        other.digest[0] ^= 0x5a;
                        out.push_back(std::move(m));
                        out.push_back(
                            Outgoing{std::nullopt, reseal(env, encode(other)), Kind::Seen});
                        continue;
                    }
                }
                break;
            case Byzantine::LyingAba:
            case Byzantine::BadCoin:
                if (env.kind == Kind::Aba) {
                    auto bundle = decode_aba_bundle(env.body, config_.limits);
                    if (!bundle) break;
                    for (auto& a : bundle.value().messages) {
                        if (mode_ == Byzantine::LyingAba) {
                            if (a.type == AbaType::Bval || a.type == AbaType::Aux ||
                                a.type == AbaType::Term)
                                a.value ^= 1;
                            if (a.type == AbaType::Conf) a.value = 3;
                        } else if (a.type == AbaType::Coin && !a.coin_share.empty()) {
                            a.coin_share[a.coin_share.size() - 1] ^= 0x01;
                        }
                    }
                    out.push_back(Outgoing{m.to, reseal(env, encode(bundle.value())), Kind::Aba});
                    continue;
                }
                break;
            case Byzantine::CorruptSnapshot:
                if (env.kind == Kind::SnapshotReply) {
                    auto reply = decode_snapshot_reply(env.body, config_.limits);
                    if (reply && !reply.value().entries.empty()) {
                        auto& e = reply.value().entries[rng_() % reply.value().entries.size()];
                        e.value.push_back(0x21);
                        out.push_back(Outgoing{m.to, reseal(env, encode(reply.value())), env.kind});
                        continue;
                    }
                }
                break;
            default:
                break;
        }
        out.push_back(std::move(m));
    }
    if (mode_ == Byzantine::Replay && now_ms >= last_replay_ms_ + 100 && !replayable_.empty()) {
        last_replay_ms_ = now_ms;
        for (int i = 0; i < 20; ++i) out.push_back(replayable_[rng_() % replayable_.size()]);
    }
    step.messages = std::move(out);
}

}  // namespace tob::daemon
