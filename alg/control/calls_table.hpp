// `pptp-alg ctl calls`: the daemon's answer as a table an operator reads.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace pptp::control {

// `calls`: the array of the "calls" answer (Daemon::calls_json).
std::string render_calls(const nlohmann::json& calls);
// High availability (docs/ha.md): call records under `title` (on a standby the calls
// replicated from the peer; on an active node those it took over, which the tracker does
// not hold); empty text when there are none.
std::string render_replicated(const nlohmann::json& calls, const std::string& title = "replicated from the peer");

}  // namespace pptp::control
