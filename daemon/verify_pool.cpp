#include "daemon/verify_pool.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

namespace tob::daemon {

using namespace tob::consensus;

namespace {

Digest cache_key(std::uint8_t what, ByteView who, std::string_view tag, ByteView payload,
                 ByteView sig) {
    crypto::Hasher h;
    h.u64(what);
    h.field(who);
    h.field(ByteView(reinterpret_cast<const std::uint8_t*>(tag.data()), tag.size()));
    h.field(payload);
    h.field(sig);
    return h.finish();
}

ByteView view_of(NodeId id, std::array<std::uint8_t, 2>& buf) {
    buf = {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id)};
    return ByteView(buf.data(), buf.size());
}

}  // namespace

std::size_t VerifyCache::DigestHash::operator()(const Digest& d) const {
    std::size_t v;
    std::memcpy(&v, d.data(), sizeof v);
    return v;
}

bool VerifyCache::contains(const Digest& key) const {
    std::lock_guard lock(mu_);
    if (current_.count(key) || previous_.count(key)) {
        hits_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    return false;
}

void VerifyCache::insert(const Digest& key) {
    std::lock_guard lock(mu_);
    if (current_.size() >= generation_max_) {
        previous_ = std::move(current_);
        current_.clear();
    }
    current_.insert(key);
}

bool CachingCryptoSuite::verify(NodeId signer, std::string_view tag, ByteView payload,
                                const Signature& sig) const {
    std::array<std::uint8_t, 2> buf;
    const Digest key = cache_key(1, view_of(signer, buf), tag, payload, sig);
    if (cache_.contains(key)) return true;
    if (!real_.verify(signer, tag, payload, sig)) return false;
    cache_.insert(key);
    return true;
}

bool CachingCryptoSuite::verify_client(const PublicKey& client, std::string_view tag,
                                       ByteView payload, const Signature& sig) const {
    const Digest key = cache_key(2, client, tag, payload, sig);
    if (cache_.contains(key)) return true;
    if (!real_.verify_client(client, tag, payload, sig)) return false;
    cache_.insert(key);
    return true;
}

bool CachingCryptoSuite::verify_coin_share(NodeId from, ByteView name, ByteView share) const {
    std::array<std::uint8_t, 2> buf;
    const Digest key = cache_key(3, view_of(from, buf), "coin", name, share);
    if (cache_.contains(key)) return true;
    if (!real_.verify_coin_share(from, name, share)) return false;
    cache_.insert(key);
    return true;
}

// ---- pool -------------------------------------------------------------------------

VerifyPool::VerifyPool(const CryptoSuite& suite, const ReplicaConfig& config, unsigned threads,
                       std::size_t queue_max)
    : suite_(suite), config_(config), queue_max_(queue_max) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (threads == 0) threads = 1;
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

VerifyPool::~VerifyPool() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool VerifyPool::submit_envelope(VerifyResult::Source source, Bytes raw, const Digest& raw_digest) {
    {
        std::lock_guard lock(mu_);
        if (jobs_.size() >= queue_max_) return false;
        jobs_.push_back(Job{source, std::move(raw), raw_digest, {}});
    }
    cv_.notify_one();
    return true;
}

bool VerifyPool::submit_request(std::string routing_id, Bytes request_bytes) {
    {
        std::lock_guard lock(mu_);
        if (jobs_.size() >= queue_max_) return false;
        jobs_.push_back(Job{VerifyResult::Source::Client, std::move(request_bytes), Digest{},
                            std::move(routing_id)});
    }
    cv_.notify_one();
    return true;
}

std::vector<VerifyResult> VerifyPool::take_results() {
    std::uint64_t drained;
    [[maybe_unused]] auto n = ::read(wake_fd_, &drained, sizeof drained);
    std::lock_guard lock(mu_);
    std::vector<VerifyResult> out;
    out.swap(results_);
    return out;
}

std::size_t VerifyPool::queue_depth() const {
    std::lock_guard lock(mu_);
    return jobs_.size();
}

void VerifyPool::run() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
            if (stop_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        VerifyResult result = work(job);
        {
            std::lock_guard lock(mu_);
            results_.push_back(std::move(result));
        }
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
}

VerifyResult VerifyPool::work(Job& job) {
    VerifyResult r;
    r.source = job.source;
    r.raw_digest = job.raw_digest;
    r.routing_id = std::move(job.routing_id);
    r.bytes = job.raw.size();
    if (job.source == VerifyResult::Source::Client) {
        r.request_bytes = std::move(job.raw);
        auto req = decode_request(r.request_bytes, config_.limits);
        if (!req) {
            r.error = "undecodable request: " + req.error();
            return r;
        }
        if (req.value().chain_id != config_.chain_id) {
            r.error = "request for another cluster (chain id differs)";
            return r;
        }
        if (!suite_.verify_client(req.value().client, kRequestTag,
                                  request_sign_payload(req.value()), req.value().sig)) {
            r.error = "bad client signature";
            return r;
        }
        r.request = std::move(req.value());
        return r;
    }
    auto env = open_envelope(job.raw, suite_, config_);
    if (!env) {
        r.error = env.error();
        return r;
    }
    preverify(env.value(), 0);
    r.envelope = std::move(env.value());
    return r;
}

// Runs the checks the core will repeat, so they hit the cache on the loop. Any
// failure here is ignored: the core makes the decision (and blames the sender).
void VerifyPool::preverify(const Envelope& env, int depth) {
    const Limits& limits = config_.limits;
    switch (env.kind) {
        case Kind::Block: {
            auto b = decode_block(env.body, limits);
            if (!b) return;
            for (const auto& r : b.value().requests)
                (void)suite_.verify_client(r.client, kRequestTag, request_sign_payload(r), r.sig);
            return;
        }
        case Kind::Requests: {
            auto batch = decode_request_batch(env.body, limits);
            if (!batch) return;
            for (const auto& r : batch.value().requests)
                (void)suite_.verify_client(r.client, kRequestTag, request_sign_payload(r), r.sig);
            return;
        }
        case Kind::Cert: {
            auto c = decode_certificate(env.body, limits);
            if (!c) return;
            const Bytes body = encode(SeenBody{c.value().proposer, c.value().digest});
            for (const auto& s : c.value().sigs) {
                if (s.signer >= config_.n) continue;
                (void)suite_.verify(s.signer, kEnvelopeTag,
                                    envelope_sign_payload(config_.chain_id, s.signer,
                                                          c.value().epoch, Kind::Seen, body),
                                    s.sig);
            }
            return;
        }
        case Kind::Aba: {
            auto bundle = decode_aba_bundle(env.body, limits);
            if (!bundle) return;
            for (const auto& m : bundle.value().messages) {
                if (m.type != AbaType::Coin || m.proposer >= config_.n) continue;
                (void)suite_.verify_coin_share(
                    env.sender, coin_name(config_.chain_id, env.epoch, m.proposer, m.round),
                    m.coin_share);
            }
            return;
        }
        case Kind::FetchReply: {
            if (depth > 0) return;
            auto reply = decode_fetch_reply(env.body, limits);
            if (!reply) return;
            for (const auto& inner : reply.value().envelopes) {
                auto opened = open_envelope(inner, suite_, config_);
                if (opened) preverify(opened.value(), depth + 1);
            }
            return;
        }
        default:
            return;
    }
}

}  // namespace tob::daemon
