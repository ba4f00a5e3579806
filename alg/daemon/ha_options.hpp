// High availability's settings (docs/ha.md): the sync link and the node's place in the pair.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

namespace pptp::daemon {

// --ha-commit-timeout (seconds): under a second would kill a commit that is merely slow on a
// loaded router; past ten minutes a hung command only delays the takeover.
inline constexpr int kDefaultCommitTimeout = 10, kMinCommitTimeout = 1, kMaxCommitTimeout = 600;
// What a value out of range should be: the flag's and the key's error say it.
inline std::string commit_timeout_expected() {
  return "seconds from " + std::to_string(kMinCommitTimeout) + " to " + std::to_string(kMaxCommitTimeout) +
         " that the commit command at a split brain's healing may run before it is killed (default " +
         std::to_string(kDefaultCommitTimeout) + "; conntrackd -c takes well under one)";
}

struct HaOptions {
  std::string peer;      // ADDRESS:PORT of the other node's sync socket; empty: no pair
  std::string listen;    // ADDRESS:PORT of ours
  std::string key_file;  // the pair's shared key (kMinKeyBytes or more, the file's bytes)
  std::uint8_t node = 0; // 0 or 1: which half of the outside Call IDs this node chooses
  // Where the node keeps its published calls for its next run (empty: nowhere); the daemon
  // puts it beside its control socket.
  std::string state_file;
  // Run at a split brain's healing before the peer's calls are adopted (docs/ha.md), split
  // on spaces (no shell); "none": nothing.
  std::string commit_command = "/usr/sbin/conntrackd -C /etc/conntrackd/conntrackd.conf -c";
  // Seconds after which that command is killed (conntrackd -c takes well under one); the
  // adoption goes on without it, counted. kMinCommitTimeout to kMaxCommitTimeout.
  double commit_timeout = kDefaultCommitTimeout;
  // The outside virtual address keepalived moves (the ruleset's `snat to`): a daemon that
  // starts on the node holding it promotes itself (docs/ha.md); empty: never at start.
  std::string virtual_address;
  bool enabled() const { return !peer.empty(); }
};

// "192.0.2.1:1724" -> an IPv4 endpoint.
Result<wire::Endpoint, std::string> parse_ipv4_endpoint(std::string_view text);
// Why the sync endpoints cannot serve (none: they can): ha-listen must name one address of
// the sync link, not 0.0.0.0 (the sync port on every interface, the outside too: a flood of
// datagrams each to authenticate, and no check that the virtual address is not ours), and
// ha-peer a unicast ADDRESS:PORT other than ha-listen.
std::optional<std::string> sync_endpoints_error(const wire::Endpoint& listen, const wire::Endpoint& peer);
// The shared key: the file's bytes (a trailing newline dropped), at least sync::kMinKeyBytes.
Result<std::vector<std::uint8_t>, std::string> read_key_file(const std::string& path);

}  // namespace pptp::daemon
