#pragma once
// Test-only Byzantine behaviours for `tobd --test-byzantine BEHAVIOUR` (refused
// unless the node config says testing = true). Their names, and which of them tobd
// implements, are in the catalogue shared with the simulator
// (consensus/byzantine_catalogue.h). The node runs the honest core and this shim
// rewrites what it sends, re-signing with the node's own key — exactly what a
// compromised member holding its key can do. The fault-injection suite
// (tests/cluster) starts up to t (and, for the checker self-test, more than t)
// nodes in these modes and checks that the honest nodes stay safe and live.
//
//   equivocate        each block goes in one version to half the peers and a
//                     different version (other requests) to the other half
//   conflicting-seen  every SEEN is followed by a SEEN for another digest of the
//                     same (epoch, proposer)
//   lying-aba         BVAL/AUX/TERM values flipped, CONF always {0,1}
//   bad-coin          coin shares corrupted (DLEQ proofs fail)
//   silent            receives everything, sends nothing
//   replay            re-broadcasts envelopes received in earlier epochs
//   collude           assumes the honest targets are nodes 0 and 1 and every other
//                     node colludes: each block goes in one version (lower digest)
//                     to node 0 and another to node 1, both to the other colluders;
//                     SEENs for colluders' blocks go to node 0 for the lower digest
//                     and to node 1 for the higher. With more than t colluders both
//                     versions reach q SEENs: honest nodes must raise an ALARM (or
//                     diverge), which the over-bound fault scenario expects
//   corrupt-snapshot  every snapshot chunk it serves has one value changed (the
//                     receiver must reject it against the signed root, blame this
//                     node and fetch the buckets from another peer)

#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <set>

#include "consensus/byzantine_catalogue.h"
#include "consensus/crypto_suite.h"
#include "consensus/replica.h"

namespace tob::daemon {

class ByzantineShim {
  public:
    /// `mode` is one the catalogue marks as implemented by tobd.
    ByzantineShim(consensus::Byzantine mode, const consensus::CryptoSuite& suite,
                  const consensus::ReplicaConfig& config, std::uint64_t seed);
    /// Every verified envelope this node received (replay material, requests to
    /// build a second block from).
    void observe(const consensus::Envelope& env, std::size_t raw_bytes);
    /// Rewrites the outgoing messages of a step.
    void rewrite(consensus::Step& step, std::uint64_t now_ms);

  private:
    consensus::Bytes reseal(const consensus::Envelope& env, consensus::Bytes body) const;
    void equivocate(const consensus::Envelope& env, std::vector<consensus::Outgoing>& out);
    void collude_block(const consensus::Envelope& env, std::vector<consensus::Outgoing>& out);
    void targeted_seens(consensus::Epoch e, consensus::NodeId proposer, const consensus::Digest& lo,
                        const consensus::Digest& hi, std::vector<consensus::Outgoing>& out);

    consensus::Byzantine mode_;
    const consensus::CryptoSuite& suite_;
    consensus::ReplicaConfig config_;
    std::mt19937_64 rng_;
    std::deque<consensus::Outgoing> replayable_;      // bounded
    std::vector<consensus::Request> spare_requests_;  // bounded
    std::uint64_t last_replay_ms_ = 0;
    std::set<std::pair<consensus::Epoch, consensus::Digest>> seen_signed_;  // collude
    std::vector<consensus::Outgoing> pending_;
    std::map<std::pair<consensus::Epoch, consensus::NodeId>, std::set<consensus::Digest>>
        versions_;  // collude: block versions of other colluders (bounded by the test's length)  //
                    // collude: SEENs to send with the next step
};

}  // namespace tob::daemon
