// High availability's settings (docs/ha.md): the sync link and the node's place in the pair.
#pragma once

#include <cstdint>
#include <string>

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

}  // namespace pptp::daemon
