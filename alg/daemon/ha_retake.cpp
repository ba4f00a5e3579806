// The peer's calls taken by a node that is active already (docs/ha.md): at a split brain's
// healing (the peer's half, ha_healing.hpp), and again after a promotion that ran without
// them (a restarted daemon's promotion at its start, a forced one, or one before conntrackd's
// commit had the control connections in the kernel).
#include "alg/daemon/ha_node.hpp"

#include <algorithm>

namespace pptp::daemon {

std::vector<sync::CallState> HaNode::healing_candidates(const std::vector<nat::CallBinding>& offloaded,
                                                      const ConnectionAlive& alive) const {
  std::vector<sync::CallState> out = calls_to_take_over_beside(
      channel_.replica(), alive, static_cast<std::uint8_t>(1 - channel_.node()), channel_.published(), offloaded,
      taken_over_);
  // Not one carried here and ended since (a round of this healing took it): the peer's
  // record may stay a while.
  std::erase_if(out, [&](const sync::CallState& s) { return taken_over_.ever_held(s.key); });
  return out;
}

std::vector<nat::CallBinding> HaNode::take_over_at_healing(const ConnectionAlive& alive,
                                                           const std::vector<nat::CallBinding>& offloaded,
                                                           const LetGo& let_go) {
  if (role_ != HaRole::Active) return {};
  std::vector<sync::CallState> taken = healing_candidates(offloaded, alive);
  // Every candidate, alive or not, is considered by this round (HealingLate): a late round
  // comes for calls not seen yet, or to look again for those left without a kernel entry.
  healing_late_.round(clock_(), healing_candidates(offloaded, nullptr), taken);
  healing_calls_ += taken.size();
  // Past both epochs, as a promotion: the peer lets go of what it handed over at its
  // demotion (a call of ours it carried in the split, which may end here before its hold).
  channel_.set_epoch(std::max(channel_.epoch(), channel_.peer_epoch()) + 1);
  std::vector<nat::CallBinding> out = take_beside(std::move(taken), let_go);
  log_->warn("ha_healing_takeover epoch={} calls={} taken_over={} replicated_calls={}", channel_.epoch(), out.size(),
             taken_over_.size(),
             channel_.replica().size());
  return out;
}

bool HaNode::healing_late_due(const std::function<std::vector<nat::CallBinding>()>& offloaded) {
  if (!healing_late_.open_at(clock_()) || role_ != HaRole::Active || channel_.peer_active() || commit_.running()) {
    return false;
  }
  const std::vector<sync::CallState> candidates = healing_candidates(offloaded(), nullptr);
  const HealingLate::Due due = healing_late_.due(clock_(), candidates);
  if (due == HealingLate::Due::No) return false;
  ++healing_late_rounds_;
  log_->warn("ha_healing_late candidates={} replicated_calls={} why={} note=\"committed and taken over as at the "
             "healing\"", candidates.size(), channel_.replica().size(),
             due == HealingLate::Due::NewCall ? "new_records" : "calls_without_kernel_entry");
  return true;
}

std::size_t HaNode::retake_candidates(const std::vector<nat::CallBinding>& offloaded) const {
  std::vector<sync::CallState> all =
      calls_to_take_over_beside(channel_.replica(), nullptr, std::nullopt, channel_.published(), offloaded, taken_over_);
  leave_out_of_retake(all, nullptr);
  return all.size();
}

void HaNode::leave_out_of_retake(std::vector<sync::CallState>& calls, const OutsideInUse& in_use) const {
  // Not a call that ended here (the peer may still hold its record for the hold), nor one
  // whose outside Call ID a call set up here since holds: its elements would take that
  // call's GRE. Counted with the dropped.
  std::erase_if(calls, [&](const sync::CallState& s) {
    return taken_over_.ever_held(s.key) || (in_use && in_use(binding_of(s)));
  });
}

Result<std::vector<nat::CallBinding>, std::string> HaNode::retake(const ConnectionAlive& alive,
                                                                  const std::vector<nat::CallBinding>& offloaded,
                                                                  const OutsideInUse& in_use, const LetGo& let_go) {
  if (role_ != HaRole::Active) return unexpected(std::string("not active: promote first"));
  // Both active is a split brain: what the peer carries is taken at its healing, only those
  // of its half (it set up calls of its own meanwhile).
  if (channel_.peer_active()) {
    // Due again once the peer is standby: a retake refused after its commit (the peer
    // flapped active) would otherwise leave our half's handed-back calls untaken for good.
    retake_pending_ = true;
    return unexpected(std::string("already active, and the peer is active too (a split brain): its calls are taken "
                                  "over at the healing"));
  }
  // Any half: a call of ours the peer carried and handed back, dropped at our promotion
  // because its control connection was not committed yet, is taken now.
  std::vector<sync::CallState> taken =
      calls_to_take_over_beside(channel_.replica(), alive, std::nullopt, channel_.published(), offloaded, taken_over_);
  const std::size_t candidates = taken.size();
  leave_out_of_retake(taken, in_use);
  retaken_calls_ += taken.size();
  // Past the peer's epoch, as a promotion's: the peer then lets go of the records it handed
  // over (Republished::retire). A start promotion had not read the peer's yet. Not before
  // its snapshot is whole: it would delete records not here yet; retake_due comes then.
  if (!channel_.synced()) {
    retake_pending_ = true;
  } else if (!taken.empty() || channel_.epoch() <= channel_.peer_epoch()) {
    channel_.set_epoch(std::max(channel_.epoch(), channel_.peer_epoch()) + 1);
  }
  std::vector<nat::CallBinding> out = take_beside(std::move(taken), let_go);
  log_->warn("ha_retaken epoch={} calls={} left={} taken_over={} replicated_calls={} synced={}", channel_.epoch(),
             out.size(), candidates - out.size(), taken_over_.size(), channel_.replica().size(), channel_.synced());
  return out;
}

bool HaNode::retake_due() {
  // The peer standby: an active peer is a split brain, whose healing takes its calls.
  if (!retake_pending_ || role_ != HaRole::Active || !channel_.synced() || channel_.peer_active() ||
      commit_.running()) {
    return false;
  }
  retake_pending_ = false;
  return true;
}

std::vector<nat::CallBinding> HaNode::take_beside(std::vector<sync::CallState> taken, const LetGo& let_go) {
  if (let_go) {
    std::vector<ControlEnds> ends = connections_of(taken);
    std::erase_if(ends, [&](const ControlEnds& e) { return taken_over_.holds(e.first, e.second); });
    let_go(ends);
  }
  std::vector<nat::CallBinding> out;
  out.reserve(taken.size());
  for (const sync::CallState& s : taken) out.push_back(binding_of(s));
  // Published as a promotion's are: the peer gets them back at a later failover.
  republished_.publish(channel_, taken);
  table_changed_ = true;
  flush();
  taken_over_.add(std::move(taken));
  taken_over_.keep_heads(channel_.replica());
  return out;
}

}  // namespace pptp::daemon
