// SegmentHold's bounds: per connection and direction, and over every connection together.
#include "gateway/segment_hold.hpp"

#include <gtest/gtest.h>

#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT

struct HeldPacket {
  Packet bytes;
  nat::TcpPayload at;
};

PacketMeta meta(std::uint64_t id) { return PacketMeta{1, id, std::nullopt}; }

HeldPacket segment(std::size_t payload) {
  Client c{{addr("192.0.2.11"), 40001}};
  HeldPacket p{c.to_pac(Packet(payload, 0x11)), {}};
  p.at = *nat::tcp_payload_of(p.bytes);
  return p;
}

TEST(SegmentHold, TheOverallBoundRefusesTheNextSegmentAndReleaseGivesItBack) {
  HoldBudget overall{kMaxHeldSegmentsOverall - 1, 0};
  SegmentHold one, two;
  const HeldPacket p = segment(20);
  EXPECT_TRUE(one.hold(meta(1), p.bytes, p.at, overall));
  EXPECT_FALSE(two.hold(meta(2), p.bytes, p.at, overall));
  EXPECT_EQ(overall.segments, kMaxHeldSegmentsOverall);
  GatewayCounters counters;
  std::vector<ReleasedPacket> out;
  one.drop(overall, counters, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].action, Action::Drop);
  EXPECT_EQ(counters.control_held_dropped, 1u);
  EXPECT_EQ(overall.segments, kMaxHeldSegmentsOverall - 1);
  EXPECT_EQ(overall.bytes, 0u);
  EXPECT_TRUE(two.hold(meta(3), p.bytes, p.at, overall));
}

TEST(SegmentHold, TheByteBoundsRefuseASegmentThatWouldPassThem) {
  HoldBudget overall{0, kMaxHeldBytesOverall - 100};
  SegmentHold hold;
  const HeldPacket small = segment(20), big = segment(100);
  EXPECT_TRUE(hold.hold(meta(1), small.bytes, small.at, overall));
  EXPECT_FALSE(hold.hold(meta(2), big.bytes, big.at, overall));
  HoldBudget empty;
  SegmentHold per_connection;
  const HeldPacket large = segment(1400);
  std::size_t held = 0;
  while (per_connection.hold(meta(held), large.bytes, large.at, empty)) ++held;
  EXPECT_EQ(held, std::min(kMaxHeldSegments, kMaxHeldBytes / large.bytes.size()));
}

TEST(SegmentHold, AReleasedSegmentLeavesWithThePatchesAndAcceptedVerdict) {
  HoldBudget overall;
  SegmentHold hold;
  const HeldPacket p = segment(20);
  ASSERT_TRUE(hold.hold(meta(7), p.bytes, p.at, overall));
  nat::StreamPatches patches;
  patches.add(p.at.sequence + 4, 0xabcd);
  GatewayCounters counters;
  std::vector<ReleasedPacket> out;
  hold.release(patches, overall, counters, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].packet_id, 7u);
  EXPECT_EQ(out[0].action, Action::Accept);
  ASSERT_TRUE(out[0].modified);
  EXPECT_EQ(load_u16(&out[0].bytes[p.at.offset + 4]), 0xabcd);
  EXPECT_TRUE(nat::tcp_checksum_ok(out[0].bytes, 20));
  EXPECT_EQ(overall.segments, 0u);
  EXPECT_TRUE(hold.empty());
}

}  // namespace
}  // namespace pptp::gateway
