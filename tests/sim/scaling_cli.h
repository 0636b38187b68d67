#pragma once
// tobsim --scaling (docs/performance.md, "Scaling"): one benign run per cluster
// size — no Byzantine node, no loss, no crash, no partition — with real crypto
// for the small sizes and counted crypto (tests/sim/counting_crypto.h) for the
// large ones, and one table of what each node sends and computes per epoch:
// messages, bytes, signature operations, coin operations, and CPU (process CPU
// time / nodes / epochs, the harness's checkers included). Then the growth of
// each figure with n, as the exponent of a least-squares fit of log(figure)
// against log(n); per node, the protocol must stay within O(n^2).

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/sim/sim.h"

namespace tob::sim {

struct ScalingCli {
    bool enabled = false;
    std::string real = "4,7,10,16";     // sizes run with real crypto
    std::string counted = "31,64,100";  // sizes run with counted crypto
};

void add_scaling_options(CLI::App& app, ScalingCli& cli);

/// Runs the sizes with `base` (its --txs, --clients, --epochs, --safety-ms, and
/// the first seed of `seeds`). Returns tobsim's exit status: 1 if a run broke a
/// property or a per-node figure grew faster than n^2 (exponent > 2.1), 2 on bad
/// options.
int run_scaling_cli(const ScalingCli& cli, const SimOptions& base, const std::string& seeds,
                    bool json);

/// The exponent b of the least-squares fit y = a * x^b over log-log points (all
/// x, y > 0); 0 with fewer than two distinct x.
double fitted_exponent(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace tob::sim
