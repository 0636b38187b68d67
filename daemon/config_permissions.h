#pragma once
// The [permissions] table of the cluster file (daemon/config.h; docs/config.md).
// Internal to daemon/config*.cpp.

#include <toml++/toml.h>

#include <string>

#include "daemon/config.h"

namespace tob::daemon::config_permissions {

/// Parses root's [permissions] table into `out`. Every problem is appended to
/// `errors` as "<file>: permissions...: <problem>". The table is required: a
/// cluster file must say whether it is open.
void parse(const toml::table& root, const std::string& file, Errors& errors,
           consensus::kv::Permissions& out);

}  // namespace tob::daemon::config_permissions
