#pragma once
// tobsim's options for the lecture's protocols (docs/protocols.md):
//
//   tobsim --protocol naive --seeds 1-1          the lecture's divergence
//   tobsim --protocol sync [--network async]     the synchronous rotating-leader TOB
//   tobsim --compare                             one table: naive, sync, async
//
// --protocol async (the default) is tobd's protocol, run by the main simulator
// (sim.h) exactly as without these options.

#include <CLI/CLI.hpp>
#include <string>

#include "tests/sim/sim.h"

namespace tob::sim {

struct LectureCli {
    std::string protocol = "async";
    std::string network = "sync";
    bool compare = false;
    bool weak_ds = false;
    /// True when tobsim should run the lecture code instead of the main simulator.
    bool selected() const { return compare || protocol != "async"; }
};

void add_lecture_options(CLI::App& app, LectureCli& cli);

/// Runs `--protocol naive|sync` or `--compare`. `world` carries --nodes,
/// --faulty, --txs (used only if `txs_given`) and the main simulator's options
/// for the async rows of --compare. Returns tobsim's exit status: 1 if any run
/// broke a property (for --compare: if a cell differs from what the protocol
/// promises in its setting), 2 on bad options.
int run_lecture_cli(const LectureCli& cli, const SimOptions& world, bool txs_given,
                    const std::string& behaviours, const std::string& seeds, bool json);

}  // namespace tob::sim
