#include "alg/track/packet_path.hpp"

namespace pptp::track {

PacketOutcome handle_ipv4(Tracker& tracker, double time, Bytes packet) {
  PacketOutcome out;
  auto ip = wire::parse_ipv4(packet);
  if (!ip) {
    const bool fragment = ip.error().code == wire::IpErrorCode::Fragment;
    // Fragments of other protocols are none of our business; ours would be odd enough to count.
    if (!fragment || (packet.size() > 9 && (packet[9] == wire::kIpProtocolTcp ||
                                             packet[9] == wire::kIpProtocolGre))) {
      tracker.report(fragment ? Anomaly::IpFragment : Anomaly::IpMalformed, wire::describe(ip.error()));
      out.kind = PacketKind::Malformed;
    }
    return out;
  }
  if (ip->protocol == wire::kIpProtocolGre) {
    out.kind = PacketKind::Gre;
    out.gre = tracker.on_gre(time, *ip);
    return out;
  }
  if (ip->protocol != wire::kIpProtocolTcp) return out;
  auto tcp = wire::parse_tcp(ip->payload);
  if (!tcp) {
    if (ip->payload.size() >= 4 && (load_u16(ip->payload.data()) == wire::kPptpPort ||
                                    load_u16(ip->payload.data() + 2) == wire::kPptpPort)) {
      tracker.report(Anomaly::IpMalformed, "TCP/1723: " + wire::describe(tcp.error()));
      out.kind = PacketKind::Malformed;
    }
    return out;
  }
  if (tcp->source_port != wire::kPptpPort && tcp->destination_port != wire::kPptpPort) return out;
  out.kind = PacketKind::Control;
  out.segment = tracker.on_tcp_segment(time, *ip, *tcp);
  return out;
}

}  // namespace pptp::track
