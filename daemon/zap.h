#pragma once
// The node's ZAP handler (ZeroMQ Authentication Protocol, RFC 27): decides, for
// every CurveZMQ handshake on the node's server sockets, whether the client key
// may connect (docs/security.md).
//
// libzmq asks the handler bound at inproc://zeromq.zap.01 in the socket's context
// during each handshake. A request is the frames
//   [version "1.0"] [request id] [domain] [address] [routing id] [mechanism]
//   [credentials...]            (CURVE: one frame, the client's 32-byte public key)
// and the reply
//   [version "1.0"] [request id] [status "200"|"400"] [status text] [user id] [metadata]
// The user id becomes the "User-Id" property of every message of the connection.
//
// Domains (ZMQ_ZAP_DOMAIN of each server socket):
//   tobd-member  the PUB and the member ROUTER: exactly the members' Curve keys;
//                user id "member-<id>"
//   tobd-client  the client ROUTER: any Curve key when the cluster's permissions
//                are open, else the keys derived from the [[permissions.client]]
//                keys; user id = the client's Curve public key in hex
// Anything else (another mechanism, another domain, a malformed request) is
// denied: the handler fails closed. Together with ZMQ_ZAP_ENFORCE_DOMAIN on the
// server sockets (a handshake fails when no handler answers) and the probe the
// transport makes before it binds anything, no member socket accepts a
// connection that this handler has not approved.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>
#include <zmq.hpp>

#include "consensus/types.h"
#include "crypto/curve.h"

namespace tob::daemon {

inline constexpr std::string_view kZapEndpoint = "inproc://zeromq.zap.01";
inline constexpr std::string_view kZapDomainMember = "tobd-member";
inline constexpr std::string_view kZapDomainClient = "tobd-client";

struct ZapPolicy {
    std::map<crypto::CurvePublicKey, consensus::NodeId> members;
    bool clients_open = false;
    std::set<crypto::CurvePublicKey> clients;  // when !clients_open
};

/// The decision on one request (a pure function of the policy; unit-tested).
struct ZapDecision {
    bool allow = false;
    std::string user_id;  // when allowed
    std::string reason;   // when denied: the status text
};
ZapDecision zap_decide(const ZapPolicy& policy, std::string_view domain, std::string_view mechanism,
                       const std::vector<std::string>& credentials);

/// Requests answered, by domain (member, client, other) and outcome.
struct ZapCounts {
    std::atomic<std::uint64_t> member_accepted{0}, member_denied{0};
    std::atomic<std::uint64_t> client_accepted{0}, client_denied{0};
    std::atomic<std::uint64_t> other_denied{0};  // unknown domain or malformed request
};

class ZapHandler {
  public:
    /// Binds kZapEndpoint in `ctx` (on the calling thread, so the handler exists
    /// when this returns) and answers requests on a thread of its own. Error: the
    /// endpoint cannot be bound (e.g. another handler holds it).
    static std::variant<std::unique_ptr<ZapHandler>, std::string> start(zmq::context_t& ctx,
                                                                        ZapPolicy policy);
    ~ZapHandler();  // stops the thread (within ~100 ms) and closes the socket
    ZapHandler(const ZapHandler&) = delete;
    ZapHandler& operator=(const ZapHandler&) = delete;

    const ZapCounts& counts() const { return counts_; }

    /// Sends one request (domain "tobd-probe", which is denied) to whatever answers
    /// at kZapEndpoint in `ctx` and waits for the answer: true when a handler
    /// replied in time with a well-formed denial. The transport binds nothing
    /// before this holds.
    static bool probe(zmq::context_t& ctx, std::chrono::milliseconds timeout);

  private:
    ZapHandler(zmq::socket_t socket, ZapPolicy policy);
    void run();
    void answer(std::vector<zmq::message_t>& request);

    zmq::socket_t socket_;
    ZapPolicy policy_;
    ZapCounts counts_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace tob::daemon
