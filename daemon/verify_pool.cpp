#include "daemon/verify_pool.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "consensus/binary_agreement.h"
#include "consensus/block_broadcast.h"

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

// Coin shares are checked by the workers only for rounds up to this (an honest
// agreement decides within a few rounds; a later round's share, rare, is then
// checked by the core on the loop), and at most kCoinChecksPerMember x n per
// envelope (one per proposer and round of the rounds in flight).
constexpr Round kCoinRoundMax = 64;
constexpr std::size_t kCoinChecksPerMember = 2;
// The recent-duplicate set rotates its generations this often.
constexpr std::uint64_t kRecentRotateMs = 100;

// Skips one msgpack unsigned integer at `at`; false if there is none.
bool skip_uint(ByteView raw, std::size_t& at) {
    if (at >= raw.size()) return false;
    const std::uint8_t b = raw[at];
    std::size_t len = 0;
    if (b <= 0x7f)
        len = 1;
    else if (b == 0xcc)
        len = 2;
    else if (b == 0xcd)
        len = 3;
    else if (b == 0xce)
        len = 5;
    else if (b == 0xcf)
        len = 9;
    else
        return false;
    at += len;
    return at <= raw.size();
}

}  // namespace

// The kind field of an encoded envelope (array of 6: chain id as bin 8 of 32
// bytes, sender, epoch, kind, ...), read without decoding or checking anything:
// it only sorts a frame into its member's queues. A frame that claims another
// kind than it has is refused by the worker like any forgery.
std::optional<Kind> peek_envelope_kind(ByteView raw) {
    if (raw.size() < 3 || raw[0] != 0x96 || raw[1] != 0xc4 || raw[2] != 32) return std::nullopt;
    std::size_t at = 3 + 32;
    if (!skip_uint(raw, at) || !skip_uint(raw, at) || at >= raw.size()) return std::nullopt;
    const std::uint8_t kind = raw[at];
    if (kind == 0 || kind > kKindMax) return std::nullopt;
    return static_cast<Kind>(kind);
}

namespace {

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

std::size_t FailedDigests::DigestHash::operator()(const Digest& d) const {
    std::size_t v;
    std::memcpy(&v, d.data(), sizeof v);
    return v;
}

bool FailedDigests::contains(const Digest& d) {
    std::lock_guard lock(mu_);
    auto it = where_.find(d);
    if (it == where_.end()) return false;
    order_.splice(order_.begin(), order_, it->second);
    return true;
}

void FailedDigests::insert(const Digest& d) {
    std::lock_guard lock(mu_);
    if (auto it = where_.find(d); it != where_.end()) {
        order_.splice(order_.begin(), order_, it->second);
        return;
    }
    if (max_ == 0) return;
    order_.push_front(d);
    where_[d] = order_.begin();
    while (order_.size() > max_) {
        where_.erase(order_.back());
        order_.pop_back();
    }
}

std::size_t FailedDigests::size() const {
    std::lock_guard lock(mu_);
    return order_.size();
}

VerifyCache::VerifyCache(std::size_t generation_max, std::size_t failed_max)
    : generation_max_(generation_max), failed_(std::make_unique<FailedDigests>(failed_max)) {}

VerifyCache::~VerifyCache() = default;

void VerifyCache::set_generation_max(std::size_t entries) {
    std::lock_guard lock(mu_);
    generation_max_ = std::max<std::size_t>(entries, 1);
}

std::size_t VerifyCache::size() const {
    std::lock_guard lock(mu_);
    return current_.size() + previous_.size();
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

namespace {

// The cache in front of one verification: a remembered success or failure
// answers at once; otherwise `check` runs and its answer is remembered.
template <typename Check>
bool cached(VerifyCache& cache, const Digest& key, Check check) {
    if (cache.contains(key)) return true;
    if (cache.failed().contains(key)) return false;
    if (!check()) {
        cache.failed().insert(key);
        return false;
    }
    cache.insert(key);
    return true;
}

}  // namespace

bool CachingCryptoSuite::verify(NodeId signer, std::string_view tag, ByteView payload,
                                const Signature& sig) const {
    std::array<std::uint8_t, 2> buf;
    const Digest key = cache_key(1, view_of(signer, buf), tag, payload, sig);
    return cached(cache_, key, [&] { return real_.verify(signer, tag, payload, sig); });
}

bool CachingCryptoSuite::verify_client(const PublicKey& client, std::string_view tag,
                                       ByteView payload, const Signature& sig) const {
    const Digest key = cache_key(2, client, tag, payload, sig);
    return cached(cache_, key, [&] { return real_.verify_client(client, tag, payload, sig); });
}

// Keyed by the request's digest (it covers the signed fields and the signature):
// the workers and the core both hold it, and a 64-operation request is not
// hashed again for the key (docs/performance.md).
bool CachingCryptoSuite::verify_request(const Request& r, const Digest& digest) const {
    const Digest key = cache_key(4, {}, kRequestTag, digest, {});
    return cached(cache_, key, [&] {
        return real_.verify_client(r.client, kRequestTag, request_sign_payload(r), r.sig);
    });
}

bool CachingCryptoSuite::verify_coin_share(NodeId from, ByteView name, ByteView share) const {
    std::array<std::uint8_t, 2> buf;
    const Digest key = cache_key(3, view_of(from, buf), "coin", name, share);
    return cached(cache_, key, [&] { return real_.verify_coin_share(from, name, share); });
}

// ---- pool -------------------------------------------------------------------------

VerifyPool::VerifyPool(const CryptoSuite& suite, const ReplicaConfig& config, unsigned threads,
                       VerifyPoolBounds bounds)
    : suite_(suite),
      config_(config),
      bounds_(bounds),
      failed_(bounds.failed_entries),
      member_queues_(config.n + 1),
      solicited_until_(config.n, 0) {
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

bool VerifyPool::submit_envelope(VerifyResult::Source source, NodeId from, Bytes raw) {
    const std::size_t index = from < config_.n ? from : config_.n;
    const std::uint64_t size = raw.size();
    // Flooded request batches are relayed client load: they wait in their own
    // queue, served after the member's protocol messages, and never take more
    // than half of the member's bytes (one batch always fits when none waits),
    // so a client's flood relayed by honest members cannot crowd out their
    // blocks, SEENs and agreement messages (attack pool_flood, docs/attacks.md).
    const bool bulk = peek_envelope_kind(raw) == Kind::Requests;
    {
        std::unique_lock lock(mu_);
        Queue& q = member_queues_[index];
        const bool bulk_full =
            bulk && q.bulk_bytes > 0 && q.bulk_bytes + size > bounds_.member_bytes / 2;
        if (q.bytes + size > bounds_.member_bytes || bulk_full) {
            counters_.refused_full.fetch_add(1);
            return false;
        }
        q.bytes += size;
        if (bulk) {
            q.bulk_bytes += size;
            q.bulk.push_back(Job{source, std::move(raw), {}, {}, index, true});
        } else if (idle_locked() && size <= kInlineBytesMax) {
            // Nothing queued, no worker busy, no result waiting: this frame is
            // checked here, on the caller's thread (see the header).
            Job job{source, std::move(raw), {}, {}, index};
            ++busy_;
            lock.unlock();
            std::optional<VerifyResult> result = work(job);
            lock.lock();
            --busy_;
            if (finish_locked(index, false, size, std::move(result))) ++inline_results_;
            ++inline_since_take_;
            ++stats_inline_;
            return true;
        } else {
            q.jobs.push_back(Job{source, std::move(raw), {}, {}, index});
        }
        ++jobs_queued_;
    }
    cv_.notify_one();
    return true;
}

bool VerifyPool::submit_client(std::string routing_id, std::string peer_key, Bytes frame) {
    const std::uint64_t size = frame.size();
    // One share per client key (per connection without Curve).
    const std::string who = peer_key.empty() ? "id:" + routing_id : peer_key;
    {
        std::lock_guard lock(mu_);
        if (clients_bytes_ + size > bounds_.clients_bytes) {
            counters_.refused_full.fetch_add(1);
            return false;
        }
        auto [it, fresh] = client_index_.try_emplace(who, 0);
        if (fresh) it->second = config_.n + 1 + next_client_index_++;
        Queue& q = client_queues_[it->second];
        if (fresh) q.key = who;
        if (q.bytes + size > bounds_.client_each_bytes) {
            counters_.refused_full.fetch_add(1);
            if (q.bytes == 0) {
                client_queues_.erase(it->second);
                client_index_.erase(it);
            }
            return false;
        }
        if (q.jobs.empty()) client_turns_.push_back(it->second);
        q.bytes += size;
        clients_bytes_ += size;
        q.jobs.push_back(Job{VerifyResult::Source::Client, std::move(frame), std::move(routing_id),
                             std::move(peer_key), it->second});
        ++jobs_queued_;
    }
    cv_.notify_one();
    return true;
}

void VerifyPool::solicit(NodeId peer, std::uint64_t for_ms) {
    const auto now =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - started_)
                                       .count());
    std::lock_guard lock(mu_);
    if (peer < solicited_until_.size())
        solicited_until_[peer] = std::max(solicited_until_[peer], now + for_ms);
}

bool VerifyPool::solicited(NodeId peer) const {
    const auto now =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::steady_clock::now() - started_)
                                       .count());
    std::lock_guard lock(mu_);
    return peer < solicited_until_.size() && solicited_until_[peer] > now;
}

void VerifyPool::release(std::size_t index, std::uint64_t bytes, bool bulk) {
    if (index <= config_.n) {
        Queue& q = member_queues_[index];
        q.bytes -= std::min(bytes, q.bytes);
        if (bulk) q.bulk_bytes -= std::min(bytes, q.bulk_bytes);
        return;
    }
    auto it = client_queues_.find(index);
    if (it == client_queues_.end()) return;
    Queue& q = it->second;
    q.bytes -= std::min(bytes, q.bytes);
    clients_bytes_ -= std::min(bytes, clients_bytes_);
    if (q.bytes == 0 && q.jobs.empty()) {
        client_index_.erase(q.key);
        client_queues_.erase(it);
    }
}

std::vector<VerifyResult> VerifyPool::take_results() {
    std::uint64_t drained;
    [[maybe_unused]] auto n = ::read(wake_fd_, &drained, sizeof drained);
    std::lock_guard lock(mu_);
    std::vector<VerifyResult> out;
    out.swap(results_);
    inline_results_ = 0;
    inline_since_take_ = 0;
    for (const auto& r : out) release(r.source_index, r.bytes, r.bulk);
    return out;
}

std::size_t VerifyPool::queue_depth() const {
    std::lock_guard lock(mu_);
    return jobs_queued_;
}

std::uint64_t VerifyPool::member_bytes_max_used() const {
    std::lock_guard lock(mu_);
    std::uint64_t most = 0;
    for (const auto& q : member_queues_) most = std::max(most, q.bytes);
    return most;
}

std::uint64_t VerifyPool::clients_bytes_used() const {
    std::lock_guard lock(mu_);
    return clients_bytes_;
}

std::size_t VerifyPool::recent_size() const {
    std::lock_guard lock(mu_);
    return recent_now_.size() + recent_before_.size();
}

// Members before clients: while both wait, three turns of four go to the
// members; members in turn, clients in turn. Called with mu_ held.
std::optional<VerifyPool::Job> VerifyPool::next_job() {
    if (jobs_queued_ == 0) return std::nullopt;
    bool members_waiting = false;
    for (const auto& q : member_queues_)
        members_waiting = members_waiting || !q.jobs.empty() || !q.bulk.empty();
    const bool clients_waiting = !client_turns_.empty();
    const bool members_turn = members_waiting && (!clients_waiting || (turn_++ % 4) != 3);
    --jobs_queued_;
    return members_turn ? next_member_job() : next_client_job();
}

// Protocol messages of every member before any member's request batches.
std::optional<VerifyPool::Job> VerifyPool::next_member_job() {
    const std::size_t count = member_queues_.size();
    for (const bool bulk : {false, true}) {
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t index = (member_turn_ + i) % count;
            auto& jobs = bulk ? member_queues_[index].bulk : member_queues_[index].jobs;
            if (jobs.empty()) continue;
            Job job = std::move(jobs.front());
            jobs.pop_front();
            member_turn_ = index + 1;
            return job;
        }
    }
    return std::nullopt;
}

std::optional<VerifyPool::Job> VerifyPool::next_client_job() {
    const std::size_t index = client_turns_.front();
    client_turns_.pop_front();
    Queue& q = client_queues_[index];
    Job job = std::move(q.jobs.front());
    q.jobs.pop_front();
    if (!q.jobs.empty()) client_turns_.push_back(index);
    return job;
}

void VerifyPool::set_paused(bool paused) {
    {
        std::lock_guard lock(mu_);
        paused_ = paused;
    }
    cv_.notify_all();
}

void VerifyPool::run() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stop_ || (!paused_ && jobs_queued_ > 0); });
            if (stop_) return;
            job = std::move(*next_job());
            ++busy_;
        }
        const std::uint64_t charged = job.raw.size();  // work() may move the frame out
        std::optional<VerifyResult> result = work(job);
        bool delivered = false;
        {
            std::lock_guard lock(mu_);
            --busy_;
            delivered = finish_locked(job.source_index, job.bulk, charged, std::move(result));
        }
        if (!delivered) continue;
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
}

bool VerifyPool::idle_locked() const {
    return !paused_ && jobs_queued_ == 0 && busy_ == 0 && results_.size() == inline_results_ &&
           inline_since_take_ < kInlinePerPass;
}

bool VerifyPool::finish_locked(std::size_t index, bool bulk, std::uint64_t charged,
                               std::optional<VerifyResult> result) {
    if (!result) {
        release(index, charged, bulk);
        return false;
    }
    result->source_index = index;
    result->bulk = bulk;
    results_.push_back(std::move(*result));
    return true;
}

// Copies of frames verified in the last 100-200 ms are dropped here (see
// daemon/node.cpp for why only recent ones).
bool VerifyPool::seen_recently(const Digest& d) {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - recent_rotated_ >= std::chrono::milliseconds(kRecentRotateMs) ||
        recent_now_.size() >= bounds_.recent_generation) {
        recent_before_ = std::move(recent_now_);
        recent_now_.clear();
        recent_rotated_ = now;
    }
    return recent_now_.count(d) || recent_before_.count(d);
}

// Blocks the core holds, until their epoch is applied: a re-published copy of
// one costs the core nothing (it drops a body it holds) but cost every check
// here first; with blocks of megabytes and epochs slower than the
// re-publication backoff that work kept the workers and the loop busy with
// copies (docs/attacks.md, pool_flood).
bool VerifyPool::held_block(const Digest& frame) const {
    std::lock_guard lock(mu_);
    auto it = held_.find(frame);
    return it != held_.end() && it->second > applied_.load();
}

void VerifyPool::note_held_block(const Digest& frame, Epoch e) {
    const Epoch applied = applied_.load();
    if (e <= applied) return;
    std::lock_guard lock(mu_);
    if (held_.size() >= kHeldBlocksMax) {
        for (auto it = held_.begin(); it != held_.end();)
            it = it->second <= applied ? held_.erase(it) : std::next(it);
        if (held_.size() >= kHeldBlocksMax) return;
    }
    held_.emplace(frame, e);
}

void VerifyPool::remember_verified(const Digest& d) {
    std::lock_guard lock(mu_);
    if (recent_now_.size() < bounds_.recent_generation) recent_now_.insert(d);
}

std::optional<VerifyResult> VerifyPool::work(Job& job) {
    VerifyResult r;
    r.source = job.source;
    r.routing_id = std::move(job.routing_id);
    r.peer_key = std::move(job.peer_key);
    r.bytes = job.raw.size();
    if (job.source == VerifyResult::Source::Client) {
        work_client(r, std::move(job.raw));
        return r;
    }
    r.raw_digest = digest_of(job.raw);
    if (seen_recently(r.raw_digest)) {
        counters_.duplicates.fetch_add(1);
        return std::nullopt;
    }
    if (failed_.contains(r.raw_digest)) {
        counters_.failed_repeats.fetch_add(1);
        return std::nullopt;
    }
    if (held_block(r.raw_digest)) {
        counters_.held_repeats.fetch_add(1);
        return std::nullopt;
    }
    // Only the member ROUTER's connections are authenticated (by their Curve key);
    // the flood plane's header names a sender nobody checked.
    const NodeId channel = job.source == VerifyResult::Source::Peer && job.source_index < config_.n
                               ? static_cast<NodeId>(job.source_index)
                               : kNoChannel;
    Digest body_digest{};
    auto env = open_envelope(job.raw, suite_, config_, channel, &body_digest);
    if (!env) {
        // Refused for the connection, not the bytes: the same bytes may still come
        // from their sender (another member must not be able to bar them).
        if (!is_channel_refusal(env.error())) failed_.insert(r.raw_digest);
        r.error = env.error();
        return r;
    }
    if (!preverify(env.value(), 0, &r.request_digests, &r)) {
        failed_.insert(r.raw_digest);
        r.error = "invalid client request in a block or batch (bad client signature or chain id)";
        return r;
    }
    remember_verified(r.raw_digest);
    if (env.value().kind == Kind::Block) r.body_digest = body_digest;
    r.envelope = std::move(env.value());
    return r;
}

// A client frame: decoded here; a Submit's request is checked (chain id,
// signature) and a failed one remembered by digest.
void VerifyPool::work_client(VerifyResult& r, Bytes frame) {
    auto msg = client::decode_client_message(frame, config_.limits);
    if (!msg) {
        r.error = "undecodable message: " + msg.error();
        return;
    }
    auto* submit = std::get_if<client::SubmitMsg>(&msg.value());
    if (submit == nullptr) {
        r.message = std::move(msg.value());
        return;
    }
    r.request_bytes = std::move(submit->request);
    r.raw_digest = digest_of(r.request_bytes);
    if (failed_.contains(r.raw_digest)) {
        counters_.failed_repeats.fetch_add(1);
        r.error = "bad client signature (refused before)";
        return;
    }
    auto req = decode_request(r.request_bytes, config_.limits);
    if (!req) {
        r.error = "undecodable request: " + req.error();
        return;
    }
    if (req.value().chain_id != config_.chain_id) {
        r.error = "request for another cluster (chain id differs)";
        return;
    }
    // Decoding is canonical, so the submitted bytes are the request's encoding and
    // their digest is the one the core keys the request by.
    if (!suite_.verify_request(req.value(), r.raw_digest)) {
        failed_.insert(r.raw_digest);
        r.error = "bad client signature";
        return;
    }
    r.request = std::move(req.value());
}

bool VerifyPool::in_window(Epoch e) const {
    const Epoch applied = applied_.load();
    return e > applied && e - applied <= config_.window;
}

// Client requests in a block or batch, in order, until the first invalid one
// (the core refuses such a block, and honest members flood only valid requests).
bool VerifyPool::preverify_requests(const std::vector<Request>& requests, RequestDigests* digests) {
    if (digests) digests->reserve(requests.size());
    for (const auto& r : requests) {
        if (r.chain_id != config_.chain_id || r.ops.empty()) return false;
        const Bytes enc = encode(r);
        const Digest d = digest_of(enc);
        if (!suite_.verify_request(r, d)) return false;
        if (digests) digests->push_back({d, enc.size()});
    }
    return true;
}

// Coin shares of an in-window epoch, one per (proposer, round), rounds up to
// kCoinRoundMax that draw the threshold coin, at most kCoinChecksPerMember x n of them.
void VerifyPool::preverify_aba(const Envelope& env) {
    if (!in_window(env.epoch)) {
        counters_.checks_skipped.fetch_add(1);
        return;
    }
    auto bundle = decode_aba_bundle(env.body, config_.limits);
    if (!bundle) return;
    std::set<std::pair<NodeId, Round>> done;
    const std::size_t cap = kCoinChecksPerMember * config_.n;
    for (const auto& m : bundle.value().messages) {
        if (m.type != AbaType::Coin || m.proposer >= config_.n) continue;
        // A share for a round with a fixed coin is a fault the core records unverified.
        if (m.round > kCoinRoundMax || fixed_coin(m.round) || done.size() >= cap) {
            counters_.checks_skipped.fetch_add(1);
            continue;
        }
        if (!done.insert({m.proposer, m.round}).second) continue;
        (void)suite_.verify_coin_share(
            env.sender, coin_name(config_.chain_id, env.epoch, m.proposer, m.round), m.coin_share);
    }
}

// Runs the checks the core will repeat, so they hit the cache on the loop, after
// cheap filters (window, round, solicitation, a cap per envelope). False: the
// envelope is certainly refused by the core (a block or batch holding an invalid
// client request); other failures are left to the core.
bool VerifyPool::preverify(const Envelope& env, int depth, RequestDigests* digests,
                           VerifyResult* result) {
    const Limits& limits = config_.limits;
    switch (env.kind) {
        case Kind::Block: {
            if (!in_window(env.epoch)) {
                counters_.checks_skipped.fetch_add(1);
                return true;
            }
            auto b = decode_block(env.body, limits);
            if (!b) return true;
            if (!preverify_requests(b.value().requests, digests)) return false;
            if (result) result->block = std::move(b.value());
            return true;
        }
        case Kind::Requests: {
            auto batch = decode_request_batch(env.body, limits);
            if (!batch) return true;
            if (!preverify_requests(batch.value().requests, digests)) return false;
            if (result) result->batch = std::move(batch.value());
            return true;
        }
        case Kind::Cert: {
            auto c = decode_certificate(env.body, limits);
            if (!c) return true;
            std::set<NodeId> done;
            for (const auto& s : c.value().sigs) {
                if (s.signer >= config_.n || !done.insert(s.signer).second) continue;
                (void)cert_signature_valid(suite_, config_.chain_id, c.value(), s);
            }
            return true;
        }
        case Kind::Aba:
            preverify_aba(env);
            return true;
        case Kind::FetchReply: {
            if (depth > 0) return true;
            if (!solicited(env.sender)) {
                counters_.checks_skipped.fetch_add(1);
                return true;  // the node drops it (daemon/node.cpp)
            }
            auto reply = decode_fetch_reply(env.body, limits);
            if (!reply) return true;
            for (const auto& inner : reply.value().envelopes) {
                auto opened = open_envelope(inner, suite_, config_, env.sender);
                if (opened) (void)preverify(opened.value(), depth + 1);
            }
            return true;
        }
        default:
            return true;
    }
}

}  // namespace tob::daemon
