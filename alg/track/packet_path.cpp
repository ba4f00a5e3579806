#include "alg/track/packet_path.hpp"

namespace pptp::track {

ParsedPacket parse_packet(Bytes packet) {
  ParsedPacket out;
  auto ip = wire::parse_ipv4(packet);
  if (!ip) {
    const bool fragment = ip.error().code == wire::IpErrorCode::Fragment;
    // Fragments of other protocols are none of our business; ours would be odd enough to count.
    if (!fragment || (packet.size() > 9 && (packet[9] == wire::kIpProtocolTcp ||
                                             packet[9] == wire::kIpProtocolGre))) {
      out.kind = PacketKind::Malformed;
      out.anomaly = fragment ? Anomaly::IpFragment : Anomaly::IpMalformed;
      out.detail = wire::describe(ip.error());
    }
    return out;
  }
  out.ip = *ip;
  if (ip->protocol == wire::kIpProtocolGre) {
    out.kind = PacketKind::Gre;
    return out;
  }
  if (ip->protocol != wire::kIpProtocolTcp) return out;
  auto tcp = wire::parse_tcp(ip->payload);
  if (!tcp) {
    if (ip->payload.size() >= 4 && (load_u16(ip->payload.data()) == wire::kPptpPort ||
                                    load_u16(ip->payload.data() + 2) == wire::kPptpPort)) {
      out.kind = PacketKind::Malformed;
      out.detail = "TCP/1723: " + wire::describe(tcp.error());
    }
    return out;
  }
  if (tcp->source_port != wire::kPptpPort && tcp->destination_port != wire::kPptpPort) return out;
  out.kind = PacketKind::Control;
  out.tcp = *tcp;
  return out;
}

PacketOutcome handle_parsed(Tracker& tracker, double time, const ParsedPacket& packet) {
  PacketOutcome out;
  out.kind = packet.kind;
  switch (packet.kind) {
    case PacketKind::Malformed:
      tracker.report(packet.anomaly, packet.detail);
      break;
    case PacketKind::Gre:
      out.gre = tracker.on_gre(time, packet.ip);
      break;
    case PacketKind::Control:
      out.segment = tracker.on_tcp_segment(time, packet.ip, packet.tcp);
      break;
    case PacketKind::Other:
      break;
  }
  return out;
}

}  // namespace pptp::track
