#include "alg/control/ctl_command.hpp"

#include <cstdio>
#include <iostream>

#include "alg/control/calls_table.hpp"
#include "alg/control/client.hpp"
#include "alg/daemon/daemon.hpp"

namespace pptp::control {

void CtlCommand::add_to(CLI::App& app, std::string& config_file, const std::string& config_help) {
  ctl = app.add_subcommand(
      "ctl", "Ask the running daemon over its control socket (--socket, else the configuration's "
             "control-socket, else " + std::string(kDefaultSocket) +
                 "). Exit status: 0 done, 1 the daemon could not be reached, 2 it refused the request.");
  ctl->require_subcommand(1);
  socket_flag = ctl->add_option("--socket", socket, "the daemon's control socket");
  config_flag = ctl->add_option("--config", config_file, config_help);
  calls = ctl->add_subcommand("calls", "The live calls: both Call IDs, user, server, age, packets and bytes, "
                                       "queued or fast path.");
  calls->add_flag("--json", as_json,
                  "print the JSON answer: an object of lists: calls (the tracker's), adopted (at a restart) "
                  "and, in an HA pair, replicated and taken_over");
  kill = ctl->add_subcommand("kill", "End calls and their control connections: their GRE is cut (fast path "
                                     "included) and their control data stops. Prints how many.");
  call_flag = kill->add_option("--call", kill_call, "the call's ID (as 'ctl calls' shows it)");
  user_flag = kill->add_option("--user", kill_user, "every call of this PPP user (calls taken over at an HA "
                                                             "promotion included)");
  client_flag = kill->add_option("--client", kill_client, "every call of this client (inside) address (calls taken "
                                                                 "over at an HA promotion, or adopted at a restart, "
                                                                 "included)");
  kill->require_option(1, 1);
  reload = ctl->add_subcommand("reload", "Re-read the policy file; prints the result, or the error with "
                                         "FILE:LINE:COLUMN (the old policy keeps running).");
  status = ctl->add_subcommand("status", "What the daemon tracks: connections, calls, counters.");
  status->add_flag("--json", as_json, "print the JSON answer");
  metrics = ctl->add_subcommand("metrics", "The counters in Prometheus text format (for node_exporter's "
                                           "textfile collector).");
  promote = ctl->add_subcommand("promote", "High availability (docs/ha.md): become the active node: the calls "
                                           "replicated from the peer get their fast-path elements and keep their "
                                           "outside Call IDs. Refused while the replica is not whole. On an "
                                           "active node: takes the peer's calls not carried yet.");
  promote->add_flag("--force", force, "promote with a replica that is not whole");
  demote = ctl->add_subcommand("demote", "High availability: become the standby again; the elements promotion "
                                         "installed are removed, the sync goes on.");
}

int CtlCommand::run(const std::string& socket_path) const {
  Request r;
  if (calls->parsed()) r.command = Command::Calls;
  if (status->parsed()) r.command = Command::Status;
  if (metrics->parsed()) r.command = Command::Metrics;
  if (reload->parsed()) r.command = Command::Reload;
  if (promote->parsed()) r.command = Command::Promote;
  if (demote->parsed()) r.command = Command::Demote;
  r.force = force;
  if (kill->parsed()) {
    r.command = Command::Kill;
    if (call_flag->count() > 0) r.kill.call = kill_call;
    if (user_flag->count() > 0) r.kill.user = kill_user;
    if (client_flag->count() > 0) {
      wire::Ipv4Address a;
      if (!wire::parse_ipv4_address(kill_client, a)) {
        std::fprintf(stderr, "pptp-alg ctl kill: --client: not an IPv4 address: %s\n", kill_client.c_str());
        return 2;
      }
      r.kill.client = a;
    }
  }
  auto line = ask(socket_path, r);
  if (!line) {
    std::fprintf(stderr, "pptp-alg ctl: %s\n", line.error().c_str());
    return 1;
  }
  const nlohmann::json answer = nlohmann::json::parse(*line, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) {
    std::fprintf(stderr, "pptp-alg ctl: not an answer: %s\n", line->c_str());
    return 1;
  }
  if (!answer.value("ok", false)) {
    std::fprintf(stderr, "pptp-alg ctl %s: %s\n", std::string(name_of(r.command)).c_str(),
                 answer.value("error", std::string("refused")).c_str());
    return 2;
  }
  switch (r.command) {
    case Command::Calls:
      if (as_json) {  // every list the text shows: calls, adopted (and replicated, taken_over in a pair)
        nlohmann::json lists = answer;
        lists.erase("ok");
        std::cout << lists.dump(2) << "\n";
        break;
      }
      std::cout << render_calls(answer["calls"]);
      std::cout << render_replicated(answer.value("replicated", nlohmann::json()));
      std::cout << render_replicated(answer.value("taken_over", nlohmann::json()),
                                     "taken over from the peer (ctl kill: by --user or --client)");
      std::cout << render_replicated(answer.value("adopted", nlohmann::json()),
                                     "adopted at a restart (ctl kill: by --client)");
      break;
    case Command::Promote:
    case Command::Demote:
      std::cout << answer.value("message", std::string()) << ": " << answer.value("calls", 0) << " call(s)\n";
      break;
    case Command::Status:
      std::cout << (as_json ? answer["status"].dump(2) + "\n" : daemon::render_status(answer["status"]));
      break;
    case Command::Metrics:
      std::cout << answer.value("metrics", std::string());
      break;
    case Command::Reload:
      std::cout << answer.value("message", std::string()) << "\n";
      break;
    case Command::Kill:
      std::cout << "ended " << answer.value("calls", 0) << " call(s) on " << answer.value("connections", 0)
                << " control connection(s)\n";
      break;
  }
  return 0;
}

}  // namespace pptp::control
