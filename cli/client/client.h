#pragma once
// The tobd client library (docs/client.md; CMake target tob_client): client keys,
// nonces, and a Client that talks to every node of a cluster over ZeroMQ DEALER
// sockets, CurveZMQ-encrypted, using the client plane of cli/client/protocol.h. Used by the tobctl
// commands, by test harnesses and by applications. It links the codec
// (tob_consensus), tob_crypto, the cluster-file loader (tob_config) and ZeroMQ;
// no RocksDB, HTTP server or systemd.
//
// A Client is single-threaded (ZeroMQ sockets are not thread safe): use one per
// thread. Several Clients may share one zmq::context_t.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "cli/client/protocol.h"
#include "consensus/messages.h"
#include "crypto/sign.h"
#include "daemon/config.h"

namespace tob::client {

using consensus::Bytes;
using consensus::Digest;
using consensus::NodeId;
using consensus::Nonce;
using Millis = std::chrono::milliseconds;
using consensus::Epoch;

/// How many epochs past the newest epoch it knows a client lets its requests
/// live by default (Request::expires; docs/client.md, "Expiry"). Well below the
/// cluster's request_expiry_max_epochs (default 100,000), which caps it.
inline constexpr Epoch kDefaultExpiryHorizon = 10'000;

/// A value or a message saying why there is none. Exactly one side is set.
template <class T>
struct Result {
    std::optional<T> value;
    std::string error;
    /// When the failure is a node's Error answer, that answer (the last one seen).
    std::optional<ErrorMsg> node_error;

    bool ok() const { return value.has_value(); }
    static Result success(T v) { return Result{std::move(v), {}, std::nullopt}; }
    static Result failure(std::string why, std::optional<ErrorMsg> node_error = std::nullopt) {
        return Result{std::nullopt, std::move(why), std::move(node_error)};
    }
};

// ---- client key and nonces -------------------------------------------------------

/// $TOBCTL_KEY_FILE, else $XDG_CONFIG_HOME/tobctl/client.key, else
/// $HOME/.config/tobctl/client.key; nullopt when none of them is set.
std::optional<std::filesystem::path> default_client_key_path();

/// Loads the Ed25519 client key at `path`; when the file does not exist, creates
/// the missing parent directories (mode 0700) and writes a fresh key (mode 0600).
/// Refuses a key file that group or others can access (crypto/keyfile.h).
Result<crypto::SigningKey> load_or_create_client_key(const std::filesystem::path& path);

/// Loads the Ed25519 client key at `path` when the file exists (nullopt when it
/// does not; nothing is created); an error for a file that exists but cannot be used.
Result<std::optional<crypto::SigningKey>> load_client_key_if_present(
    const std::filesystem::path& path);

/// True when $TOBCTL_TEST_NO_CURVE=1: connect in plaintext, to a test cluster whose
/// nodes run with `tobd --test-no-curve` (docs/security.md). A plaintext client
/// cannot complete a handshake with a node that uses Curve, so the switch can
/// break a connection but never weaken one.
bool test_plaintext_requested();

/// The nonce counter file of a key: "<key>.nonce".
std::filesystem::path nonce_file_for(const std::filesystem::path& key_path);

/// Reserves `count` >= 1 consecutive nonces and returns the first. The counter
/// file holds the last nonce handed out (decimal); it is read, increased and
/// written back under flock(2), so concurrent processes using one key get
/// distinct, consecutive nonces. A missing or unreadable counter starts at
/// (unix time in ms) * 1000: above every nonce the key has used unless it
/// averaged more than 1000 requests per ms since its counter was created.
///
/// Why consecutive: a node keeps, per client, the highest committed nonce h and
/// a bitmap of the 1024 nonces below it (docs/protocol.md, "Replicated database");
/// a nonce <= h - 1024 is
/// skipped as a duplicate. Nonces handed out in a tight sequence stay inside that
/// window even when the requests commit out of order.
Result<Nonce> reserve_nonces(const std::filesystem::path& counter_file, std::uint64_t count = 1);

// ---- the client --------------------------------------------------------------------

struct SubmitOptions {
    std::optional<NodeId> node;    // first node to try (default: a random one)
    bool quorum = false;           // wait for t+1 matching replies from distinct nodes
    Millis attempt_timeout{3000};  // silence after which the request goes to the next node
    Millis deadline{60000};        // overall
};

/// Something a node sent, decoded. Replies have been checked (Client::verify): each
/// names the node whose connection it arrived on, and that connection is Curve-
/// authenticated (or, with the test-only plaintext switch, the reply's signature
/// verifies under that member's key).
struct Incoming {
    NodeId from = 0;  // the node whose socket it arrived on
    ClientMessage message;
};

/// Counters of what the client received and discarded.
struct ClientStats {
    std::uint64_t received = 0;
    std::uint64_t dropped_frames = 0;  // wrong frame count or channel
    std::uint64_t undecodable = 0;
    std::uint64_t bad_replies = 0;  // replies that did not verify (Client::verify)
};

class Client {
  public:
    /// One DEALER socket per member, connected to its client_endpoint as a CurveZMQ
    /// client: the server key is the member's curve_key from the cluster file, the
    /// client's Curve key pair is derived from `key` (crypto/curve.h), so a node
    /// whose permissions are closed admits exactly the clients it lists. `context`
    /// may be shared between clients (it must outlive them); nullptr = own context.
    Client(const daemon::ClusterConfig& cluster, const crypto::SigningKey& key,
           zmq::context_t* context = nullptr);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    const daemon::ClusterConfig& cluster() const { return cluster_; }
    std::uint32_t n() const { return cluster_.n; }
    const crypto::PublicKey& public_key() const { return key_.public_key(); }
    const ClientStats& stats() const { return stats_; }

    /// A request {chain_id, client, nonce, expires, ops} signed (consensus::kRequestTag
    /// over consensus::request_sign_payload), with expires = next_expiry().
    consensus::Request build_request(std::vector<consensus::Op> ops, Nonce nonce);
    /// The same with an expiry of the caller's choice.
    consensus::Request build_request(std::vector<consensus::Op> ops, Nonce nonce,
                                     Epoch expires) const;

    // ---- expiry --------------------------------------------------------------------
    /// The horizon: how many epochs past the newest known epoch a request may
    /// commit (default kDefaultExpiryHorizon, at least 1, capped at the cluster's
    /// request_expiry_max_epochs).
    void set_expiry_horizon(Epoch epochs);
    Epoch expiry_horizon() const { return horizon_; }
    /// The newest epoch this client knows (nullopt before it learnt one).
    std::optional<Epoch> known_epoch() const { return known_epoch_; }
    /// Asks every node for its Status (waiting up to `timeout`) and learns the
    /// (t+1)-th highest applied epoch of the answers: never above what some
    /// honest node applied, so a node reporting a bogus high epoch moves nothing
    /// (a bogus low one can only make a request expire early, which the client sees).
    Result<Epoch> refresh_epoch(Millis timeout = Millis(2000));
    /// Learns `epoch` if it is newer (and at most one horizon past the known one).
    void note_epoch(Epoch epoch);
    /// known_epoch() + horizon (saturating); asks the nodes first if no epoch is known
    /// (an epoch 0 when none answers).
    Epoch next_expiry();

    /// The outcome of submit(): a verified reply for the request (any ReplyStatus;
    /// the caller decides what Malformed means to it) and the nodes whose
    /// verified replies matched it (one node without quorum, >= t+1 with).
    struct Submitted {
        ReplyMsg reply;
        std::vector<NodeId> nodes;
    };

    /// Submits and waits for the outcome (docs/client.md, "Retries and quorum"),
    /// or returns an error at the deadline.
    Result<Submitted> submit(const consensus::Request& request, const SubmitOptions& options = {});

    /// Asks each node in `nodes` for its status at once; waits up to `timeout`.
    /// One result per entry of `nodes`, in that order.
    std::vector<Result<StatusMsg>> status_all(const std::vector<NodeId>& nodes, Millis timeout);
    Result<StatusMsg> status(NodeId node, Millis timeout);

    /// Reads `key` from one node's committed state (a LocalGet signed with the client
    /// key; the node answers only a client that may read the key).
    Result<LocalValueMsg> local_get(NodeId node, const Bytes& key, Millis timeout);

    // ---- pipelined use ----------------------------------------------------------

    /// The frame body of a Submit carrying `request` and digest_of(encoded request).
    struct Prepared {
        Bytes body;  // encoded ClientMessage (SubmitMsg)
        Digest request_digest{};
    };
    static Prepared prepare(const consensus::Request& request);

    /// Queues [C][body] on node's socket without blocking; false when the socket
    /// cannot take it now (high-water mark) or node is out of range.
    bool send(NodeId node, const Bytes& body);

    /// Waits up to `timeout` for something to arrive, then appends everything
    /// available (at most `max` messages) to `out`, decoded. Replies that do not
    /// verify and undecodable bodies are dropped and counted in stats().
    /// Returns the number appended.
    std::size_t poll(Millis timeout, std::vector<Incoming>& out, std::size_t max = 4096);

    /// True iff a reply that arrived on the connection to member `from` is that
    /// member's: it names `from`, and either the connection is Curve-authenticated
    /// (the server key pinned to the member's curve_key, so nobody else can write
    /// on it) or, on a plaintext test connection, reply.sig is the member's
    /// signature (docs/client.md, "Reply authentication").
    bool verify(const ReplyMsg& reply, NodeId from) const;

  private:
    Result<Submitted> submit_one(const consensus::Request& request, const SubmitOptions& options);
    Result<Submitted> submit_quorum(const consensus::Request& request,
                                    const SubmitOptions& options);
    /// True when a reply from poll() answers this request (digest, client, nonce).
    bool answers(const ReplyMsg& reply, const consensus::Request& request,
                 const Digest& digest) const;

    daemon::ClusterConfig cluster_;
    crypto::SigningKey key_;
    std::unique_ptr<zmq::context_t> own_context_;
    zmq::context_t* context_;
    std::vector<zmq::socket_t> sockets_;
    bool curve_ = true;  // false: plaintext test connections (test_plaintext_requested)
    ClientStats stats_;
    Epoch horizon_ = kDefaultExpiryHorizon;
    std::optional<Epoch> known_epoch_;
};

}  // namespace tob::client
