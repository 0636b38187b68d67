#include "daemon/zap.h"

#include <sodium.h>

#include <array>

#include "crypto/hash.h"

namespace tob::daemon {

namespace {

constexpr std::string_view kZapVersion = "1.0";
constexpr std::string_view kProbeDomain = "tobd-probe";
constexpr std::size_t kRequestFramesMax = 16;

std::string text_of(const zmq::message_t& m) { return std::string(m.data<char>(), m.size()); }

bool recv_all(zmq::socket_t& socket, std::vector<zmq::message_t>& parts) {
    parts.clear();
    for (;;) {
        zmq::message_t msg;
        if (!socket.recv(msg, parts.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none))
            return !parts.empty();
        const bool more = msg.more();
        if (parts.size() < kRequestFramesMax) parts.push_back(std::move(msg));
        if (!more) return true;
    }
}

}  // namespace

ZapDecision zap_decide(const ZapPolicy& policy, std::string_view domain, std::string_view mechanism,
                       const std::vector<std::string>& credentials) {
    if (mechanism != "CURVE") return {false, {}, "CURVE required"};
    if (credentials.size() != 1 || credentials[0].size() != 32) return {false, {}, "bad key"};
    crypto::CurvePublicKey key{};
    std::copy(credentials[0].begin(), credentials[0].end(), key.begin());
    if (domain == kZapDomainMember) {
        auto it = policy.members.find(key);
        if (it == policy.members.end()) return {false, {}, "not a member"};
        return {true, "member-" + std::to_string(it->second), {}};
    }
    if (domain == kZapDomainClient) {
        if (!policy.clients_open && !policy.clients.count(key)) {
            return {false, {}, "not a permitted client"};
        }
        return {true, crypto::to_hex(key), {}};
    }
    return {false, {}, "unknown domain"};
}

ZapHandler::ZapHandler(zmq::socket_t socket, ZapPolicy policy)
    : socket_(std::move(socket)), policy_(std::move(policy)) {}

std::variant<std::unique_ptr<ZapHandler>, std::string> ZapHandler::start(zmq::context_t& ctx,
                                                                         ZapPolicy policy) {
    zmq::socket_t socket(ctx, zmq::socket_type::rep);
    try {
        socket.set(zmq::sockopt::linger, 0);
        socket.bind(std::string(kZapEndpoint));
    } catch (const zmq::error_t& e) {
        return std::string(kZapEndpoint) + ": " + e.what();
    }
    std::unique_ptr<ZapHandler> handler(new ZapHandler(std::move(socket), std::move(policy)));
    // The socket moves to the thread; std::thread's start is a full memory barrier.
    handler->thread_ = std::thread([h = handler.get()] { h->run(); });
    return handler;
}

ZapHandler::~ZapHandler() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

void ZapHandler::run() {
    std::vector<zmq::message_t> parts;
    while (!stop_.load()) {
        zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
        try {
            zmq::poll(&item, 1, std::chrono::milliseconds(100));
            if (!(item.revents & ZMQ_POLLIN)) continue;
            if (recv_all(socket_, parts)) answer(parts);
        } catch (const zmq::error_t&) {
            // EINTR, or the context is shutting down: check stop_ and go on.
        }
    }
    socket_.close();
}

void ZapHandler::answer(std::vector<zmq::message_t>& request) {
    // A REP socket must answer every request, also a malformed one (with 400, and
    // an empty request id when there is none).
    ZapDecision decision{false, {}, "malformed request"};
    std::string request_id;
    std::string domain;
    if (request.size() >= 6 && text_of(request[0]) == kZapVersion) {
        request_id = text_of(request[1]);
        domain = text_of(request[2]);
        std::vector<std::string> credentials;
        for (std::size_t i = 6; i < request.size(); ++i) credentials.push_back(text_of(request[i]));
        decision = zap_decide(policy_, domain, text_of(request[5]), credentials);
    } else if (request.size() >= 2) {
        request_id = text_of(request[1]);
    }
    if (domain == kZapDomainMember) {
        ++(decision.allow ? counts_.member_accepted : counts_.member_denied);
    } else if (domain == kZapDomainClient) {
        ++(decision.allow ? counts_.client_accepted : counts_.client_denied);
    } else {
        ++counts_.other_denied;
    }
    const std::array<std::string, 6> reply{std::string(kZapVersion),
                                           request_id,
                                           decision.allow ? "200" : "400",
                                           decision.allow ? "OK" : decision.reason,
                                           decision.user_id,
                                           ""};
    for (std::size_t i = 0; i < reply.size(); ++i) {
        socket_.send(zmq::buffer(reply[i]),
                     i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

bool ZapHandler::probe(zmq::context_t& ctx, std::chrono::milliseconds timeout) {
    try {
        zmq::socket_t req(ctx, zmq::socket_type::req);
        req.set(zmq::sockopt::linger, 0);
        req.connect(std::string(kZapEndpoint));
        std::array<std::uint8_t, 8> nonce{};
        randombytes_buf(nonce.data(), nonce.size());
        const std::string id = "probe-" + crypto::to_hex(nonce);
        const std::string zero_key(32, '\0');
        const std::array<std::string_view, 7> request{
            kZapVersion, id, kProbeDomain, "127.0.0.1", "", "CURVE", zero_key};
        for (std::size_t i = 0; i < request.size(); ++i) {
            if (!req.send(zmq::buffer(request[i]),
                          i + 1 < request.size()
                              ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                              : zmq::send_flags::dontwait))
                return false;
        }
        zmq::pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, timeout);
        if (!(item.revents & ZMQ_POLLIN)) return false;
        std::vector<zmq::message_t> reply;
        if (!recv_all(req, reply) || reply.size() != 6) return false;
        return text_of(reply[0]) == kZapVersion && text_of(reply[1]) == id &&
               text_of(reply[2]) == "400";
    } catch (const zmq::error_t&) {
        return false;
    }
}

}  // namespace tob::daemon
