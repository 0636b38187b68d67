// SignLog: slots, the high-water mark floor and pruning. The rules and bounds are
// in consensus/sign_log.h.

#include "consensus/sign_log.h"

#include "consensus/check.h"
#include "consensus/codec.h"

namespace tob::consensus {

const char* to_string(SlotKind kind) {
    switch (kind) {
        case SlotKind::Block:
            return "block";
        case SlotKind::Seen:
            return "SEEN";
        case SlotKind::Bval:
            return "BVAL";
        case SlotKind::Aux:
            return "AUX";
        case SlotKind::Conf:
            return "CONF";
        case SlotKind::Term:
            return "TERM";
        case SlotKind::Commit:
            return "COMMIT";
    }
    return "?";
}

std::optional<Slot> aba_slot(Epoch epoch, const AbaMessage& m) {
    switch (m.type) {
        case AbaType::Bval:
            return Slot{SlotKind::Bval, epoch, m.proposer, m.round, m.value};
        case AbaType::Aux:
            return Slot{SlotKind::Aux, epoch, m.proposer, m.round, 0};
        case AbaType::Conf:
            return Slot{SlotKind::Conf, epoch, m.proposer, m.round, 0};
        case AbaType::Term:
            return Slot{SlotKind::Term, epoch, m.proposer, 0, 0};
        case AbaType::Coin:
            return std::nullopt;  // deterministic: no slot
    }
    return std::nullopt;
}

namespace {

/// The payload of an ABA slot: its type and value (the slot holds the rest).
Digest aba_payload(const AbaMessage& m) {
    return crypto::Hasher()
        .field(std::string_view("tobd-slot-aba-v1"))
        .u64(static_cast<std::uint64_t>(m.type))
        .u64(m.value)
        .finish();
}

}  // namespace

std::optional<std::vector<SlotClaim>> slots_of(const Envelope& env, const Limits& limits) {
    std::vector<SlotClaim> out;
    switch (env.kind) {
        case Kind::Block:
            // The block body is not decoded: its digest is the payload, the signer the slot.
            out.push_back(
                {Slot{SlotKind::Block, env.epoch, env.sender, 0, 0}, digest_of(env.body)});
            break;
        case Kind::Seen: {
            auto seen = decode_seen(env.body, limits);
            if (!seen) return std::nullopt;
            out.push_back({Slot{SlotKind::Seen, env.epoch, seen.value().proposer, 0, 0},
                           digest_of(env.body)});
            break;
        }
        case Kind::Aba: {
            auto bundle = decode_aba_bundle(env.body, limits);
            if (!bundle) return std::nullopt;
            for (const auto& m : bundle.value().messages) {
                if (auto slot = aba_slot(env.epoch, m)) out.push_back({*slot, aba_payload(m)});
            }
            break;
        }
        case Kind::Commit:
            out.push_back({Slot{SlotKind::Commit, env.epoch, 0, 0, 0}, digest_of(env.body)});
            break;
        case Kind::Cert:
        case Kind::Requests:
        case Kind::FetchRequest:
        case Kind::FetchReply:
        case Kind::SnapshotRequest:
        case Kind::SnapshotReply:
            break;
    }
    return out;
}

SignLog::SignLog(NodeId self, const Digest& chain_id, const Limits& limits,
                 const CryptoSuite& crypto)
    : self_(self), chain_id_(chain_id), limits_(limits), crypto_(crypto) {}

void SignLog::raise_mark(Epoch mark) { high_water_ = std::max(high_water_, mark); }

bool SignLog::adopt(const Bytes& signed_envelope) {
    auto env = decode_envelope(signed_envelope, limits_);
    if (!env) return false;
    adopted_any_ = true;
    highest_adopted_ = std::max(highest_adopted_, env.value().epoch);
    auto claims = slots_of(env.value(), limits_);
    if (!claims) return true;  // logged, but carries no readable slot
    for (const auto& c : *claims) {
        if (slots_[c.slot.epoch].insert_or_assign(c.slot, c.payload).second) ++slot_count_;
    }
    return true;
}

void SignLog::raise_floor(Epoch floor) {
    floor_ = std::max(floor_, floor);
    recorded_floor_ = std::max(recorded_floor_, floor);
}

std::optional<Epoch> SignLog::finish_recovery() {
    // Nothing loaded (the data directory was lost), or the highest loaded
    // signature below the mark (restored from an older backup): what was signed
    // after the loaded records is unknown, so the mark is a floor.
    if (high_water_ > 0 && (!adopted_any_ || highest_adopted_ < high_water_)) {
        floor_ = std::max(floor_, high_water_);
    }
    if (floor_ > recorded_floor_) return floor_;
    return std::nullopt;
}

bool SignLog::filled(const Slot& slot) const {
    auto e = slots_.find(slot.epoch);
    return e != slots_.end() && e->second.count(slot) != 0;
}

std::optional<Bytes> SignLog::sign(Step& step, Epoch e, Kind kind, Bytes body) {
    TOB_CHECK(
        kind == Kind::Block || kind == Kind::Seen || kind == Kind::Aba || kind == Kind::Commit,
        "only statements go through the sign-log");
    if (!may_sign(e)) return std::nullopt;
    Envelope env;
    env.chain_id = chain_id_;
    env.sender = self_;
    env.epoch = e;
    env.kind = kind;
    env.body = std::move(body);
    auto claims = slots_of(env, limits_);
    TOB_CHECK(claims.has_value(), "a body this node built decodes");
    if (auto ep = slots_.find(e); ep != slots_.end()) {
        for (const auto& c : *claims) {
            auto it = ep->second.find(c.slot);
            if (it != ep->second.end() && it->second != c.payload) return std::nullopt;
        }
    }
    const bool raise = e > high_water_;
    if (raise) high_water_ = e;
    if (!claims->empty()) {  // a coin-only bundle claims nothing (but is logged all the same)
        auto& per_epoch = slots_[e];
        for (const auto& c : *claims) {
            if (per_epoch.insert_or_assign(c.slot, c.payload).second) ++slot_count_;
        }
    }
    Bytes out = seal_envelope(crypto_, chain_id_, self_, e, kind, std::move(env.body));
    step.durable(DurableRecord::Type::Signed, e, out);
    // The mark after the signature: a crash that keeps only a prefix of the step
    // never keeps the mark without the signature (which would make this node sit
    // out epoch e on restart although nothing of e left it; see sign_log.h).
    if (raise) step.durable(DurableRecord::Type::HighWater, e, {});
    return out;
}

void SignLog::prune_through(Epoch e) {
    if (e <= pruned_through_) return;
    pruned_through_ = e;
    while (!slots_.empty() && slots_.begin()->first <= e) {
        slot_count_ -= slots_.begin()->second.size();
        slots_.erase(slots_.begin());
    }
}

}  // namespace tob::consensus
