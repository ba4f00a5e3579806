// The control socket's client side (`pptp-alg ctl ...`): connect, send one request line,
// read one answer line. Blocking, with a bound on the wait: a command-line tool.
#pragma once

#include <cstddef>
#include <string>

#include "alg/control/protocol.hpp"

namespace pptp::control {

inline constexpr double kAnswerTimeoutSeconds = 30.0;  // a reload of a large policy file
inline constexpr std::size_t kMaxAnswerBytes = 256u << 20;

// The answer line (without its newline), or what went wrong, phrased for the operator.
Result<std::string, std::string> ask(const std::string& socket_path, const Request& request,
                                     double timeout_seconds = kAnswerTimeoutSeconds);

}  // namespace pptp::control
