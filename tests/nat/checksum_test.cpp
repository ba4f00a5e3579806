// The Internet checksum (RFC 1071) on odd lengths, against known answers and against a
// second, byte-at-a-time implementation written here from the RFC's definition.
#include "nat/checksum.hpp"

#include <gtest/gtest.h>

#include <random>

#include "nat/rewrite.hpp"
#include "tests/support/packets.hpp"

namespace pptp::nat {
namespace {

using test::addr;

// RFC 1071 section 1: adjacent octets form 16-bit integers, the first the high half; an odd
// last octet is padded with a zero octet on its right (so it is a high half too).
std::uint16_t reference_sum(const std::vector<std::uint8_t>& data) {
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < data.size(); ++i) sum += (i % 2 == 0) ? std::uint64_t{data[i]} * 256 : data[i];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// The TCP checksum (RFC 9293 3.1) of an IPv4 packet with a 20-byte header, computed from
// scratch: pseudo header, then the segment with its checksum field taken as zero.
std::uint16_t reference_tcp_checksum(const std::vector<std::uint8_t>& packet) {
  const std::size_t length = packet.size() - 20;
  std::vector<std::uint8_t> bytes(packet.begin() + 12, packet.begin() + 20);
  bytes.insert(bytes.end(), {0, packet[9], static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)});
  std::vector<std::uint8_t> segment(packet.begin() + 20, packet.end());
  segment[16] = segment[17] = 0;
  bytes.insert(bytes.end(), segment.begin(), segment.end());
  return static_cast<std::uint16_t>(~reference_sum(bytes));
}

TEST(ChecksumOddLength, KnownAnswers) {
  // The RFC 1071 section 3 example without its last octet: 0001 + f203 + f4f5 + f600 = 2dcf9,
  // folded dcfb.
  EXPECT_EQ(fold(ones_complement_sum(std::vector<std::uint8_t>{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6})),
            0xdcfb);
  EXPECT_EQ(fold(ones_complement_sum(std::vector<std::uint8_t>{0xab})), 0xab00);
  EXPECT_EQ(fold(ones_complement_sum(std::vector<std::uint8_t>{0x12, 0x34, 0x56})), 0x6834);
  // Carries wrap round: ffff + ff00 = 1feff, folded ff00.
  EXPECT_EQ(fold(ones_complement_sum(std::vector<std::uint8_t>{0xff, 0xff, 0xff})), 0xff00);
}

TEST(ChecksumOddLength, AgreesWithTheReferenceOnEveryLength) {
  std::mt19937 random(1071);
  for (std::size_t n = 1; n < 300; ++n) {
    std::vector<std::uint8_t> data(n);
    for (auto& b : data) b = static_cast<std::uint8_t>(random());
    ASSERT_EQ(fold(ones_complement_sum(data)), reference_sum(data)) << "length " << n;
  }
}

TEST(ChecksumOddLength, RewrittenOddSegmentsCarryTheReferenceTcpChecksum) {
  // A Call-Disconnect-Notify and a stray odd octet, as a segment may carry; every odd
  // payload length from 1 up, patched at its last two octets.
  std::mt19937 random(9293);
  for (std::size_t n = 1; n < 160; n += 2) {
    std::vector<std::uint8_t> payload(n);
    for (auto& b : payload) b = static_cast<std::uint8_t>(random());
    payload.back() = 0xee;
    auto packet = test::tcp({addr("198.51.100.2"), 1723}, {addr("192.0.2.12"), 40002}, 7000,
                            wire::tcp_flags::kAck, payload);
    update_ipv4_header_checksum(packet, 20);
    update_tcp_checksum(packet, 20);
    ASSERT_EQ(load_u16(&packet[36]), reference_tcp_checksum(packet)) << "length " << n;
    StreamPatches patches;
    patches.add(7000 + static_cast<std::uint32_t>(n) - 1, 0x0007);  // the last octet and beyond
    ASSERT_TRUE(patch_tcp_payload(packet, *tcp_payload_of(packet), patches));
    EXPECT_EQ(packet.back(), 0x00);
    EXPECT_EQ(load_u16(&packet[36]), reference_tcp_checksum(packet)) << "length " << n;
  }
}

}  // namespace
}  // namespace pptp::nat
