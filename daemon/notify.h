#pragma once
// systemd service notification (sd_notify(3)) for tobd under `Type=notify`.
//
// libsystemd speaks the protocol; this class only decides what to send and
// makes every call a no-op outside systemd (NOTIFY_SOCKET unset), so the event
// loop calls it unconditionally:
//
//   READY=1       once storage is open, peers are being dialled and the node serves
//   STATUS=...    a one-line human summary (epoch, peers, pool), on change
//   WATCHDOG=1    from the event loop at half of watchdog_interval(): a stuck loop
//                 stops pinging and systemd restarts the service (WatchdogSec=)
//   RELOADING=1   on SIGHUP, before re-reading the config; READY=1 again after
//   STOPPING=1    when shutdown starts
//
// NotifyAccess=main in the unit means only the main process may notify; any
// thread of it may (each call sends one datagram; the calls are thread-safe).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tob::daemon {

class Notifier {
  public:
    /// Reads NOTIFY_SOCKET and the watchdog settings (WATCHDOG_USEC,
    /// WATCHDOG_PID) from the environment, leaving them set.
    Notifier();

    /// True when running under a service manager that wants notifications.
    bool enabled() const { return enabled_; }
    /// The watchdog interval if systemd enabled the watchdog for this process
    /// (sd_watchdog_enabled); ping at half of it.
    std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_; }

    void ready();                          // READY=1
    void status(const std::string& text);  // STATUS=<text> (newlines become spaces)
    void watchdog();                       // WATCHDOG=1
    void stopping();                       // STOPPING=1
    void reloading();                      // RELOADING=1 and MONOTONIC_USEC=<now>
    void ready_again();                    // READY=1 after a reload

    /// Sends `state` as is (newline-separated assignments). False on failure or
    /// when disabled. The methods above use it.
    bool send(std::string_view state) const;

  private:
    bool enabled_ = false;
    std::optional<std::chrono::microseconds> watchdog_;
};

}  // namespace tob::daemon
