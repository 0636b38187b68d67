#include "consensus/dolev_strong.h"

#include <set>
#include <string>

#include "crypto/hash.h"

namespace tob::consensus {

DolevStrong::DolevStrong(const DsParams& params, const CryptoSuite& crypto)
    : p_(params), crypto_(crypto) {}

Bytes DolevStrong::link_payload(std::uint64_t session, NodeId sender, ByteView value) {
    const Digest d = crypto::Hasher().field(kTag).u64(session).u64(sender).field(value).finish();
    return Bytes(d.begin(), d.end());
}

DsLink DolevStrong::sign_link(const CryptoSuite& crypto, NodeId signer, std::uint64_t session,
                              NodeId sender, ByteView value) {
    return DsLink{signer, crypto.sign(kTag, link_payload(session, sender, value))};
}

bool DolevStrong::knows(const Digest& d) const {
    for (const auto& [digest, value] : accepted_)
        if (digest == d) return true;
    return false;
}

DsStep DolevStrong::propose(const Bytes& value) {
    DsStep step;
    if (p_.self != p_.sender || !accepted_.empty() || value.size() > p_.value_bytes_max)
        return step;
    DsMessage m{
        p_.session, p_.sender, value, {sign_link(crypto_, p_.self, p_.session, p_.sender, value)}};
    accepted_.emplace_back(crypto::blake2b256(value), value);
    ++stats_.accepted;
    step.broadcast.push_back(std::move(m));
    return step;
}

DsStep DolevStrong::handle_message(std::uint32_t round, NodeId from, const DsMessage& message) {
    DsStep step;
    auto blame = [&](FaultKind kind, std::string detail) {
        ++stats_.invalid;
        step.faults.push_back({from, kind, "dolev-strong: " + std::move(detail), {}});
    };
    if (message.session != p_.session || message.sender != p_.sender) {
        ++stats_.wrong_session;
        return step;
    }
    if (round < 1 || round > p_.t + 1) {
        ++stats_.out_of_rounds;
        return step;
    }
    const auto& chain = message.chain;
    if (message.value.size() > p_.value_bytes_max) {
        blame(FaultKind::Malformed, "value over the size bound");
        return step;
    }
    if (chain.empty() || chain.size() > p_.n || chain.front().signer != p_.sender) {
        blame(FaultKind::Malformed, "chain empty, too long, or not opened by the sender");
        return step;
    }
    std::set<NodeId> signers;
    for (const auto& link : chain) {
        if (link.signer >= p_.n || !signers.insert(link.signer).second) {
            blame(FaultKind::Malformed, "chain with a non-member or repeated signer");
            return step;
        }
    }
    const std::size_t needed = p_.knobs.accept_short_chains ? 1 : round;
    if (chain.size() < needed) {
        ++stats_.short_chain;
        return step;
    }
    const Digest d = crypto::blake2b256(message.value);
    if (knows(d) || accepted_.size() >= kRelayValuesMax) {
        ++stats_.duplicate;
        return step;
    }
    const Bytes payload = link_payload(p_.session, p_.sender, message.value);
    for (const auto& link : chain) {
        if (!crypto_.verify(link.signer, kTag, payload, link.sig)) {
            blame(FaultKind::InvalidSignature,
                  "bad signature of member " + std::to_string(link.signer) + " in a chain");
            return step;
        }
    }
    return accept(round, message, d);
}

DsStep DolevStrong::accept(std::uint32_t round, const DsMessage& message, const Digest& d) {
    DsStep step;
    accepted_.emplace_back(d, message.value);
    ++stats_.accepted;
    if (accepted_.size() == 2) {
        // Two values under the sender's signature: the sender equivocated.
        step.faults.push_back({p_.sender,
                               FaultKind::Equivocation,
                               "dolev-strong: the sender signed two values in one session",
                               {}});
    }
    bool signed_already = false;
    for (const auto& link : message.chain) signed_already |= link.signer == p_.self;
    if (round <= p_.t && !signed_already) {
        DsMessage relay = message;
        relay.chain.push_back(sign_link(crypto_, p_.self, p_.session, p_.sender, message.value));
        step.broadcast.push_back(std::move(relay));
    }
    return step;
}

std::optional<Bytes> DolevStrong::output() const {
    if (accepted_.size() != 1) return std::nullopt;
    return accepted_.front().second;
}

std::vector<Bytes> DolevStrong::accepted() const {
    std::vector<Bytes> out;
    for (const auto& [d, v] : accepted_) out.push_back(v);
    return out;
}

}  // namespace tob::consensus
