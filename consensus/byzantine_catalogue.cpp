// The catalogue of test-only Byzantine behaviours (byzantine_catalogue.h).

#include "consensus/byzantine_catalogue.h"

#include <algorithm>

namespace tob::consensus {

namespace {

using H = ByzantineHarness;

const std::vector<ByzantineInfo>& table() {
    static const std::vector<ByzantineInfo> kTable = {
        {Byzantine::Silent, "silent", "receives everything, sends nothing", H::Both},
        {Byzantine::Equivocate, "equivocate",
         "two versions of its block, each to a part of the peers", H::Both},
        {Byzantine::ConflictingSeen, "conflicting-seen",
         "SEENs for more than one digest of one (epoch, proposer)", H::Both},
        {Byzantine::LyingAba, "lying-aba",
         "binary-agreement votes (BVAL, AUX, CONF, TERM) flipped or made up", H::Both},
        {Byzantine::BadCoin, "bad-coin", "coin shares that fail verification", H::Both},
        {Byzantine::Forge, "forge",
         "bad signatures, other senders' names, a foreign chain, forged certificates", H::Tobsim},
        {Byzantine::Replay, "replay", "envelopes of earlier epochs sent again, repeatedly",
         H::Both},
        {Byzantine::Junk, "junk", "random bytes, truncated envelopes, signed junk bodies",
         H::Tobsim},
        {Byzantine::ForgeRequest, "forge-request",
         "client requests with bad signatures or stolen nonces", H::Tobsim},
        {Byzantine::WindowEdge, "window-edge",
         "messages at exactly the window's edge, to some honest nodes only", H::Tobsim},
        {Byzantine::Withhold, "withhold",
         "its block to just enough nodes to certify it; answers no fetch", H::Tobsim},
        {Byzantine::LyingCommit, "lying-commit", "COMMITs with made-up digests, per receiver",
         H::Tobsim},
        {Byzantine::Collude, "collude",
         "with the other colluders, two block versions certified (needs more than t)", H::Tobd},
        {Byzantine::CorruptSnapshot, "corrupt-snapshot",
         "snapshot chunks with changed, dropped or added entries; offers with bad manifests",
         H::Both},
        {Byzantine::CrashStop, "crash-stop",
         "honest until a moment of the safety phase, then down for good, its last step "
         "reaching only some peers (not in \"all\")",
         H::Tobsim},
    };
    return kTable;
}

}  // namespace

const std::vector<ByzantineInfo>& byzantine_catalogue() { return table(); }

const ByzantineInfo& byzantine_info(Byzantine b) {
    for (const auto& info : table())
        if (info.behaviour == b) return info;
    return table().front();  // unreachable: every enumerator has an entry (tested)
}

std::string_view to_string(Byzantine b) { return byzantine_info(b).name; }

std::string_view to_string(ByzantineHarness h) {
    switch (h) {
        case H::Tobsim:
            return "tobsim";
        case H::Tobd:
            return "tobd";
        case H::Both:
            return "tobsim and tobd";
    }
    return "?";
}

std::optional<Byzantine> byzantine_from_name(std::string_view name) {
    for (const auto& info : table())
        if (info.name == name) return info.behaviour;
    return std::nullopt;
}

bool implements(ByzantineHarness harness, Byzantine b) {
    return (static_cast<unsigned>(byzantine_info(b).harness) & static_cast<unsigned>(harness)) != 0;
}

std::vector<Byzantine> byzantine_behaviours(ByzantineHarness harness) {
    std::vector<Byzantine> out;
    for (const auto& info : table())
        if (implements(harness, info.behaviour)) out.push_back(info.behaviour);
    return out;
}

std::string byzantine_names(ByzantineHarness harness) {
    std::string out;
    for (Byzantine b : byzantine_behaviours(harness)) {
        if (!out.empty()) out += ", ";
        out += to_string(b);
    }
    return out;
}

std::variant<Byzantine, std::string> parse_byzantine(std::string_view name,
                                                     ByzantineHarness harness) {
    const auto b = byzantine_from_name(name);
    if (!b) {
        return "unknown Byzantine behaviour '" + std::string(name) + "' (" +
               std::string(to_string(harness)) + " knows: " + byzantine_names(harness) + ")";
    }
    if (!implements(harness, *b)) {
        const auto& info = byzantine_info(*b);
        return "the Byzantine behaviour '" + std::string(name) + "' is implemented by " +
               std::string(to_string(info.harness)) + " only, not by " +
               std::string(to_string(harness)) + " (" + std::string(to_string(harness)) +
               " knows: " + byzantine_names(harness) + ")";
    }
    return *b;
}

std::string byzantine_help(ByzantineHarness harness, std::string_view indent) {
    std::size_t width = 0;
    for (Byzantine b : byzantine_behaviours(harness)) width = std::max(width, to_string(b).size());
    std::string out;
    for (Byzantine b : byzantine_behaviours(harness)) {
        const auto& info = byzantine_info(b);
        out += std::string(indent) + std::string(info.name);
        out += std::string(width + 2 - info.name.size(), ' ');
        out += std::string(info.summary) + "\n";
    }
    return out;
}

}  // namespace tob::consensus
