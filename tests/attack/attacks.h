#pragma once
// The attack entry points of `tobattack` (tests/attack/tobattack_main.cpp).

#include <string>

#include "tests/attack/attack_lib.h"

namespace tob::attack {

/// A Byzantine member: `config` is the member's node config (its keys are used).
int run_member(const std::string& attack, const std::string& config, const Common& opt);
/// A client with freshly generated valid keys.
int run_client(const std::string& attack, const std::string& cluster, const Common& opt);
/// A stranger: only the public cluster file.
int run_stranger(const std::string& attack, const std::string& cluster, const Common& opt);
/// Storage tools on a STOPPED node's data dir (signlog, corrupt-kv, kv-count).
int run_storage(const std::string& tool, const std::string& config, const Common& opt);

}  // namespace tob::attack
