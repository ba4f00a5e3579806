// `pptp-alg ctl ...`: the command line's side of the control socket (protocol.hpp). Part of
// the pptp-alg executable (it uses CLI11).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "alg/control/protocol.hpp"

namespace pptp::control {

struct CtlCommand {
  std::string socket;
  bool as_json = false;
  std::string kill_user, kill_client;
  std::uint64_t kill_call = 0;
  CLI::App *ctl = nullptr, *calls = nullptr, *kill = nullptr, *reload = nullptr, *status = nullptr,
           *metrics = nullptr, *promote = nullptr, *demote = nullptr;
  bool force = false;
  CLI::Option *socket_flag = nullptr, *config_flag = nullptr, *call_flag = nullptr, *user_flag = nullptr,
              *client_flag = nullptr;

  // `config_file`: where --config (given after `ctl`) stores its path.
  void add_to(CLI::App& app, std::string& config_file, const std::string& config_help);
  // Exit status: 0 done, 1 the daemon could not be reached, 2 it refused the request.
  int run(const std::string& socket_path) const;
};

}  // namespace pptp::control
