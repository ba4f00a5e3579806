// The control socket's protocol (`pptp-alg ctl`): one JSON object per line each way. A
// request names its command; the answer carries "ok" and either what was asked or "error".
//   {"command":"calls"}                      -> {"ok":true,"calls":[...]}
//   {"command":"kill","call":7}              -> {"ok":true,"calls":1,"connections":1}
//   {"command":"kill","user":"alice"} / {"command":"kill","client":"192.0.2.10"}
//   {"command":"reload"}                     -> {"ok":true,"message":"..."} or "error"
//   {"command":"status"} / {"command":"metrics"}
//   {"command":"promote"} / {"command":"promote","force":true} / {"command":"demote"}  (docs/ha.md)
// Parsing is pure and bounded: a request longer than kMaxRequestBytes is refused before it
// is read whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

namespace pptp::control {

inline constexpr std::size_t kMaxRequestBytes = 4096;
inline constexpr std::size_t kMaxClients = 8;
inline constexpr double kClientIdleSeconds = 10.0;  // a silent client gives its slot back
inline constexpr std::string_view kDefaultSocket = "/run/pptp-alg/control";

enum class Command : std::uint8_t { Calls, Kill, Reload, Status, Metrics, Promote, Demote };
std::string_view name_of(Command c);

// Which calls `kill` ends: exactly one of the three is set.
struct KillSelector {
  std::optional<std::uint64_t> call;  // the call's id in `ctl calls`
  std::optional<std::string> user;    // the PPP name the server accepted
  std::optional<wire::Ipv4Address> client;  // the client's (PNS's) inside address
};

struct Request {
  Command command = Command::Status;
  KillSelector kill;
  bool force = false;  // promote: take a replica that is not whole (docs/ha.md)
};

Result<Request, std::string> parse_request(std::string_view line);
// The request's line, without its newline (the client's side).
std::string request_line(const Request& r);

// Answers, each one line without its newline.
std::string error_answer(std::string_view message);
std::string ok_answer(nlohmann::json fields);

}  // namespace pptp::control
