// The calls a promotion or a healing took over, as the HA node holds them (docs/ha.md):
// what ends one, and what retires one that is no longer offloaded.
#include <gtest/gtest.h>

#include "alg/daemon/ha_node.hpp"
#include "tests/alg/daemon/ha_support.hpp"
#include "tests/support/packets.hpp"

namespace pptp::daemon {
namespace {

using pptp::test::addr;
using test::replicated;

TEST(HaNode, WhatEndsATakenOverCallOnItsControlConnectionTakesOnlyThatCallOut) {
  TakenOverCalls t;
  t.take({replicated(40001, 7, 0), replicated(40001, 9, 2), replicated(40004, 7, 6)});
  const wire::Endpoint pac{addr("198.51.100.2"), 1723};
  const wire::Endpoint a{addr("192.0.2.11"), 40001}, b{addr("192.0.2.11"), 40004};
  // The gateway names the call by the client's Call ID (whichever Call ID its message held).
  auto ended = t.end(a, pac, {9});
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].outside_call_id, 2);
  EXPECT_TRUE(t.end(a, pac, {9}).empty());  // ended once
  // Only on its own connection.
  EXPECT_TRUE(t.end({addr("192.0.2.11"), 40002}, pac, {7}).empty());
  ended = t.end(a, pac, {7});
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].outside_call_id, 0);
  EXPECT_EQ(t.size(), 1u);
  // The connection's end: every call of it, none of another.
  EXPECT_TRUE(t.end(a, pac, {}).empty());
  EXPECT_EQ(t.end(b, pac, {}).size(), 1u);
  EXPECT_EQ(t.size(), 0u);
}

// Of two records of one call (a restart's adopted one and the peer's older one, added at a
// promotion) the newer stays, whichever comes last.
TEST(HaNode, OfTwoRecordsOfOneTakenOverCallTheNewerStays) {
  sync::CallState newer = replicated(40001, 7, 0), older = replicated(40001, 7, 0);
  newer.updated_ms = 200;
  newer.next_sequence = {1168, 5032};
  newer.positions_known = true;
  older.updated_ms = 100;
  TakenOverCalls t;
  t.add({newer});
  t.add({older});
  const wire::Endpoint pns{addr("192.0.2.11"), 40001}, pac{addr("198.51.100.2"), 1723};
  ASSERT_TRUE(t.positions(pns, pac));
  EXPECT_EQ(*t.positions(pns, pac), (track::ResumePositions{1168, 5032}));
  t.add({newer});
  EXPECT_EQ(t.size(), 1u);
}

// A taken-over call whose elements idled out (or whose end came before its connection's
// window was proven) is retired at the tick: its client Call ID no longer names a call, so
// a new call on the connection may take it (Tracker::refuse_duplicate_pns_call_id).
TEST(HaNode, ATakenOverCallNoLongerOffloadedIsRetired) {
  TakenOverCalls t;
  t.take({replicated(40001, 7, 0), replicated(40001, 9, 2)});
  const wire::Endpoint pac{addr("198.51.100.2"), 1723};
  const wire::Endpoint a{addr("192.0.2.11"), 40001};
  const sync::CallState still = replicated(40001, 9, 2);
  EXPECT_EQ(t.retire({binding_of(replicated(40001, 7, 0)), binding_of(still)}), 0u);
  EXPECT_EQ(t.retire({binding_of(still)}), 1u);
  EXPECT_FALSE(t.find(a, pac, gateway::CallIdSide::Pns, 7).has_value());
  ASSERT_TRUE(t.find(a, pac, gateway::CallIdSide::Pns, 9).has_value());
  EXPECT_TRUE(t.holds(a, pac));
  EXPECT_EQ(t.retire({}), 1u);
  EXPECT_FALSE(t.holds(a, pac));
  EXPECT_TRUE(t.empty());
}

}  // namespace
}  // namespace pptp::daemon
