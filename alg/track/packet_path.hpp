// The one way an IPv4 packet reaches the tracker, shared by the offline inspector and the
// daemon: decode IPv4 once (parse_packet), then TCP/1723 to the control-connection tracker,
// GRE to the call matcher; anything that does not decode is counted as such.
#pragma once

#include <optional>
#include <string>

#include "alg/core/bytes.hpp"
#include "alg/track/tracker.hpp"

namespace pptp::track {

enum class PacketKind : std::uint8_t { Other, Malformed, Control, Gre };

// A packet decoded once: its kind and the headers the rest of the path reads.
struct ParsedPacket {
  PacketKind kind = PacketKind::Other;
  wire::Ipv4Packet ip;       // Control and Gre
  wire::TcpSegment tcp;      // Control
  Anomaly anomaly = Anomaly::IpMalformed;  // Malformed: what was wrong
  std::string detail;                      // Malformed only (rare: built then)
};
ParsedPacket parse_packet(Bytes packet);

struct PacketOutcome {
  PacketKind kind = PacketKind::Other;
  SegmentOutcome segment;  // for Control
  GreOutcome gre;          // for Gre
};

// Feeds a parsed packet to the tracker (a malformed one is reported as its anomaly).
PacketOutcome handle_parsed(Tracker& tracker, double time, const ParsedPacket& packet);
inline PacketOutcome handle_ipv4(Tracker& tracker, double time, Bytes packet) {
  return handle_parsed(tracker, time, parse_packet(packet));
}

}  // namespace pptp::track
