#pragma once
// ClientConnections: how many connections the client ROUTER holds, in all and
// per remote address, and which one gives way when they are all taken (issue
// 11: "nothing grows with the number of clients", and every source a fair share).
//
// ZeroMQ accepts every TCP connection on a bound socket and keeps, per
// connection, up to its receive high-water mark of frames (client_hwm frames of
// up to request_bytes_max + 1 KiB each). The transport watches the client
// ROUTER's monitor: ACCEPTED (with the connection's file descriptor) and
// DISCONNECTED (the same descriptor) pair up, so the set of open descriptors is
// exact. The transport shuts a connection's socket down to drop it: libzmq sees
// the end of the stream and drops it (DISCONNECTED follows). With the budget's
// client_hwm (daemon/memory_budget.h) the receive memory of all client
// connections together is then at most total_max x client_hwm x client_frame_max
// bytes.
//
// Who keeps a slot. A connection *earns* its slot when a request it carried was
// admitted (its signature checked, its client allowed, and it entered the pool or
// was answered from the dedup table; `credit`); the slot stays earned for
// `credit_ms` after the last such request. A new connection is refused when its
// address already holds per_address_max slots. When all total_max slots are
// taken, it takes the slot of a connection that has not earned one: of the
// address holding the most such connections, the oldest there, provided the
// newcomer's address then still holds fewer unearned slots than that address did
// (so the slots tend to an even share per address, and addresses that already
// hold equal shares do not churn them between each other); otherwise the
// newcomer is refused. So a stranger who fills the slots from fewer addresses
// than there are slots (two or more each) and sends nothing valid can no longer
// keep clients out: an honest client's new connection displaces one of the
// stranger's, and once it has had a request admitted no connection displaces it.
// What is left (docs/attacks.md, connection_squat): a stranger with at least
// total_max addresses, one slot each, still refuses newcomers until one of its
// connections goes; and with open permissions a party that gets a request
// admitted on each connection every credit_ms holds slots like that many clients.
//
// Replies. libzmq bounds what a ROUTER queues for one connection in messages
// only (its send high-water mark), and one reply may carry up to
// request_output_bytes_max of outputs: a client that never reads would make the
// node hold a high-water mark of the largest replies per connection. So each held
// connection counts the bytes the node pushed to it, and `may_send` compares them
// with what the kernel took from libzmq on its descriptor (`written`: the bytes
// the peer acknowledged plus those still in the socket's send queue, from
// TCP_INFO and SIOCOUTQ). A reply that would leave more than the connection's
// share (the memory budget's client_send_each_bytes) inside the process is not
// sent (the transport counts it); the client asks again (a retried Submit is
// answered from the dedup table). ZeroMQ's framing and Curve's box only make
// `written` larger than the bodies pushed, so the estimate of what is held errs
// low by a few dozen bytes a message, never high. A connection whose frames
// arrived before its ACCEPTED event was read has no routing id here yet: its
// replies go out unmetered until its next frame, bounded by the high-water mark.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tob::daemon {

class ClientConnections {
  public:
    /// How long one admitted request keeps a connection's slot earned.
    static constexpr std::uint64_t kCreditMsDefault = 30'000;

    ClientConnections(std::size_t total_max, std::size_t per_address_max,
                      std::uint64_t credit_ms = kCreditMsDefault)
        : total_max_(total_max), per_address_max_(per_address_max), credit_ms_(credit_ms) {}

    struct Accepted {
        bool held = false;  // false: refused; the transport shuts `fd` down
        int evicted = -1;   // >= 0: this held connection gave way; shut it down
    };
    /// A connection was accepted on descriptor `fd` from `address` at `now_ms`.
    Accepted on_accepted(int fd, const std::string& address, std::uint64_t now_ms);
    /// The connection on `fd` is gone (unknown descriptors are ignored).
    void on_disconnected(int fd);
    /// A frame arrived on `fd` under the ROUTER's `routing_id` (the id `credit`
    /// names the connection by). Unknown descriptors are ignored.
    void on_frame(int fd, const std::string& routing_id);
    /// A request from the connection `routing_id` was admitted at `now_ms`.
    void credit(const std::string& routing_id, std::uint64_t now_ms);

    /// Whether `bytes` more for `routing_id` keep what the node holds for that
    /// connection within `limit` (see "Replies" above). `written(fd)` returns the
    /// bytes the kernel has taken on descriptor fd so far, or nullopt (then the
    /// reply goes: the descriptor is being replaced). It is asked only when the
    /// last answer does not already show room. Unknown routing ids: true.
    template <typename Written>
    bool may_send(const std::string& routing_id, std::uint64_t bytes, std::uint64_t limit,
                  Written written) {
        auto r = fd_by_routing_id_.find(routing_id);
        Held* h = r == fd_by_routing_id_.end() ? nullptr : held(r->second);
        if (h == nullptr || fits(*h, bytes, limit)) return true;
        const std::optional<std::uint64_t> w = written(r->second);
        if (!w) return true;
        h->written_seen = std::max(h->written_seen, *w);
        return fits(*h, bytes, limit);
    }
    /// `bytes` were pushed to `routing_id`.
    void sent(const std::string& routing_id, std::uint64_t bytes) {
        if (Held* h = held_by_routing_id(routing_id)) h->pushed += bytes;
    }
    /// What the node holds for its connections now (asks `written` for each one
    /// that has pushed bytes the last answer did not cover).
    template <typename Written>
    std::uint64_t replies_held(Written written) {
        std::uint64_t total = 0;
        for (auto& [fd, h] : by_fd_) {
            if (h.pushed <= h.written_seen) continue;
            if (const std::optional<std::uint64_t> w = written(fd))
                h.written_seen = std::max(h.written_seen, *w);
            if (h.pushed > h.written_seen) total += h.pushed - h.written_seen;
        }
        return total;
    }

    /// Forgets every descriptor for which `still_open(fd, address)` is false (a
    /// DISCONNECTED event libzmq's monitor queue dropped when it was full would
    /// otherwise hold its slot for good). Returns how many were forgotten.
    template <typename StillOpen>
    std::size_t reconcile(StillOpen still_open) {
        std::vector<int> gone;
        for (const auto& [fd, held] : by_fd_)
            if (!still_open(fd, held.address)) gone.push_back(fd);
        for (int fd : refused_)
            if (!still_open(fd, std::string())) gone.push_back(fd);
        for (int fd : gone) on_disconnected(fd);
        return gone.size();
    }

    std::size_t open() const { return by_fd_.size(); }
    std::size_t refused_pending() const { return refused_.size(); }
    std::size_t open_from(const std::string& address) const;
    std::size_t total_max() const { return total_max_; }
    /// Held connections whose slot is earned at `now_ms`.
    std::size_t earned(std::uint64_t now_ms) const;

  private:
    struct Held {
        std::string address;
        std::uint64_t order = 0;                 // accept order: lower is older
        std::optional<std::uint64_t> credit_at;  // last admitted request
        std::string routing_id;                  // empty until its first frame
        std::uint64_t pushed = 0;                // reply bytes pushed to libzmq
        std::uint64_t written_seen = 0;          // bytes the kernel had taken, last asked
    };
    Held* held(int fd);
    Held* held_by_routing_id(const std::string& routing_id);
    // Whether `bytes` more keep what `h` holds (by the kernel's last answer) within `limit`.
    static bool fits(const Held& h, std::uint64_t bytes, std::uint64_t limit) {
        return h.pushed <= h.written_seen || h.pushed - h.written_seen + bytes <= limit;
    }
    bool earned(const Held& h, std::uint64_t now_ms) const {
        return h.credit_at && now_ms < *h.credit_at + credit_ms_;
    }
    // -1: no held connection gives way to a newcomer from `newcomer`.
    int victim(const std::string& newcomer, std::uint64_t now_ms) const;
    void drop(int fd);  // forget a held connection
    // Forgets routing_id -> fd unless the id now names another connection.
    void forget_routing_id(int fd, const std::string& routing_id);

    std::size_t total_max_;
    std::size_t per_address_max_;
    std::uint64_t credit_ms_;
    std::uint64_t next_order_ = 0;
    std::map<int, Held> by_fd_;  // bounded by total_max_
    std::map<std::string, std::size_t> by_address_;
    std::map<std::string, int> fd_by_routing_id_;  // held connections that sent a frame
    std::set<int> refused_;  // refused or evicted, not yet reported disconnected
};

}  // namespace tob::daemon
