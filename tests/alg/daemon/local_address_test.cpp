// Which addresses are here (a restarted daemon's promotion at start), and the watch that
// says a standby still holds the outside virtual address (docs/ha.md).
#include "alg/daemon/local_address.hpp"

#include <gtest/gtest.h>

#include "tests/support/packets.hpp"

namespace pptp::daemon {
namespace {

using pptp::test::addr;

// keepalived adds the virtual addresses only as master; an address left on a link that is
// down (FAULT, its removal not yet done) is not held.
TEST(LocalAddress, AnAddressIsHeldOnlyOnAnInterfaceThatIsUp) {
  const wire::Ipv4Address vip{addr("198.51.100.1")};
  EXPECT_TRUE(holds_address({{addr("192.0.2.7"), true}, {vip, true}}, vip));
  EXPECT_FALSE(holds_address({{vip, false}}, vip));
  EXPECT_FALSE(holds_address({{addr("198.51.100.2"), true}}, vip));
  EXPECT_FALSE(holds_address({}, vip));
}

TEST(LocalAddress, TheLoopbackAddressIsHereAndUp) {
  const auto here = local_addresses();
  ASSERT_TRUE(here) << here.error();
  EXPECT_TRUE(holds_address(*here, addr("127.0.0.1")));
  EXPECT_FALSE(holds_address(*here, addr("203.0.113.254")));  // RFC 5737: no test host has it
}

// keepalived removes the address on leaving MASTER, before the notify that demotes us:
// still here kVirtualAddressGoneWithin later, it is not one keepalived moves, or keepalived
// is MASTER here. Looked up once per demotion, never while active.
TEST(VirtualAddressWatch, ALookUpIsDueOnceTheGraceAfterADemotionIsOver) {
  VirtualAddressWatch w;
  EXPECT_FALSE(w.due(1000));  // never demoted
  w.demoted(100);
  EXPECT_FALSE(w.due(100 + kVirtualAddressGoneWithin - 0.5));
  EXPECT_TRUE(w.due(100 + kVirtualAddressGoneWithin));
  w.checked();
  EXPECT_FALSE(w.due(200));  // looked up once
  w.demoted(300);
  EXPECT_TRUE(w.due(310));
  w.checked();
  EXPECT_FALSE(w.due(320));
}

TEST(VirtualAddressWatch, APromotionWithinTheGraceEndsTheWatch) {
  VirtualAddressWatch w;
  w.demoted(100);
  w.promoted();  // a failover back: the address is ours again
  EXPECT_FALSE(w.due(100 + 2 * kVirtualAddressGoneWithin));
}

}  // namespace
}  // namespace pptp::daemon
