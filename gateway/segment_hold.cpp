#include "gateway/segment_hold.hpp"

namespace pptp::gateway {

bool SegmentHold::hold(const PacketMeta& meta, std::span<const std::uint8_t> packet, const nat::TcpPayload& at,
                       HoldBudget& overall) {
  if (held_.size() >= kMaxHeldSegments || bytes_ + packet.size() > kMaxHeldBytes ||
      overall.segments >= kMaxHeldSegmentsOverall || overall.bytes + packet.size() > kMaxHeldBytesOverall) {
    return false;
  }
  held_.push_back({meta.packet_id, std::vector<std::uint8_t>(packet.begin(), packet.end()), at});
  bytes_ += packet.size();
  ++overall.segments;
  overall.bytes += packet.size();
  return true;
}

void SegmentHold::release(const nat::StreamPatches& patches, HoldBudget& overall, GatewayCounters& counters,
                          std::vector<ReleasedPacket>& out) {
  for (Held& h : held_) {
    ReleasedPacket r{h.packet_id, Action::Accept, false, std::move(h.bytes)};
    r.modified = nat::patch_tcp_payload(r.bytes, h.at, patches);
    if (r.modified) ++counters.control_rewritten;
    out.push_back(std::move(r));
  }
  give_back(overall);
}

void SegmentHold::drop(HoldBudget& overall, GatewayCounters& counters, std::vector<ReleasedPacket>& out) {
  for (const Held& h : held_) {
    out.push_back(ReleasedPacket{h.packet_id, Action::Drop, false, {}});
    ++counters.control_held_dropped;
  }
  give_back(overall);
}

void SegmentHold::give_back(HoldBudget& overall) {
  overall.segments -= held_.size();
  overall.bytes -= bytes_;
  held_.clear();
  bytes_ = 0;
}

}  // namespace pptp::gateway
