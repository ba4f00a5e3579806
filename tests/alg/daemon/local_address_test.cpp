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
// still here at kHeldLooksToSay looks kVirtualAddressGoneWithin apart, it is not one
// keepalived moves, or keepalived is MASTER here. Said once per demotion, never while active.
TEST(VirtualAddressWatch, HeldAtEveryLookIsSaidOnce) {
  VirtualAddressWatch w;
  EXPECT_FALSE(w.due(1000));  // never demoted
  w.demoted(100);
  double t = 100;
  for (int look = 1; look <= kHeldLooksToSay; ++look) {
    EXPECT_FALSE(w.due(t + kVirtualAddressGoneWithin - 0.5)) << look;
    t += kVirtualAddressGoneWithin;
    ASSERT_TRUE(w.due(t)) << look;
    EXPECT_EQ(w.looked(t, true), look == kHeldLooksToSay) << look;
  }
  EXPECT_DOUBLE_EQ(t - 100, VirtualAddressWatch::said_after());
  EXPECT_FALSE(w.due(t + 100));  // said: done until the next demotion
  w.demoted(300);
  EXPECT_TRUE(w.due(300 + kVirtualAddressGoneWithin));
}

TEST(VirtualAddressWatch, GoneAtALookEndsTheWatchUnsaid) {
  VirtualAddressWatch w;
  w.demoted(100);
  const double first = 100 + kVirtualAddressGoneWithin;
  EXPECT_FALSE(w.looked(first, true));
  EXPECT_FALSE(w.looked(first + kVirtualAddressGoneWithin, false));  // keepalived removed it late
  EXPECT_FALSE(w.due(first + 10 * kVirtualAddressGoneWithin));
}

// A failover soon after this node's BACKUP notify: keepalived adds the address, then its
// master notify promotes us; one look between the two must not say it (seen under load).
TEST(VirtualAddressWatch, APromotionAfterAHeldLookEndsTheWatchUnsaid) {
  VirtualAddressWatch w;
  w.demoted(100);
  const double first = 100 + kVirtualAddressGoneWithin;
  EXPECT_FALSE(w.looked(first, true));
  w.promoted();
  EXPECT_FALSE(w.due(first + 10 * kVirtualAddressGoneWithin));
}

TEST(VirtualAddressWatch, APromotionWithinTheGraceEndsTheWatch) {
  VirtualAddressWatch w;
  w.demoted(100);
  w.promoted();  // a failover back: the address is ours again
  EXPECT_FALSE(w.due(100 + 2 * kVirtualAddressGoneWithin));
}

}  // namespace
}  // namespace pptp::daemon
