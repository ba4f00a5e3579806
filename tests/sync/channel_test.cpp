// Two channel ends in one process: datagrams piped between them in memory, with loss, a
// partition and restarts; and once over real UDP sockets on the loopback.
#include "sync/channel.hpp"

#include <gtest/gtest.h>

#include "sync/udp_link.hpp"
#include "tests/sync/sync_support.hpp"

namespace pptp::sync {
namespace {

using test::kKey;
using test::sample_call;

ChannelOptions options(std::uint8_t node, std::size_t max_unacked = 4096) {
  ChannelOptions o;
  o.node = node;
  o.key = kKey;
  o.max_unacked = max_unacked;
  return o;
}

// Carries datagrams both ways; drop_every N loses every Nth datagram (0: none), and a cut
// direction loses everything.
struct Pipe {
  ChannelEnd& a;
  ChannelEnd& b;
  int drop_every = 0;
  bool cut_a_to_b = false;
  int carried = 0, dropped = 0;
  double now = 0;

  void deliver(ChannelEnd& from, ChannelEnd& to, bool cut) {
    for (auto& d : from.take_outgoing()) {
      ++carried;
      if (cut || (drop_every != 0 && carried % drop_every == 0)) {
        ++dropped;
        continue;
      }
      to.receive(d, now);
    }
  }
  // One round: both ends tick, then each one's datagrams reach the other.
  void round(double step = 0.05) {
    now += step;
    a.tick(now);
    b.tick(now);
    deliver(a, b, cut_a_to_b);
    deliver(b, a, false);
  }
  // Rounds until b holds a's calls, b is synced and a has nothing unacknowledged.
  bool converge(int max_rounds = 2000) {
    for (int i = 0; i < max_rounds; ++i) {
      round();
      if (b.synced() && a.unacked() == 0 && b.replica().calls() == a.published().calls()) return true;
    }
    return false;
  }
};

void publish_churn(ChannelEnd& a, std::uint16_t calls) {
  for (std::uint16_t id = 1; id <= calls; ++id) a.publish_add(sample_call(id));
  for (std::uint16_t id = 1; id <= calls; id = static_cast<std::uint16_t>(id + 3)) {
    CallState c = sample_call(id, "renamed");
    c.updated_ms += id;
    a.publish_update(c);
  }
  for (std::uint16_t id = 2; id <= calls; id = static_cast<std::uint16_t>(id + 5)) a.publish_delete(sample_call(id).key);
}

TEST(SyncChannel, TheStandbyHoldsTheActivesCallsAfterTheFirstSnapshot) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  Pipe p{a, b};
  p.round();
  p.round();
  publish_churn(a, 40);
  ASSERT_TRUE(p.converge());
  EXPECT_EQ(b.replica().size(), a.published().size());
  EXPECT_EQ(b.replica().find(sample_call(4).key)->user, "renamed");
  EXPECT_EQ(b.replica().find(sample_call(2).key), nullptr);
  EXPECT_EQ(a.counters().resent, 0u);
}

// Heads of messages passed in part (docs/ha.md, "A message split before its Call ID field").
TEST(SyncChannel, AHeadReachesThePeerForAConnectionOfItsCallsAndGoesWithTheLastCall) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  Pipe p{a, b};
  a.publish_add(sample_call(1));
  a.publish_add(sample_call(2));
  ASSERT_TRUE(p.converge());
  const MessageHead h = test::sample_head(5000);
  a.publish_head(h);
  p.round();
  const MessageHead* kept = b.replica().head(h.pns, h.pac, h.direction);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(*kept, h);
  EXPECT_EQ(b.replica().head(h.pns, h.pac, 0), nullptr);  // the other direction has none
  EXPECT_EQ(a.counters().heads_sent, 1u);
  EXPECT_EQ(b.counters().heads_kept, 1u);
  a.publish_delete(sample_call(1).key);
  ASSERT_TRUE(p.converge());
  EXPECT_NE(b.replica().head(h.pns, h.pac, h.direction), nullptr);  // a call is left on it
  a.publish_delete(sample_call(2).key);
  ASSERT_TRUE(p.converge());
  EXPECT_EQ(b.replica().head(h.pns, h.pac, h.direction), nullptr);
  EXPECT_EQ(b.replica().heads(), 0u);
}

TEST(SyncChannel, AHeadOfNoReplicatedConnectionOrOlderThanTheOneKeptIsNotKept) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  Pipe p{a, b};
  a.publish_add(sample_call(1));
  ASSERT_TRUE(p.converge());
  MessageHead elsewhere = test::sample_head(5000);
  elsewhere.pns.port = 40002;  // another control connection
  a.publish_head(elsewhere);
  const MessageHead newer = test::sample_head(7000);
  a.publish_head(newer);
  a.publish_head(test::sample_head(6000));  // came after the newer one: out of order
  p.round();
  EXPECT_EQ(b.counters().heads_kept, 1u);
  EXPECT_EQ(b.counters().heads_unkept, 2u);
  EXPECT_EQ(b.replica().heads(), 1u);
  EXPECT_EQ(*b.replica().head(newer.pns, newer.pac, newer.direction), newer);
  // Of one message's heads the longer: a shorter one arriving late is not kept.
  MessageHead longer = test::sample_head(8000);
  longer.bytes.insert(longer.bytes.end(), {0x3c, 0x4d, 0x00});
  a.publish_head(longer);
  a.publish_head(test::sample_head(8000));
  p.round();
  EXPECT_EQ(*b.replica().head(longer.pns, longer.pac, longer.direction), longer);
  EXPECT_EQ(b.counters().heads_unkept, 3u);
}

TEST(SyncChannel, AHeadBeforeThePeerIsHeardIsNotSent) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  a.publish_add(sample_call(1));
  a.publish_head(test::sample_head(5000));
  EXPECT_EQ(a.counters().heads_sent, 0u);
  EXPECT_TRUE(a.take_outgoing().empty());
}

TEST(SyncChannel, CallsPublishedBeforeThePeerAppearsArriveInItsSnapshot) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  publish_churn(a, 600);  // several snapshot parts
  EXPECT_EQ(a.unacked(), 0u);
  Pipe p{a, b};
  ASSERT_TRUE(p.converge());
  EXPECT_EQ(b.replica().size(), a.published().size());
  EXPECT_EQ(b.counters().snapshots_received, 1u);
}

TEST(SyncChannel, LosingEveryNthDatagramIsRepairedByResends) {
  for (int n : {2, 3, 7}) {
    ChannelEnd a(options(0), 100), b(options(1), 200);
    Pipe p{a, b, n};
    p.round();
    p.round();
    publish_churn(a, 300);
    ASSERT_TRUE(p.converge()) << "drop every " << n << ": " << a.unacked() << " unacknowledged, "
                              << b.replica().size() << " of " << a.published().size() << " calls";
    EXPECT_GT(p.dropped, 0) << n;
    EXPECT_GT(a.counters().resent, 0u) << n;
    EXPECT_GT(b.counters().out_of_order, 0u) << n;
  }
}

TEST(SyncChannel, EachEndLearnsThePeersRoleFromItsHellos) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  Pipe p{a, b};
  EXPECT_FALSE(b.peer_active());  // no Hello yet
  a.set_active(true);
  p.round(1.1);
  EXPECT_TRUE(b.peer_active());
  EXPECT_FALSE(a.peer_active());
  a.set_active(false);
  p.round(1.1);
  EXPECT_FALSE(b.peer_active());
}

// Hellos are numbered (the header's sequence): one held back on the link and read after a
// newer one is stale, its role ignored (it would end a split brain while the peer is
// active). An older build's Hello, numbered 0, is taken as it comes.
TEST(SyncChannel, AHelloHeldBackBehindANewerOneIsStaleAndItsRoleIgnored) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  Pipe p{a, b};
  ASSERT_TRUE(p.converge());
  a.tick(p.now + 1.1);  // a standby Hello, held back
  const auto held = a.take_outgoing();
  ASSERT_FALSE(held.empty());
  a.set_active(true);
  p.round(2.5);
  ASSERT_TRUE(b.peer_active());
  for (const auto& d : held) b.receive(d, p.now);
  EXPECT_TRUE(b.peer_active());
  EXPECT_EQ(b.counters().stale_hellos, 1u);
  // An older build: its Hello carries 0, never stale.
  std::vector<std::uint8_t> old_build;
  ASSERT_TRUE(encode(Message{Header{0, 0, 100, 0, 0}, Hello{false, false}}, kKey, old_build));
  b.receive(old_build, p.now);
  EXPECT_FALSE(b.peer_active());
  EXPECT_EQ(b.counters().stale_hellos, 1u);
}

TEST(SyncChannel, ADatagramFromBeforeThePeersPromotionDoesNotLowerItsEpoch) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  Pipe p{a, b};
  ASSERT_TRUE(p.converge());
  a.tick(p.now + 1.1);  // a Hello at epoch 0, held back
  const auto held = a.take_outgoing();
  ASSERT_FALSE(held.empty());
  a.set_epoch(3);
  p.round(2.5);
  EXPECT_EQ(b.peer_epoch(), 3u);
  for (const auto& d : held) b.receive(d, p.now);
  EXPECT_EQ(b.counters().stale, 0u);  // the same run: taken, but the epoch stays
  EXPECT_EQ(b.peer_epoch(), 3u);
  ChannelEnd restarted(options(0), 300);  // a new run of the peer starts again at 0
  restarted.tick(p.now);
  for (const auto& d : restarted.take_outgoing()) b.receive(d, p.now);
  EXPECT_EQ(b.peer_epoch(), 0u);
}

TEST(SyncChannel, AFirstSnapshotNotWholeLeavesTheStandbyUnsynced) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  publish_churn(a, 600);
  Pipe p{a, b};
  p.round();  // b's Hello reaches a, which queues its snapshot
  auto parts = a.take_outgoing();
  ASSERT_GT(parts.size(), 2u);
  b.receive(parts.front(), p.now);
  EXPECT_FALSE(b.synced());
  EXPECT_GT(b.replica().size(), 0u);
  b.receive(parts.back(), p.now);  // the last part after a gap does not complete it
  EXPECT_FALSE(b.synced());
  ASSERT_TRUE(p.converge());
}

TEST(SyncChannel, ARestartedStandbyGetsTheWholeTableAgain) {
  ChannelEnd a(options(0), 100), b(options(1), 200);
  Pipe p{a, b};
  publish_churn(a, 50);
  ASSERT_TRUE(p.converge());
  ChannelEnd restarted(options(1), 300);
  Pipe q{a, restarted};
  q.now = p.now;
  ASSERT_TRUE(q.converge());
  EXPECT_EQ(a.counters().peer_restarts, 1u);
  EXPECT_EQ(restarted.replica().size(), a.published().size());
}

TEST(SyncChannel, AnOlderIncarnationIsRefusedAsStale) {
  ChannelEnd a(options(0), 100), b(options(1), 300), old_b(options(1), 200);
  Pipe p{a, b};
  ASSERT_TRUE(p.converge());
  old_b.tick(p.now);
  for (auto& d : old_b.take_outgoing()) a.receive(d, p.now);
  EXPECT_GT(a.counters().stale, 0u);
  EXPECT_EQ(a.counters().peer_restarts, 0u);
}

TEST(SyncChannel, ABacklogBeyondItsBoundIsReplacedByASnapshot) {
  ChannelEnd a(options(0, 16), 100), b(options(1), 200);
  Pipe p{a, b};
  ASSERT_TRUE(p.converge());
  p.cut_a_to_b = true;  // a partition: a's messages are lost, b's acks still arrive
  publish_churn(a, 100);
  for (int i = 0; i < 20; ++i) p.round();
  EXPECT_GT(a.counters().backlog_overflows, 0u);
  EXPECT_LE(a.unacked(), 16u);
  p.cut_a_to_b = false;
  ASSERT_TRUE(p.converge());
  EXPECT_GE(a.counters().snapshots_sent, 2u);
  EXPECT_EQ(b.replica().size(), a.published().size());
}

TEST(SyncChannel, APeerWithAnotherKeyNeverSyncs) {
  ChannelOptions other = options(1);
  other.key.assign(32, 0x77);
  ChannelEnd a(options(0), 100), b(other, 200);
  Pipe p{a, b};
  publish_churn(a, 10);
  EXPECT_FALSE(p.converge(100));
  EXPECT_EQ(b.replica().size(), 0u);
  EXPECT_GT(a.counters().refused, 0u);
  EXPECT_GT(b.counters().refused, 0u);
}

TEST(SyncChannel, BothNodesWithOneIdAreCountedNotApplied) {
  ChannelEnd a(options(0), 100), b(options(0), 200);
  Pipe p{a, b};
  publish_churn(a, 5);
  EXPECT_FALSE(p.converge(50));
  EXPECT_GT(b.counters().own_node, 0u);
}

TEST(SyncChannel, OverUdpOnTheLoopbackWithLoss) {
  const wire::Endpoint any{pptp::test::addr("127.0.0.1"), 0};
  auto probe = UdpLink::open(any, any);
  ASSERT_TRUE(probe) << probe.error();
  auto link_b = UdpLink::open(any, probe->local());
  ASSERT_TRUE(link_b) << link_b.error();
  const wire::Endpoint at_a = probe->local();
  *probe = UdpLink{};  // frees a's port for a's real link
  auto link_a = UdpLink::open(at_a, link_b->local());
  ASSERT_TRUE(link_a) << link_a.error();

  ChannelEnd a(options(0), 100), b(options(1), 200);
  publish_churn(a, 200);
  int sent = 0, dropped = 0;
  const auto send_all = [&](ChannelEnd& from, UdpLink& link) {
    for (auto& d : from.take_outgoing())
      if (++sent % 5 == 0)
        ++dropped;
      else
        ASSERT_TRUE(link.send(d));
  };
  double now = 0;
  bool converged = false;
  for (int i = 0; i < 4000 && !converged; ++i) {
    now += 0.05;
    a.tick(now);
    b.tick(now);
    send_all(a, *link_a);
    send_all(b, *link_b);
    link_b->receive([&](Bytes d) { b.receive(d, now); });
    link_a->receive([&](Bytes d) { a.receive(d, now); });
    converged = b.synced() && a.unacked() == 0 && b.replica().calls() == a.published().calls();
  }
  EXPECT_TRUE(converged);
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(b.replica().size(), a.published().size());
  EXPECT_EQ(link_a->foreign(), 0u);
}

}  // namespace
}  // namespace pptp::sync
