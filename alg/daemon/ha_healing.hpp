// A split brain's healing on the node that stays active (docs/ha.md, "Takeover at a
// split brain's healing"): the peer, active during the split, gives up; its calls from the
// split are in our replica but nothing of ours carries them. HealingWatch tells when; the
// selection says which calls to adopt. Both pure, unit-tested in ha_node_test.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "nat/binding.hpp"
#include "sync/replica.hpp"

namespace pptp::daemon {

class TakenOverCalls;
// Whether a call's control connection is still there at a promotion (after conntrackd's
// commit: the kernel has an entry for it).
using ConnectionAlive = std::function<bool(const sync::CallKey&)>;

// Fires once per healing: while we are active, the peer's role (from its Hellos) goes from
// active to standby. Re-armed when the peer is active again (the next split).
class HealingWatch {
 public:
  // One observation (after each received datagram); true once per healing.
  bool observe(bool we_active, bool peer_active);

 private:
  bool peer_was_active_ = false;
};

// The replicated calls to adopt at a healing: those `calls_to_take_over` picks (alive,
// not denied or pending) whose outside Call ID is of the peer's node half, less those our
// gateway already carries: the tracker's own (our published calls, by key), those already
// offloaded here (adopted at a promotion or restart, by inbound element) and those taken
// over before (`taken`, by key).
std::vector<sync::CallState> calls_to_take_over_at_healing(const sync::Replica& replica, const ConnectionAlive& alive,
                                                           std::uint8_t peer_node, const sync::Replica& own,
                                                           const std::vector<nat::CallBinding>& offloaded,
                                                           const TakenOverCalls& taken);

}  // namespace pptp::daemon
