// ClientConnections: the client ROUTER's connection slots (client_connections.h).

#include "daemon/client_connections.h"

namespace tob::daemon {

ClientConnections::Accepted ClientConnections::on_accepted(int fd, const std::string& address,
                                                           std::uint64_t now_ms) {
    on_disconnected(fd);  // a descriptor reused before its DISCONNECTED was seen
    Accepted out;
    if (open_from(address) >= per_address_max_) {
        refused_.insert(fd);  // until libzmq reports it gone
        return out;
    }
    if (by_fd_.size() >= total_max_) {
        out.evicted = victim(address, now_ms);
        if (out.evicted < 0) {
            refused_.insert(fd);
            return out;
        }
        drop(out.evicted);
        refused_.insert(out.evicted);
    }
    Held h;
    h.address = address;
    h.order = next_order_++;
    by_fd_.emplace(fd, std::move(h));
    ++by_address_[address];
    out.held = true;
    return out;
}

int ClientConnections::victim(const std::string& newcomer, std::uint64_t now_ms) const {
    // Unearned connections per address. The heaviest address gives way, its
    // oldest connection first (map order makes ties deterministic), but only when
    // the swap leaves the newcomer's address strictly lighter than that address
    // was: the slots tend to an even share per address instead of churning
    // between addresses that already hold as many each.
    std::map<std::string, std::size_t> unearned;
    for (const auto& [fd, h] : by_fd_)
        if (!earned(h, now_ms)) ++unearned[h.address];
    const std::string* heaviest = nullptr;
    std::size_t most = 0;
    for (const auto& [address, count] : unearned) {
        if (count > most) {
            most = count;
            heaviest = &address;
        }
    }
    const auto mine = unearned.find(newcomer);
    const std::size_t own = mine == unearned.end() ? 0 : mine->second;
    if (heaviest == nullptr || own + 1 >= most) return -1;
    int fd_out = -1;
    std::uint64_t oldest = 0;
    for (const auto& [fd, h] : by_fd_) {
        if (h.address != *heaviest || earned(h, now_ms)) continue;
        if (fd_out < 0 || h.order < oldest) {
            fd_out = fd;
            oldest = h.order;
        }
    }
    return fd_out;
}

void ClientConnections::drop(int fd) {
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) return;
    auto a = by_address_.find(it->second.address);
    if (a != by_address_.end() && --a->second == 0) by_address_.erase(a);
    forget_routing_id(fd, it->second.routing_id);
    by_fd_.erase(it);
}

void ClientConnections::forget_routing_id(int fd, const std::string& routing_id) {
    auto r = fd_by_routing_id_.find(routing_id);
    if (r != fd_by_routing_id_.end() && r->second == fd) fd_by_routing_id_.erase(r);
}

void ClientConnections::on_disconnected(int fd) {
    refused_.erase(fd);
    drop(fd);
}

void ClientConnections::on_frame(int fd, const std::string& routing_id) {
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end() || it->second.routing_id == routing_id) return;
    forget_routing_id(fd, it->second.routing_id);
    it->second.routing_id = routing_id;
    fd_by_routing_id_[routing_id] = fd;
}

void ClientConnections::credit(const std::string& routing_id, std::uint64_t now_ms) {
    if (Held* h = held_by_routing_id(routing_id)) h->credit_at = now_ms;
}

ClientConnections::Held* ClientConnections::held(int fd) {
    auto it = by_fd_.find(fd);
    return it == by_fd_.end() ? nullptr : &it->second;
}

ClientConnections::Held* ClientConnections::held_by_routing_id(const std::string& routing_id) {
    auto r = fd_by_routing_id_.find(routing_id);
    return r == fd_by_routing_id_.end() ? nullptr : held(r->second);
}

std::size_t ClientConnections::earned(std::uint64_t now_ms) const {
    std::size_t n = 0;
    for (const auto& [fd, h] : by_fd_)
        if (earned(h, now_ms)) ++n;
    return n;
}

std::size_t ClientConnections::open_from(const std::string& address) const {
    auto it = by_address_.find(address);
    return it == by_address_.end() ? 0 : it->second;
}

}  // namespace tob::daemon
