// tobsim — the deterministic simulator's command line. See tests/sim/sim.cpp.
//
//   tobsim --nodes 4 --faulty 1 --behaviour equivocate,replay --seeds 1-200 --json
//
//   tobsim --protocol naive --seeds 1-1   /   tobsim --compare   (lecture_cli.h)
//
//   tobsim --scaling   (scaling_cli.h: messages, bytes, crypto and CPU per node per epoch)
//
// Text mode prints each seed's derived parameters first, then its result; --json
// prints one object for the whole sweep. Exit status 1 if any seed failed.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <variant>

#include "consensus/byzantine_catalogue.h"
#include "consensus/types.h"
#include "crypto/hash.h"
#include "tests/sim/lecture_cli.h"
#include "tests/sim/scaling_cli.h"
#include "tests/sim/sim.h"

namespace {

std::string json_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out;
}

bool parse_range(const std::string& text, std::uint64_t& a, std::uint64_t& b) {
    try {
        auto dash = text.find('-');
        if (dash == std::string::npos) {
            a = b = std::stoull(text);
        } else {
            a = std::stoull(text.substr(0, dash));
            b = std::stoull(text.substr(dash + 1));
        }
    } catch (...) {
        return false;
    }
    return a <= b;
}

using namespace tob::sim;
using tob::consensus::ByzantineHarness;

// Everything the command line sets.
struct Cli {
    SimOptions opt;
    std::string behaviours = "all";
    std::string seeds = "1-10";
    std::string crypto = "fast";
    std::string unsafe_quorum;
    std::string plant = "none";
    bool no_partitions = false;
    bool json = false;
    bool stop_on_fail = false;
    std::uint64_t first = 0, last = 0;  // the seed range
    LectureCli lecture;  // --protocol naive|sync|async, --network, --compare: lecture_cli.h
    ScalingCli scaling;  // --scaling: scaling_cli.h
};

// The run's shape: cluster, adversary, network, phases.
void add_run_options(CLI::App& app, Cli& c) {
    SimOptions& opt = c.opt;
    app.add_option("--nodes", opt.nodes, "cluster size n")->check(CLI::Range(1, 128));
    app.add_option("--faulty", opt.faulty, "Byzantine nodes (normally at most t)");
    app.add_option("--behaviour,--behaviours", c.behaviours,
                   "comma-separated Byzantine behaviours, or 'all': " +
                       tob::consensus::byzantine_names(ByzantineHarness::Tobsim) +
                       " (consensus/byzantine_catalogue.h)");
    app.add_option("--seeds", c.seeds, "seed range A-B (inclusive) or one seed S");
    app.add_option("--epochs", opt.epochs,
                   "the safety phase ends once an honest node applied this many epochs");
    app.add_option("--txs", opt.txs, "transactions per seed (from honest clients)");
    app.add_option("--drop", opt.drop, "max message drop probability in the safety phase")
        ->check(CLI::Range(0.0, 0.9));
    app.add_option("--crash", opt.crash, "max crash intensity (per 100 ms of the safety phase)")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--dup", opt.dup, "max message duplication probability")
        ->check(CLI::Range(0.0, 0.9));
    app.add_option("--clients", opt.clients, "honest clients (0: 1-4 from the seed)");
    app.add_option("--crypto", c.crypto,
                   "fast (keyed-hash stand-in), real (Ed25519 + threshold coin) or counted (no "
                   "cryptography, operations only counted; honest runs only)")
        ->check(CLI::IsMember({"fast", "real", "counted"}));
    app.add_option("--fair-ms", opt.fair_ms_max,
                   "liveness bound (logical ms) after the fair phase starts");
    app.add_flag("--no-partitions", c.no_partitions, "no partition episodes");
    app.add_flag("--atomic-persist", opt.atomic_persist,
                 "a crash inside a step keeps all or none of its records (default: a prefix, "
                 "i.e. torn tails of an append-only log)");
    app.add_flag("--safety-only", opt.safety_only,
                 "check safety only (for runs beyond the fault bound, where progress may stall)");
    app.add_option("--batch-ms", opt.batch_ms,
                   "honest nodes handle what reached them over this many logical ms as one "
                   "batch, like tobd's event loop (0: one message at a time; -1: drawn per "
                   "seed, off half of the time, else 1-5 ms)")
        ->capture_default_str();
    app.add_option("--safety-ms", opt.safety_ms,
                   "length of the safety phase in logical ms (default: 800-3000 from the seed); "
                   "transactions are submitted over it");
    app.add_option("--proof-history", opt.proof_history_epochs,
                   "epochs of proofs each replica keeps in memory (default 256); older ones "
                   "come from the node's archive of durable records");
    app.add_option("--commit-heartbeat-ms", opt.commit_heartbeat_ms,
                   "how often each replica re-sends its latest COMMIT (default 2000; 0: never)");
    app.add_option("--archive-epochs", opt.archive_epochs,
                   "drop durable records and checker state this many epochs below the lowest "
                   "honest applied epoch (default: keep all; for long runs)");
}

// Test-only knobs and the output.
void add_test_and_output_options(CLI::App& app, Cli& c) {
    SimOptions& opt = c.opt;
    app.add_option("--unsafe-quorum", c.unsafe_quorum,
                   "TEST ONLY: certify with this many SEENs ('t+1' or a number)");
    app.add_option("--disable-check", opt.disabled_checks,
                   "TEST ONLY: ignore these checks (to show that the others still catch a fault)");
    app.add_option("--plant", c.plant,
                   "TEST ONLY: plant a harness bug the checkers must catch: amnesia, "
                   "skip-persist, skip-mark, trust-chunks, rot-state, sync-nothing, "
                   "trust-aba-sender")
        ->check(CLI::IsMember({"none", "amnesia", "skip-persist", "skip-mark", "trust-chunks",
                               "rot-state", "sync-nothing", "trust-aba-sender"}));
    app.add_option("--plant-extra-work", opt.plant_extra_work,
                   "TEST ONLY: N more passes of plain (non-libsodium) work over every applied "
                   "operation's value (a planted slowdown for bench/instructions.py)");
    app.add_option("--sizes-every", opt.sizes_every,
                   "every N epochs print each honest node's largest in-memory sizes");
    app.add_option("--checkpoint-interval", opt.checkpoint_interval,
                   "K: COMMIT carries the state root every K epochs (0: drawn per seed, 2..8)");
    app.add_option("--checkpoint-retention", opt.checkpoint_retention,
                   "R: records more than R epochs below a servable checkpoint are pruned "
                   "(0: drawn per seed, 1..3K)");
    app.add_option("--chunk-bytes", opt.snapshot_chunk_bytes,
                   "entry bytes per snapshot chunk request (0: drawn per seed, 64..4096)");
    app.add_flag("--no-checkpoints", opt.no_checkpoints, "no checkpoints, pruning or snapshots");
    app.add_option("--outage", opt.outage,
                   "probability that one honest node is down from early in the safety phase "
                   "until the fair phase (half of the time with its data directory lost)")
        ->check(CLI::Range(0.0, 1.0));
    app.add_flag("--json", c.json, "print one JSON object for the sweep");
    app.add_flag("--trace", opt.trace, "print events to stderr");
    app.add_flag("--trace-messages", opt.trace_messages,
                 "print every honest send/receive to stderr");
    app.add_flag("--stop-on-fail", c.stop_on_fail, "stop at the first failing seed");
    add_lecture_options(app, c.lecture);
    add_scaling_options(app, c.scaling);
}

// The options that need more than CLI11's parsing. False: an error was printed.
bool finish_options(Cli& c) {
    SimOptions& opt = c.opt;
    if (c.behaviours != "all" && !c.behaviours.empty()) {
        std::stringstream ss(c.behaviours);
        std::string item;
        while (std::getline(ss, item, ',')) {
            auto b = tob::consensus::parse_byzantine(item, ByzantineHarness::Tobsim);
            if (auto* error = std::get_if<std::string>(&b)) {
                std::cerr << "tobsim: --behaviour: " << *error << "\n";
                return false;
            }
            opt.behaviours.push_back(std::get<tob::consensus::Byzantine>(b));
        }
    }
    if (!parse_range(c.seeds, c.first, c.last)) {
        std::cerr << "bad --seeds: " << c.seeds << "\n";
        return false;
    }
    opt.crypto = c.crypto == "real"      ? CryptoMode::Real
                 : c.crypto == "counted" ? CryptoMode::Counted
                                         : CryptoMode::Fast;
    if (opt.crypto == CryptoMode::Counted && opt.faulty > 0) {
        std::cerr << "--crypto counted checks no signature: it needs --faulty 0\n";
        return false;
    }
    opt.partitions = !c.no_partitions;
    opt.plant = c.plant == "amnesia"            ? Plant::Amnesia
                : c.plant == "skip-persist"     ? Plant::SkipPersist
                : c.plant == "skip-mark"        ? Plant::SkipMark
                : c.plant == "trust-chunks"     ? Plant::TrustChunks
                : c.plant == "rot-state"        ? Plant::RotState
                : c.plant == "sync-nothing"     ? Plant::SyncNothing
                : c.plant == "trust-aba-sender" ? Plant::TrustAbaSender
                                                : Plant::None;
    const std::uint32_t t = tob::consensus::max_faulty(opt.nodes);
    if (!c.unsafe_quorum.empty()) {
        if (c.unsafe_quorum == "t+1")
            opt.unsafe_quorum = t + 1;
        else
            opt.unsafe_quorum = static_cast<std::uint32_t>(std::stoul(c.unsafe_quorum));
    }
    if (opt.faulty > t && !c.json)
        std::cerr << "warning: --faulty " << opt.faulty << " exceeds t = " << t << "\n";
    return true;
}

// The replay command of a seed: everything but --seeds and --json.
std::string replay_command(const Cli& c) {
    const SimOptions& opt = c.opt;
    std::ostringstream replay;
    replay << "tobsim --nodes " << opt.nodes << " --faulty " << opt.faulty << " --behaviour "
           << c.behaviours << " --epochs " << opt.epochs << " --txs " << opt.txs << " --drop "
           << opt.drop << " --crash " << opt.crash << " --dup " << opt.dup << " --clients "
           << opt.clients << " --crypto " << c.crypto << " --fair-ms " << opt.fair_ms_max;
    if (!c.unsafe_quorum.empty()) replay << " --unsafe-quorum " << c.unsafe_quorum;
    for (const auto& check : opt.disabled_checks) replay << " --disable-check " << check;
    if (c.plant != "none") replay << " --plant " << c.plant;
    if (opt.plant_extra_work) replay << " --plant-extra-work " << opt.plant_extra_work;
    if (c.no_partitions) replay << " --no-partitions";
    if (opt.safety_only) replay << " --safety-only";
    if (opt.atomic_persist) replay << " --atomic-persist";
    if (opt.safety_ms) replay << " --safety-ms " << opt.safety_ms;
    if (opt.batch_ms) replay << " --batch-ms " << opt.batch_ms;
    if (opt.proof_history_epochs) replay << " --proof-history " << opt.proof_history_epochs;
    if (opt.archive_epochs) replay << " --archive-epochs " << opt.archive_epochs;
    if (opt.commit_heartbeat_ms) replay << " --commit-heartbeat-ms " << *opt.commit_heartbeat_ms;
    if (opt.checkpoint_interval) replay << " --checkpoint-interval " << opt.checkpoint_interval;
    if (opt.checkpoint_retention) replay << " --checkpoint-retention " << opt.checkpoint_retention;
    if (opt.snapshot_chunk_bytes) replay << " --chunk-bytes " << opt.snapshot_chunk_bytes;
    if (opt.no_checkpoints) replay << " --no-checkpoints";
    if (opt.outage > 0) replay << " --outage " << opt.outage;
    return replay.str();
}

// The sweep's sums over its seeds.
struct Totals {
    std::uint64_t seeds_run = 0, failing = 0, total_violations = 0;
    std::uint64_t committed = 0, committed_ops = 0, submitted = 0, epochs = 0, messages = 0;
    std::uint64_t aba_rounds = 0, aba_instances = 0, crashes = 0, reformats = 0, byz_faults = 0;
    std::uint64_t archive_served = 0, snapshots = 0, chunks_rejected = 0, pruned = 0,
                  unsynced_lost = 0;
    std::optional<std::uint64_t> first_seed;  // the first failing seed
    std::string first_check, first_detail;
    tob::crypto::Hasher fingerprint;

    void add(const SeedReport& r) {
        ++seeds_run;
        committed += r.committed_txs;
        committed_ops += r.committed_ops;
        submitted += r.submitted_txs;
        epochs += r.epochs;
        messages += r.messages;
        aba_rounds += r.aba_rounds_total;
        aba_instances += r.aba_instances;
        crashes += r.crashes;
        reformats += r.reformats;
        byz_faults += r.faults_on_byzantine;
        archive_served += r.archive_proofs_served;
        snapshots += r.snapshots_installed;
        chunks_rejected += r.chunks_rejected;
        pruned += r.records_pruned;
        unsynced_lost += r.unsynced_records_lost;
        fingerprint.raw(r.fingerprint);
        if (r.violations.empty()) return;
        ++failing;
        total_violations += r.violations.size();
        if (!first_seed) {
            first_seed = r.seed;
            first_check = r.violations.front().check;
            first_detail = r.violations.front().detail;
        }
    }
    double aba_mean() const {
        return aba_instances ? static_cast<double>(aba_rounds) / static_cast<double>(aba_instances)
                             : 0.0;
    }
};

void print_seed(const SeedReport& r, const std::string& replay) {
    std::cout << "seed " << r.seed << ": " << r.params.describe() << "\n";
    std::cout << "  " << (r.violations.empty() ? "ok" : "FAIL") << ": epochs=" << r.epochs
              << " committed=" << r.committed_txs << "/" << r.submitted_txs
              << " messages=" << r.messages << " crashes=" << r.crashes
              << " reformats=" << r.reformats << " byz_faults=" << r.faults_on_byzantine
              << " archive=" << r.archive_proofs_served << " snapshots=" << r.snapshots_installed
              << " chunks_rejected=" << r.chunks_rejected << " pruned=" << r.records_pruned
              << " unsynced_lost=" << r.unsynced_records_lost << " logical_ms=" << r.logical_ms
              << " fair_ms=" << r.fair_ms << "\n";
    for (const auto& v : r.violations)
        std::cout << "  violation [" << v.check << "] " << v.detail << "\n";
    if (!r.violations.empty())
        std::cout << "  replay: " << replay << " --seeds " << r.seed << "-" << r.seed << "\n";
    std::cout.flush();
}

void print_json(const Cli& c, Totals& s, const std::string& replay, std::int64_t wall_ms) {
    std::ostringstream os;
    os << "{\"seeds\":" << s.seeds_run << ",\"seed_range\":\"" << c.first << "-" << c.last << "\""
       << ",\"nodes\":" << c.opt.nodes << ",\"faulty\":" << c.opt.faulty << ",\"behaviours\":\""
       << json_escape(c.behaviours) << "\",\"crypto\":\"" << c.crypto << "\""
       << ",\"unsafe_quorum\":" << c.opt.unsafe_quorum << ",\"violations\":{\"count\":" << s.failing
       << ",\"total\":" << s.total_violations;
    if (s.first_seed) {
        os << ",\"first_seed\":" << *s.first_seed << ",\"first_check\":\""
           << json_escape(s.first_check) << "\",\"first_detail\":\"" << json_escape(s.first_detail)
           << "\",\"replay\":\"" << json_escape(replay) << " --seeds " << *s.first_seed << "-"
           << *s.first_seed << "\"";
    } else {
        os << ",\"first_seed\":null,\"first_check\":null";
    }
    os << "},\"committed_txs\":" << s.committed << ",\"committed_ops\":" << s.committed_ops
       << ",\"submitted_txs\":" << s.submitted << ",\"epochs\":" << s.epochs
       << ",\"aba_rounds_mean\":" << s.aba_mean() << ",\"messages\":" << s.messages
       << ",\"crashes\":" << s.crashes << ",\"reformats\":" << s.reformats
       << ",\"faults_on_byzantine\":" << s.byz_faults
       << ",\"archive_proofs_served\":" << s.archive_served
       << ",\"snapshots_installed\":" << s.snapshots << ",\"chunks_rejected\":" << s.chunks_rejected
       << ",\"records_pruned\":" << s.pruned << ",\"unsynced_records_lost\":" << s.unsynced_lost
       << ",\"fingerprint\":\"" << tob::crypto::to_hex(s.fingerprint.finish()) << "\""
       << ",\"wall_ms\":" << wall_ms << "}";
    std::cout << os.str() << std::endl;
}

// Runs every seed of the range; the exit status (1 if any seed failed).
int run_sweep(const Cli& c) {
    const std::string replay = replay_command(c);
    const auto start = std::chrono::steady_clock::now();
    Totals totals;
    for (std::uint64_t seed = c.first; seed <= c.last; ++seed) {
        SeedReport r;
        try {
            r = run_seed(c.opt, seed);
        } catch (const std::exception& e) {
            r.seed = seed;
            r.violations.push_back({"exception", e.what()});
        }
        totals.add(r);
        if (!c.json) print_seed(r, replay);
        if (c.stop_on_fail && !r.violations.empty()) break;
        if (seed == c.last) break;  // seed range may end at UINT64_MAX
    }
    const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
    if (c.json) {
        print_json(c, totals, replay, wall_ms);
    } else {
        std::cout << "seeds=" << totals.seeds_run << " failing=" << totals.failing
                  << " committed=" << totals.committed << "/" << totals.submitted
                  << " epochs=" << totals.epochs << " aba_rounds_mean=" << totals.aba_mean()
                  << " messages=" << totals.messages << " wall_ms=" << wall_ms << "\n";
    }
    return totals.failing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tobsim: deterministic simulation of tobd's total-order broadcast"};
    Cli c;
    add_run_options(app, c);
    add_test_and_output_options(app, c);
    CLI11_PARSE(app, argc, argv);
    if (c.scaling.enabled) return run_scaling_cli(c.scaling, c.opt, c.seeds, c.json);
    if (c.lecture.selected())
        return run_lecture_cli(c.lecture, c.opt, app.count("--txs") > 0, c.behaviours, c.seeds,
                               c.json);
    if (!finish_options(c)) return 2;
    return run_sweep(c);
}
