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

namespace pptp::wire {
namespace {

std::vector<std::uint8_t> tcp_with_options(const std::vector<std::uint8_t>& options) {
  std::vector<std::uint8_t> t(20 + options.size());  // sized once (GCC 12 -O3 -Warray-bounds)
  t[12] = static_cast<std::uint8_t>((20 + options.size()) / 4) << 4;
  t[13] = tcp_flags::kSyn;
  store_u16(&t[14], 29200);
  std::copy(options.begin(), options.end(), t.begin() + 20);
  return t;
}

TEST(Ip, WindowAndWindowScaleOption) {
  // MSS, SACK-permitted, timestamps, NOP, window scale 7: what Linux sends in a SYN.
  auto tcp = parse_tcp(tcp_with_options({2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}));
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->window, 29200);
  EXPECT_EQ(tcp->window_scale, 7);
  tcp = parse_tcp(tcp_with_options({2, 4, 5, 0xb4}));
  ASSERT_TRUE(tcp);
  EXPECT_FALSE(tcp->window_scale);
  // A malformed option ends the list; the segment still parses.
  tcp = parse_tcp(tcp_with_options({2, 0, 3, 3, 7, 0, 0, 0}));
  ASSERT_TRUE(tcp);
  EXPECT_FALSE(tcp->window_scale);
  tcp = parse_tcp(tcp_with_options({1, 1, 1, 3}));  // the length octet is missing
  ASSERT_TRUE(tcp);
  EXPECT_FALSE(tcp->window_scale);
}

TEST(Ip, TcpChecksum) {
  auto pkt = test::tcp({test::addr("192.0.2.10"), 40000}, {test::addr("198.51.100.2"), 1723}, 1000,
                       tcp_flags::kAck | tcp_flags::kPsh, {1, 2, 3});
  auto ip = parse_ipv4(pkt);
  ASSERT_TRUE(ip);
  EXPECT_FALSE(tcp_checksum_ok(*ip));  // test::tcp leaves it zero
  // The sum of the segment with its checksum field zero, folded and complemented, fills it.
  std::uint32_t sum = 0xc000 + 0x020a + 0xc633 + 0x6402 + kIpProtocolTcp + 23;
  for (std::size_t i = 20; i + 1 < pkt.size(); i += 2) sum += load_u16(&pkt[i]);
  sum += std::uint32_t{pkt.back()} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  store_u16(&pkt[36], static_cast<std::uint16_t>(~sum));
  ip = parse_ipv4(pkt);
  EXPECT_TRUE(tcp_checksum_ok(*ip));
  pkt[42] ^= 1;  // a payload bit flipped
  ip = parse_ipv4(pkt);
  EXPECT_FALSE(tcp_checksum_ok(*ip));
}

}  // namespace
}  // namespace pptp::wire
