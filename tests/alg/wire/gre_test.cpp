#include "alg/wire/gre.hpp"

#include <gtest/gtest.h>

#include "tests/support/packets.hpp"

namespace pptp::wire {
namespace {

// The first GRE packet of Zeek's gre-pptp.pcap (BSD licence), with its PPP/IPv4 start.
const std::vector<std::uint8_t> kZeekGre{0x30, 0x81, 0x88, 0x0b, 0x00, 0x04, 0x17, 0x80,
                                         0x00, 0x06, 0x8f, 0xb1, 0x00, 0x08, 0x3a, 0x76,
                                         0xff, 0x03, 0x00, 0x21};

TEST(Gre, ParsesARealPacketWithSequenceAndAck) {
  auto p = parse_gre(kZeekGre);
  ASSERT_TRUE(p) << describe(p.error());
  EXPECT_EQ(p->header.call_id, 6016);
  EXPECT_EQ(p->header.sequence, 430001u);
  EXPECT_EQ(p->header.acknowledgment, 539254u);
  EXPECT_EQ(p->header.payload_length, 4);
  EXPECT_EQ(p->payload.size(), 4u);
  EXPECT_EQ(p->header.header_length(), 16u);
}

TEST(Gre, BuildRoundTripsEveryFlagCombination) {
  const std::vector<std::uint8_t> payload{0xff, 0x03, 0xc0, 0x21, 1, 2, 3};
  for (int s = 0; s < 2; ++s) {
    for (int a = 0; a < 2; ++a) {
      GreHeader h;
      h.call_id = 0;  // Call ID 0 is valid (Poptop hands it out)
      if (s) h.sequence = 0xfffffffe;
      if (a) h.acknowledgment = 0xffffffff;  // Cisco's first ack
      const std::vector<std::uint8_t> body = s ? payload : std::vector<std::uint8_t>{};
      std::vector<std::uint8_t> out;
      build_gre(h, body, out);
      auto p = parse_gre(out);
      ASSERT_TRUE(p) << describe(p.error());
      h.payload_length = static_cast<std::uint16_t>(body.size());
      EXPECT_EQ(p->header, h);
      EXPECT_EQ(std::vector<std::uint8_t>(p->payload.begin(), p->payload.end()), body);
      EXPECT_EQ(p->header.ack_only(), !s);
    }
  }
}

TEST(Gre, RejectsGreVersionZeroAndOtherProtocols) {
  auto v0 = kZeekGre;
  v0[1] = 0x00;
  EXPECT_EQ(parse_gre(v0).error().code, GreErrorCode::NotEnhanced);
  auto ipv4_payload = kZeekGre;
  ipv4_payload[2] = 0x08;
  ipv4_payload[3] = 0x00;
  auto e = parse_gre(ipv4_payload);
  EXPECT_EQ(e.error().code, GreErrorCode::NotPpp);
  EXPECT_EQ(describe(e.error()), "GRE protocol 0x0800, PPTP uses 0x880b");
}

TEST(Gre, RejectsForbiddenFlagsAndMissingKey) {
  auto p = kZeekGre;
  p[0] |= 0x80;  // checksum present
  EXPECT_EQ(parse_gre(p).error().code, GreErrorCode::ForbiddenFlag);
  p = kZeekGre;
  p[0] |= 0x01;  // recursion control
  EXPECT_EQ(parse_gre(p).error().code, GreErrorCode::ForbiddenFlag);
  p = kZeekGre;
  p[0] &= static_cast<std::uint8_t>(~0x20);
  EXPECT_EQ(parse_gre(p).error().code, GreErrorCode::KeyMissing);
}

TEST(Gre, TruncatedAtEveryCutIsAnErrorNeverARead) {
  for (std::size_t n = 0; n < kZeekGre.size(); ++n) {
    auto p = parse_gre(Bytes(kZeekGre).first(n));
    EXPECT_FALSE(p) << n;
  }
  auto lying = kZeekGre;
  lying[5] = 0x40;  // payload length 64 with 4 bytes there
  EXPECT_EQ(parse_gre(lying).error().code, GreErrorCode::Truncated);
}

TEST(Gre, TrailingBytesBeyondThePayloadLengthAreCounted) {
  auto p = kZeekGre;
  p.push_back(0);
  p.push_back(0);
  auto g = parse_gre(p);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->payload.size(), 4u);
  EXPECT_EQ(g->trailing, 2u);
}

}  // namespace
}  // namespace pptp::wire
