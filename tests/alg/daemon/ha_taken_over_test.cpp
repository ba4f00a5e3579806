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

// `ctl kill --user | --client` reaches the calls taken over, once each, only while active
// and only by user or client (they have no tracker call id).
class HaKill : public test::PeeredTest {};

TEST_F(HaKill, TakesTheSelectedTakenOverCallsOutOnlyWhileActive) {
  sync::CallState alice = replicated(40001, 7, 0), bob = replicated(40002, 7, 2);
  alice.user = "alice";
  bob.user = "bob";
  peer->exchange(io, 3);
  peer->end.publish_add(alice);
  peer->end.publish_add(bob);
  peer->exchange(io, 3);
  const gateway::KillRequest by_alice{std::nullopt, "alice", std::nullopt};
  EXPECT_TRUE(node->kill_taken_over(by_alice).empty());  // standby: nothing is carried
  EXPECT_TRUE(node->taken_over_records().empty());
  EXPECT_TRUE(node->carried_bindings().empty());
  ASSERT_TRUE(node->promote(true, nullptr));
  EXPECT_EQ(node->carried_bindings().size(), 2u);  // not listed again as adopted
  // `ctl calls` lists them (the tracker does not hold them).
  ASSERT_EQ(node->taken_over_records().size(), 2u);
  EXPECT_EQ(records_json(node->taken_over_records())[0]["user"], "alice");
  EXPECT_TRUE(node->kill_taken_over(gateway::KillRequest{}).empty());
  EXPECT_TRUE(node->kill_taken_over(gateway::KillRequest{1, "alice", std::nullopt}).empty());
  const auto killed = node->kill_taken_over(by_alice);
  ASSERT_EQ(killed.size(), 1u);
  EXPECT_EQ(killed[0].pns, alice.key.pns);
  EXPECT_EQ(killed[0].pac, alice.key.pac);
  EXPECT_EQ(killed[0].call, binding_of(alice));
  EXPECT_TRUE(node->kill_taken_over(by_alice).empty());  // once
  ASSERT_EQ(node->taken_over_records().size(), 1u);
  EXPECT_EQ(records_json(node->taken_over_records())[0]["user"], "bob");
  // Both calls are of one client address: Bob's is the one left.
  const auto by_client = node->kill_taken_over(gateway::KillRequest{std::nullopt, std::nullopt, bob.key.pns.address});
  ASSERT_EQ(by_client.size(), 1u);
  EXPECT_EQ(by_client[0].call, binding_of(bob));
}

}  // namespace
}  // namespace pptp::daemon
