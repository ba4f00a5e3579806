#include "gateway/segment_hold.hpp"

namespace pptp::gateway {

bool SegmentHold::hold(const PacketMeta& meta, std::span<const std::uint8_t> packet, const nat::TcpPayload& at,
                       HoldBudget& overall) {
  const std::size_t segments = segments_ ? segments_->held.size() : 0;
  if (segments >= kMaxHeldSegments || bytes() + packet.size() > kMaxHeldBytes ||
      overall.segments >= kMaxHeldSegmentsOverall || overall.bytes + packet.size() > kMaxHeldBytesOverall) {
    return false;
  }
  if (!segments_) segments_ = std::make_unique<Segments>();
  segments_->held.push_back({meta.packet_id, std::vector<std::uint8_t>(packet.begin(), packet.end()), at});
  segments_->bytes += packet.size();
  ++overall.segments;
  overall.bytes += packet.size();
  return true;
}

void SegmentHold::release(const nat::StreamPatches& patches, HoldBudget& overall, GatewayCounters& counters,
                          std::vector<ReleasedPacket>& out) {
  if (!segments_) return;
  for (Held& h : segments_->held) {
    ReleasedPacket r{h.packet_id, Action::Accept, false, std::move(h.bytes)};
    r.modified = nat::patch_tcp_payload(r.bytes, h.at, patches);
    if (r.modified) ++counters.control_rewritten;
    out.push_back(std::move(r));
  }
  give_back(overall);
}

void SegmentHold::drop(HoldBudget& overall, GatewayCounters& counters, std::vector<ReleasedPacket>& out) {
  if (!segments_) return;
  for (const Held& h : segments_->held) {
    out.push_back(ReleasedPacket{h.packet_id, Action::Drop, false, {}});
    ++counters.control_held_dropped;
  }
  give_back(overall);
}

void SegmentHold::give_back(HoldBudget& overall) {
  overall.segments -= segments_->held.size();
  overall.bytes -= segments_->bytes;
  segments_.reset();
}

}  // namespace pptp::gateway
