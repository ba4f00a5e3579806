// pptp-alg: command-line entry point. Without a subcommand it runs the daemon.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "alg/daemon/daemon.hpp"
#include "alg/inspect/inspector.hpp"
#include "alg/version.hpp"
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
    std::fprintf(stderr, "pptp-alg status: cannot read %s (start the daemon with --status-file %s)\n",
                 file.c_str(), file.c_str());
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
    std::fprintf(stderr, "pptp-alg reload: no daemon PID in %s (start the daemon with --pid-file %s)\n",
                 pid_file.c_str(), pid_file.c_str());
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
  pptp::nft::parse_backend(text, b);  // CLI11 already checked the choice
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pptp-alg " PPTP_ALG_VERSION
      ": PPTP application-level gateway for Linux edge firewalls (RFC 2637).\n"
      "Without a subcommand, runs the daemon: reads TCP/1723 and GRE from an NFQUEUE, tracks every\n"
      "control connection and call, translates colliding client Call IDs, sends each call's GRE to\n"
      "the right client, polices tunnels per user (--policy), and hands each established call's GRE\n"
      "to nftables maps (the fast path). Run as root on the router that masquerades the clients.\n"
      "Example: pptp-alg --install-rules --policy /etc/pptp-alg/rules.yaml --pid-file /run/pptp-alg.pid\n"
      "         --status-file /run/pptp-alg/status.json"};
  app.set_version_flag("--version", "pptp-alg " PPTP_ALG_VERSION);
  app.require_subcommand(0, 1);

  pptp::daemon::DaemonOptions d;
  std::string log_level = "info";
  std::string backend = "auto";
  double idle_timeout = pptp::track::kCallIdleTimeout;
  app.add_option("--queue", d.queue, "NFQUEUE number to read (default 0)")->capture_default_str();
  app.add_option("--policy", d.policy_file,
                 "per-user policy (rules.yaml, see docs/policy.md): who may open tunnels to which servers, "
                 "limits, PPP names. Loaded at start (an invalid file stops the daemon) and again on SIGHUP "
                 "or 'pptp-alg reload' (an invalid file is rejected, the old policy stays). Without it "
                 "every tunnel passes");
  app.add_option("--pid-file", d.pid_file, "write the daemon's PID here (for 'pptp-alg reload')");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error (default info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--install-rules", d.install_rules,
               "install the queue rules (table ip pptp_alg) at start and remove them at exit");
  app.add_option("--backend", backend,
                 "how packets reach the queue: nft (queue statement), xtables (iptables NFQUEUE), or auto "
                 "(detect: nft where the kernel has it)")
      ->check(CLI::IsMember({"auto", "nft", "xtables"}));
  app.add_flag("--fail-open", d.fail_open,
               "let packets pass unqueued when the daemon is not running or its queue is full "
               "(default: fail closed, packets are dropped)");
  bool no_fast_path = false;
  app.add_flag("--no-fast-path", no_fast_path,
               "keep every GRE packet in user space (default: once a call is up and authorised, its GRE "
               "is forwarded by nftables without reaching the queue)");
  app.add_flag("--keep-fast-path", d.keep_fast_path,
               "with --install-rules: at exit, leave the fast path (its chains and the offloaded calls' "
               "elements) in the kernel, so that a restarted daemon adopts those calls and their GRE keeps "
               "flowing; without a new daemon the elements expire within 90 s");
  app.add_flag("--allow-unknown-gre", d.gateway.allow_unknown_gre,
               "pass GRE that belongs to no known call instead of dropping it (for migration)");
  app.add_option("--status-file", d.status_file,
                 "write the live table of connections, calls and counters here (JSON, every second); "
                 "read it with 'pptp-alg status --file'");
  app.add_option("--idle-timeout", idle_timeout,
                 "seconds without GRE after which an established call is ended and its Call ID freed "
                 "(default 300)")
      ->check(CLI::PositiveNumber);

  std::string capture;
  bool as_json = false;
  CLI::App* inspect = app.add_subcommand(
      "inspect",
      "Read a capture (pcap or pcapng) and report the PPTP control connections, calls (Call IDs "
      "on both sides, state, GRE packets per direction, user names) and every protocol "
      "violation with its packet number. Exit status: 0 report printed, 2 capture unreadable.");
  inspect->add_option("capture", capture, "capture file (pcap or pcapng)")->required();
  inspect->add_flag("--json", as_json, "print the report as JSON (stable keys, for scripts)");

  CLI::App* rules = app.add_subcommand(
      "rules", "Print the rules that send PPTP to the queue and the fast-path sets and chains (as a "
               "shell script), for the backend this kernel supports, so that they can be added to a "
               "firewall by hand.");
  rules->add_option("--queue", d.queue, "NFQUEUE number (default 0)");
  rules->add_option("--backend", backend, "nft, xtables or auto")->check(CLI::IsMember({"auto", "nft", "xtables"}));
  rules->add_flag("--fail-open", d.fail_open, "add the queue bypass flag");
  rules->add_flag("--no-fast-path", no_fast_path, "leave out the fast-path sets and chains");

  std::string status_file;
  CLI::App* status = app.add_subcommand("status", "Show what a running daemon tracks (its --status-file).");
  status->add_option("--file", status_file, "the daemon's --status-file")->required();
  status->add_flag("--json", as_json, "print the raw JSON");

  std::string check_file;
  CLI::App* check = app.add_subcommand(
      "check", "Validate a policy file offline and print what it means: users, groups, rules in "
               "order, limits. Exit status: 0 valid, 2 invalid (the error names line and column).");
  check->add_option("file", check_file, "policy file (YAML)")->required();

  std::string pid_file = "/run/pptp-alg.pid";
  std::string reload_policy;
  CLI::App* reload = app.add_subcommand(
      "reload", "Make a running daemon re-read its policy file (sends SIGHUP to the PID in "
                "--pid-file). With --policy, checks that file first and does not signal if it is invalid.");
  reload->add_option("--pid-file", pid_file, "the daemon's --pid-file")->capture_default_str();
  reload->add_option("--policy", reload_policy, "the daemon's policy file, to check before reloading");

  CLI11_PARSE(app, argc, argv);
  if (inspect->parsed()) return run_inspect(capture, as_json);
  if (status->parsed()) return run_status(status_file, as_json);
  if (check->parsed()) return run_check(check_file);
  if (reload->parsed()) return run_reload(pid_file, reload_policy);
  const auto chosen = backend_of(backend);
  if (rules->parsed()) {
    const auto b = chosen ? *chosen : pptp::nft::detect_backend();
    std::cout << pptp::nft::describe_rules(b, pptp::nft::RuleOptions{d.queue, d.fail_open, !no_fast_path});
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  d.backend = chosen;
  d.fast_path = !no_fast_path;
  d.gateway.timeouts.call_idle = idle_timeout;
  return pptp::daemon::run_daemon(d);
}
