#include "alg/wire/ip.hpp"

#include <gtest/gtest.h>

#include "tests/support/packets.hpp"

namespace pptp::wire {
namespace {

TEST(Ip, AddressTextRoundTrip) {
  Ipv4Address a;
  ASSERT_TRUE(parse_ipv4_address("198.51.100.2", a));
  EXPECT_EQ(a.value, 0xc6336402u);
  EXPECT_EQ(to_string(a), "198.51.100.2");
  EXPECT_FALSE(parse_ipv4_address("198.51.100", a));
  EXPECT_FALSE(parse_ipv4_address("198.51.100.256", a));
  EXPECT_FALSE(parse_ipv4_address("198.51.100.2.", a));
  EXPECT_FALSE(parse_ipv4_address("", a));
}

TEST(Ip, TcpSegmentInIpv4) {
  const auto pkt = test::tcp({test::addr("192.0.2.10"), 40000}, {test::addr("198.51.100.2"), 1723}, 1000,
                             tcp_flags::kAck | tcp_flags::kPsh, {1, 2, 3});
  auto ip = parse_ipv4(pkt);
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->protocol, kIpProtocolTcp);
  EXPECT_EQ(to_string(ip->source), "192.0.2.10");
  auto tcp = parse_tcp(ip->payload);
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->destination_port, kPptpPort);
  EXPECT_EQ(tcp->sequence, 1000u);
  EXPECT_EQ(tcp->payload.size(), 3u);
  EXPECT_TRUE(tcp->has(tcp_flags::kPsh));
}

TEST(Ip, PaddingAfterTotalLengthIsCutAndLiesAreErrors) {
  auto pkt = test::gre(test::addr("192.0.2.1"), test::addr("198.51.100.2"), 0, 1, {0xff, 0x03, 0x00, 0x21});
  const std::size_t real = pkt.size();
  pkt.resize(real + 6);  // Ethernet padding
  auto ip = parse_ipv4(pkt);
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->payload.size(), real - 20);
  store_u16(&pkt[2], 2000);
  EXPECT_EQ(parse_ipv4(pkt).error().code, IpErrorCode::BadTotalLength);
  pkt[0] = 0x44;
  EXPECT_EQ(parse_ipv4(pkt).error().code, IpErrorCode::BadHeaderLength);
  pkt[0] = 0x65;
  EXPECT_EQ(parse_ipv4(pkt).error().code, IpErrorCode::NotIpv4);
  for (std::size_t n = 0; n < 20; ++n) EXPECT_FALSE(parse_ipv4(Bytes(pkt).first(n)));
}

TEST(Ip, FragmentsAreReported) {
  auto pkt = test::gre(test::addr("192.0.2.1"), test::addr("198.51.100.2"), 0, 1, {0xff, 0x03, 0x00, 0x21});
  pkt[6] = 0x20;  // MF
  EXPECT_EQ(parse_ipv4(pkt).error().code, IpErrorCode::Fragment);
}

}  // namespace
}  // namespace pptp::wire
