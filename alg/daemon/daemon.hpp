// The running daemon: a Boost.Asio event loop around the netlink queue and the gateway,
// signals (SIGINT/SIGTERM stop, SIGHUP reloads the policy file; an invalid file is rejected
// and the old policy keeps running), a once-a-second tick (expiry, status file, queue
// statistics, fast-path counters) and the optional kernel rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "alg/daemon/ha_options.hpp"
#include "gateway/types.hpp"
#include "nftables/gre_offload.hpp"
#include "nftables/rules.hpp"

namespace pptp::daemon {

inline constexpr double kTickSeconds = 1.0;
inline constexpr double kSummaryEverySeconds = 60.0;
// Fast path: re-arm live elements this often (their timeout is nft::kFastPathTimeoutSeconds),
// read their counters at most this often (and at least four times per call idle timeout).
inline constexpr double kFastPathRefreshSeconds = 30.0;
inline constexpr double kFastPathCountSeconds = 5.0;
// The status file is rewritten every tick, less often when that is costly, never less
// often than this (alg/daemon/pacing.hpp).
inline constexpr double kStatusAtMostSeconds = 60.0;

struct DaemonOptions {
  std::uint16_t queue = 0;
  std::string policy_file;
  std::string status_file;
  std::string pid_file;  // for `pptp-alg reload` and init systems
  bool install_rules = false;
  std::optional<nft::Backend> backend;  // empty: detect
  bool fail_open = false;
  bool fast_path = true;  // hand established calls' GRE to the kernel where it can
  // Ip: table ip pptp_alg's rules forward it after routing; Netdev: also table netdev
  // pptp_alg_fast at ingress, for calls whose routes allow it (nftables/gre_offload.hpp).
  nft::FastPathMode fast_path_mode = nft::FastPathMode::Ip;
  // At exit, leave the fast path in the kernel for the next start to adopt (a restart that
  // keeps offloaded calls up); only the queue rules go.
  bool keep_fast_path = false;
  // After setup, run as this user (started as root); empty: stay who we were started as.
  // Either way every capability but CAP_NET_ADMIN goes (alg/daemon/privileges.hpp).
  std::string user;
  gateway::GatewayOptions gateway;
  // Per-source rate limits before the queue (nft::RuleOptions), 0 = off.
  std::uint32_t syn_limit = nft::kDefaultSynPerSecond;
  std::uint32_t queued_gre_limit = nft::kDefaultQueuedGrePerSecond;
  // The control socket for `pptp-alg ctl` (empty: none); the metrics HTTP listener
  // ADDR:PORT (empty: none).
  std::string control_socket;
  std::string metrics_listen;
  HaOptions ha;  // high availability (docs/ha.md); off unless ha.peer is set
};

// The kernel rules these options ask for (`pptp-alg rules` prints them with fast_path as given).
nft::RuleOptions rule_options(const DaemonOptions& options, bool fast_path);

// Runs until SIGINT or SIGTERM. Returns the process exit status.
int run_daemon(const DaemonOptions& options);

// Renders a status file (JSON written by the daemon) as a table.
std::string render_status(const nlohmann::json& status);

}  // namespace pptp::daemon
