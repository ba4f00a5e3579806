// The one way an IPv4 packet reaches the tracker, shared by the offline inspector and the
// daemon: decode IPv4, then TCP/1723 to the control-connection tracker, GRE to the call
// matcher; anything that does not decode is counted as such.
#pragma once

#include "alg/core/bytes.hpp"
#include "alg/track/tracker.hpp"

namespace pptp::track {

enum class PacketKind : std::uint8_t { Other, Malformed, Control, Gre };

struct PacketOutcome {
  PacketKind kind = PacketKind::Other;
  SegmentOutcome segment;  // for Control
  GreOutcome gre;          // for Gre
};

PacketOutcome handle_ipv4(Tracker& tracker, double time, Bytes packet);

}  // namespace pptp::track
