#include "nat/call_id_translator.hpp"

#include <gtest/gtest.h>

#include <set>

#include "tests/support/packets.hpp"

namespace pptp::nat {
namespace {

using test::addr;

const wire::Ipv4Address kPublic = addr("198.51.100.1");
const wire::Ipv4Address kServer = addr("198.51.100.2");
const wire::Ipv4Address kOtherServer = addr("203.0.113.2");

TEST(CallIdTranslator, AFreeCallIdPassesUnchanged) {
  CallIdTranslator t;
  auto m = t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)->outside_call_id, 7);
  EXPECT_FALSE((*m)->translated());
  EXPECT_EQ(t.counters().calls_translated, 0u);
}

TEST(CallIdTranslator, ACollidingCallIdIsTranslatedAndBothDirectionsResolve) {
  CallIdTranslator t;
  const auto a = t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7);
  const auto b = t.map_call(2, addr("192.0.2.12"), kPublic, kServer, 7);
  ASSERT_TRUE(a && b);
  EXPECT_NE((*a)->outside_call_id, (*b)->outside_call_id);
  EXPECT_TRUE((*b)->translated());
  // GRE from the server reaches each client by the key the server was told.
  const CallMapping* ga = t.find_outside(kServer, kPublic, (*a)->outside_call_id);
  const CallMapping* gb = t.find_outside(kServer, kPublic, (*b)->outside_call_id);
  ASSERT_NE(ga, nullptr);
  ASSERT_NE(gb, nullptr);
  EXPECT_EQ(ga->inside, addr("192.0.2.11"));
  EXPECT_EQ(gb->inside, addr("192.0.2.12"));
  EXPECT_EQ(gb->inside_call_id, 7);
  EXPECT_EQ(t.find_outside_on_connection(2, (*b)->outside_call_id), *b);
  EXPECT_EQ(t.find_inside(2, 7), *b);
}

TEST(CallIdTranslator, TheSameCallIdTowardAnotherServerOrFromAnotherAddressIsNoCollision) {
  CallIdTranslator t;
  ASSERT_TRUE(t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7));
  const auto other_server = t.map_call(2, addr("192.0.2.12"), kPublic, kOtherServer, 7);
  const auto other_public = t.map_call(3, addr("192.0.2.13"), addr("203.0.113.1"), kServer, 7);
  ASSERT_TRUE(other_server && other_public);
  EXPECT_FALSE((*other_server)->translated());
  EXPECT_FALSE((*other_public)->translated());
}

TEST(CallIdTranslator, ReleaseFreesTheCallIdButNotAtOnceForAnother) {
  CallIdTranslator t;
  ASSERT_TRUE(t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7));
  const auto b = t.map_call(2, addr("192.0.2.12"), kPublic, kServer, 7);
  ASSERT_TRUE(b);
  const std::uint16_t first = (*b)->outside_call_id;
  t.release(2, 7);
  EXPECT_EQ(t.find_outside(kServer, kPublic, first), nullptr);
  const auto c = t.map_call(3, addr("192.0.2.13"), kPublic, kServer, 7);
  ASSERT_TRUE(c);
  EXPECT_NE((*c)->outside_call_id, first);  // the cursor moved on
  EXPECT_EQ(t.in_use(kPublic, kServer), 2u);
  t.release_connection(1);
  t.release_connection(3);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.in_use(kPublic, kServer), 0u);
}

// A call ended before the server answered its clear: its outside Call ID routes no GRE but
// is not handed out, even to a client naming it as its own, until the hold expires.
TEST(CallIdTranslator, AHeldOutsideCallIdIsGivenToNoCallUntilItsHoldEnds) {
  CallIdTranslator t;
  ASSERT_TRUE(t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7));
  const auto b = t.map_call(2, addr("192.0.2.12"), kPublic, kServer, 7);
  ASSERT_TRUE(b);
  const std::uint16_t held = (*b)->outside_call_id;
  t.release_held(2, 7, 100.0);
  EXPECT_EQ(t.find_outside(kServer, kPublic, held), nullptr);
  EXPECT_EQ(t.find_inside(2, 7), nullptr);
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, held));
  EXPECT_EQ(t.held(), 1u);
  const auto c = t.map_call(3, addr("192.0.2.13"), kPublic, kServer, held);
  ASSERT_TRUE(c);
  EXPECT_NE((*c)->outside_call_id, held);
  t.expire_held(99.0);
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, held));
  t.expire_held(100.0);
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, held));
  EXPECT_EQ(t.held(), 0u);
  const auto d = t.map_call(4, addr("192.0.2.14"), kPublic, kServer, held);
  ASSERT_TRUE(d);
  EXPECT_EQ((*d)->outside_call_id, held);
  t.release_connection(1);
  t.release_connection(3);
  t.release_connection(4);
  EXPECT_EQ(t.in_use(kPublic, kServer), 0u);
}

// s19 review: one client's holds must not push out another's. Each client holds at most
// kMaxHeldCallIdsPerClient; past it may_hold says no (the gateway then refuses the reuse)
// and another client still may.
TEST(CallIdTranslator, HoldsAreBoundedPerClientAndOneClientsLeaveRoomForAnothers) {
  CallIdTranslator t;
  const wire::Ipv4Address m = addr("192.0.2.11"), b = addr("192.0.2.12");
  for (std::uint16_t id = 0; id < kMaxHeldCallIdsPerClient; ++id) {
    ASSERT_TRUE(t.may_hold(m));
    ASSERT_TRUE(t.map_call(1, m, kPublic, kServer, id));
    t.release_held(1, id, 100.0 + id);
  }
  EXPECT_FALSE(t.may_hold(m));
  EXPECT_EQ(t.counters().holds_unavailable, 1u);
  EXPECT_TRUE(t.may_hold(b));
  ASSERT_TRUE(t.map_call(2, b, kPublic, kServer, 1000));
  t.release_held(2, 1000, 200.0);
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, 1000));
  // Unasked past the bound, an ID is freed at once rather than pushing another out.
  ASSERT_TRUE(t.map_call(1, m, kPublic, kServer, 2000));
  t.release_held(1, 2000, 300.0);
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, 2000));
  EXPECT_EQ(t.held(), kMaxHeldCallIdsPerClient + 1);
  EXPECT_EQ(t.counters().holds, kMaxHeldCallIdsPerClient + 1);
  t.expire_held(100.0);  // the client's oldest ends: room for one more
  EXPECT_TRUE(t.may_hold(m));
  t.expire_held(200.0);
  EXPECT_EQ(t.held(), 0u);
  EXPECT_EQ(t.in_use(kPublic, kServer), 0u);
}

// s33 review: a call that idled out while its control connection lives keeps its outside
// Call ID (the server's call may be up): no other call gets it, no GRE is routed by it, until
// the connection ends or its own client maps that Call ID again on it.
TEST(CallIdTranslator, AParkedCallIdStaysTakenUntilItsConnectionEndsOrItsClientReusesIt) {
  CallIdTranslator t;
  const wire::Ipv4Address m = addr("192.0.2.11"), b = addr("192.0.2.12");
  ASSERT_EQ((*t.map_call(1, m, kPublic, kServer, 7))->outside_call_id, 7);
  t.park(1, 7, 100.0);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.parked(), 1u);
  EXPECT_EQ(t.counters().parks, 1u);
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, 7));
  EXPECT_EQ(t.find_outside(kServer, kPublic, 7), nullptr);  // its GRE goes nowhere
  EXPECT_NE((*t.map_call(2, b, kPublic, kServer, 7))->outside_call_id, 7);  // another's call
  t.expire_held(1000.0);  // not a hold: no time ends it
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, 7));
  // Its own client names Call ID 7 again on that connection: its old call is over.
  ASSERT_EQ((*t.map_call(1, m, kPublic, kServer, 7))->outside_call_id, 7);
  EXPECT_EQ(t.parked(), 0u);
  t.park(1, 7, 100.0);
  t.release_connection(1);
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, 7));
  EXPECT_EQ(t.parked(), 0u);
}

TEST(CallIdTranslator, ParkedCallIdsAreBoundedPerClientThenHeldAsAReuseIs) {
  CallIdTranslator t;
  const wire::Ipv4Address m = addr("192.0.2.11");
  for (std::uint16_t id = 0; id < kMaxParkedCallIdsPerClient; ++id) {
    ASSERT_TRUE(t.map_call(1, m, kPublic, kServer, id));
    t.park(1, id, 100.0);
  }
  ASSERT_TRUE(t.map_call(1, m, kPublic, kServer, 5000));
  t.park(1, 5000, 100.0);
  EXPECT_EQ(t.parked(), kMaxParkedCallIdsPerClient);
  EXPECT_EQ(t.held(), 1u);
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, 5000));
  t.expire_held(100.0);
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, 5000));
  t.release_connection(1);
  EXPECT_EQ(t.in_use(kPublic, kServer), 0u);
}

TEST(CallIdTranslator, AtMostKMaxHeldCallIdsAreHeldInAll) {
  CallIdTranslator t;
  std::uint16_t id = 0;
  for (std::uint32_t client = 0; client < kMaxHeldCallIds / kMaxHeldCallIdsPerClient; ++client) {
    const wire::Ipv4Address inside{0xC0000200u + client};  // from 192.0.2.0 on
    for (std::size_t n = 0; n < kMaxHeldCallIdsPerClient; ++n, ++id) {
      ASSERT_TRUE(t.map_call(client, inside, kPublic, kServer, id));
      t.release_held(client, id, 100.0);
    }
  }
  EXPECT_EQ(t.held(), kMaxHeldCallIds);
  EXPECT_FALSE(t.may_hold(addr("198.51.100.77")));  // a client with none: no room left
  ASSERT_TRUE(t.map_call(9999, addr("198.51.100.77"), kPublic, kServer, id));
  t.release_held(9999, id, 100.0);
  EXPECT_EQ(t.in_use(kPublic, kServer), kMaxHeldCallIds);  // freed at once
  t.expire_held(100.0);
  EXPECT_EQ(t.in_use(kPublic, kServer), 0u);
}

TEST(CallIdTranslator, ADuplicateRequestOnOneConnectionIsRefused) {
  CallIdTranslator t;
  ASSERT_TRUE(t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7));
  const auto again = t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), NatError::AlreadyMapped);
}

TEST(CallIdTranslator, EveryCallIdIsUsedOnceThenExhaustionIsAnErrorAndReleaseRecovers) {
  CallIdTranslator t;
  t.set_reserve(0, 0);  // two clients fill the whole space here
  std::set<std::uint16_t> seen;
  for (std::size_t i = 0; i < kCallIdSpace; ++i) {
    const auto m = t.map_call(i + 1, addr("192.0.2.11"), kPublic, kServer, 7);
    ASSERT_TRUE(m) << i;
    ASSERT_TRUE(seen.insert((*m)->outside_call_id).second) << "handed out twice";
  }
  const auto full = t.map_call(999999, addr("192.0.2.12"), kPublic, kServer, 7);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), NatError::Exhausted);
  EXPECT_EQ(t.counters().exhausted, 1u);
  // Another server still has room.
  EXPECT_TRUE(t.map_call(999999, addr("192.0.2.12"), kPublic, kOtherServer, 7));
  const std::uint16_t freed = t.find_inside(5, 7)->outside_call_id;
  t.release(5, 7);
  // Checked before mapping again: a release that left the ID taken would send the
  // allocator round a full space.
  ASSERT_FALSE(t.outside_in_use(kPublic, kServer, freed));
  ASSERT_EQ(t.in_use(kPublic, kServer), kCallIdSpace - 1);
  const auto again = t.map_call(1000000, addr("192.0.2.12"), kPublic, kServer, 7);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->outside_call_id, freed);  // the only free one
}

// s33 review finding 3: four addresses took a server's 65,536 outside Call IDs and kept
// every other client's call out. The last kReservedCallIds go only to clients holding fewer
// than kFairShareCallIds toward that server; other servers are not touched.
TEST(CallIdTranslator, TheLastCallIdsTowardAServerAreKeptForClientsWithFew) {
  CallIdTranslator t;
  std::uint64_t connection = 1;
  std::size_t flood = 0;
  for (const char* a : {"192.0.2.21", "192.0.2.22", "192.0.2.23", "192.0.2.24", "192.0.2.25"}) {
    for (std::uint32_t i = 0; i < 16384; ++i) {
      const auto m = t.map_call(connection++, addr(a), kPublic, kServer, static_cast<std::uint16_t>(i));
      if (!m) {
        EXPECT_EQ(m.error(), NatError::ReservedForOthers);
        break;
      }
      ++flood;
    }
  }
  // The fifth address, new there, took its fair share of the reserve before it was refused.
  EXPECT_EQ(flood, kCallIdSpace - kReservedCallIds + kFairShareCallIds);
  EXPECT_EQ(t.counters().reserve_refused, 2u);  // the fourth and the fifth address
  // A new client gets its fair share from the reserve, and no more.
  for (std::uint32_t i = 0; i < kFairShareCallIds; ++i) {
    ASSERT_TRUE(t.map_call(connection++, addr("192.0.2.11"), kPublic, kServer, 7)) << i;
  }
  const auto more = t.map_call(connection++, addr("192.0.2.11"), kPublic, kServer, 7);
  ASSERT_FALSE(more);
  EXPECT_EQ(more.error(), NatError::ReservedForOthers);
  // A split request's reservation counts the same; a parked ID stays the client's.
  EXPECT_TRUE(t.reserve(connection++, addr("192.0.2.12"), kPublic, kServer, 1000, std::nullopt));
  EXPECT_FALSE(t.reserve(connection++, addr("192.0.2.21"), kPublic, kServer, 1000, std::nullopt));
  // Another server: the whole space.
  EXPECT_TRUE(t.map_call(connection++, addr("192.0.2.21"), kPublic, kOtherServer, 7));
  // The flood's calls end: the reserve is no longer reached.
  for (std::uint64_t c = 1; c <= 100; ++c) t.release_connection(c);
  EXPECT_TRUE(t.map_call(connection++, addr("192.0.2.21"), kPublic, kServer, 7));
}

TEST(CallIdTranslator, ReleasedCallIdIsFreeAndTheSameCallGetsItBack) {
  CallIdTranslator t;
  ASSERT_TRUE(t.map_call(9, addr("192.0.2.19"), kPublic, kServer, 100));  // keeps the space in use
  const auto first = t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7);
  ASSERT_TRUE(first);
  ASSERT_TRUE(t.outside_in_use(kPublic, kServer, 7));
  t.release(1, 7);
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, 7));
  EXPECT_EQ(t.in_use(kPublic, kServer), 1u);
  EXPECT_EQ(t.find_outside(kServer, kPublic, 7), nullptr);
  EXPECT_EQ(t.find_inside(1, 7), nullptr);
  // Free again: the next call asking for 7 keeps it (no translation).
  const auto second = t.map_call(2, addr("192.0.2.12"), kPublic, kServer, 7);
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)->outside_call_id, 7);
  EXPECT_FALSE((*second)->translated());
  EXPECT_EQ(t.counters().released, 1u);
}

TEST(CallIdTranslator, ReleasingAConnectionFreesEveryOutsideCallIdOfIt) {
  CallIdTranslator t;
  ASSERT_TRUE(t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7));
  const auto b = t.map_call(2, addr("192.0.2.12"), kPublic, kServer, 7);
  const auto b2 = t.map_call(2, addr("192.0.2.12"), kPublic, kServer, 8);
  ASSERT_TRUE(b && b2);
  const std::uint16_t b_outside = (*b)->outside_call_id, b2_outside = (*b2)->outside_call_id;
  t.release_connection(2);
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, b_outside));
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, b2_outside));
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, 7));  // connection 1's stays
  EXPECT_EQ(t.in_use(kPublic, kServer), 1u);
}

TEST(CallIdTranslator, AReservationTakesAnOutsideCallIdBeforeItsCallIsWhole) {
  CallIdTranslator t;
  ASSERT_TRUE(t.map_call(1, addr("192.0.2.11"), kPublic, kServer, 7));
  // Only half of connection 2's field is in: any free Call ID, and the same one again.
  const auto half = t.reserve(2, addr("192.0.2.11"), kPublic, kServer, 1012, std::nullopt);
  ASSERT_TRUE(half);
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, *half));
  EXPECT_EQ(*t.reserve(2, addr("192.0.2.11"), kPublic, kServer, 1012, 7), *half);
  EXPECT_EQ(t.find_outside(kServer, kPublic, *half), nullptr);  // no GRE route from a reservation
  // A whole field keeps its Call ID where free.
  EXPECT_EQ(*t.reserve(2, addr("192.0.2.11"), kPublic, kServer, 2012, 9), 9);
  const auto m = t.confirm(2, 1012, addr("192.0.2.12"), 7);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)->outside_call_id, *half);
  EXPECT_EQ((*m)->inside_call_id, 7);
  EXPECT_EQ(t.find_outside(kServer, kPublic, *half), *m);
  EXPECT_EQ(t.reservations(), 1u);
  t.give_back_before(2, 3000);
  EXPECT_EQ(t.reservations(), 0u);
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, 9));
  EXPECT_EQ(t.in_use(kPublic, kServer), 2u);
}

TEST(CallIdTranslator, ReservationsGoBackWithTheirConnectionAndOnAFailedConfirm) {
  CallIdTranslator t;
  ASSERT_TRUE(t.map_call(2, addr("192.0.2.12"), kPublic, kServer, 7));
  const auto dup = t.reserve(2, addr("192.0.2.11"), kPublic, kServer, 500, 7);
  ASSERT_TRUE(dup);
  EXPECT_NE(*dup, 7);
  EXPECT_FALSE(t.confirm(2, 500, addr("192.0.2.12"), 7));  // connection 2 maps 7 already
  EXPECT_FALSE(t.outside_in_use(kPublic, kServer, *dup));
  ASSERT_TRUE(t.reserve(2, addr("192.0.2.11"), kPublic, kServer, 600, 8));
  ASSERT_TRUE(t.reserve(3, addr("192.0.2.12"), kPublic, kServer, 600, 9));
  t.release_connection(2);
  EXPECT_EQ(t.reservations(), 1u);
  EXPECT_EQ(t.in_use(kPublic, kServer), 1u);
  EXPECT_TRUE(t.reserved(3, 600));
  t.give_back(3, 600);
  EXPECT_EQ(t.in_use(kPublic, kServer), 0u);
}

// High availability (docs/ha.md): each node of a pair chooses from its own half.
TEST(CallIdTranslator, APairsNodesChooseFromDisjointHalvesEvenForTheSameCalls) {
  CallIdTranslator node0, node1;
  node0.set_node_half(0);
  node1.set_node_half(1);
  std::set<std::uint16_t> chosen;
  // A split brain: both nodes see the same clients' set-ups toward the same server.
  for (std::uint16_t id = 1; id <= 200; ++id) {
    auto a = node0.map_call(id, addr("192.0.2.11"), kPublic, kServer, id);
    auto b = node1.map_call(id, addr("192.0.2.11"), kPublic, kServer, id);
    ASSERT_TRUE(a && b);
    EXPECT_EQ((*a)->outside_call_id % 2, 0);
    EXPECT_EQ((*b)->outside_call_id % 2, 1);
    EXPECT_TRUE(chosen.insert((*a)->outside_call_id).second);
    EXPECT_TRUE(chosen.insert((*b)->outside_call_id).second);
  }
  // A client's Call ID of the node's own half is kept where free.
  auto kept = node1.map_call(999, addr("192.0.2.12"), kPublic, kOtherServer, 7);
  ASSERT_TRUE(kept);
  EXPECT_EQ((*kept)->outside_call_id, 7);
}

TEST(CallIdTranslator, AHalfIsExhaustedAtHalfTheSpaceAndAdoptedIdsOfTheOtherHalfStay) {
  CallIdTranslator t;
  t.set_reserve(0, 0);  // one client fills the half here
  t.set_node_half(0);
  // The peer's calls, adopted at a promotion, hold odd IDs: they do not count against ours.
  ASSERT_TRUE(t.adopt(1, addr("192.0.2.11"), kPublic, kServer, 1, 1));
  std::size_t mapped = 0;
  for (std::uint32_t i = 0; i < kCallIdSpace; ++i) {
    if (!t.map_call(10 + i, addr("192.0.2.11"), kPublic, kServer, static_cast<std::uint16_t>(i))) break;
    ++mapped;
  }
  EXPECT_EQ(mapped, kCallIdSpace / 2);
  EXPECT_EQ(t.counters().exhausted, 1u);
  EXPECT_TRUE(t.outside_in_use(kPublic, kServer, 1));
}

}  // namespace
}  // namespace pptp::nat
