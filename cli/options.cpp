// tobctl's shared options (cli/options.h).

#include "cli/options.h"

#include <cstdlib>
#include <iostream>
#include <utility>

#include "cli/commands.h"

namespace tob::cli {

void add_common_options(CLI::App& app, CommonOptions& before) {
    app.add_option("--cluster", before.cluster,
                   "Cluster file (cluster.toml) for the commands that talk to a cluster; "
                   "may also follow the command name. Default: $TOBCTL_CLUSTER")
        ->type_name("FILE");
    app.add_option("--key-file", before.key_file,
                   "Client key file for put/get/del/cas; may also follow the command name")
        ->type_name("FILE");
    app.add_flag("--json", before.json, "Print results as JSON; may also follow the command name");
    app.footer(
        "Options before the command name apply to it as if given after it.\n"
        "Environment:\n"
        "  TOBCTL_CLUSTER   default cluster file (when no --cluster is given)\n"
        "  TOBCTL_KEY_FILE  default client key file (else $XDG_CONFIG_HOME/tobctl/client.key\n"
        "                   or ~/.config/tobctl/client.key)\n"
        "Run `tobctl COMMAND --help` for a command's own options.");
}

CLI::Option* add_cluster_option(CLI::App* cmd, std::string& after) {
    return cmd
        ->add_option("--cluster", after, "Cluster file (cluster.toml). Default: $TOBCTL_CLUSTER")
        ->type_name("FILE");
}

CLI::Option* add_key_file_option(CLI::App* cmd, std::string& after) {
    return cmd
        ->add_option("--key-file", after,
                     "Client key file (mode 0600; created on first use). Default: "
                     "$TOBCTL_KEY_FILE, $XDG_CONFIG_HOME/tobctl/client.key or "
                     "~/.config/tobctl/client.key")
        ->type_name("FILE");
}

CLI::Option* add_json_flag(CLI::App* cmd, bool& after, const std::string& what) {
    return cmd->add_flag("--json", after, what);
}

Chosen choose(std::string_view option, const std::string& after, const std::string& before) {
    if (!after.empty() && !before.empty() && after != before) {
        return {{},
                std::string(option) + " is given before the command name (" + before +
                    ") and after it (" + after + "): give it once"};
    }
    return {after.empty() ? before : after, {}};
}

Chosen choose_cluster_file(const std::string& after, const std::string& before,
                           const char* env_value) {
    Chosen chosen = choose("--cluster", after, before);
    if (!chosen.ok() || !chosen.value.empty()) return chosen;
    if (env_value != nullptr && *env_value != '\0') return {env_value, {}};
    return {{},
            std::string("no cluster file: pass --cluster FILE (before or after the command "
                        "name) or set ") +
                kClusterEnv};
}

std::optional<daemon::ClusterConfig> load_cluster_for(std::string_view command,
                                                      const std::string& after,
                                                      const CommonOptions& common) {
    const Chosen path = choose_cluster_file(after, common.cluster, std::getenv(kClusterEnv));
    if (!path.ok()) {
        std::cerr << "tobctl " << command << ": " << path.error << "\n";
        return std::nullopt;
    }
    auto loaded = daemon::load_cluster_config(path.value);
    if (loaded.ok()) return std::move(*loaded.value);
    for (const std::string& e : loaded.errors) {
        std::cerr << "tobctl " << command << ": " << e << "\n";
    }
    if (loaded.errors.empty()) {
        std::cerr << "tobctl " << command << ": " << path.value
                  << ": cannot load the cluster file\n";
    }
    return std::nullopt;
}

}  // namespace tob::cli
