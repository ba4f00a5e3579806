// `pptp-alg ctl calls`: the daemon's answer as a table an operator reads.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace pptp::control {

// `calls`: the array of the "calls" answer (Daemon::calls_json).
std::string render_calls(const nlohmann::json& calls);
// High availability's standby (docs/ha.md): the calls replicated from the peer; empty text
// when there are none.
std::string render_replicated(const nlohmann::json& calls);

}  // namespace pptp::control
