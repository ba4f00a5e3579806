// pptp-alg: command-line entry point. Without a subcommand it runs the daemon.
#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <vector>

#include "alg/config/config.hpp"
#include "alg/control/ctl_command.hpp"
#include "alg/daemon/daemon.hpp"
#include "alg/daemon_flags.hpp"
#include "alg/inspect/inspector.hpp"
#include "alg/service/logging.hpp"
#include "alg/version.hpp"
#include "proxy/coexistence.hpp"
#include "proxy/proxy_control.hpp"
#include "proxy/proxy_server.hpp"
#include "policy/loader.hpp"

#include <csignal>
#include <sys/types.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

using pptp::cli::backend_of;
using pptp::cli::claim_instance;
using pptp::cli::config_path;
using pptp::cli::DaemonFlags;
using pptp::cli::read_config;
using pptp::cli::settings_a_proxy_ignores;
using pptp::cli::runs_pptp_alg;
using pptp::cli::stale_status_note;
using pptp::cli::start_error;
using pptp::cli::take;

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
  if (const auto note = stale_status_note(file)) std::fprintf(stderr, "%s\n", note->c_str());
  const bool proxy = status.value("mode", "") == "proxy";  // each call with both legs
  std::cout << (as_json ? status.dump(2) + "\n"
                        : proxy ? pptp::proxy::render_proxy_status(status) : pptp::daemon::render_status(status));
  return 0;
}

int run_check(const std::string& file) {
  auto p = pptp::policy::load_policy_file(file, pptp::policy::PolicyMode::Any);
  if (!p) {
    std::fprintf(stderr, "pptp-alg check: %s\n", p.error().c_str());
    return 2;
  }
  std::cout << file << ": valid\n" << pptp::policy::describe(*p);
  return 0;
}

// The configuration file, what the daemon would refuse of it at start, and the policy file
// it names.
int run_check_config(const std::string& file) {
  auto settings = pptp::config::load_config_file(file);
  if (!settings) {
    std::fprintf(stderr, "pptp-alg check: %s\n", settings.error().c_str());
    return 2;
  }
  CLI::App app;  // the daemon's flags, none given: its keys as the daemon takes them
  DaemonFlags f;
  f.add_to(app);
  f.take_keys(*settings);
  if (const auto why = start_error(f)) {
    std::fprintf(stderr, "pptp-alg check: %s: the daemon would not start: %s\n", file.c_str(),
                 why->empty() ? "see above" : why->c_str());
    return 2;
  }
  std::cout << file << ": valid\n";
  return settings->policy ? run_check(*settings->policy) : 0;
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

std::string chosen_file(const CLI::Option* flag, const std::string& given, const std::optional<std::string>& key,
                        std::string_view fallback) {
  if (flag->count() > 0) return given;
  return key ? *key : std::string(fallback);
}

int run_reload(const std::string& pid_file, const std::string& policy_file) {
  // Check first: a file the daemon would reject is reported here, where the operator looks.
  // Any mode: this command does not know whether the daemon is a proxy (which accepts
  // on_deny: refuse); a transparent daemon rejects that itself and keeps its policy.
  if (!policy_file.empty()) {
    if (auto p = pptp::policy::load_policy_file(policy_file, pptp::policy::PolicyMode::Any); !p) {
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
  if (!runs_pptp_alg(pid)) {
    std::fprintf(stderr, "pptp-alg reload: PID %ld in %s is not a running pptp-alg (a stale pid file: the daemon "
                         "stopped without removing it); nothing signalled\n", pid, pid_file.c_str());
    return 1;
  }
  if (::kill(static_cast<pid_t>(pid), SIGHUP) != 0) {
    std::fprintf(stderr, "pptp-alg reload: cannot signal PID %ld: %s\n", pid, std::strerror(errno));
    return 1;
  }
  std::printf("sent SIGHUP to pptp-alg (PID %ld); its log says policy_reloaded, policy_reload_rejected, or "
              "reload_skipped (it was started without a policy: reload cannot add one, restart it with one)\n", pid);
  return 0;
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
  f.d.fast_path_mode = f.fast_path_mode == "netdev" ? pptp::nft::FastPathMode::Netdev : pptp::nft::FastPathMode::Ip;
  if (const auto why = start_error(f)) {
    if (!why->empty()) std::fprintf(stderr, "pptp-alg: %s\n", why->c_str());
    return 2;
  }
  f.d.gateway.timeouts.call_idle = f.idle_timeout;
  f.d.gateway.budgets.memory_bytes = std::size_t{f.memory_budget} * pptp::gateway::kMiB;
  f.d.gateway.budgets.source_reassembly_bytes = std::size_t{f.source_reassembly} * 1024;
  f.d.gateway.budgets.source_held_bytes = std::size_t{f.source_held} * 1024;
  const auto servers = proxy_servers_of(f);  // valid: start_error parsed them
  const auto outside = proxy_outside_of(f);
  if (!servers || !outside) return 2;
  const pptp::proxy::OtherMode other = pptp::proxy::read_other_mode();
  if (const auto why = f.proxy ? pptp::proxy::proxy_conflict(other, !servers->empty(), !f.no_fast_path)
                               : pptp::proxy::transparent_conflict(other)) {
    spdlog::error("start_refused why=beside_other_mode");
    std::fprintf(stderr, "pptp-alg: %s\n", why->c_str());
    return 2;
  }
  if (const auto held = claim_instance(f.proxy ? "proxy" : "transparent")) {
    spdlog::error("start_refused why=another_daemon");
    std::fprintf(stderr, "pptp-alg: %s\n", held->c_str());
    return 1;
  }
  if (f.proxy) {
    if (const auto ignored = settings_a_proxy_ignores(f); !ignored.empty()) {
      spdlog::warn("proxy_settings_not_applied settings={} note=\"the transparent gateway's: the proxy terminates "
                   "the control connection itself (docs/proxy.md)\"", fmt::join(ignored, ","));
    }
    return pptp::proxy::run_proxy(pptp::proxy::ProxyOptions{f.d.install_rules, pptp::proxy::kListenPort,
                                                            f.d.pid_file, f.d.status_file, f.d.policy_file,
                                                            f.d.control_socket, f.idle_timeout, f.d.user,
                                                            !f.no_fast_path,
                                                            pptp::proxy::ProxyLimits{f.proxy_source_calls,
                                                                                     f.proxy_source_connections,
                                                                                     pptp::proxy::kMaxConnections,
                                                                                     f.proxy_calls},
                                                            *servers,
                                                            f.d.metrics_listen, f.d.keep_fast_path, *outside});
  }
  return pptp::daemon::run_daemon(f.d);
}

// --format nft: an include for /etc/nftables.conf (docs/packaging.md): the table alone, with
// the queue rules, so that `flush ruleset` at the top of that file and its include put it back.
// Backend::Compat's queue rule is armed by the daemon (its start and its table watch).
std::string nft_include(pptp::nft::Backend backend, const pptp::nft::RuleOptions& o) {
  std::string head = "# pptp-alg " PPTP_ALG_VERSION " rules: include this file from /etc/nftables.conf, after\n"
                     "# 'flush ruleset'. Chains: fast_in (prerouting, priority raw - 10; prerouting without the\n"
                     "# fast path), fast_lookup (jumped to), forward (mangle).\n";
  if (backend == pptp::nft::Backend::Compat) {
    head += "# Backend compat: the daemon puts the NFQUEUE target at the head of chain to_queue\n"
            "# (nft_compat; nft cannot write it on this kernel) at start and whenever the table comes back.\n";
  }
  head += "# Regenerate with: pptp-alg rules --format nft > FILE\n";
  return head + pptp::nft::nft_table(backend, o);
}

int run_rules(const DaemonFlags& f, const std::string& format) {
  if (f.proxy) {  // proxy mode's rules are xtables and iproute2 whatever the backend (docs/proxy.md)
    if (format == "nft") {
      std::fprintf(stderr, "pptp-alg rules: the proxy mode's rules (--proxy, or proxy: true in the "
                           "configuration) are iptables and ip commands, not an nft include: leave out --format nft\n");
      return 2;
    }
    const auto servers = proxy_servers_of(f);
    const auto outside = proxy_outside_of(f);
    if (!servers || !outside) return 2;
    pptp::proxy::ProxyRuleOptions o;
    o.servers = *servers;
    o.outside_interfaces = pptp::proxy::outside_interfaces(*outside);  // as --install-rules would
    std::cout << pptp::proxy::describe_proxy_rules(o);
    return 0;
  }
  const pptp::nft::RuleOptions options = pptp::daemon::rule_options(f.d, !f.no_fast_path);
  const auto chosen = backend_of(f.backend);
  const auto b = chosen ? *chosen : pptp::nft::detect_backend();
  if (format == "nft") {  // an include holds the table only
    // The xtables backend's queue rules are iptables commands: the nft backend's table in their
    // place would not load on a kernel without nft `queue`, and a failing include stops the
    // whole of /etc/nftables.conf.
    if (b == pptp::nft::Backend::Xtables) {
      std::fprintf(stderr, "pptp-alg rules: the xtables backend%s queues with iptables commands, which an nft "
                           "include cannot hold: give --backend compat (for a kernel with nft_compat) or nft "
                           "(with nft `queue`), or --format shell\n", chosen ? "" : " (detected on this kernel)");
      return 2;
    }
    std::cout << nft_include(b, options);
    return 0;
  }
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
  // rules' own flags: each wins over its configuration key (take_rule_keys).
  CLI::Option *rules_queue = nullptr, *rules_backend = nullptr, *rules_fail_open = nullptr,
              *rules_no_fast_path = nullptr, *rules_syn_limit = nullptr, *rules_gre_limit = nullptr,
              *rules_proxy = nullptr, *rules_servers = nullptr, *rules_outside = nullptr;

  void add_to(CLI::App& app);
  void add_daemon_files(CLI::App& app, const std::string& config_help);
  int run_files_command();
  int run_rules_command();
  void take_rule_keys(const pptp::config::Settings& k);
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
  rules_queue = rules->add_option("--queue", d.queue, "NFQUEUE number (default 0)");
  rules_backend =
      rules->add_option("--backend", f.backend, "nft, compat, xtables or auto")->check(pptp::cli::backend_choice());
  rules_fail_open = rules->add_flag("--fail-open", d.fail_open, "add the queue bypass flag");
  rules_no_fast_path = rules->add_flag("--no-fast-path", f.no_fast_path, "leave out the fast-path sets and chains");
  rules_syn_limit =
      rules->add_option("--syn-limit", d.syn_limit, "new TCP/1723 connections per second per source (0 = off)");
  rules_gre_limit = rules->add_option("--queued-gre-limit", d.queued_gre_limit,
                                      "queued GRE packets per second per source (0 = off)");
  rules_proxy = rules->add_flag("--proxy", f.proxy, "the proxy mode's rules instead (REDIRECT, GRE mark, policy route)");
  rules_servers =
      rules->add_option("--proxy-servers", f.proxy_servers, "with --proxy: only these servers (PREFIX[,PREFIX...])");
  rules_outside = rules->add_option(
      "--proxy-outside", f.proxy_outside,
      "with --proxy: the interfaces never proxied (NAME[,NAME...]; default: the default route's)");
  rules->add_option("--format", rules_format,
                    "shell (a script for this kernel's backend) or nft (an include file for /etc/nftables.conf)")
      ->check(CLI::IsMember({"shell", "nft"}));

  config_flags = {f.config};
  const std::string config_help = "the daemon's configuration file (default " +
                                  std::string(pptp::config::kDefaultConfigFile) + " if it exists)";
  // The keys of the flags above, so that the rules printed are the ones the daemon would
  // install (docs/packaging.md: an include beside install-rules: false).
  config_flags.push_back(rules->add_option("--config", f.config_file, config_help + "; its keys for the flags "
                                           "above are used, each flag given here wins"));
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

// A flag given before the subcommand (the daemon's) or after it (rules') wins over its key.
void Commands::take_rule_keys(const pptp::config::Settings& k) {
  const auto given = [](const CLI::Option* daemon_flag, const CLI::Option* rules_flag) {
    return daemon_flag->count() > 0 ? daemon_flag : rules_flag;
  };
  take(k.queue, given(f.queue, rules_queue), f.d.queue);
  take(k.backend, given(f.backend_flag, rules_backend), f.backend);
  take(k.fail_open, given(f.fail_open, rules_fail_open), f.d.fail_open);
  take(k.no_fast_path, given(f.no_fast_path_flag, rules_no_fast_path), f.no_fast_path);
  take(k.syn_limit, given(f.syn_limit, rules_syn_limit), f.d.syn_limit);
  take(k.queued_gre_limit, given(f.queued_gre_limit, rules_gre_limit), f.d.queued_gre_limit);
  take(k.proxy, given(f.proxy_flag, rules_proxy), f.proxy);
  take(k.proxy_servers, given(f.proxy_servers_flag, rules_servers), f.proxy_servers);
  take(k.proxy_outside, given(f.proxy_outside_flag, rules_outside), f.proxy_outside);
}

int Commands::run_rules_command() {
  auto keys = read_config(config_path(config_flags, f.config_file));
  if (!keys) {
    std::fprintf(stderr, "pptp-alg rules: %s\n", keys.error().c_str());
    return 2;
  }
  take_rule_keys(*keys);
  return run_rules(f, rules_format);
}

int Commands::dispatch() {
  if (inspect->parsed()) return run_inspect(capture, as_json);
  if (check->parsed()) return run_check_command(check_file, config_flags, f.config_file);
  if (status->parsed() || reload->parsed() || ctl.ctl->parsed()) return run_files_command();
  return rules->parsed() ? run_rules_command() : run_daemon_with(f);
}

// One malloc arena for every thread, before any thread starts. glibc gives a thread that
// meets contention an arena of its own, which keeps the peak of what it allocated: the
// fast-path worker's batches over every offloaded call (the netdev path's reads and writes
// of 60,000 calls) stayed resident beside the loop's arena, 1.91 KiB a call at 60,000 calls
// against 0.82 with one arena (s24, docs/performance.md). Two threads share it briefly.
void one_malloc_arena() {
#if defined(__GLIBC__)
  (void)mallopt(M_ARENA_MAX, 1);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  one_malloc_arena();
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
