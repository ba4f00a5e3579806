// The exact bytes of the fast path's set elements, without a kernel: what the nftables
// rules (rules.cpp) compare against the packet, field by field, in network order.
#include "nftables/fastpath_keys.hpp"

#include <gtest/gtest.h>

#include "tests/support/packets.hpp"

namespace pptp::nft {
namespace {

using test::addr;

TEST(FastPathKeys, KeyIsTwoAddressesThenTheCallIdInNetworkOrderPadded) {
  // server 198.51.100.2 . public 198.51.100.1 . Key 0x1234, as `ip saddr . ip daddr .
  // @th,48,16` lays it out: each field in a 32-bit register, the Key's two bytes first.
  const Key k = key_of(addr("198.51.100.2"), addr("198.51.100.1"), 0x1234);
  const Key expected{198, 51, 100, 2, 198, 51, 100, 1, 0x12, 0x34, 0, 0};
  EXPECT_EQ(k, expected);
  // A Call ID whose two bytes differ only in order is another key.
  EXPECT_NE(key_of(addr("198.51.100.2"), addr("198.51.100.1"), 0x3412), k);
  // Call ID 0x0100: the byte on the wire first is 0x01.
  EXPECT_EQ(key_of(addr("192.0.2.11"), addr("198.51.100.2"), 0x0100),
            (Key{192, 0, 2, 11, 198, 51, 100, 2, 0x01, 0x00, 0, 0}));
}

TEST(FastPathKeys, ParsedKeyGivesBackItsFields) {
  const Key k{203, 0, 113, 9, 192, 0, 2, 12, 0xab, 0xcd, 0, 0};
  wire::Ipv4Address a, b;
  std::uint16_t call_id = 0;
  parse_key(k.data(), static_cast<std::uint32_t>(k.size()), a, b, call_id);
  EXPECT_EQ(a, addr("203.0.113.9"));
  EXPECT_EQ(b, addr("192.0.2.12"));
  EXPECT_EQ(call_id, 0xabcd);
  // Too short: untouched.
  call_id = 7;
  parse_key(k.data(), 9, a, b, call_id);
  EXPECT_EQ(call_id, 7);
}

TEST(FastPathKeys, ElementValuesAreTheClientsAddressAndCallIdInNetworkOrder) {
  EXPECT_EQ(address_value(addr("192.0.2.12")), (std::array<std::uint8_t, 4>{192, 0, 2, 12}));
  EXPECT_EQ(call_id_value(0x0007), (std::array<std::uint8_t, 2>{0x00, 0x07}));
  EXPECT_EQ(call_id_value(0xbeef), (std::array<std::uint8_t, 2>{0xbe, 0xef}));
}

TEST(FastPathKeys, BindingBytesAndBack) {
  FastPathCall c;
  c.server = addr("198.51.100.2");
  c.outside = addr("198.51.100.1");
  c.inside = addr("192.0.2.12");
  c.outside_call_id = 0x0102;
  c.inside_call_id = 0x0007;
  c.server_call_id = 0xa0b0;
  const Binding b = binding_of(c);
  const Binding expected{198, 51, 100, 2, 198, 51, 100, 1, 192, 0, 2, 12, 0x01, 0x02, 0x00, 0x07, 0xa0, 0xb0};
  EXPECT_EQ(b, expected);
  const auto back = parse_binding(b.data(), static_cast<std::uint32_t>(b.size()));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, c);
  EXPECT_FALSE(parse_binding(b.data(), kBindingLength - 1));
  EXPECT_FALSE(parse_binding(nullptr, kBindingLength));
}

}  // namespace
}  // namespace pptp::nft
