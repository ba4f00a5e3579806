// A split brain's healing on the node that stays active (docs/ha.md): when it fires and
// which of the peer's replicated calls it takes over.
#include "alg/daemon/ha_healing.hpp"

#include <gtest/gtest.h>

#include "alg/daemon/daemon.hpp"
#include "alg/daemon/ha_node.hpp"
#include "tests/alg/daemon/ha_support.hpp"

namespace pptp::daemon {
namespace {

using pptp::test::addr;
using test::open_node;

TEST(HealingWatch, FiresOnceWhenThePeerGoesFromActiveToStandbyWhileWeAreActive) {
  HealingWatch w;
  EXPECT_FALSE(w.observe(true, false, 0, 1));  // the peer was never seen active: no split
  EXPECT_FALSE(w.observe(true, true, 2, 2));   // the split: both active (its promotion raised its epoch)
  EXPECT_FALSE(w.observe(true, true, 2, 3));
  EXPECT_TRUE(w.observe(true, false, 2, 4));   // the peer gave up: healed
  EXPECT_FALSE(w.observe(true, false, 2, 5));  // once per healing
  EXPECT_FALSE(w.observe(true, true, 3, 6));   // a second split
  EXPECT_TRUE(w.observe(true, false, 3, 7));   // and its healing
}

TEST(HealingWatch, DoesNotFireWhileWeAreStandby) {
  HealingWatch w;
  EXPECT_FALSE(w.observe(false, true, 1, 1));
  EXPECT_FALSE(w.observe(false, false, 1, 2));  // a failover back to us is a promotion, not this
  EXPECT_FALSE(w.observe(true, false, 1, 3));
  EXPECT_FALSE(w.observe(false, false, 4, 4));  // a rise while we are standby
  EXPECT_FALSE(w.observe(false, false, 4, 5));
  EXPECT_FALSE(w.observe(true, false, 4, 6));
}

// The sync link was cut with the adverts: the peer was promoted and demoted unseen; its
// first datagrams after the cut show its epoch risen, and a Hello after them its role.
TEST(HealingWatch, FiresOnceWhenThePeersEpochRoseWhileItWasUnheardAtTheNextHello) {
  HealingWatch w;
  EXPECT_FALSE(w.observe(true, false, 0, 1));
  EXPECT_FALSE(w.observe(true, false, 2, 1));  // risen, but the role we hold is from before the cut
  EXPECT_TRUE(w.observe(true, false, 2, 2));   // a Hello since: standby
  EXPECT_FALSE(w.observe(true, false, 2, 3));
  EXPECT_FALSE(w.observe(true, false, 0, 4));  // the peer restarted: its epoch starts again
  // A plain failover away from us: the promoted peer's first datagram has its risen epoch
  // while the role we hold still says standby; its next Hello says active: no healing.
  EXPECT_FALSE(w.observe(true, false, 5, 4));
  EXPECT_FALSE(w.observe(true, true, 5, 5));
}

// The peer's role we hold at our promotion is from its last Hello: a failover to us (the
// peer demoted, its standby Hello not yet here) is no split, only a Hello since tells.
TEST(HealingWatch, ARoleHeardBeforeWeWereActiveIsNoSplit) {
  HealingWatch w;
  EXPECT_FALSE(w.observe(false, true, 1, 1));  // the peer active, we standby
  EXPECT_FALSE(w.observe(true, true, 1, 1));   // we were promoted; no Hello since
  EXPECT_FALSE(w.observe(true, false, 1, 2));  // its Hello says standby: no healing
  EXPECT_FALSE(w.observe(true, true, 2, 3));   // then a real split: it is active again
  EXPECT_TRUE(w.observe(true, false, 2, 4));   // and its end
}

// A rise seen while we were standby is a promotion of the peer, not a split: a failover to
// us before its next Hello (which then says standby) is no healing.
TEST(HealingWatch, ARiseSeenWhileWeWereStandbyIsNoHealingAfterOurPromotion) {
  HealingWatch w;
  EXPECT_FALSE(w.observe(false, false, 0, 1));
  EXPECT_FALSE(w.observe(false, false, 1, 1));  // the peer promoted; its Hello not yet here
  EXPECT_FALSE(w.observe(true, false, 1, 2));   // we were promoted (a failover back), it says standby
  EXPECT_FALSE(w.observe(true, false, 1, 3));
  // And a rise while we are active, followed by our demotion before its Hello: none either.
  EXPECT_FALSE(w.observe(true, false, 2, 3));
  EXPECT_FALSE(w.observe(false, false, 2, 3));
  EXPECT_FALSE(w.observe(true, false, 2, 4));
}

// The peer is node 1 (odd outside Call IDs); we are node 0.
sync::CallState peer_call(std::uint16_t port, std::uint16_t outside_call_id,
                          sync::PolicyVerdict verdict = sync::PolicyVerdict::Allow) {
  return test::replicated(port, 3, outside_call_id, verdict);
}

// s33: the peer was active before the sync link was cut (a failover to it earlier), we were
// promoted in the cut and it gave up in it. The first read after the cut may bring its
// records (the epoch risen) before a Hello: the role we hold then is the stale "active"
// from before the cut, which must not disarm the rise. Its next Hello, standby, heals.
TEST(HealingWatch, ARoleHeldFromBeforeTheRiseDoesNotDisarmIt) {
  HealingWatch w;
  EXPECT_FALSE(w.observe(false, true, 2, 5));  // standby, the peer active (epoch 2)
  EXPECT_FALSE(w.observe(true, true, 3, 5));   // promoted in the cut; its records, no Hello
  EXPECT_TRUE(w.observe(true, false, 3, 6));   // its Hello: standby
  // A Hello after the rise saying active disarms it (a failover away from us): no healing.
  HealingWatch v;
  EXPECT_FALSE(v.observe(false, true, 2, 5));
  EXPECT_FALSE(v.observe(true, true, 3, 5));
  EXPECT_FALSE(v.observe(true, true, 3, 6));
  EXPECT_FALSE(v.observe(true, true, 3, 7));
}

TEST(HealingTakeover, TakesThePeersLiveCallsLessOwnAdoptedTakenAndDenied) {
  sync::Replica replica;
  replica.put(peer_call(41001, 1));                                   // taken over
  replica.put(peer_call(41002, 3, sync::PolicyVerdict::Deny));        // denied
  replica.put(peer_call(41003, 5));                                   // its connection is gone
  replica.put(peer_call(41004, 7));                                   // the tracker's own
  replica.put(peer_call(41005, 9));                                   // already adopted here
  replica.put(peer_call(41006, 11));                                  // taken over before
  replica.put(peer_call(41007, 4));                                   // of our half
  replica.put(peer_call(41008, 13, sync::PolicyVerdict::NoPolicy));   // taken over
  sync::Replica own;
  own.put(peer_call(41004, 7));
  const std::vector<nat::CallBinding> offloaded{binding_of(peer_call(41005, 9))};
  TakenOverCalls taken;
  taken.take({peer_call(41006, 11)});
  const auto alive = [](const sync::CallKey& k) { return k.pns.port != 41003; };
  const std::vector<sync::CallState> out = calls_to_take_over_beside(replica, alive, 1, own, offloaded, taken);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].key.pns.port, 41001);
  EXPECT_EQ(out[1].key.pns.port, 41008);
  // Were the peer node 0, only its half (even IDs): the one call of ours above.
  const std::vector<sync::CallState> even = calls_to_take_over_beside(replica, alive, 0, own, offloaded, taken);
  ASSERT_EQ(even.size(), 1u);
  EXPECT_EQ(even[0].key.pns.port, 41007);
}

TEST(HealingTakeover, AddKeepsTheCallsAPromotionTookAndTakeReplacesThem) {
  TakenOverCalls taken;
  taken.take({peer_call(41001, 1)});
  taken.add({peer_call(41002, 3), peer_call(41003, 5)});
  EXPECT_EQ(taken.size(), 3u);
  EXPECT_TRUE(taken.contains(peer_call(41001, 1).key));
  const auto added = taken.find({addr("192.0.2.11"), 41003}, {addr("198.51.100.2"), 1723}, gateway::CallIdSide::Pns, 3);
  ASSERT_TRUE(added);
  EXPECT_EQ(added->outside_call_id, 5);
  taken.take({peer_call(41004, 7)});
  EXPECT_EQ(taken.size(), 1u);
  EXPECT_FALSE(taken.contains(peer_call(41001, 1).key));
}

TEST(LettingGo, ThePeerCarriesAConnectionItPublishesCallsOnWhileActiveAndWeAreStandby) {
  // rb set a call up on 40001 in a split; ra took it over at the healing and publishes it
  // (as it republishes what it takes over). rb, standby, lets go of that connection only.
  sync::ChannelEnd ra(test::node_options(0), 1), rb(test::node_options(1), 1);
  ra.set_active(true);
  ra.publish_add(test::replicated(40001, 7, 1));
  test::exchange(ra, rb, 1);
  test::exchange(ra, rb, 3);  // a Hello after the first: the role is in each one
  ASSERT_EQ(rb.replica().size(), 1u);
  ASSERT_TRUE(rb.peer_active());
  const wire::Endpoint pac{addr("198.51.100.2"), 1723};
  EXPECT_TRUE(peer_carries(rb.replica(), HaRole::Standby, rb.peer_active(), {addr("192.0.2.11"), 40001}, pac));
  EXPECT_FALSE(peer_carries(rb.replica(), HaRole::Standby, rb.peer_active(), {addr("192.0.2.11"), 40002}, pac));
  EXPECT_FALSE(peer_carries(rb.replica(), HaRole::Standby, rb.peer_active(), {addr("192.0.2.12"), 40001}, pac));
  EXPECT_FALSE(peer_carries(rb.replica(), HaRole::Standby, rb.peer_active(), {addr("192.0.2.11"), 40001},
                            {addr("198.51.100.3"), 1723}));
  // Active ourselves (a split, or promoted): ours is live, nothing is let go of.
  EXPECT_FALSE(peer_carries(rb.replica(), HaRole::Active, rb.peer_active(), {addr("192.0.2.11"), 40001}, pac));
  // The peer standby too (a restarted active daemon holds the addresses as standby): nothing.
  ra.set_active(false);
  test::exchange(ra, rb, 5);
  ASSERT_FALSE(rb.peer_active());
  EXPECT_FALSE(peer_carries(rb.replica(), HaRole::Standby, rb.peer_active(), {addr("192.0.2.11"), 40001}, pac));
}

// A promotion within the second before the tick lets go: promote() itself has the daemon
// let go of the connections it takes calls over on, still standby and before it publishes
// (our stale records' deletes go out before the taken-over ones).
class LettingGoAtPromotion : public test::PeeredTest {};

TEST_F(LettingGoAtPromotion, LetsGoOfTheConnectionsItTakesOverBeforeItPublishes) {
  peer->end.set_active(true);
  peer->end.publish_add(test::replicated(40001, 7, 1));
  peer->end.publish_add(test::replicated(40001, 9, 3));
  peer->end.publish_add(test::replicated(40002, 7, 5));
  peer->exchange(io, 10);
  ASSERT_EQ(node->status_json()["replicated_calls"], 3);
  std::vector<ControlEnds> heard;
  const auto calls = node->promote(true, nullptr, [&](const std::vector<ControlEnds>& ends) {
    EXPECT_EQ(node->role(), HaRole::Standby);
    EXPECT_EQ(node->status_json()["published_calls"], 0);
    heard = ends;
  });
  ASSERT_TRUE(calls);
  EXPECT_EQ(calls->size(), 3u);
  ASSERT_EQ(heard.size(), 2u);  // each connection once
  EXPECT_EQ(heard[0].first.port, 40001);
  EXPECT_EQ(heard[1].first.port, 40002);
  EXPECT_EQ(node->status_json()["published_calls"], 3);
}

TEST(HealingLate, DueForCallsNoRoundConsideredAndOnlyWithinItsWindow) {
  using Due = HealingLate::Due;
  HealingLate late;
  EXPECT_FALSE(late.open_at(0));  // no healing yet
  EXPECT_EQ(late.due(0, {peer_call(41001, 1)}), Due::No);
  late.open(100);
  late.round(100, {peer_call(41001, 1), peer_call(41002, 3)}, {peer_call(41001, 1), peer_call(41002, 3)});
  EXPECT_EQ(late.due(101, {peer_call(41001, 1), peer_call(41002, 3)}), Due::No);
  EXPECT_EQ(late.due(101, {peer_call(41001, 1), peer_call(41003, 5)}), Due::NewCall);
  late.round(101, {peer_call(41003, 5)}, {peer_call(41003, 5)});
  EXPECT_EQ(late.due(102, {peer_call(41003, 5)}), Due::No);
  EXPECT_TRUE(late.open_at(100 + kHealingLateWindow));
  EXPECT_EQ(late.due(100 + kHealingLateWindow + 0.5, {peer_call(41004, 7)}), Due::No);  // closed for good
  EXPECT_FALSE(late.open_at(100));
  late.open(200);  // the next healing considers anew
  EXPECT_EQ(late.due(200, {peer_call(41001, 1)}), Due::NewCall);
}

// A call left for want of its control connection's kernel entry is looked for again every
// kHealingRetryEvery seconds while it is still a candidate, within the window only.
TEST(HealingLate, ACallLeftWithoutItsKernelEntryIsRetriedEveryFewSecondsWithinTheWindow) {
  using Due = HealingLate::Due;
  HealingLate late;
  late.open(100);
  late.round(100, {peer_call(41001, 1), peer_call(41002, 3)}, {peer_call(41001, 1)});  // 41002 left
  const std::vector<sync::CallState> both{peer_call(41001, 1), peer_call(41002, 3)};
  EXPECT_EQ(late.due(100 + kHealingRetryEvery - 0.5, both), Due::No);
  EXPECT_EQ(late.due(100 + kHealingRetryEvery, both), Due::Retry);
  EXPECT_EQ(late.due(100 + kHealingRetryEvery, {peer_call(41001, 1)}), Due::No);  // no longer a candidate
  late.round(100 + kHealingRetryEvery, both, {});  // still no entry
  EXPECT_EQ(late.due(100 + kHealingRetryEvery + 1, both), Due::No);
  EXPECT_EQ(late.due(100 + 2 * kHealingRetryEvery, both), Due::Retry);
  late.round(100 + 2 * kHealingRetryEvery, both, {peer_call(41002, 3)});  // taken
  EXPECT_EQ(late.due(100 + 3 * kHealingRetryEvery, {peer_call(41002, 3)}), Due::No);
  late.round(100 + 3 * kHealingRetryEvery, {peer_call(41003, 5)}, {});
  EXPECT_EQ(late.due(100 + kHealingLateWindow + 1, {peer_call(41003, 5)}), Due::No);  // past the window
}

// A split brain's healing fires at the peer's first standby Hello; records of its calls
// from the split that come after it (a resent backlog, a snapshot in parts) were left
// before s33. A late round takes each such call once, and never one that a round took and
// that ended here since.
class HealingLateRound : public test::PeeredTest {
 protected:
  std::vector<nat::CallBinding> carried;
  std::vector<nat::CallBinding> heal() {
    std::vector<nat::CallBinding> got = node->take_over_at_healing(nullptr, carried);
    carried.insert(carried.end(), got.begin(), got.end());
    return got;
  }
  bool late_due() {
    return node->healing_late_due([&] { return carried; });
  }
};

TEST_F(HealingLateRound, ACallWhoseRecordCameAfterTheHealingIsTakenOnceAndAnEndedOneNotAgain) {
  ASSERT_TRUE(node->promote(true, nullptr));
  int healings = 0;
  std::size_t healed = 0;
  node->set_healing_handler([&] {
    ++healings;
    healed += heal().size();
  });
  peer->end.set_active(true);  // a split brain: both active
  peer->end.publish_add(test::replicated(40001, 11, 1));
  peer->exchange(io, 5);
  peer->end.set_active(false);  // the peer gives up: its standby Hello heals
  peer->exchange(io, 5);
  ASSERT_EQ(healings, 1);
  ASSERT_EQ(healed, 1u);
  EXPECT_FALSE(late_due());  // nothing new
  // The call taken ends here (its Call-Clear); its record stays with the peer a while.
  track::ControlConnection c;
  c.pns = {addr("192.0.2.11"), 40001};
  c.pac = {addr("198.51.100.2"), 1723};
  ASSERT_EQ(node->end_taken_over(c, gateway::TakenOverEnd{std::uint16_t{11}}).size(), 1u);
  carried.clear();  // its elements gone
  node->retire_ended(carried, 300.0);
  ASSERT_EQ(node->status_json()["published_calls"], 0);
  EXPECT_FALSE(late_due()) << "a call taken and ended here made a late round due";
  // A record of the split that comes late.
  peer->end.publish_add(test::replicated(40002, 12, 3));
  peer->exchange(io, 3);
  ASSERT_TRUE(late_due());
  const std::vector<nat::CallBinding> late = heal();
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].inside_call_id, 12);
  EXPECT_FALSE(late_due());  // once
  EXPECT_EQ(node->status_json()["healing_late_rounds"], 1);
  EXPECT_EQ(node->status_json()["healing_calls"], 2);
  EXPECT_EQ(node->status_json()["healings"], 1);
}

// The first round found no kernel entry for the call's connection (conntrackd's resync after
// the sync link came back was later than the healing's commit): a round 5 s later takes it
// once its entry is there; nothing is due before, nor while standby.
TEST_F(HealingLateRound, ACallLeftForWantOfItsConnectionIsTakenByARetryOnceItsEntryIsThere) {
  ASSERT_TRUE(node->promote(true, nullptr));
  bool committed = false;  // the kernel has the connection's entry
  const auto alive = [&](const sync::CallKey&) { return committed; };
  std::size_t healed = 0;
  node->set_healing_handler([&] { healed += node->take_over_at_healing(alive, carried).size(); });
  peer->end.set_active(true);
  peer->end.publish_add(test::replicated(40001, 11, 1));
  peer->exchange(io, 5);
  peer->end.set_active(false);
  peer->exchange(io, 5);
  ASSERT_EQ(node->status_json()["healings"], 1);
  ASSERT_EQ(healed, 0u);
  node_now += kHealingRetryEvery - 1;
  EXPECT_FALSE(late_due()) << "due again before the retry time (every tick would run the commit)";
  node_now += 1;
  committed = true;
  ASSERT_TRUE(late_due());
  const std::vector<nat::CallBinding> taken = node->take_over_at_healing(alive, carried);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].inside_call_id, 11);
  node_now += kHealingRetryEvery;
  EXPECT_FALSE(late_due());  // nothing left
  node->demote();
  peer->end.publish_add(test::replicated(40002, 12, 3));
  peer->exchange(io, 3);
  EXPECT_FALSE(late_due()) << "standby";
}

// A split brain whose end the active peer cannot see (the sync link cut, the node that stayed
// active all along gives up): the demoted node's epoch rises, so that the peer's healing
// watch fires at its next standby Hello. Not in a plain failover (the peer heard), nor for
// a node that was standby already.
TEST_F(HealingLateRound, ADemotionWhileThePeerIsUnheardRaisesTheEpochOnce) {
  peer->exchange(io, 3);
  ASSERT_TRUE(node->promote(false, nullptr));
  const std::uint32_t promoted = node->status_json()["epoch"];
  node->demote();  // the peer heard a moment ago
  EXPECT_EQ(node->status_json()["epoch"], promoted);
  ASSERT_TRUE(node->promote(false, nullptr));
  const std::uint32_t again = node->status_json()["epoch"];
  node_now += 10;  // nothing from the peer for 10 s
  node->demote();
  EXPECT_EQ(node->status_json()["epoch"], again + 1);
  node->demote();  // standby already
  EXPECT_EQ(node->status_json()["epoch"], again + 1);
}

// `pptp-alg ctl status` (text) prints the status's ha object, the healing's counters in it.
// The commit command's time limit is the daemon's setting (--ha-commit-timeout), not a
// constant: `sleep 10` under 0.3 s is killed, counted, and the adoption runs after it.
TEST(HealingCommit, TheCommandIsKilledAtTheGivenLimitAndTheAdoptionGoesOn) {
  boost::asio::io_context io;
  auto node = open_node(io, "");
  ASSERT_TRUE(node);
  bool adopted = false;
  const auto start = std::chrono::steady_clock::now();
  node->commit_then("sleep 10", std::chrono::milliseconds(300), [&] {
    adopted = true;
    io.stop();
  });
  io.run_for(std::chrono::seconds(5));
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(adopted);
  EXPECT_LT(took.count(), 3.0);
  EXPECT_EQ(node->status_json()["healing_commit_timeouts"], 1);
  EXPECT_EQ(node->status_json()["healing_commit_failures"], 1);
}

TEST(HealingStatus, TheStatusTextShowsTheHaCounters) {
  const nlohmann::json status = {{"ha", {{"role", "active"}, {"healings", 1}, {"healing_calls", 5},
                                         {"healing_commit_failures", 0}}}};
  const std::string text = render_status(status);
  EXPECT_NE(text.find("ha: {"), std::string::npos) << text;
  EXPECT_NE(text.find("\"healing_calls\":5"), std::string::npos) << text;
  EXPECT_EQ(render_status(nlohmann::json::object()).find("ha: "), std::string::npos);
}

}  // namespace
}  // namespace pptp::daemon
