// High availability's settings (docs/ha.md): the sync link and the node's place in the pair.
#pragma once

#include <cstdint>
#include <string>

namespace pptp::daemon {

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
  bool enabled() const { return !peer.empty(); }
};

}  // namespace pptp::daemon
