#pragma once
// ClientConnections: how many connections the client ROUTER holds, in all and
// per remote address, and which one to refuse (issue 11: "nothing grows with the
// number of clients").
//
// ZeroMQ accepts every TCP connection on a bound socket and keeps, per
// connection, up to its receive high-water mark of frames (client_hwm frames of
// up to request_bytes_max + 1 KiB each). The transport watches the client
// ROUTER's monitor: ACCEPTED (with the connection's file descriptor) and
// DISCONNECTED (the same descriptor) pair up, so the set of open descriptors is
// exact. A connection that would take the count over `total_max`, or its remote
// address over `per_address_max`, is refused: the transport shuts its socket
// down, libzmq sees the end of the stream and drops it (DISCONNECTED follows).
// With the budget's client_hwm (daemon/memory_budget.h) the receive memory of
// all client connections together is then at most
// total_max x client_hwm x client_frame_max bytes.
//
// One address may hold at most per_address_max of the slots, so one host cannot
// take them all; a stranger with many addresses can still fill the slots (and
// keep honest clients out of this node's client plane, not out of consensus: the
// members talk over their own sockets), which costs it connections, not the
// node memory.

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace tob::daemon {

class ClientConnections {
  public:
    ClientConnections(std::size_t total_max, std::size_t per_address_max)
        : total_max_(total_max), per_address_max_(per_address_max) {}

    /// A connection was accepted on descriptor `fd` from `address`. False: it is
    /// over a limit and must be refused (it does not count as held).
    bool on_accepted(int fd, const std::string& address);
    /// The connection on `fd` is gone (unknown descriptors are ignored).
    void on_disconnected(int fd);

    /// Forgets every descriptor for which `still_open(fd, address)` is false (a
    /// DISCONNECTED event libzmq's monitor queue dropped when it was full would
    /// otherwise hold its slot for good). Returns how many were forgotten.
    template <typename StillOpen>
    std::size_t reconcile(StillOpen still_open) {
        std::vector<int> gone;
        for (const auto& [fd, address] : by_fd_)
            if (!still_open(fd, address)) gone.push_back(fd);
        for (int fd : refused_)
            if (!still_open(fd, std::string())) gone.push_back(fd);
        for (int fd : gone) on_disconnected(fd);
        return gone.size();
    }

    std::size_t open() const { return by_fd_.size(); }
    std::size_t refused_pending() const { return refused_.size(); }
    std::size_t open_from(const std::string& address) const;
    std::size_t total_max() const { return total_max_; }

  private:
    std::size_t total_max_;
    std::size_t per_address_max_;
    std::map<int, std::string> by_fd_;  // bounded by the process's descriptor limit
    std::map<std::string, std::size_t> by_address_;
    std::set<int> refused_;  // refused, not yet reported disconnected
};

}  // namespace tob::daemon
