#include "gateway/segment_hold.hpp"

namespace pptp::gateway {

bool SegmentHold::hold(const PacketMeta& meta, std::span<const std::uint8_t> packet, const nat::TcpPayload& at) {
  if (held_.size() >= kMaxHeldSegments) return false;
  held_.push_back({meta.packet_id, meta.time, std::vector<std::uint8_t>(packet.begin(), packet.end()), at});
  return true;
}

void SegmentHold::release(const nat::StreamPatches& patches, bool expired, GatewayCounters& counters,
                          std::vector<ReleasedPacket>& out) {
  for (Held& h : held_) {
    ReleasedPacket r{h.packet_id, Action::Accept, false, std::move(h.bytes)};
    r.modified = nat::patch_tcp_payload(r.bytes, h.at, patches);
    if (r.modified) ++counters.control_rewritten;
    if (expired) ++counters.hold_expired;
    out.push_back(std::move(r));
  }
  held_.clear();
}

}  // namespace pptp::gateway
