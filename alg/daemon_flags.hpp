// The daemon's command-line flags, each with its key in the configuration file
// (alg/config): declared here, read by main.cpp.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "alg/config/config.hpp"
#include "alg/daemon/daemon.hpp"
#include "gateway/budgets.hpp"
#include "nftables/rules.hpp"
#include "policy/policy.hpp"
#include "proxy/limits.hpp"

namespace pptp::cli {

// --config FILE when given (on any of `flags`), else the default file if it exists; empty:
// no configuration file.
std::string config_path(const std::vector<CLI::Option*>& flags, const std::string& given);
pptp::Result<pptp::config::Settings, std::string> read_config(const std::string& path);
std::optional<pptp::nft::Backend> backend_of(const std::string& text);
// The check of a --backend flag: one of nft::kBackendChoices.
CLI::IsMember backend_choice();
// The check of --ha-commit-timeout: seconds within daemon::kMinCommitTimeout..kMaxCommitTimeout.
CLI::Validator commit_timeout_range();

// A flag given on the command line wins over the file's key.
template <class T, class U>
void take(const std::optional<T>& key, const CLI::Option* flag, U& into) {
  if (key && flag->count() == 0) into = *key;
}

// The daemon's settings: flags, each with its key in the configuration file.
struct DaemonFlags {
  pptp::daemon::DaemonOptions d;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string backend = "auto";
  bool no_fast_path = false;
  std::string fast_path_mode = "ip";
  CLI::Option* fast_path_mode_flag = nullptr;
  double idle_timeout = pptp::track::kCallIdleTimeout;
  std::string config_file;
  CLI::Option *config = nullptr, *queue = nullptr, *policy = nullptr, *pid_file = nullptr,
              *status_file = nullptr, *log = nullptr, *backend_flag = nullptr, *install_rules = nullptr,
              *fail_open = nullptr, *no_fast_path_flag = nullptr, *keep_fast_path = nullptr,
              *allow_unknown_gre = nullptr, *idle = nullptr, *user = nullptr, *syn_limit = nullptr,
              *queued_gre_limit = nullptr, *control_socket = nullptr, *metrics_listen = nullptr,
              *log_format_flag = nullptr, *proxy_flag = nullptr;
  bool proxy = false;
  // Budgets (docs/reliability.md): MiB and KiB as the flags take them.
  std::uint32_t memory_budget = pptp::gateway::kDefaultMemoryBudgetMiB;
  std::uint32_t source_reassembly = pptp::gateway::kDefaultSourceReassemblyKiB;
  CLI::Option *memory_budget_flag = nullptr, *source_connections = nullptr, *source_half_open = nullptr,
              *source_calls = nullptr, *source_reassembly_flag = nullptr;
  std::uint32_t source_held = pptp::gateway::kDefaultSourceHeldKiB;  // KiB
  CLI::Option* source_held_flag = nullptr;
  void add_budgets_to(CLI::App& app);
  // High availability (docs/ha.md).
  std::string ha_node = "0";
  CLI::Option *ha_peer = nullptr, *ha_listen = nullptr, *ha_key_file = nullptr, *ha_node_flag = nullptr,
              *ha_commit_command = nullptr, *ha_virtual_address = nullptr, *ha_commit_timeout = nullptr;
  void add_ha_to(CLI::App& app);
  void take_ha_keys(const pptp::config::Settings& k);
  // Proxy mode (docs/proxy.md): calls per client address over all its connections.
  std::uint32_t proxy_source_calls = pptp::proxy::kMaxCallsPerSource;
  CLI::Option* proxy_source_calls_flag = nullptr;
  // Proxy mode: calls in all (at most kMaxCalls: the Call-ID pool).
  std::uint32_t proxy_calls = pptp::proxy::kMaxCalls;
  CLI::Option* proxy_calls_flag = nullptr;
  // Proxy mode: control connections per client address open at once.
  std::uint32_t proxy_source_connections = pptp::proxy::kMaxConnectionsPerSource;
  CLI::Option* proxy_source_connections_flag = nullptr;
  // Proxy mode: the servers it proxies (--proxy-servers PREFIX[,PREFIX...]; empty: every one).
  std::string proxy_servers;
  CLI::Option* proxy_servers_flag = nullptr;
  // Proxy mode: the outside's interfaces (--proxy-outside NAME[,NAME...]; empty: the default route's).
  std::string proxy_outside;
  CLI::Option* proxy_outside_flag = nullptr;

  void add_to(CLI::App& app);
  void take_keys(const pptp::config::Settings& k);
  void add_rate_limits(CLI::App& app);
};

// --proxy-servers as prefixes, --proxy-outside as interface names (empty: none given);
// nothing, after saying why on stderr, when invalid or given without --proxy.
std::optional<std::vector<pptp::policy::Prefix>> proxy_servers_of(const DaemonFlags& f);
std::optional<std::vector<std::string>> proxy_outside_of(const DaemonFlags& f);
// Why the daemon would refuse these settings at start, judged from them alone (start_checks.cpp;
// `pptp-alg check --config` too); empty text: already said on stderr.
std::optional<std::string> start_error(const DaemonFlags& f);
// `status` and `reload` (daemon_files.cpp): a status file no daemon writes any more, said;
// whether a PID is pptp-alg's.
std::optional<std::string> stale_status_note(const std::string& file);
bool runs_pptp_alg(long pid);
// Claims the daemon's mode ("transparent", "proxy") in this network namespace for the
// process's life; why not when another daemon holds it.
std::optional<std::string> claim_instance(std::string_view mode);
// The transparent gateway's settings a proxy would leave unused, set away from their defaults.
std::vector<std::string> settings_a_proxy_ignores(const DaemonFlags& f);

}  // namespace pptp::cli
