// The operator's requests to the gateway (`pptp-alg ctl kill`): which calls to end, and what
// ending them did. A killed call's control connection goes with it (PPTP's calls live on
// their control connection, RFC 2637 section 1.3): its GRE is dropped and its fast-path
// elements are withdrawn, its segments that carry data are dropped, and segments without
// data (ACK, FIN, RST) still pass so that both ends can close the TCP connection. The
// tracker ends the calls when the connection closes or goes idle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "alg/wire/ip.hpp"

namespace pptp::gateway {

// Exactly one is set by `ctl kill`; a call matches when every one that is set matches.
struct KillRequest {
  std::optional<std::uint64_t> call;        // the tracker's call id (status "id")
  std::optional<std::string> user;          // the PPP name the server accepted
  std::optional<wire::Ipv4Address> client;  // the client's (PNS's) inside address
  // Whether it selects a call with these (an empty request selects nothing). A call the
  // tracker does not hold (taken over in HA, adopted at a restart) has no id; one adopted
  // at a restart has no user known either (nullptr).
  bool selects(std::optional<std::uint64_t> call_id, const std::string* call_user,
               wire::Ipv4Address call_client) const {
    if (!call && !user && !client) return false;
    if (call && call_id != call) return false;
    if (user && (call_user == nullptr || *call_user != *user)) return false;
    return !client || call_client == *client;
  }
};

struct KillResult {
  std::size_t calls = 0;        // live calls ended (every call of each connection below)
  std::size_t connections = 0;  // control connections cut
};

}  // namespace pptp::gateway
