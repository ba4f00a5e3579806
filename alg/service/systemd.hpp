// The service manager's side of the daemon's life (sd_notify(3), systemd.service(5)
// Type=notify): ready, reloading, a one-line status, watchdog pings, stopping. libsystemd
// speaks the notify protocol; each call is a no-op when the process does not run under
// systemd (no $NOTIFY_SOCKET), so the daemon calls them unconditionally. Not for the packet
// path: each is one datagram on a local socket.
#pragma once

#include <optional>
#include <string_view>

namespace pptp::service {

// True when a service manager listens ($NOTIFY_SOCKET is set).
bool under_systemd();

// Start-up finished: the queue is open and the rules are installed. Sent again after a
// reload (READY=1 ends the RELOADING state). `status` is optional text for systemctl status.
void notify_ready(std::string_view status = {});
// A reload (SIGHUP) begins; follow with notify_ready() once the new policy is in force or
// rejected.
void notify_reloading();
// One line shown by `systemctl status` (newlines become spaces).
void notify_status(std::string_view status);
// The watchdog ping (WATCHDOG=1); send it from the event loop, every watchdog_interval().
void notify_watchdog();
// The shutdown begins (rules being removed, calls closed).
void notify_stopping();

// How often to ping: half of the unit's WatchdogSec=, in seconds, or empty when the service
// manager expects no pings (no watchdog, or not under systemd).
std::optional<double> watchdog_interval();

}  // namespace pptp::service
