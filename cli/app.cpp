// The tobctl command line: every command on one CLI11 app (cli/commands.h).

#include <string>

#include "cli/commands.h"
#include "daemon/version.h"

namespace tob::cli {

void build_app(CLI::App& app, CommonOptions& common, int& exit_code) {
    app.set_version_flag("--version", std::string("tobctl ") + daemon::version());
    app.require_subcommand(1);
    add_common_options(app, common);
    add_testnet(app, exit_code);
    add_keygen(app, exit_code);
    add_client_commands(app, common, exit_code);
    add_status(app, common, exit_code);
    add_bench(app, common, exit_code);
    add_workload(app, common, exit_code);
}

}  // namespace tob::cli
