#include "daemon/notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

namespace tob::daemon {

Notifier::Notifier() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    enabled_ = socket != nullptr && socket[0] != '\0';
    std::uint64_t usec = 0;
    // > 0: the watchdog is on and meant for this process (WATCHDOG_PID, if set, is us).
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        watchdog_ = std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec));
    }
}

bool Notifier::send(std::string_view state) const {
    if (!enabled_) return false;
    const std::string text(state);
    const int r = sd_notify(0, text.c_str());
    if (r <= 0) {
        spdlog::debug("sd_notify(\"{}\") failed: {}", text,
                      r < 0 ? std::strerror(-r) : "NOTIFY_SOCKET not set");
        return false;
    }
    return true;
}

void Notifier::ready() { send("READY=1"); }

void Notifier::status(const std::string& text) {
    std::string line = "STATUS=";
    for (char c : text) line += (c == '\n' || c == '\r') ? ' ' : c;
    send(line);
}

void Notifier::watchdog() { send("WATCHDOG=1"); }

void Notifier::stopping() { send("STOPPING=1"); }

void Notifier::reloading() {
    // systemd >= 253 (Type=notify-reload) wants the CLOCK_MONOTONIC time of the
    // reload request with RELOADING=1; older versions ignore the extra field.
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ull +
                      static_cast<unsigned long long>(now.tv_nsec) / 1000ull;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void Notifier::ready_again() { send("READY=1"); }

}  // namespace tob::daemon
