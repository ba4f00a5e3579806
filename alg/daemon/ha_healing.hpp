// A split brain's healing on the node that stays active (docs/ha.md, "Takeover at a
// split brain's healing"): the peer, active during the split, gives up; its calls from the
// split are in our replica but nothing of ours carries them. HealingWatch tells when; the
// selection says which calls to adopt. Both pure, unit-tested in ha_node_test.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "nat/binding.hpp"
#include "sync/replica.hpp"

namespace pptp::daemon {

class TakenOverCalls;
// Whether a call's control connection is still there at a promotion (after conntrackd's
// commit: the kernel has an entry for it).
using ConnectionAlive = std::function<bool(const sync::CallKey&)>;

// Fires once per healing, while we are active and the peer is standby, after a split brain:
// the peer was seen active while we were active too, or its epoch rose since the last
// datagram we had (it was promoted and demoted while the sync link was cut, so we never saw
// it active). The peer's role is as fresh as its last Hello, so only Hellos received since
// we became active count (the role we hold at our promotion may be from before the peer's
// demotion: a failover to us is no split), and after a rise only those received after it
// (the role we hold may be from before the cut; the peer's backlog comes meanwhile).
// Disarmed while we are standby; re-armed by the next split.
class HealingWatch {
 public:
  // One observation (after each read of the socket); `hellos`: Hellos received so far.
  // True once per healing.
  bool observe(bool we_active, bool peer_active, std::uint32_t peer_epoch, std::uint64_t hellos);

 private:
  std::optional<std::uint64_t> active_since_;  // the Hellos received when we were first seen active
  bool split_ = false;                         // both active (a Hello since then said so)
  std::optional<std::uint32_t> peer_epoch_;    // none before the first datagram
  std::optional<std::uint64_t> rose_at_;       // the Hellos received when the epoch rose
};

// After a healing fired, records of the peer's calls from the split may still be on their way
// (its backlog resent, or a snapshot in parts after a cut sync link overflowed it), and the
// conntrack entries of their control connections too (conntrackd resyncs over the same link).
// For kHealingLateWindow seconds after it, a round like the healing's (commit, then take
// over) is due when a call appears that no round of this healing has considered, and every
// kHealingRetryEvery seconds while a call a round left for want of its connection is still
// there to take.
inline constexpr double kHealingLateWindow = 15.0;
inline constexpr double kHealingRetryEvery = 5.0;
class HealingLate {
 public:
  void open(double now);  // the healing fired
  // Whether the window is open at `now`; once past it, closed until the next healing.
  bool open_at(double now);
  // A round at `now`: `candidates` considered (alive or not), `taken` of them taken.
  void round(double now, const std::vector<sync::CallState>& candidates, const std::vector<sync::CallState>& taken);
  enum class Due { No, NewCall, Retry };
  // Whether the `candidates` now (alive or not) call for a round at `now`.
  Due due(double now, const std::vector<sync::CallState>& candidates);

 private:
  std::optional<double> until_;
  double retry_at_ = 0;
  std::set<sync::CallKey> considered_;
  std::set<sync::CallKey> left_;  // considered, not taken: no kernel entry for the connection yet
};

// The replicated calls an active node adopts beside its own: those `calls_to_take_over`
// picks (alive, not denied or pending), at a healing only those whose outside Call ID is of
// the peer's node half (`peer_node`; none: any, HaNode::retake), less those our gateway
// already carries: the tracker's own (our published calls, by key), those already offloaded
// here (adopted at a promotion or restart, by inbound element) and those taken over before
// (`taken`, by key).
std::vector<sync::CallState> calls_to_take_over_beside(const sync::Replica& replica, const ConnectionAlive& alive,
                                                       std::optional<std::uint8_t> peer_node, const sync::Replica& own,
                                                       const std::vector<nat::CallBinding>& offloaded,
                                                       const TakenOverCalls& taken);

}  // namespace pptp::daemon
