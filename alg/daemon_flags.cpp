#include "alg/daemon_flags.hpp"

#include <charconv>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <limits>

#include "alg/control/protocol.hpp"
#include "proxy/proxy_rules.hpp"

namespace pptp::cli {

std::string config_path(const std::vector<CLI::Option*>& flags, const std::string& given) {
  for (const CLI::Option* f : flags) {
    if (f->count() > 0) return given;
  }
  std::error_code ec;
  const std::string fallback(pptp::config::kDefaultConfigFile);
  return std::filesystem::exists(fallback, ec) ? fallback : std::string();
}

pptp::Result<pptp::config::Settings, std::string> read_config(const std::string& path) {
  if (path.empty()) return pptp::config::Settings{};
  return pptp::config::load_config_file(path);
}

std::optional<pptp::nft::Backend> backend_of(const std::string& text) {
  if (text == "auto") return std::nullopt;
  pptp::nft::Backend b;
  pptp::nft::parse_backend(text, b);  // CLI11 or the config loader already checked the choice
  return b;
}

CLI::IsMember backend_choice() {
  return CLI::IsMember(std::vector<std::string>(pptp::nft::kBackendChoices.begin(), pptp::nft::kBackendChoices.end()));
}

// --ha-commit-timeout: a number of seconds within the bounds; the error says what to give.
CLI::Validator commit_timeout_range() {
  using namespace pptp::daemon;
  return CLI::Validator(
      [](std::string& value) -> std::string {
        double seconds = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        const bool number = ec == std::errc{} && end == value.data() + value.size() && std::isfinite(seconds);
        if (number && seconds >= kMinCommitTimeout && seconds <= kMaxCommitTimeout) return {};
        return "'" + value + "': give " + commit_timeout_expected();
      },
      "SECONDS");
}

namespace {

// --idle-timeout: seconds above 0 (CLI::PositiveNumber's error printed the range up to
// DBL_MAX, 300 digits).
CLI::Validator positive_seconds() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        double seconds = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        const bool number = ec == std::errc{} && end == value.data() + value.size() && std::isfinite(seconds);
        if (number && seconds > 0) return {};
        return "'" + value + "': give a number of seconds above 0";
      },
      "POSITIVE");
}

// A proxy-mode flag's text, parsed; nothing (after saying why) when it is invalid or given
// without --proxy. `name`: the flag without its dashes, as its config key.
template <class T, class Parse>
std::optional<T> proxy_flag(bool proxy, const std::string& text, const char* name, Parse parse) {
  if (!proxy && !text.empty()) {
    std::fprintf(stderr, "pptp-alg: --%s (%s) needs --proxy\n", name, name);
    return std::nullopt;
  }
  auto parsed = parse(text);
  if (!parsed) {
    std::fprintf(stderr, "pptp-alg: --%s: %s\n", name, parsed.error().c_str());
    return std::nullopt;
  }
  return std::move(*parsed);
}

}  // namespace

std::optional<std::vector<pptp::policy::Prefix>> proxy_servers_of(const DaemonFlags& f) {
  return proxy_flag<std::vector<pptp::policy::Prefix>>(f.proxy, f.proxy_servers, "proxy-servers",
                                                       pptp::proxy::parse_servers);
}

// Empty: none given (the default route's, looked up where used).
std::optional<std::vector<std::string>> proxy_outside_of(const DaemonFlags& f) {
  return proxy_flag<std::vector<std::string>>(f.proxy, f.proxy_outside, "proxy-outside", pptp::proxy::parse_interfaces);
}

void DaemonFlags::add_to(CLI::App& app) {
  config = app.add_option("--config", config_file,
                          "daemon configuration file (YAML, one key per flag: docs/daemon.md); default " +
                              std::string(pptp::config::kDefaultConfigFile) +
                              " if it exists. Flags given here override its keys");
  queue = app.add_option("--queue", d.queue, "NFQUEUE number to read (default 0)")->capture_default_str();
  policy = app.add_option("--policy", d.policy_file,
                          "per-user policy (rules.yaml, see docs/policy.md): who may open tunnels to which "
                          "servers, limits, PPP names. Loaded at start (an invalid file stops the daemon) and "
                          "again on SIGHUP or 'pptp-alg reload' (an invalid file is rejected, the old policy "
                          "stays). Without it every tunnel passes");
  pid_file = app.add_option("--pid-file", d.pid_file, "write the daemon's PID here (for 'pptp-alg reload')");
  log = app.add_option("--log-level", log_level, "trace, debug, info, warn, error (default info)")
            ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  install_rules = app.add_flag("--install-rules", d.install_rules,
                               "install the queue rules (table ip pptp_alg) at start and remove them at exit");
  backend_flag = app.add_option("--backend", backend,
                                "how packets reach the queue: nft (queue statement), compat (iptables' NFQUEUE "
                                "target in pptp-alg's nft table, through nft_compat), xtables (iptables NFQUEUE "
                                "rules), or auto (detect, in that order)")
                     ->check(backend_choice());
  fail_open = app.add_flag("--fail-open", d.fail_open,
                           "let packets pass unqueued when the daemon is not running or its queue is full "
                           "(default: fail closed, packets are dropped)");
  no_fast_path_flag = app.add_flag("--no-fast-path", no_fast_path,
                                   "keep every GRE packet in user space (default: once a call is up and "
                                   "authorised, its GRE is forwarded by nftables without reaching the queue)");
  fast_path_mode_flag =
      app.add_option("--fast-path", fast_path_mode,
                     "where offloaded GRE is forwarded: ip (table ip pptp_alg, after routing) or netdev (also "
                     "table netdev pptp_alg_fast at the interface's ingress, for calls whose routes are plain "
                     "unicast routes of the main table with equal MTUs; the others stay ip; docs/packet-path.md)")
          ->capture_default_str()
          ->check(CLI::IsMember({"ip", "netdev"}));
  keep_fast_path = app.add_flag("--keep-fast-path", d.keep_fast_path,
                                "with --install-rules: at exit, leave the fast path (its chains and the offloaded "
                                "calls' elements) in the kernel, so that a restarted daemon adopts those calls and "
                                "their GRE keeps flowing; without a new daemon the elements expire within 90 s");
  allow_unknown_gre = app.add_flag("--allow-unknown-gre", d.gateway.allow_unknown_gre,
                                   "pass GRE that belongs to no known call instead of dropping it (for migration)");
  status_file = app.add_option("--status-file", d.status_file,
                               "write the live table of connections, calls and counters here (JSON, every "
                               "second); read it with 'pptp-alg status'");
  idle = app.add_option("--idle-timeout", idle_timeout,
                        "seconds without GRE after which an established call is ended and its Call ID freed "
                        "(default 300)")
             ->check(positive_seconds());
  user = app.add_option("--user", d.user,
                        "after setup (queue, rules, sockets), run as this user with CAP_NET_ADMIN alone; "
                        "without it the daemon stays who it was started as, still with CAP_NET_ADMIN alone "
                        "(under the packaged systemd unit it already is user pptp-alg)");
  d.control_socket = std::string(pptp::control::kDefaultSocket);
  control_socket = app.add_option("--control-socket", d.control_socket,
                                  "the control socket for 'pptp-alg ctl' (mode 0660; \"none\": no socket)")
                       ->capture_default_str();
  log_format_flag = app.add_option("--log-format", log_format,
                                   "text (under systemd: with journal priorities) or json (one object per "
                                   "line: time, level, event, fields)")
                        ->check(CLI::IsMember({"text", "json"}));
  metrics_listen = app.add_option("--metrics-listen", d.metrics_listen,
                                  "serve Prometheus metrics over HTTP at ADDR:PORT/metrics (default: off; "
                                  "'pptp-alg ctl metrics' prints them without a port)");
  proxy_flag = app.add_flag("--proxy", proxy,
                            "proxy mode (docs/proxy.md): terminate each forwarded TCP/1723 connection here and "
                            "place the call to its server from the router (two control connections, GRE relayed); "
                            "with --install-rules, the REDIRECT and GRE policy-route rules");
  proxy_source_calls_flag = app.add_option("--proxy-source-calls", proxy_source_calls,
                                           "proxy mode: calls one client address may hold over all its control "
                                           "connections, with or without a policy; more get Outgoing-Call-Reply "
                                           "result 4 (busy)")
                                ->capture_default_str()
                                ->check(CLI::PositiveNumber);
  proxy_calls_flag = app.add_option("--proxy-calls", proxy_calls,
                                    "proxy mode: calls through the proxy in all, with or without a policy; its last "
                                    "eighth goes only to client addresses holding fewer than 4 calls; more get "
                                    "Outgoing-Call-Reply result 4 (busy)")
                         ->capture_default_str()
                         ->check(CLI::Range(pptp::proxy::kMinCalls, pptp::proxy::kMaxCalls));
  proxy_source_connections_flag =
      app.add_option("--proxy-source-connections", proxy_source_connections,
                     "proxy mode: control connections one client address may hold open at once, with or without "
                     "a policy; more are reset at once (the proxy's total is set by the descriptors it may open)")
          ->capture_default_str()
          ->check(CLI::PositiveNumber);
  proxy_servers_flag = app.add_option("--proxy-servers", proxy_servers,
                                      "proxy mode: only the control connections and GRE to these servers "
                                      "(PREFIX[,PREFIX...]) are proxied; the rest is forwarded, e.g. to a transparent "
                                      "pptp-alg on the same router (default: every server)");
  proxy_outside_flag = app.add_option("--proxy-outside", proxy_outside,
                                      "proxy mode: the interfaces (NAME[,NAME...]) whose TCP/1723 and GRE are never "
                                      "proxied, only forwarded (default: those of the IPv4 default route, read at "
                                      "start)");
  add_rate_limits(app);
  add_budgets_to(app);
  add_ha_to(app);
}

void DaemonFlags::add_rate_limits(CLI::App& app) {
  syn_limit = app.add_option("--syn-limit", d.syn_limit,
                             "new TCP/1723 connections (SYN) per second one source may open, dropped in the "
                             "kernel above that, burst twice as many; 0 = no limit")
                  ->capture_default_str();
  queued_gre_limit = app.add_option("--queued-gre-limit", d.queued_gre_limit,
                                    "GRE packets per second one source may send to the queue (calls not on the "
                                    "fast path), dropped in the kernel above that, burst twice as many; 0 = no "
                                    "limit; with --no-fast-path there is none")
                         ->capture_default_str();
}

void DaemonFlags::add_budgets_to(CLI::App& app) {
  pptp::gateway::BudgetLimits& b = d.gateway.budgets;
  const auto positive = CLI::Range(1u, std::numeric_limits<std::uint32_t>::max());
  memory_budget_flag = app.add_option("--memory-budget", memory_budget,
                                      "MiB of per-connection state the daemon keeps at most (connections, calls, "
                                      "reassembly buffers); past it new connections and calls are refused")
                           ->capture_default_str()
                           ->check(positive);
  source_connections = app.add_option("--source-connections", b.source_connections,
                                      "control connections one host may hold")
                           ->capture_default_str()
                           ->check(positive);
  source_half_open = app.add_option("--source-half-open", b.source_half_open,
                                    "connections one host may hold before their Start-Control-Connection-Request")
                         ->capture_default_str()
                         ->check(positive);
  source_calls = app.add_option("--source-calls", b.source_calls, "calls one host may set up")
                     ->capture_default_str()
                     ->check(positive);
  source_reassembly_flag = app.add_option("--source-reassembly", source_reassembly,
                                          "KiB of out-of-order control data buffered for one host")
                               ->capture_default_str()
                               ->check(positive);
  source_held_flag = app.add_option("--source-held", source_held,
                                    "KiB of one host's control segments held for a Call ID field's second byte")
                         ->capture_default_str()
                         ->check(positive);
}

void DaemonFlags::take_keys(const pptp::config::Settings& k) {
  take(k.queue, queue, d.queue);
  take(k.policy, policy, d.policy_file);
  take(k.pid_file, pid_file, d.pid_file);
  take(k.status_file, status_file, d.status_file);
  take(k.log_level, log, log_level);
  take(k.backend, backend_flag, backend);
  take(k.install_rules, install_rules, d.install_rules);
  take(k.fail_open, fail_open, d.fail_open);
  take(k.no_fast_path, no_fast_path_flag, no_fast_path);
  take(k.keep_fast_path, keep_fast_path, d.keep_fast_path);
  take(k.fast_path_mode, fast_path_mode_flag, fast_path_mode);
  take(k.allow_unknown_gre, allow_unknown_gre, d.gateway.allow_unknown_gre);
  take(k.idle_timeout, idle, idle_timeout);
  take(k.user, user, d.user);
  take(k.syn_limit, syn_limit, d.syn_limit);
  take(k.queued_gre_limit, queued_gre_limit, d.queued_gre_limit);
  take(k.control_socket, control_socket, d.control_socket);
  take(k.metrics_listen, metrics_listen, d.metrics_listen);
  take(k.log_format, log_format_flag, log_format);
  if (d.control_socket == "none") d.control_socket.clear();
  take(k.proxy, proxy_flag, proxy);
  take(k.memory_budget, memory_budget_flag, memory_budget);
  take(k.source_connections, source_connections, d.gateway.budgets.source_connections);
  take(k.source_half_open, source_half_open, d.gateway.budgets.source_half_open);
  take(k.source_calls, source_calls, d.gateway.budgets.source_calls);
  take(k.source_reassembly, source_reassembly_flag, source_reassembly);
  take(k.source_held, source_held_flag, source_held);
  take_ha_keys(k);
  take(k.proxy_source_calls, proxy_source_calls_flag, proxy_source_calls);
  take(k.proxy_source_connections, proxy_source_connections_flag, proxy_source_connections);
  take(k.proxy_calls, proxy_calls_flag, proxy_calls);
  take(k.proxy_servers, proxy_servers_flag, proxy_servers);
  take(k.proxy_outside, proxy_outside_flag, proxy_outside);
}

void DaemonFlags::add_ha_to(CLI::App& app) {
  pptp::daemon::HaOptions& h = d.ha;
  ha_peer = app.add_option("--ha-peer", h.peer,
                           "high availability (docs/ha.md): the other node's sync address ADDR:PORT; the two "
                           "daemons replicate their calls over it (default: off)");
  ha_listen = app.add_option("--ha-listen", h.listen,
                             "this node's address on the sync link ADDR:PORT (with --ha-peer; not 0.0.0.0)");
  ha_key_file = app.add_option("--ha-key-file", h.key_file,
                               "the pair's shared key (a file of 16 bytes or more, mode 0600) that authenticates "
                               "every sync message (HMAC-SHA256)");
  ha_node_flag = app.add_option("--ha-node", ha_node,
                                "0 or 1: this node's place in the pair; node 0 gives even outside Call IDs, node 1 "
                                "odd ones, so that the two never give one to two calls")
                     ->check(CLI::IsMember({"0", "1"}));
  ha_virtual_address = app.add_option("--ha-virtual-address", h.virtual_address,
                                      "the outside virtual address keepalived moves (the ruleset's snat to; "
                                      "never a node's own): a daemon that starts on the node holding it (a "
                                      "restart on the master) promotes itself; without it a restarted daemon "
                                      "stays standby until ctl promote")
                           ->check(CLI::ValidIPV4);
  ha_commit_command = app.add_option("--ha-commit-command", h.commit_command,
                                     "run at a split brain's healing, before the peer's calls are taken over, "
                                     "and again within 15 s after it for calls whose records or kernel entries "
                                     "came later (split on spaces, no shell); none: nothing")
                          ->capture_default_str();
  ha_commit_timeout = app.add_option("--ha-commit-timeout", h.commit_timeout,
                                     "seconds after which the commit command at a healing is killed (the calls "
                                     "are taken over without it)")
                          ->capture_default_str()
                          ->check(commit_timeout_range());
}

void DaemonFlags::take_ha_keys(const pptp::config::Settings& k) {
  take(k.ha_peer, ha_peer, d.ha.peer);
  take(k.ha_listen, ha_listen, d.ha.listen);
  take(k.ha_key_file, ha_key_file, d.ha.key_file);
  take(k.ha_node, ha_node_flag, ha_node);
  take(k.ha_virtual_address, ha_virtual_address, d.ha.virtual_address);
  take(k.ha_commit_command, ha_commit_command, d.ha.commit_command);
  take(k.ha_commit_timeout, ha_commit_timeout, d.ha.commit_timeout);
  d.ha.node = ha_node == "1" ? 1 : 0;
}

}  // namespace pptp::cli
