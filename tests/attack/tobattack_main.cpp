// tobattack: the attack tools of the resource attack suite (tests/attack/attacks.py,
// docs/attacks.md). Test-only: never installed.
//
//   tobattack member   --config NODE.toml   --attack NAME [options]  (a member's real keys)
//   tobattack client   --cluster CLUSTER    --attack NAME [options]  (fresh client keys)
//   tobattack stranger --cluster CLUSTER    --attack NAME [options]  (no key)
//   tobattack storage  --config NODE.toml   --tool signlog|corrupt-kv|kv-count|proof-sizes
//
// Each prints "tobattack: ..." lines; the last one names the attack and its totals.

#include <CLI/CLI.hpp>
#include <iostream>

#include "crypto/hash.h"
#include "tests/attack/attacks.h"

namespace {

void add_common(CLI::App* cmd, tob::attack::Common& o) {
    cmd->add_option("--seconds", o.seconds, "Run for this long")->capture_default_str();
    cmd->add_option("--rate", o.rate, "Units per second (0: the attack's default)");
    cmd->add_option("--count", o.count, "Stop after this many units (0: no limit)");
    cmd->add_option("--size", o.size, "Attack-specific size (see the source)");
    cmd->add_option("--targets", o.targets, "Nodes attacked (default: all others)")->delimiter(',');
    cmd->add_option("--seed", o.seed, "Random seed (0: random)");
    cmd->add_option("--variant", o.variant, "Attack-specific variant");
    cmd->add_option("--horizon", o.horizon,
                    "client: requests expire this many epochs after the applied epoch "
                    "(0: request_expiry_max_epochs)");
    cmd->add_option("--window", o.window,
                    "client big-burst: at most this many requests unanswered per target "
                    "(0: no limit)");
}

}  // namespace

int main(int argc, char** argv) {
    tob::crypto::init();
    CLI::App app{"tobattack: hostile members, clients and strangers for the tobd attack suite"};
    app.require_subcommand(1);
    std::string attack, config, cluster, tool;
    tob::attack::Common opt;
    int rc = 0;

    auto* member = app.add_subcommand("member", "A Byzantine member with its real keys");
    member->add_option("--config", config, "The member's node config")->required();
    member
        ->add_option("--attack", attack,
                     "bad-chain-batch | coin-flood | bad-sig-blocks | fetch-reply-flood | "
                     "fetch-request-flood | join-rule | commit-max | deaf")
        ->required();
    member->add_flag("--no-pub", opt.no_pub, "Do not bind the member's PUB endpoint");
    member->add_flag("--sink-router", opt.sink_router,
                     "Bind the member's ROUTER endpoint and never read it");
    member->add_flag("--deaf-sub", opt.deaf_sub,
                     "Subscribe to every other member's PUB and never read what comes");
    member->add_option("--delay", opt.delay, "Bind the sockets, wait this long, then attack");
    add_common(member, opt);
    member->callback([&] { rc = tob::attack::run_member(attack, config, opt); });

    auto* client = app.add_subcommand("client", "A hostile client with valid keys");
    client->add_option("--cluster", cluster, "Cluster file")->required();
    client
        ->add_option("--attack", attack,
                     "big-outputs | pool-flood | dedup-growth | replay | big-burst | deaf-outputs")
        ->required();
    add_common(client, opt);
    client->callback([&] { rc = tob::attack::run_client(attack, cluster, opt); });

    auto* stranger = app.add_subcommand("stranger", "Someone on the network without a key");
    stranger->add_option("--cluster", cluster, "Cluster file")->required();
    stranger->add_option("--attack", attack, "forged | junk | sub-flood | squat")->required();
    stranger->add_option("--endpoint", opt.endpoint, "squat: the endpoint to bind");
    add_common(stranger, opt);
    stranger->callback([&] { rc = tob::attack::run_stranger(attack, cluster, opt); });

    auto* storage = app.add_subcommand("storage", "Tools on a stopped node's data dir");
    storage->add_option("--config", config, "The node's config")->required();
    storage->add_option("--tool", tool, "signlog | corrupt-kv | kv-count | proof-sizes")
        ->required();
    add_common(storage, opt);
    storage->callback([&] { rc = tob::attack::run_storage(tool, config, opt); });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::cerr << "tobattack: error: " << e.what() << "\n";
        return 1;
    }
    return rc;
}
