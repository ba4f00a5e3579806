// The running daemon: a Boost.Asio event loop around the netlink queue and the gateway,
// signals (SIGINT/SIGTERM stop, SIGHUP re-reads the policy file), a once-a-second tick
// (expiry, status file, queue statistics) and the optional kernel rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "alg/daemon/gateway.hpp"
#include "nftables/rules.hpp"

namespace pptp::daemon {

inline constexpr double kTickSeconds = 1.0;
inline constexpr double kSummaryEverySeconds = 60.0;

struct DaemonOptions {
  std::uint16_t queue = 0;
  std::string policy_file;
  std::string status_file;
  bool install_rules = false;
  std::optional<nft::Backend> backend;  // empty: detect
  bool fail_open = false;
  GatewayOptions gateway;
};

// Runs until SIGINT or SIGTERM. Returns the process exit status.
int run_daemon(const DaemonOptions& options);

// Validates the policy file; the error names the line and what is wrong.
Result<bool, std::string> check_policy_file(const std::string& path);

// Renders a status file (JSON written by the daemon) as a table.
std::string render_status(const nlohmann::json& status);

}  // namespace pptp::daemon
