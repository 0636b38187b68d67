#pragma once
// The catalogue of test-only Byzantine behaviours: one list of names, one-line
// descriptions and the harnesses that implement each, shared by the simulator
// (`tobsim --behaviour`, tests/sim/byzantine.cpp) and the daemon
// (`tobd --test-byzantine`, daemon/byzantine.cpp). The implementations stay in
// their harnesses; this file only names them, so the two command lines, their
// help texts and docs/simulator.md / docs/faults.md speak of the same things.
//
// A harness refuses a name it does not implement with a sentence saying which
// harness does (parse_byzantine). The enum's order is the simulator's draw order
// (each faulty node draws from the list of behaviours tobsim implements, in this
// order): append new behaviours at the end to keep old seeds replaying.
//
// Nothing here touches the protocol: the core never looks at these values.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tob::consensus {

enum class Byzantine : std::uint8_t {
    Silent,
    Equivocate,
    ConflictingSeen,
    LyingAba,
    BadCoin,
    Forge,
    Replay,
    Junk,
    ForgeRequest,
    WindowEdge,
    Withhold,
    LyingCommit,
    Collude,
    CorruptSnapshot,
    CrashStop,
};

/// Which programs implement a behaviour (a bit set).
enum class ByzantineHarness : std::uint8_t {
    Tobsim = 1,  // the simulator (tests/sim/byzantine.cpp)
    Tobd = 2,    // the daemon's shim (daemon/byzantine.cpp)
    Both = 3,
};

struct ByzantineInfo {
    Byzantine behaviour;
    std::string_view name;     // as typed on the command line
    std::string_view summary;  // one line
    ByzantineHarness harness;
};

/// Every behaviour, in enum order.
const std::vector<ByzantineInfo>& byzantine_catalogue();
const ByzantineInfo& byzantine_info(Byzantine b);
std::string_view to_string(Byzantine b);
std::string_view to_string(ByzantineHarness h);  // "tobsim", "tobd", "tobsim and tobd"
/// The behaviour of that name, whichever harness implements it.
std::optional<Byzantine> byzantine_from_name(std::string_view name);
bool implements(ByzantineHarness harness, Byzantine b);
/// The behaviours `harness` implements, in catalogue order.
std::vector<Byzantine> byzantine_behaviours(ByzantineHarness harness);

/// The behaviour named `name` if `harness` implements it; otherwise a sentence
/// for the user: an unknown name (with the names this harness knows), or a
/// behaviour only the other harness implements.
std::variant<Byzantine, std::string> parse_byzantine(std::string_view name,
                                                     ByzantineHarness harness);
/// "silent, equivocate, ..." for the behaviours `harness` implements.
std::string byzantine_names(ByzantineHarness harness);
/// One line per behaviour `harness` implements: indent, the name padded to a
/// column, its summary; for help texts.
std::string byzantine_help(ByzantineHarness harness, std::string_view indent);

}  // namespace tob::consensus
