#pragma once
// `tobd --config FILE --dump-log`: the node's committed log as JSON lines, for the
// fault suite's log checker (tests/cluster/logcheck.py; format in docs/checkers.md).
//
// The log is rebuilt from what the node stored, not from a separate audit file:
// for every epoch e from 1 up, the Proof record (the blocks of e in delivery order)
// and the COMMIT tuple (output digest, state digest) of e — the node's own COMMIT,
// or else the tuple at least t+1 stored COMMITs agree on. The requests are replayed
// through a fresh in-memory KvMachine, which yields each request's status and
// outputs; the replayed state digest must equal the stored tuple's, so a dump is
// also a check that the node's archive reproduces its state.
//
// Exit codes: 0 ok; 1 cannot open the storage; 2 the archive does not reach back
// to epoch 1 (pruned, or a snapshot) or has a gap; 3 a replayed digest differs.

#include <ostream>

#include "daemon/config.h"

namespace tob::daemon {

int dump_log(const NodeConfig& node, const ClusterConfig& cluster, std::ostream& out,
             std::ostream& err);

}  // namespace tob::daemon
