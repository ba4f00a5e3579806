// A split brain's healing (ha_healing.hpp; docs/ha.md).
#include "alg/daemon/ha_healing.hpp"

#include <algorithm>

#include "alg/daemon/ha_node.hpp"

namespace pptp::daemon {

bool HealingWatch::observe(bool we_active, bool peer_active, std::uint32_t peer_epoch, std::uint64_t hellos) {
  if (!we_active) {  // a failover (either way), not a split's end
    active_since_.reset();
    split_ = false;
    rose_at_.reset();
  } else if (!active_since_) {
    active_since_ = hellos;
  }
  const bool fresh = active_since_ && hellos > *active_since_;  // a Hello since we are active
  // A restarted peer starts at epoch 0: only a rise counts.
  if (peer_epoch_ && peer_epoch > *peer_epoch_ && we_active) rose_at_ = hellos;
  peer_epoch_ = peer_epoch;
  // Seen active in a Hello after the rise: its standby Hello will tell. Not the role held
  // from before the rise (the peer active before the sync link was cut, which gave up in the
  // cut: s33): that Hello is stale.
  if (peer_active && rose_at_ && hellos > *rose_at_) rose_at_.reset();
  if (fresh && peer_active) split_ = true;
  const bool rose_and_heard = rose_at_ && hellos > *rose_at_;
  const bool healed = fresh && !peer_active && (split_ || rose_and_heard);
  if (healed) {
    split_ = false;
    rose_at_.reset();
  }
  return healed;
}

void HealingLate::open(double now) {
  until_ = now + kHealingLateWindow;
  retry_at_ = now + kHealingRetryEvery;
  considered_.clear();
  left_.clear();
}

bool HealingLate::open_at(double now) {
  if (until_ && now > *until_) {
    until_.reset();
    considered_.clear();
    left_.clear();
  }
  return until_.has_value();
}

void HealingLate::round(double now, const std::vector<sync::CallState>& candidates,
                        const std::vector<sync::CallState>& taken) {
  left_.clear();
  for (const sync::CallState& s : candidates) {
    considered_.insert(s.key);
    left_.insert(s.key);
  }
  for (const sync::CallState& s : taken) left_.erase(s.key);
  retry_at_ = now + kHealingRetryEvery;
}

HealingLate::Due HealingLate::due(double now, const std::vector<sync::CallState>& candidates) {
  if (!open_at(now)) return Due::No;
  const auto seen = [&](const sync::CallState& s) { return considered_.contains(s.key); };
  if (!std::ranges::all_of(candidates, seen)) return Due::NewCall;
  const auto left = [&](const sync::CallState& s) { return left_.contains(s.key); };
  return now >= retry_at_ && std::ranges::any_of(candidates, left) ? Due::Retry : Due::No;
}

std::vector<sync::CallState> calls_to_take_over_beside(const sync::Replica& replica, const ConnectionAlive& alive,
                                                       std::optional<std::uint8_t> peer_node, const sync::Replica& own,
                                                       const std::vector<nat::CallBinding>& offloaded,
                                                       const TakenOverCalls& taken) {
  const OffloadedKeys carried(offloaded);
  std::vector<sync::CallState> out = calls_to_take_over(replica, alive);
  std::erase_if(out, [&](const sync::CallState& s) {
    // At a healing the peer's half only: a call of ours it took over and republished is ours
    // to carry already (offloaded or in the tracker), or gone.
    const bool other_half = peer_node && s.outside_call_id % 2 != *peer_node;
    return other_half || own.find(s.key) != nullptr || carried.contains(binding_of(s)) || taken.contains(s.key);
  });
  return out;
}

}  // namespace pptp::daemon
