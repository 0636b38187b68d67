#pragma once
// `tobctl bench --verify-rate`: this machine's Ed25519 verification rate, the
// bound on client-signed requests per second (every node verifies every request
// once: about cores × rate / n requests per second for n nodes on one machine).

#include <cstdint>

namespace tob::cli {

/// Verifies one signature over the sign payload of a one-PUT request with a
/// `size`-byte value for `seconds` on this thread; prints verifications per second
/// of wall time and per second of the thread's CPU time (one JSON object with
/// `json`). Returns the process exit code.
int run_verify_rate(std::uint32_t size, double seconds, bool json);

}  // namespace tob::cli
