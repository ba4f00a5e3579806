// Control segments held while they carry part of a Call ID field that cannot be translated
// yet (docs/packet-path.md, "Held segments"). One per direction of a control connection.
// Nothing leaves by wall-clock time or raw at a bound: a held segment goes with its field's
// rewrite once the field is whole, or is dropped (the connection closed or lost sync). At a
// bound the new segment is dropped instead of held; TCP sends it again.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "gateway/counters.hpp"
#include "gateway/types.hpp"
#include "nat/rewrite.hpp"

namespace pptp::gateway {

inline constexpr std::size_t kMaxHeldSegments = 8;                   // per connection and direction
inline constexpr std::size_t kMaxHeldBytes = 16 * 1024;              // per connection and direction
inline constexpr std::size_t kMaxHeldSegmentsOverall = 4096;         // all connections together
inline constexpr std::size_t kMaxHeldBytesOverall = 4 * 1024 * 1024;  // all connections together

// What every SegmentHold holds together, against the overall bounds.
struct HoldBudget {
  std::size_t segments = 0;
  std::size_t bytes = 0;
};

class SegmentHold {
 public:
  // Keeps a copy of the packet; false when a bound is reached (the caller drops it).
  bool hold(const PacketMeta& meta, std::span<const std::uint8_t> packet, const nat::TcpPayload& at,
            HoldBudget& overall);
  bool empty() const { return !segments_; }
  std::size_t bytes() const { return segments_ ? segments_->bytes : 0; }
  // Every held packet goes, with the direction's patches applied, as accepted.
  void release(const nat::StreamPatches& patches, HoldBudget& overall, GatewayCounters& counters,
               std::vector<ReleasedPacket>& out);
  // Every held packet is dropped: its field will never be translated.
  void drop(HoldBudget& overall, GatewayCounters& counters, std::vector<ReleasedPacket>& out);

 private:
  struct Held {
    std::uint64_t packet_id;
    std::vector<std::uint8_t> bytes;
    nat::TcpPayload at;  // where its payload lies, from the parse on arrival
  };
  // Allocated only while a segment is held: most connections never hold one (issue 17,
  // memory per call).
  struct Segments {
    std::vector<Held> held;
    std::size_t bytes = 0;
  };
  void give_back(HoldBudget& overall);
  std::unique_ptr<Segments> segments_;
};

}  // namespace pptp::gateway
