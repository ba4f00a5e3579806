// Control segments held until the message they cut is whole, so that a Call ID rewrite
// reaches the bytes it belongs to (docs/packet-path.md, "Held segments"). One per direction
// of a control connection. Bounded in count and time: a sender that waits for the ACK of
// the held part (Nagle) gets it released after kMaxHoldSeconds.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "gateway/counters.hpp"
#include "gateway/types.hpp"
#include "nat/rewrite.hpp"

namespace pptp::gateway {

inline constexpr std::size_t kMaxHeldSegments = 8;  // per connection and direction
inline constexpr double kMaxHoldSeconds = 0.5;

class SegmentHold {
 public:
  // Keeps a copy of the packet; false when the bound is reached (the caller decides now).
  bool hold(const PacketMeta& meta, std::span<const std::uint8_t> packet, const nat::TcpPayload& at);
  bool empty() const { return held_.empty(); }
  // Held longer than kMaxHoldSeconds at `now`.
  bool overdue(double now) const { return !held_.empty() && now - held_.front().since > kMaxHoldSeconds; }
  // Every held packet goes, with the direction's patches applied, as accepted.
  void release(const nat::StreamPatches& patches, bool expired, GatewayCounters& counters,
               std::vector<ReleasedPacket>& out);

 private:
  struct Held {
    std::uint64_t packet_id;
    double since;
    std::vector<std::uint8_t> bytes;
    nat::TcpPayload at;  // where its payload lies, from the parse on arrival
  };
  std::vector<Held> held_;
};

}  // namespace pptp::gateway
