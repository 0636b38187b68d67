// tobsim --protocol naive|sync and --compare (see lecture_cli.h, docs/protocols.md).

#include "tests/sim/lecture_cli.h"

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "consensus/types.h"
#include "tests/sim/lecture_sim.h"

namespace tob::sim {

namespace {

bool parse_seed_range(const std::string& text, std::uint64_t& a, std::uint64_t& b) {
    try {
        const auto dash = text.find('-');
        a = std::stoull(text.substr(0, dash));
        b = dash == std::string::npos ? a : std::stoull(text.substr(dash + 1));
    } catch (...) {
        return false;
    }
    return a <= b;
}

std::string fixed(double v, int digits = 2) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(digits) << v;
    return os.str();
}

/// One row of a sweep: how many seeds kept each property, and the averages.
struct Row {
    std::string protocol, network;
    std::uint32_t byzantine = 0;
    std::uint64_t seeds = 0, agreement = 0, liveness = 0;
    double latency_sum = 0;  // over seeds (lecture) or derived (async)
    std::uint64_t messages = 0, requests = 0;
    bool latency_derived = false;
    std::uint64_t first_failing_seed = 0;
    std::string first_check, first_detail;

    double latency() const { return seeds ? latency_sum / static_cast<double>(seeds) : 0; }
    double per_request() const {
        return requests ? static_cast<double>(messages) / static_cast<double>(requests) : 0;
    }
    void note(std::uint64_t seed, const std::vector<Violation>& v) {
        if (v.empty() || !first_check.empty()) return;
        first_failing_seed = seed;
        first_check = v.front().check;
        first_detail = v.front().detail;
    }
};

void print_seed(const LectureReport& r, const std::string& replay) {
    std::cout << "seed " << r.seed << ": " << r.params << "\n";
    for (const auto& h : r.honest)
        std::cout << "  node " << h.node << ": " << describe_log(h.log) << "  ->  "
                  << describe_state(h.state) << "\n";
    std::cout << "  " << (r.violations.empty() ? "ok" : "FAIL") << ": agreement "
              << (r.agreement ? "held" : "LOST") << ", liveness " << (r.liveness ? "held" : "LOST")
              << "; applied everywhere " << r.committed << "/" << r.requests
              << ", messages=" << r.messages
              << ", latency rounds mean=" << fixed(r.latency_rounds_mean)
              << " max=" << fixed(r.latency_rounds_max);
    if (r.epochs)
        std::cout << "; epochs=" << r.epochs << " (⊥ everywhere: " << r.bottom_epochs
                  << ", split: " << r.split_epochs.size() << ") late_chains=" << r.late_chains
                  << " byz_faults=" << r.faults_on_byzantine;
    std::cout << "\n";
    if (!r.epoch_log.empty()) {
        std::cout << "  epochs at node " << r.honest.front().node << ":";
        const std::size_t epochs_shown = 8;
        for (std::size_t i = 0; i < r.epoch_log.size() && i < epochs_shown; ++i)
            std::cout << (i ? " | " : " ") << r.epoch_log[i];
        if (r.epoch_log.size() > epochs_shown)
            std::cout << " | ... (" << r.epoch_log.size() - epochs_shown << " more)";
        std::cout << "\n";
    }
    const std::size_t shown = 6;
    for (std::size_t i = 0; i < r.violations.size() && i < shown; ++i)
        std::cout << "  violation [" << r.violations[i].check << "] " << r.violations[i].detail
                  << "\n";
    if (r.violations.size() > shown)
        std::cout << "  ... " << r.violations.size() - shown << " more violations\n";
    for (std::size_t i = 0; i < r.split_epochs.size() && i < 3; ++i)
        std::cout << "  split: " << r.split_epochs[i]
                  << " (honest nodes ended this epoch differently)\n";
    if (!r.violations.empty())
        std::cout << "  replay: " << replay << " --seeds " << r.seed << "-" << r.seed << "\n";
}

Row run_lecture_row(const LectureOptions& o, std::uint64_t first, std::uint64_t last,
                    const std::string& replay, bool print) {
    Row row;
    row.protocol = to_string(o.protocol);
    row.network = to_string(o.network);
    row.byzantine = o.faulty;
    for (std::uint64_t seed = first;; ++seed) {
        const LectureReport r = run_lecture_seed(o, seed);
        ++row.seeds;
        row.agreement += r.agreement;
        row.liveness += r.liveness;
        row.latency_sum += r.latency_rounds_mean;
        row.messages += r.messages;
        row.requests += r.requests;
        row.note(seed, r.violations);
        if (print) print_seed(r, replay);
        if (seed == last) break;
    }
    return row;
}

/// The async rows: tobd's protocol in the main simulator. Latency is derived
/// from the measured ABA rounds: a block and its SEENs take 2 message delays,
/// each ABA round 4 (BVAL, AUX, CONF, coin share).
Row run_world_row(const SimOptions& base, const std::string& network, std::uint32_t byzantine,
                  std::uint64_t first, std::uint64_t last) {
    Row row;
    row.protocol = "async";
    row.network = network;
    row.byzantine = byzantine;
    row.latency_derived = true;
    SimOptions o = base;
    o.faulty = byzantine;
    o.crash = 0;
    if (network == "synchronous") {
        o.drop = o.dup = 0;
        o.partitions = false;
    }
    std::uint64_t aba_rounds = 0, aba_instances = 0;
    for (std::uint64_t seed = first;; ++seed) {
        SeedReport r;
        try {
            r = run_seed(o, seed);
        } catch (const std::exception& e) {
            r.seed = seed;
            r.violations.push_back({"exception", e.what()});
        }
        bool live = true, agree = true;
        for (const auto& v : r.violations) (v.check == "liveness" ? live : agree) = false;
        ++row.seeds;
        row.agreement += agree;
        row.liveness += live;
        row.messages += r.messages;
        row.requests += r.submitted_txs;
        aba_rounds += r.aba_rounds_total;
        aba_instances += r.aba_instances;
        row.note(seed, r.violations);
        if (seed == last) break;
    }
    const double mean_rounds =
        aba_instances ? static_cast<double>(aba_rounds) / static_cast<double>(aba_instances) : 0;
    row.latency_sum = (2 + 4 * mean_rounds) * static_cast<double>(row.seeds);
    return row;
}

std::string row_json(const Row& r) {
    std::ostringstream os;
    os << "{\"protocol\":\"" << r.protocol << "\",\"network\":\"" << r.network
       << "\",\"byzantine\":" << r.byzantine << ",\"seeds\":" << r.seeds
       << ",\"agreement_held\":" << r.agreement << ",\"liveness_held\":" << r.liveness
       << ",\"latency_rounds\":" << fixed(r.latency(), 3)
       << ",\"latency_derived\":" << (r.latency_derived ? "true" : "false")
       << ",\"messages_per_request\":" << fixed(r.per_request(), 2);
    if (!r.first_check.empty()) {
        std::string detail;
        for (char c : r.first_detail) detail += c == '"' || c == '\\' ? '\'' : c;
        os << ",\"first_failing_seed\":" << r.first_failing_seed << ",\"first_check\":\""
           << r.first_check << "\",\"first_detail\":\"" << detail << "\"";
    }
    os << "}";
    return os.str();
}

void print_table(const std::vector<Row>& rows, std::uint32_t n, std::uint64_t first,
                 std::uint64_t last, std::uint64_t lecture_requests, const SimOptions& world) {
    const std::uint32_t t = consensus::max_faulty(n);
    std::cout << "tobsim --compare: n=" << n << " t=" << t << ", seeds " << first << "-" << last
              << " per row\n\n";
    std::printf("%-8s %-13s %-10s %-10s %-10s %-17s %s\n", "protocol", "network", "byzantine",
                "agreement", "liveness", "latency (rounds)", "messages/request");
    for (const auto& r : rows) {
        const std::string agree = std::to_string(r.agreement) + "/" + std::to_string(r.seeds);
        const std::string live = std::to_string(r.liveness) + "/" + std::to_string(r.seeds);
        const std::string lat = (r.latency_derived ? "~" : "") + fixed(r.latency(), 1) +
                                (r.latency_derived ? " (derived)" : "");
        std::printf("%-8s %-13s %-10u %-10s %-10s %-17s %s\n", r.protocol.c_str(),
                    r.network.c_str(), r.byzantine, agree.c_str(), live.c_str(), lat.c_str(),
                    fixed(r.per_request(), 1).c_str());
    }
    std::cout
        << "\n"
        << "agreement: seeds in which all honest nodes applied the same sequence (and nothing\n"
        << "  unsubmitted or twice); liveness: seeds in which every client request reached every\n"
        << "  honest node. Byzantine rows: t Byzantine nodes.\n"
        << "naive, sync: the lecture simulator (tests/sim/lecture_sim.h), " << lecture_requests
        << " requests per seed, the lecture's\n"
        << "  \"/2\" and \"+1\" first; delta=10 ticks, MaxDrift=2, round R=12 ticks. Byzantine "
           "rows run on the\n"
        << "  synchronous network (sync: silent, equivocate, late-chain, forge-chain). latency: "
           "submission\n"
        << "  to applied at the last honest node, in rounds R (mean over requests, then seeds).\n"
        << "  messages/request: all deliveries, Byzantine ones included, / requests.\n"
        << "async: tobd's protocol in the main simulator (sim.h), " << world.txs
        << " transactions per seed, no crashes.\n"
        << "  synchronous: no drops, duplicates or partitions (delays still up to 1 s, a bound "
           "far\n"
        << "  above the typical delay); asynchronous and Byzantine: its default network (drops "
        << world.drop << ",\n"
        << "  duplicates " << world.dup
        << ", partitions, long delays); Byzantine: every behaviour of docs/simulator.md.\n"
        << "  latency (derived): 2 + 4 x the measured ABA rounds per instance = the message "
           "delays of one\n"
        << "  epoch (block, SEEN, then BVAL, AUX, CONF, coin share per round); a sync round "
           "lasts the\n"
        << "  bound R whatever the real delay, an async message delay only the real delay.\n"
        << "  messages/request: envelopes delivered / transactions, re-publication and "
           "client traffic included.\n";
}

int compare(const LectureCli& cli, const SimOptions& world, std::uint32_t extra,
            std::uint64_t first, std::uint64_t last, bool json) {
    const std::uint32_t t = consensus::max_faulty(world.nodes);
    std::vector<Row> rows;
    int status = 0;
    for (auto protocol : {LectureProtocol::Naive, LectureProtocol::Sync}) {
        for (int scenario = 0; scenario < 3; ++scenario) {
            LectureOptions o;
            o.protocol = protocol;
            o.nodes = world.nodes;
            o.extra_requests = extra;
            o.weak_ds = cli.weak_ds;
            o.network = scenario == 1 ? LectureNetwork::Asynchronous : LectureNetwork::Synchronous;
            o.faulty = scenario == 2 ? t : 0;
            rows.push_back(run_lecture_row(o, first, last, "", false));
            const Row& r = rows.back();
            // What each protocol promises: naive only liveness, sync everything
            // under synchrony.
            if (r.liveness != r.seeds) status = 1;
            if (protocol == LectureProtocol::Sync && scenario != 1 && r.agreement != r.seeds)
                status = 1;
        }
    }
    rows.push_back(run_world_row(world, "synchronous", 0, first, last));
    rows.push_back(run_world_row(world, "asynchronous", 0, first, last));
    rows.push_back(run_world_row(world, "asynchronous", t, first, last));
    for (std::size_t i = rows.size() - 3; i < rows.size(); ++i)
        if (rows[i].agreement != rows[i].seeds || rows[i].liveness != rows[i].seeds) status = 1;
    if (json) {
        std::cout << "{\"compare\":[";
        for (std::size_t i = 0; i < rows.size(); ++i)
            std::cout << (i ? "," : "") << row_json(rows[i]);
        std::cout << "],\"nodes\":" << world.nodes << ",\"seeds\":" << last - first + 1 << "}"
                  << std::endl;
    } else {
        print_table(rows, world.nodes, first, last, extra + 2, world);
    }
    return status;
}

}  // namespace

void add_lecture_options(CLI::App& app, LectureCli& cli) {
    app.add_option("--protocol", cli.protocol,
                   "naive (arrival order), sync (rotating leader + Dolev-Strong), async (tobd)")
        ->check(CLI::IsMember({"naive", "sync", "async"}));
    app.add_option("--network", cli.network,
                   "naive/sync only: sync (every message within the bound) or async")
        ->check(CLI::IsMember({"sync", "async"}));
    app.add_flag("--compare", cli.compare,
                 "one table: protocol x (synchronous, asynchronous, Byzantine) over --seeds");
    app.add_flag("--weak-dolev-strong", cli.weak_ds,
                 "TEST ONLY: Dolev-Strong accepts chains shorter than the round number");
}

int run_lecture_cli(const LectureCli& cli, const SimOptions& world, bool txs_given,
                    const std::string& behaviours, const std::string& seeds, bool json) {
    std::uint64_t first = 0, last = 0;
    if (!parse_seed_range(seeds, first, last)) {
        std::cerr << "bad --seeds: " << seeds << "\n";
        return 2;
    }
    // --txs counts every request of a seed, the lecture's pair included.
    const std::uint32_t extra = world.txs > 2 ? world.txs - 2 : 0;
    if (cli.compare) return compare(cli, world, extra, first, last, json);

    LectureOptions o;
    o.protocol = cli.protocol == "naive" ? LectureProtocol::Naive : LectureProtocol::Sync;
    o.network = cli.network == "async" ? LectureNetwork::Asynchronous : LectureNetwork::Synchronous;
    o.nodes = world.nodes;
    o.faulty = world.faulty;
    o.extra_requests = txs_given ? extra : 0;
    o.weak_ds = cli.weak_ds;
    if (behaviours != "all" && !behaviours.empty()) {
        std::stringstream ss(behaviours);
        std::string item;
        while (std::getline(ss, item, ',')) {
            const auto b = lecture_byz_from_string(item);
            if (!b) {
                std::cerr << "unknown behaviour for --protocol " << cli.protocol << ": " << item
                          << " (silent, equivocate, late-chain, forge-chain)\n";
                return 2;
            }
            o.behaviours.push_back(*b);
        }
    }
    std::ostringstream replay;
    replay << "tobsim --protocol " << cli.protocol << " --network " << cli.network << " --nodes "
           << o.nodes << " --faulty " << o.faulty << " --behaviour " << behaviours << " --txs "
           << o.extra_requests + 2 << (o.weak_ds ? " --weak-dolev-strong" : "");
    const Row row = run_lecture_row(o, first, last, replay.str(), !json);
    if (json) {
        std::cout << row_json(row) << std::endl;
    } else {
        std::cout << "protocol=" << row.protocol << " network=" << row.network
                  << " seeds=" << row.seeds << " agreement_held=" << row.agreement << "/"
                  << row.seeds << " liveness_held=" << row.liveness << "/" << row.seeds
                  << " latency_rounds_mean=" << fixed(row.latency())
                  << " messages_per_request=" << fixed(row.per_request()) << "\n";
    }
    return row.agreement == row.seeds && row.liveness == row.seeds ? 0 : 1;
}

}  // namespace tob::sim
