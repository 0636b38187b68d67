// The tobd client library (cli/client/client.h, docs/client.md).

#include "cli/client/client.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <system_error>
#include <utility>

#include "consensus/codec.h"
#include "crypto/durable_file.h"
#include "crypto/hash.h"
#include "crypto/keyfile.h"

namespace tob::client {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string errno_text() { return std::strerror(errno); }

/// Creates the missing directories of `dir` with mode 0700 (existing ones are
/// left as they are).
std::optional<std::string> make_private_dirs(const fs::path& dir) {
    if (dir.empty()) return std::nullopt;
    fs::path prefix;
    for (const fs::path& part : dir) {
        prefix /= part;
        if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
            return prefix.string() + ": cannot create directory: " + errno_text();
        }
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return dir.string() + ": not a directory";
    }
    return std::nullopt;
}

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

/// Parses the counter file: decimal digits followed by exactly one '\n'.
std::optional<Nonce> parse_counter(std::string_view text) {
    if (text.size() < 2 || text.size() > 21 || text.back() != '\n') return std::nullopt;
    text.remove_suffix(1);
    Nonce v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const Nonce digit = static_cast<Nonce>(c - '0');
        if (v > (std::numeric_limits<Nonce>::max() - digit) / 10) return std::nullopt;
        v = v * 10 + digit;
    }
    return v;
}

Nonce time_based_nonce() {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    return static_cast<Nonce>(ms) * 1000;
}

std::string millis_text(Millis d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}

/// Error codes that every honest node would give for this request: once t+1
/// distinct nodes give one, retrying elsewhere cannot help.
// Expired too: once t+1 nodes say so, an honest node has applied past the expiry
// (or sees it too far ahead), and the same signed bytes cannot commit now.
bool fatal(ErrorCode code) {
    return code == ErrorCode::BadRequest || code == ErrorCode::ReplyTooLarge ||
           code == ErrorCode::Expired;
}

std::string describe(NodeId node, const ErrorMsg& e) {
    return "node " + std::to_string(node) + ": " + std::string(to_string(e.code)) +
           (e.text.empty() ? "" : ": " + e.text);
}

/// The Error answers to one submission: the last one (for the final message)
/// and, per fatal code, the nodes that gave it.
class Refusals {
  public:
    Refusals(const Digest& request_digest, std::size_t decisive_count)
        : digest_(request_digest), decisive_count_(decisive_count) {}

    /// Records `error` from node `from`; false when it is about another request
    /// or only informational (NotVoting), which the caller ignores.
    bool note(NodeId from, const ErrorMsg& error) {
        if (error.request_digest && *error.request_digest != digest_) return false;
        if (error.code == ErrorCode::NotVoting) return false;
        last_ = error;
        last_text_ = describe(from, error);
        if (fatal(error.code)) {
            auto& by = fatal_by_[error.code];
            by.insert(from);
            decisive_size_ = std::max(decisive_size_, by.size());
        }
        return true;
    }
    /// Enough distinct nodes gave the same fatal error: retrying cannot help.
    bool decisive() const { return decisive_size_ >= decisive_count_; }
    std::string decisive_text() const {
        return "request refused by " + std::to_string(decisive_size_) +
               " nodes; last: " + last_text_;
    }
    /// "; last error: ..." when there was one, else "".
    std::string last_error_text() const { return last_ ? "; last error: " + last_text_ : ""; }
    const std::optional<ErrorMsg>& last() const { return last_; }

  private:
    Digest digest_;
    std::size_t decisive_count_;
    std::optional<ErrorMsg> last_;
    std::string last_text_;
    std::map<ErrorCode, std::set<NodeId>> fatal_by_;  // nodes that refused for good
    std::size_t decisive_size_ = 0;
};

}  // namespace

// ---- client key and nonces -------------------------------------------------------

std::optional<fs::path> default_client_key_path() {
    if (std::string v = env("TOBCTL_KEY_FILE"); !v.empty()) return fs::path(v);
    if (std::string v = env("XDG_CONFIG_HOME"); !v.empty()) {
        return fs::path(v) / "tobctl" / "client.key";
    }
    if (std::string v = env("HOME"); !v.empty()) {
        return fs::path(v) / ".config" / "tobctl" / "client.key";
    }
    return std::nullopt;
}

Result<crypto::SigningKey> load_or_create_client_key(const fs::path& path) {
    using R = Result<crypto::SigningKey>;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) return R::failure(path.string() + ": " + errno_text());
        if (auto error = make_private_dirs(path.parent_path())) return R::failure(*error);
        const crypto::SigningKey key = crypto::SigningKey::generate();
        auto error = crypto::write_signing_key(path, key, /*overwrite=*/false);
        if (!error) return R::success(key);
        // Another process may have created it in the meantime: use that key.
        if (::stat(path.c_str(), &st) != 0) return R::failure(error->message);
    }
    auto loaded = crypto::load_signing_key(path);
    if (auto* e = std::get_if<crypto::KeyFileError>(&loaded)) return R::failure(e->message);
    return R::success(std::get<crypto::SigningKey>(loaded));
}

fs::path nonce_file_for(const fs::path& key_path) {
    fs::path p = key_path;
    p += ".nonce";
    return p;
}

Result<Nonce> reserve_nonces(const fs::path& counter_file, std::uint64_t count) {
    using R = Result<Nonce>;
    if (count == 0) return R::failure("reserve_nonces: count must be at least 1");
    const std::string name = counter_file.string();
    const int fd = ::open(counter_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return R::failure(name + ": cannot open: " + errno_text());
    auto close_with = [fd](R result) {
        ::close(fd);  // also releases the lock
        return result;
    };
    while (::flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) return close_with(R::failure(name + ": flock: " + errno_text()));
    }
    char buf[64];
    std::size_t have = 0;
    while (have < sizeof buf) {
        const ssize_t got = ::pread(fd, buf + have, sizeof buf - have, static_cast<off_t>(have));
        if (got < 0) {
            if (errno == EINTR) continue;
            return close_with(R::failure(name + ": read: " + errno_text()));
        }
        if (got == 0) break;
        have += static_cast<std::size_t>(got);
    }
    // A missing, empty or torn counter (a crash between truncate and write)
    // restarts from the clock; see reserve_nonces in client.h.
    const std::optional<Nonce> last = parse_counter(std::string_view(buf, have));
    const Nonce first = last ? *last + 1 : time_based_nonce();
    if (first == 0 || first > std::numeric_limits<Nonce>::max() - (count - 1)) {
        return close_with(R::failure(name + ": nonce counter exhausted"));
    }
    const std::string text = std::to_string(first + (count - 1)) + "\n";
    if (::ftruncate(fd, 0) != 0) {
        return close_with(R::failure(name + ": truncate: " + errno_text()));
    }
    // The counter is rewritten in place under the lock (the file offset is still 0:
    // pread does not move it), not replaced by rename, so write_file_durably does
    // not apply; a torn counter restarts from the clock.
    if (!crypto::write_all(fd, text)) {
        return close_with(R::failure(name + ": write: " + errno_text()));
    }
    if (::fsync(fd) != 0) return close_with(R::failure(name + ": fsync: " + errno_text()));
    return close_with(R::success(first));
}

Result<std::optional<crypto::SigningKey>> load_client_key_if_present(const fs::path& path) {
    using R = Result<std::optional<crypto::SigningKey>>;
    std::error_code ec;
    if (!fs::exists(path, ec)) return R::success(std::nullopt);
    auto loaded = crypto::load_signing_key(path);
    if (auto* error = std::get_if<crypto::KeyFileError>(&loaded)) return R::failure(error->message);
    return R::success(std::get<crypto::SigningKey>(loaded));
}

bool test_plaintext_requested() { return env("TOBCTL_TEST_NO_CURVE") == "1"; }

// ---- the client --------------------------------------------------------------------

Client::Client(const daemon::ClusterConfig& cluster, const crypto::SigningKey& key,
               zmq::context_t* context)
    : cluster_(cluster), key_(key) {
    set_expiry_horizon(kDefaultExpiryHorizon);
    if (context == nullptr) {
        own_context_ = std::make_unique<zmq::context_t>(1);
        context = own_context_.get();
    }
    context_ = context;
    // Replies are bounded by message_bytes_max (protocol.h) plus the channel frame.
    const auto max_frame = static_cast<std::int64_t>(cluster_.limits.message_bytes_max) + 64;
    sockets_.reserve(cluster_.members.size());
    curve_ = !test_plaintext_requested();
    const crypto::CurveKeyPair curve_key = crypto::CurveKeyPair::from_signing_key(key_);
    for (const daemon::ClusterMember& m : cluster_.members) {
        zmq::socket_t s(*context_, zmq::socket_type::dealer);
        s.set(zmq::sockopt::linger, 0);
        s.set(zmq::sockopt::sndhwm, 100000);
        s.set(zmq::sockopt::rcvhwm, 100000);
        s.set(zmq::sockopt::maxmsgsize, max_frame);
        if (curve_) {
            zmq_setsockopt(s.handle(), ZMQ_CURVE_SERVERKEY, m.curve_key.data(), 32);
            zmq_setsockopt(s.handle(), ZMQ_CURVE_PUBLICKEY, curve_key.public_key().data(), 32);
            zmq_setsockopt(s.handle(), ZMQ_CURVE_SECRETKEY, curve_key.secret_key().data(), 32);
        }
        s.connect(m.client_endpoint);
        sockets_.push_back(std::move(s));
    }
}

Client::~Client() = default;

consensus::Request Client::build_request(std::vector<consensus::Op> ops, Nonce nonce) {
    const Epoch expires = next_expiry();
    return build_request(std::move(ops), nonce, expires);
}

consensus::Request Client::build_request(std::vector<consensus::Op> ops, Nonce nonce,
                                         Epoch expires) const {
    consensus::Request r;
    r.chain_id = cluster_.chain_id;
    r.client = key_.public_key();
    r.nonce = nonce;
    r.expires = expires;
    r.ops = std::move(ops);
    r.sig = key_.sign(consensus::kRequestTag, consensus::request_sign_payload(r));
    return r;
}

void Client::set_expiry_horizon(Epoch epochs) {
    const Epoch cap = std::max<Epoch>(cluster_.protocol.request_expiry_max_epochs, 1);
    horizon_ = std::clamp<Epoch>(epochs, 1, cap);
}

void Client::note_epoch(Epoch epoch) {
    if (!known_epoch_) return;  // only a Status quorum sets the first one
    if (epoch > *known_epoch_ && epoch <= consensus::epoch_add(*known_epoch_, horizon_))
        known_epoch_ = epoch;
}

Result<Epoch> Client::refresh_epoch(Millis timeout) {
    // Every member is asked; n - t answers are enough (t+1 of them honest), so up
    // to t stopped nodes cost at most a short grace for the stragglers (whose
    // late Status would otherwise surface in the caller's poll()).
    const Bytes query = encode_client_message(StatusQueryMsg{});
    std::vector<bool> asked(sockets_.size(), false);
    std::size_t waiting = 0;
    for (NodeId i = 0; i < sockets_.size(); ++i) waiting += (asked[i] = send(i, query)) ? 1 : 0;
    const std::size_t enough = n() > cluster_.t ? n() - cluster_.t : 1;
    std::vector<Epoch> seen;
    auto deadline = Clock::now() + timeout;
    std::vector<Incoming> incoming;
    while (waiting > 0 && Clock::now() < deadline) {
        incoming.clear();
        poll(std::chrono::ceil<Millis>(deadline - Clock::now()), incoming);
        for (const Incoming& in : incoming) {
            const auto* status = std::get_if<StatusMsg>(&in.message);
            if (status == nullptr || in.from >= asked.size() || !asked[in.from]) continue;
            asked[in.from] = false;  // one answer per node
            --waiting;
            seen.push_back(status->applied);
            if (seen.size() == enough) deadline = std::min(deadline, Clock::now() + Millis(100));
        }
    }
    if (seen.empty()) return Result<Epoch>::failure("no node answered a status query");
    std::sort(seen.begin(), seen.end(), std::greater<>());
    const Epoch pick = seen[std::min<std::size_t>(cluster_.t, seen.size() - 1)];
    known_epoch_ = std::max(known_epoch_.value_or(0), pick);
    return Result<Epoch>::success(*known_epoch_);
}

Epoch Client::next_expiry() {
    if (!known_epoch_) refresh_epoch();
    return consensus::epoch_add(known_epoch_.value_or(0), horizon_);
}

Client::Prepared Client::prepare(const consensus::Request& request) {
    Prepared p;
    Bytes encoded = consensus::encode(request);
    p.request_digest = consensus::digest_of(encoded);
    p.body = encode_client_message(SubmitMsg{std::move(encoded)});
    return p;
}

bool Client::send(NodeId node, const Bytes& body) {
    if (node >= sockets_.size()) return false;
    try {
        zmq::message_t channel(&kChannelClient, 1);
        if (!sockets_[node].send(channel, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            return false;
        }
        // A message's later parts are always accepted once its first part was.
        zmq::message_t frame(body.data(), body.size());
        return sockets_[node].send(frame, zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t&) {
        return false;
    }
}

bool Client::verify(const ReplyMsg& reply, NodeId from) const {
    if (reply.node != from || from >= cluster_.members.size()) return false;
    // With Curve the connection is the proof: only the holder of the member's
    // Curve secret key completes the handshake, and every frame on the
    // connection is authenticated (docs/client.md, "Reply authentication").
    return curve_ || verify_reply(cluster_.members[from].public_key, cluster_.chain_id, reply);
}

std::size_t Client::poll(Millis timeout, std::vector<Incoming>& out, std::size_t max) {
    std::vector<zmq::pollitem_t> items;
    items.reserve(sockets_.size());
    for (zmq::socket_t& s : sockets_) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
    try {
        zmq::poll(items, std::max(timeout, Millis(0)));
    } catch (const zmq::error_t&) {
        return 0;  // EINTR: the caller loops on its own deadline
    }
    std::size_t added = 0;
    std::vector<zmq::message_t> parts;
    for (std::size_t i = 0; i < sockets_.size() && added < max; ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        while (added < max) {
            parts.clear();
            bool more = true;
            while (more) {
                zmq::message_t part;
                zmq::recv_result_t got;
                try {
                    got = sockets_[i].recv(part, zmq::recv_flags::dontwait);
                } catch (const zmq::error_t&) {
                    got = std::nullopt;
                }
                if (!got) break;
                more = part.more();
                // Keep at most 3 parts: anything longer is dropped below anyway.
                if (parts.size() < 3) parts.push_back(std::move(part));
            }
            if (parts.empty()) break;  // this socket is drained
            ++stats_.received;
            if (parts.size() != 2 || parts[0].size() != 1 ||
                *static_cast<const std::uint8_t*>(parts[0].data()) != kChannelClient) {
                ++stats_.dropped_frames;
                continue;
            }
            const consensus::ByteView body(static_cast<const std::uint8_t*>(parts[1].data()),
                                           parts[1].size());
            auto decoded = decode_client_message(body, cluster_.limits);
            if (!decoded) {
                ++stats_.undecodable;
                continue;
            }
            if (const auto* reply = std::get_if<ReplyMsg>(&decoded.value())) {
                if (!verify(*reply, static_cast<NodeId>(i))) {
                    ++stats_.bad_replies;
                    continue;
                }
                note_epoch(reply->epoch);
            }
            out.push_back(Incoming{static_cast<NodeId>(i), std::move(decoded.value())});
            ++added;
        }
    }
    return added;
}

bool Client::answers(const ReplyMsg& reply, const consensus::Request& request,
                     const Digest& digest) const {
    return reply.request_digest == digest && reply.client == request.client &&
           reply.nonce == request.nonce;
}

Result<Client::Submitted> Client::submit(const consensus::Request& request,
                                         const SubmitOptions& options) {
    if (sockets_.empty()) return Result<Submitted>::failure("the cluster has no members");
    if (options.node && *options.node >= sockets_.size()) {
        return Result<Submitted>::failure("node " + std::to_string(*options.node) +
                                          " is not a member (n = " + std::to_string(n()) + ")");
    }
    return options.quorum ? submit_quorum(request, options) : submit_one(request, options);
}

Result<Client::Submitted> Client::submit_one(const consensus::Request& request,
                                             const SubmitOptions& options) {
    using R = Result<Submitted>;
    const Prepared prepared = prepare(request);
    const auto n_nodes = static_cast<NodeId>(sockets_.size());
    NodeId current =
        options.node ? *options.node : static_cast<NodeId>(std::random_device{}() % n_nodes);
    const auto start = Clock::now();
    const auto deadline = start + options.deadline;
    std::vector<NodeId> tried;
    Refusals refusals(prepared.request_digest, static_cast<std::size_t>(cluster_.t) + 1);
    std::uint32_t refusals_in_row = 0;

    auto send_to_current = [&] {
        if (std::find(tried.begin(), tried.end(), current) == tried.end()) {
            tried.push_back(current);
        }
        send(current, prepared.body);
    };
    send_to_current();
    auto attempt_end = Clock::now() + options.attempt_timeout;

    std::vector<Incoming> incoming;
    for (;;) {
        auto now = Clock::now();
        if (now >= deadline) break;
        if (now >= attempt_end) {
            current = static_cast<NodeId>((current + 1) % n_nodes);
            send_to_current();
            attempt_end = now + options.attempt_timeout;
        }
        incoming.clear();
        poll(std::chrono::ceil<Millis>(std::min(attempt_end, deadline) - now), incoming);
        for (Incoming& in : incoming) {
            if (auto* reply = std::get_if<ReplyMsg>(&in.message)) {
                if (!answers(*reply, request, prepared.request_digest)) continue;
                const NodeId from = reply->node;
                return R::success(Submitted{std::move(*reply), {from}});
            }
            if (auto* error = std::get_if<ErrorMsg>(&in.message)) {
                if (!refusals.note(in.from, *error)) continue;
                if (refusals.decisive()) {
                    return R::failure(refusals.decisive_text(), refusals.last());
                }
                if (in.from == current) {
                    // Refused here: try the next node at once, unless every node has
                    // refused in a row, then back off for one attempt timeout.
                    if (++refusals_in_row < n_nodes) {
                        attempt_end = Clock::now();
                    } else {
                        refusals_in_row = 0;
                    }
                }
            }
        }
    }
    std::string tried_text;
    for (NodeId t : tried) tried_text += (tried_text.empty() ? "" : ",") + std::to_string(t);
    std::string why = "no verified reply within " + millis_text(options.deadline) +
                      " (sent to node" + (tried.size() > 1 ? "s " : " ") + tried_text + ")" +
                      refusals.last_error_text();
    return R::failure(std::move(why), refusals.last());
}

Result<Client::Submitted> Client::submit_quorum(const consensus::Request& request,
                                                const SubmitOptions& options) {
    using R = Result<Submitted>;
    const Prepared prepared = prepare(request);
    const std::size_t n_nodes = sockets_.size();
    const std::size_t need = static_cast<std::size_t>(cluster_.t) + 1;
    const auto deadline = Clock::now() + options.deadline;
    std::map<NodeId, ReplyMsg> replies;  // first verified reply per signing node
    Refusals refusals(prepared.request_digest, need);

    auto send_missing = [&] {
        for (std::size_t i = 0; i < n_nodes; ++i) {
            if (!replies.count(static_cast<NodeId>(i))) send(static_cast<NodeId>(i), prepared.body);
        }
    };
    send_missing();
    auto attempt_end = Clock::now() + options.attempt_timeout;

    std::vector<Incoming> incoming;
    for (;;) {
        auto now = Clock::now();
        if (now >= deadline) break;
        if (now >= attempt_end) {
            send_missing();
            attempt_end = now + options.attempt_timeout;
        }
        incoming.clear();
        poll(std::chrono::ceil<Millis>(std::min(attempt_end, deadline) - now), incoming);
        for (Incoming& in : incoming) {
            if (auto* reply = std::get_if<ReplyMsg>(&in.message)) {
                if (!answers(*reply, request, prepared.request_digest)) continue;
                if (!replies.emplace(reply->node, *reply).second) continue;
                std::vector<NodeId> agreeing;
                const ReplyMsg* best = nullptr;
                for (const auto& [node, r] : replies) {
                    if (!replies_match(r, *reply)) continue;
                    agreeing.push_back(node);
                    // Report a reply that names where it committed, if any does.
                    if (best == nullptr || (best->epoch == 0 && r.epoch != 0)) best = &r;
                }
                if (agreeing.size() >= need) {
                    return R::success(Submitted{*best, std::move(agreeing)});
                }
                continue;
            }
            if (auto* error = std::get_if<ErrorMsg>(&in.message)) {
                if (refusals.note(in.from, *error) && refusals.decisive()) {
                    return R::failure(refusals.decisive_text(), refusals.last());
                }
            }
        }
        if (replies.size() == n_nodes) break;  // everyone answered and no t+1 agree
    }
    std::string why = "no " + std::to_string(need) + " matching verified replies within " +
                      millis_text(options.deadline) + " (got " + std::to_string(replies.size()) +
                      " verified repl" + (replies.size() == 1 ? "y" : "ies");
    if (!replies.empty()) {
        // Size of each group of matching replies.
        std::vector<const ReplyMsg*> reps;
        std::vector<std::size_t> sizes;
        for (const auto& [node, r] : replies) {
            std::size_t k = 0;
            while (k < reps.size() && !replies_match(*reps[k], r)) ++k;
            if (k == reps.size()) {
                reps.push_back(&r);
                sizes.push_back(0);
            }
            ++sizes[k];
        }
        std::string groups;
        for (std::size_t s : sizes) groups += (groups.empty() ? "" : "/") + std::to_string(s);
        why += " in " + std::to_string(reps.size()) + " distinct outcome" +
               (reps.size() == 1 ? "" : "s") + ": " + groups;
    }
    why += ")" + refusals.last_error_text();
    return R::failure(std::move(why), refusals.last());
}

std::vector<Result<StatusMsg>> Client::status_all(const std::vector<NodeId>& nodes,
                                                  Millis timeout) {
    using R = Result<StatusMsg>;
    std::vector<R> results(nodes.size(), R::failure("no answer within " + millis_text(timeout)));
    std::vector<bool> done(nodes.size(), false);
    const Bytes query = encode_client_message(StatusQueryMsg{});
    std::size_t pending = 0;
    for (std::size_t k = 0; k < nodes.size(); ++k) {
        if (nodes[k] >= sockets_.size()) {
            results[k] = R::failure("node " + std::to_string(nodes[k]) + " is not a member");
            done[k] = true;
        } else if (!send(nodes[k], query)) {
            results[k] = R::failure("cannot queue the query");
            done[k] = true;
        } else {
            ++pending;
        }
    }
    const auto deadline = Clock::now() + timeout;
    std::vector<Incoming> incoming;
    while (pending > 0) {
        const auto now = Clock::now();
        if (now >= deadline) break;
        incoming.clear();
        poll(std::chrono::ceil<Millis>(deadline - now), incoming);
        for (Incoming& in : incoming) {
            for (std::size_t k = 0; k < nodes.size(); ++k) {
                if (done[k] || nodes[k] != in.from) continue;
                if (auto* status = std::get_if<StatusMsg>(&in.message)) {
                    results[k] = R::success(*status);
                } else if (auto* error = std::get_if<ErrorMsg>(&in.message)) {
                    results[k] = R::failure(describe(in.from, *error), *error);
                } else {
                    continue;
                }
                done[k] = true;
                --pending;
            }
        }
    }
    return results;
}

Result<StatusMsg> Client::status(NodeId node, Millis timeout) {
    return std::move(status_all({node}, timeout).front());
}

Result<LocalValueMsg> Client::local_get(NodeId node, const Bytes& key, Millis timeout) {
    using R = Result<LocalValueMsg>;
    if (node >= sockets_.size()) {
        return R::failure("node " + std::to_string(node) + " is not a member");
    }
    if (key.size() > cluster_.limits.key_bytes_max) {
        return R::failure("key of " + std::to_string(key.size()) + " bytes exceeds key_bytes_max " +
                          std::to_string(cluster_.limits.key_bytes_max));
    }
    if (!send(node, encode_client_message(make_local_get(key_, cluster_.chain_id, key)))) {
        return R::failure("node " + std::to_string(node) + ": cannot queue the query");
    }
    const auto deadline = Clock::now() + timeout;
    std::vector<Incoming> incoming;
    for (;;) {
        const auto now = Clock::now();
        if (now >= deadline) break;
        incoming.clear();
        poll(std::chrono::ceil<Millis>(deadline - now), incoming);
        for (Incoming& in : incoming) {
            if (in.from != node) continue;
            if (auto* value = std::get_if<LocalValueMsg>(&in.message)) {
                return R::success(std::move(*value));
            }
            if (auto* error = std::get_if<ErrorMsg>(&in.message)) {
                return R::failure(describe(in.from, *error), *error);
            }
        }
    }
    return R::failure("node " + std::to_string(node) + ": no answer within " +
                      millis_text(timeout));
}

}  // namespace tob::client
