// pptp-alg: command-line entry point. Without a subcommand it runs the daemon.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <vector>

#include "alg/config/config.hpp"
#include "alg/control/ctl_command.hpp"
#include "alg/daemon/daemon.hpp"
#include "alg/inspect/inspector.hpp"
#include "alg/service/logging.hpp"
#include "alg/version.hpp"
#include "proxy/proxy_server.hpp"
#include "policy/loader.hpp"

#include <csignal>
#include <sys/types.h>

namespace {

int run_inspect(const std::string& capture, bool as_json) {
  pptp::inspect::Inspector inspector;
  auto summary = pptp::inspect::read_capture(capture, inspector);
  if (!summary) {
    std::fprintf(stderr, "pptp-alg inspect: %s\n", summary.error().c_str());
    return 2;
  }
  if (as_json) {
    std::cout << inspector.to_json().dump(2) << "\n";
  } else {
    std::cout << "capture: " << capture << "\n" << inspector.to_text();
  }
  return 0;
}

int run_status(const std::string& file, bool as_json) {
  std::ifstream in(file);
  if (!in) {
    std::fprintf(stderr,
                 "pptp-alg status: cannot read %s (is the daemon running, with status-file %s in its "
                 "configuration or --status-file %s?)\n",
                 file.c_str(), file.c_str(), file.c_str());
    return 2;
  }
  const nlohmann::json status = nlohmann::json::parse(in, nullptr, false);
  if (status.is_discarded()) {
    std::fprintf(stderr, "pptp-alg status: %s is not a status file\n", file.c_str());
    return 2;
  }
  std::cout << (as_json ? status.dump(2) + "\n" : pptp::daemon::render_status(status));
  return 0;
}

int run_check(const std::string& file) {
  auto p = pptp::policy::load_policy_file(file);
  if (!p) {
    std::fprintf(stderr, "pptp-alg check: %s\n", p.error().c_str());
    return 2;
  }
  std::cout << file << ": valid\n" << pptp::policy::describe(*p);
  return 0;
}

// The configuration file, and the policy file it names.
int run_check_config(const std::string& file) {
  auto settings = pptp::config::load_config_file(file);
  if (!settings) {
    std::fprintf(stderr, "pptp-alg check: %s\n", settings.error().c_str());
    return 2;
  }
  std::cout << file << ": valid\n";
  return settings->policy ? run_check(*settings->policy) : 0;
}

// --config FILE when given (on any of `flags`), else the default file if it exists; empty:
// no configuration file.
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

// `check FILE` (a policy), `check --config FILE`, or `check` (the default configuration).
int run_check_command(const std::string& policy_file, const std::vector<CLI::Option*>& config_flags,
                      const std::string& config_file) {
  const bool config_given =
      std::any_of(config_flags.begin(), config_flags.end(), [](const CLI::Option* o) { return o->count() > 0; });
  if (!policy_file.empty() && config_given) {
    std::fprintf(stderr, "pptp-alg check: give either a policy FILE or --config FILE, not both\n");
    return 2;
  }
  if (!policy_file.empty()) return run_check(policy_file);
  const std::string path = config_path(config_flags, config_file);
  if (path.empty()) {
    std::fprintf(stderr, "pptp-alg check: give a policy FILE or --config FILE (%s does not exist)\n",
                 std::string(pptp::config::kDefaultConfigFile).c_str());
    return 2;
  }
  return run_check_config(path);
}

// A flag given on the command line wins over the file's key.
template <class T, class U>
void take(const std::optional<T>& key, const CLI::Option* flag, U& into) {
  if (key && flag->count() == 0) into = *key;
}

std::string chosen_file(const CLI::Option* flag, const std::string& given, const std::optional<std::string>& key,
                        std::string_view fallback) {
  if (flag->count() > 0) return given;
  return key ? *key : std::string(fallback);
}

int run_reload(const std::string& pid_file, const std::string& policy_file) {
  // Check first: a file the daemon would reject is reported here, where the operator looks.
  if (!policy_file.empty()) {
    if (auto p = pptp::policy::load_policy_file(policy_file); !p) {
      std::fprintf(stderr, "pptp-alg reload: not reloading, the file is invalid: %s\n", p.error().c_str());
      return 2;
    }
  }
  std::ifstream in(pid_file);
  long pid = 0;
  if (!(in >> pid) || pid <= 1) {
    std::fprintf(stderr,
                 "pptp-alg reload: no daemon PID in %s (is the daemon running, with pid-file %s in its "
                 "configuration or --pid-file %s?)\n",
                 pid_file.c_str(), pid_file.c_str(), pid_file.c_str());
    return 2;
  }
  if (::kill(static_cast<pid_t>(pid), SIGHUP) != 0) {
    std::fprintf(stderr, "pptp-alg reload: cannot signal PID %ld: %s\n", pid, std::strerror(errno));
    return 1;
  }
  std::printf("sent SIGHUP to pptp-alg (PID %ld); its log says policy_reloaded or policy_reload_rejected\n", pid);
  return 0;
}

std::optional<pptp::nft::Backend> backend_of(const std::string& text) {
  if (text == "auto") return std::nullopt;
  pptp::nft::Backend b;
  pptp::nft::parse_backend(text, b);  // CLI11 or the config loader already checked the choice
  return b;
}

// The daemon's settings: flags, each with its key in the configuration file.
struct DaemonFlags {
  pptp::daemon::DaemonOptions d;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string backend = "auto";
  bool no_fast_path = false;
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
  void add_budgets_to(CLI::App& app);

  void add_to(CLI::App& app);
  void take_keys(const pptp::config::Settings& k);
  void add_rate_limits(CLI::App& app);
};

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
                                "how packets reach the queue: nft (queue statement), xtables (iptables NFQUEUE), "
                                "or auto (detect: nft where the kernel has it)")
                     ->check(CLI::IsMember({"auto", "nft", "xtables"}));
  fail_open = app.add_flag("--fail-open", d.fail_open,
                           "let packets pass unqueued when the daemon is not running or its queue is full "
                           "(default: fail closed, packets are dropped)");
  no_fast_path_flag = app.add_flag("--no-fast-path", no_fast_path,
                                   "keep every GRE packet in user space (default: once a call is up and "
                                   "authorised, its GRE is forwarded by nftables without reaching the queue)");
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
             ->check(CLI::PositiveNumber);
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
  add_rate_limits(app);
  add_budgets_to(app);
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
}

int run_daemon_with(DaemonFlags& f) {
  const std::string path = config_path({f.config}, f.config_file);
  auto keys = read_config(path);
  if (!keys) {
    std::fprintf(stderr, "pptp-alg: %s\n", keys.error().c_str());
    return 2;
  }
  f.take_keys(*keys);
  pptp::service::LogFormat format = pptp::service::LogFormat::Text;
  pptp::service::parse_log_format(f.log_format, format);  // CLI11 or the config loader checked it
  pptp::service::configure_logging(format, spdlog::level::from_str(f.log_level));
  if (!path.empty()) spdlog::info("config_loaded file={}", path);
  f.d.backend = backend_of(f.backend);
  f.d.fast_path = !f.no_fast_path;
  f.d.gateway.timeouts.call_idle = f.idle_timeout;
  f.d.gateway.budgets.memory_bytes = std::size_t{f.memory_budget} * pptp::gateway::kMiB;
  f.d.gateway.budgets.source_reassembly_bytes = std::size_t{f.source_reassembly} * 1024;
  if (f.proxy && (!f.d.policy_file.empty() || !f.d.user.empty())) {
    // Not silently ignored: an operator must not believe a policy guards the proxy.
    std::fprintf(stderr, "pptp-alg: --policy and --user are not supported with --proxy yet (docs/proxy.md)\n");
    return 2;
  }
  if (f.proxy) {
    return pptp::proxy::run_proxy(pptp::proxy::ProxyOptions{f.d.install_rules, pptp::proxy::kListenPort,
                                                            f.d.pid_file, f.d.status_file});
  }
  return pptp::daemon::run_daemon(f.d);
}

// --format nft: an include for /etc/nftables.conf (docs/packaging.md): the table alone, with
// the queue rules, so that `flush ruleset` at the top of that file and its include put it back.
std::string nft_include(const pptp::nft::RuleOptions& o) {
  return "# pptp-alg " PPTP_ALG_VERSION " rules: include this file from /etc/nftables.conf, after\n"
         "# 'flush ruleset'. Chains: fast_in (prerouting, priority raw - 20), prerouting (raw - 10),\n"
         "# forward (mangle). Regenerate with: pptp-alg rules --format nft > FILE\n" +
         pptp::nft::nft_table(pptp::nft::Backend::Nft, o);
}

int run_rules(const DaemonFlags& f, const std::string& format) {
  const pptp::nft::RuleOptions options = pptp::daemon::rule_options(f.d, !f.no_fast_path);
  if (format == "nft") {
    std::cout << nft_include(options);
    return 0;
  }
  const auto chosen = backend_of(f.backend);
  const auto b = chosen ? *chosen : pptp::nft::detect_backend();
  std::cout << pptp::nft::describe_rules(b, options);
  return 0;
}

// Usage errors exit 2 (docs/daemon.md), whatever CLI11's own code for the kind of mistake;
// --help and --version exit 0.
int usage_exit(const CLI::App& app, const CLI::ParseError& e) {
  const int cli_status = app.exit(e);  // prints the message, or the help
  return cli_status == 0 ? 0 : 2;
}

// The subcommands and what they read: one place for each, so that main only parses and
// dispatches.
struct Commands {
  DaemonFlags f;
  std::string capture, status_file, check_file, pid_file, reload_policy, rules_format = "shell";
  bool as_json = false;
  pptp::control::CtlCommand ctl;
  std::vector<CLI::Option*> config_flags;  // --config before or after the subcommand: one file
  CLI::App *inspect = nullptr, *rules = nullptr, *status = nullptr, *check = nullptr, *reload = nullptr;
  CLI::Option *status_flag = nullptr, *pid_flag = nullptr, *policy_flag = nullptr;

  void add_to(CLI::App& app);
  void add_daemon_files(CLI::App& app, const std::string& config_help);
  int run_files_command();
  int dispatch();
};

void Commands::add_to(CLI::App& app) {
  f.add_to(app);
  inspect = app.add_subcommand(
      "inspect",
      "Read a capture (pcap or pcapng) and report the PPTP control connections, calls (Call IDs "
      "on both sides, state, GRE packets per direction, user names) and every protocol "
      "violation with its packet number. Exit status: 0 report printed, 2 capture unreadable.");
  inspect->add_option("capture", capture, "capture file (pcap or pcapng)")->required();
  inspect->add_flag("--json", as_json, "print the report as JSON (stable keys, for scripts)");

  pptp::daemon::DaemonOptions& d = f.d;
  rules = app.add_subcommand(
      "rules", "Print the rules that send PPTP to the queue and the fast-path sets and chains (as a "
               "shell script), for the backend this kernel supports, so that they can be added to a "
               "firewall by hand.");
  rules->add_option("--queue", d.queue, "NFQUEUE number (default 0)");
  rules->add_option("--backend", f.backend, "nft, xtables or auto")->check(CLI::IsMember({"auto", "nft", "xtables"}));
  rules->add_flag("--fail-open", d.fail_open, "add the queue bypass flag");
  rules->add_flag("--no-fast-path", f.no_fast_path, "leave out the fast-path sets and chains");
  rules->add_option("--syn-limit", d.syn_limit, "new TCP/1723 connections per second per source (0 = off)");
  rules->add_option("--queued-gre-limit", d.queued_gre_limit, "queued GRE packets per second per source (0 = off)");
  rules->add_option("--format", rules_format,
                    "shell (a script for this kernel's backend) or nft (an include file for /etc/nftables.conf)")
      ->check(CLI::IsMember({"shell", "nft"}));

  config_flags = {f.config};
  const std::string config_help = "the daemon's configuration file (default " +
                                  std::string(pptp::config::kDefaultConfigFile) + " if it exists)";
  check = app.add_subcommand(
      "check", "Validate offline and print what it means. FILE: a policy file (users, groups, rules in "
               "order, limits). --config FILE: a daemon configuration file, and the policy file it names. "
               "Neither: the default configuration file. Exit status: 0 valid, 2 invalid (the error names "
               "FILE:LINE:COLUMN).");
  check->add_option("file", check_file, "policy file (YAML)");
  config_flags.push_back(check->add_option("--config", f.config_file, config_help));
  add_daemon_files(app, config_help);
}

// status and reload: they find the running daemon's files.
void Commands::add_daemon_files(CLI::App& app, const std::string& config_help) {
  status = app.add_subcommand(
      "status", "Show what a running daemon tracks (its status file: --file, else the configuration's "
                "status-file, else " + std::string(pptp::config::kDefaultStatusFile) + ").");
  status_flag = status->add_option("--file", status_file, "the daemon's status file");
  config_flags.push_back(status->add_option("--config", f.config_file, config_help));
  status->add_flag("--json", as_json, "print the raw JSON");

  reload = app.add_subcommand(
      "reload", "Make a running daemon re-read its policy file (sends SIGHUP to the PID in its pid file: "
                "--pid-file, else the configuration's pid-file, else " +
                    std::string(pptp::config::kDefaultPidFile) +
                    "). Checks the policy file (--policy, else the configuration's) first and does not "
                    "signal if it is invalid.");
  pid_flag = reload->add_option("--pid-file", pid_file, "the daemon's pid file");
  policy_flag = reload->add_option("--policy", reload_policy, "the daemon's policy file, to check before reloading");
  config_flags.push_back(reload->add_option("--config", f.config_file, config_help));
  ctl.add_to(app, f.config_file, config_help);
  config_flags.push_back(ctl.config_flag);
}

int Commands::run_files_command() {
  // The daemon's files: the flag, else the configuration's key, else the packaged default.
  auto keys = read_config(config_path(config_flags, f.config_file));
  if (!keys) {
    std::fprintf(stderr, "pptp-alg: %s\n", keys.error().c_str());
    return 2;
  }
  namespace cfg = pptp::config;
  if (ctl.ctl->parsed()) {
    return ctl.run(chosen_file(ctl.socket_flag, ctl.socket, keys->control_socket, pptp::control::kDefaultSocket));
  }
  if (status->parsed()) {
    return run_status(chosen_file(status_flag, status_file, keys->status_file, cfg::kDefaultStatusFile), as_json);
  }
  return run_reload(chosen_file(pid_flag, pid_file, keys->pid_file, cfg::kDefaultPidFile),
                    chosen_file(policy_flag, reload_policy, keys->policy, ""));
}

int Commands::dispatch() {
  if (inspect->parsed()) return run_inspect(capture, as_json);
  if (check->parsed()) return run_check_command(check_file, config_flags, f.config_file);
  if (status->parsed() || reload->parsed() || ctl.ctl->parsed()) return run_files_command();
  return rules->parsed() ? run_rules(f, rules_format) : run_daemon_with(f);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pptp-alg " PPTP_ALG_VERSION
      ": PPTP application-level gateway for Linux edge firewalls (RFC 2637).\n"
      "Without a subcommand, runs the daemon: reads TCP/1723 and GRE from an NFQUEUE, tracks every\n"
      "control connection and call, translates colliding client Call IDs, sends each call's GRE to\n"
      "the right client, polices tunnels per user (--policy), and hands each established call's GRE\n"
      "to nftables maps (the fast path). Run as root (or with CAP_NET_ADMIN) on the router that\n"
      "masquerades the clients. Settings come from the configuration file, then the flags.\n"
      "Example: pptp-alg --config /etc/pptp-alg/pptp-alg.conf (what the packaged service runs)"};
  app.set_version_flag("--version", "pptp-alg " PPTP_ALG_VERSION);
  app.require_subcommand(0, 1);
  Commands commands;
  commands.add_to(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return usage_exit(app, e);
  }
  return commands.dispatch();
}
