#include "alg/service/systemd.hpp"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>

namespace pptp::service {

namespace {

// The notify protocol is newline-separated VAR=value lines: a newline inside a value would
// start a new assignment.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

void send(const std::string& state) {
  // unset_environment = 0: later notifications need $NOTIFY_SOCKET too. The result is
  // ignored on purpose: a manager that cannot be told is not a reason to stop forwarding.
  (void)sd_notify(0, state.c_str());
}

}  // namespace

bool under_systemd() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && *socket != '\0';
}

void notify_ready(std::string_view status) {
  std::string state = "READY=1";
  if (!status.empty()) state += "\nSTATUS=" + one_line(status);
  send(state);
}

void notify_reloading() {
  // MONOTONIC_USEC lets systemd 253+ (Type=notify-reload) match the reload to this
  // message; older managers ignore it.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notify_status(std::string_view status) { send("STATUS=" + one_line(status)); }

void notify_watchdog() { send("WATCHDOG=1"); }

void notify_stopping() { send("STOPPING=1"); }

std::optional<double> watchdog_interval() {
  std::uint64_t usec = 0;
  // 0 unset_environment; > 0 only when $WATCHDOG_USEC is set for this very process.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return static_cast<double>(usec) / 2e6;
}

}  // namespace pptp::service
