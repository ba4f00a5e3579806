// `pptp-alg ctl calls`: the daemon's answer as a table an operator reads.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace pptp::control {

// `calls`: the array of the "calls" answer (Daemon::calls_json).
std::string render_calls(const nlohmann::json& calls);

}  // namespace pptp::control
