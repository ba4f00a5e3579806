// The daemon's configuration file (/etc/pptp-alg/pptp-alg.conf, YAML): one key per daemon
// flag, named as the flag without its dashes (docs/daemon.md#configuration-file). Flags given
// on the command line override keys. Unknown keys, wrong types and keys given twice are
// errors with the line and column, so a typo never silently changes what the firewall does.
// Read at start and by `pptp-alg check --config`, never on the packet path.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "alg/core/result.hpp"
#include "policy/loader.hpp"

namespace pptp::config {

inline constexpr std::string_view kDefaultConfigFile = "/etc/pptp-alg/pptp-alg.conf";
// Where the packaged service writes (systemd's RuntimeDirectory=pptp-alg); `pptp-alg
// reload` and `pptp-alg status` look there when neither a flag nor the file says otherwise.
inline constexpr std::string_view kDefaultPidFile = "/run/pptp-alg/pptp-alg.pid";
inline constexpr std::string_view kDefaultStatusFile = "/run/pptp-alg/status.json";

// What the file sets; a key it does not set stays empty (the flag's default applies).
struct Settings {
  std::optional<std::uint16_t> queue;
  std::optional<std::string> policy;
  std::optional<std::string> pid_file;
  std::optional<std::string> status_file;
  std::optional<std::string> log_level;
  std::optional<std::string> backend;
  std::optional<bool> install_rules;
  std::optional<bool> fail_open;
  std::optional<bool> no_fast_path;
  std::optional<bool> keep_fast_path;
  std::optional<std::string> fast_path_mode;  // key fast-path: ip or netdev
  std::optional<bool> allow_unknown_gre;
  std::optional<double> idle_timeout;
  std::optional<std::string> user;
  std::optional<std::uint32_t> syn_limit;
  std::optional<std::uint32_t> queued_gre_limit;
  std::optional<std::string> control_socket;
  std::optional<std::string> metrics_listen;
  std::optional<std::string> log_format;
  std::optional<bool> proxy;
  // Budgets (docs/reliability.md): MiB for the daemon, and per source.
  std::optional<std::uint32_t> memory_budget;
  std::optional<std::uint32_t> source_connections;
  std::optional<std::uint32_t> source_half_open;
  std::optional<std::uint32_t> source_calls;
  std::optional<std::uint32_t> source_reassembly;  // KiB
  std::optional<std::uint32_t> source_held;        // KiB
  // High availability (docs/ha.md): the sync link's addresses, the shared key's file, the node.
  std::optional<std::string> ha_peer, ha_listen, ha_key_file, ha_node, ha_commit_command, ha_virtual_address;
  std::optional<double> ha_commit_timeout;  // seconds
  // Proxy mode (docs/proxy.md): calls one client address may hold over all its connections,
  // and control connections it may hold open at once.
  std::optional<std::uint32_t> proxy_source_calls, proxy_source_connections, proxy_calls;
  std::optional<std::string> proxy_servers;  // "PREFIX[,PREFIX...]": the servers proxied
  std::optional<std::string> proxy_outside;  // "NAME[,NAME...]": interfaces never proxied
};

// The same positioned error as rules.yaml's (line and column 1-based, 0 for the whole
// file); to_string(e, origin) prints "ORIGIN:LINE:COLUMN: message".
using ConfigError = policy::PolicyError;
using policy::to_string;

// Every key the file may hold, in the order of docs/daemon.md.
std::span<const std::string_view> key_names();

Result<Settings, ConfigError> parse_config(std::string_view yaml);
// Reads and parses a file; the error is ready to print ("FILE:LINE:COLUMN: what").
Result<Settings, std::string> load_config_file(const std::string& path);

}  // namespace pptp::config
