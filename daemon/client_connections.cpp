// ClientConnections: the client ROUTER's connection count (client_connections.h).

#include "daemon/client_connections.h"

namespace tob::daemon {

bool ClientConnections::on_accepted(int fd, const std::string& address) {
    on_disconnected(fd);  // a descriptor reused before its DISCONNECTED was seen
    if (by_fd_.size() >= total_max_ || open_from(address) >= per_address_max_) {
        refused_.insert(fd);  // until libzmq reports it gone
        return false;
    }
    by_fd_.emplace(fd, address);
    ++by_address_[address];
    return true;
}

void ClientConnections::on_disconnected(int fd) {
    refused_.erase(fd);
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) return;
    auto a = by_address_.find(it->second);
    if (a != by_address_.end() && --a->second == 0) by_address_.erase(a);
    by_fd_.erase(it);
}

std::size_t ClientConnections::open_from(const std::string& address) const {
    auto it = by_address_.find(address);
    return it == by_address_.end() ? 0 : it->second;
}

}  // namespace tob::daemon
