// Heads of messages passed in part (docs/ha.md, "A message split before its Call ID field"):
// this node sends those it passes on connections of its published calls; a promoted node
// starts a taken-over connection's direction with the peer's.
#include "alg/daemon/ha_node.hpp"

namespace pptp::daemon {

std::optional<stream::ResumeHead> HaNode::resume_head(const track::ControlConnection& c, track::Direction d) const {
  static_assert(sync::kMaxHeadBytes == stream::kMaxResumeHeadBytes);
  if (role_ != HaRole::Active || !taken_over_.holds(c.pns, c.pac)) return std::nullopt;
  // Kept at the takeover (TakenOverCalls::keep_heads), not read from the replica now.
  const sync::MessageHead* h = taken_over_.head(c.pns, c.pac, static_cast<std::uint8_t>(d));
  if (h == nullptr) return std::nullopt;
  return stream::ResumeHead{h->sequence, h->bytes};
}

void HaNode::message_head_passed(const track::ControlConnection& c, track::Direction d, std::uint32_t sequence,
                                 Bytes head) {
  if (!channel_.published().has_calls(c.pns, c.pac)) return;  // the peer could take nothing of it over
  if (!channel_.peer_heard()) return;  // publish_head would drop it: not charged to the budget
  // A budget that holds without a policy: clients cutting every message into small
  // segments cannot load the sync link past it (heads are best effort; the call records go
  // in the same stream).
  if (!heads_budget_.take(clock_())) return;
  channel_.publish_head(sync::MessageHead{c.pns, c.pac, static_cast<std::uint8_t>(d), sequence,
                                          std::vector<std::uint8_t>(head.begin(), head.end())});
  flush();
}

}  // namespace pptp::daemon
