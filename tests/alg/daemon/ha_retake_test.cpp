// An active node taking the peer's calls again (docs/ha.md, "A restarted active daemon:
// promoting it again"): after a promotion without the peer's snapshot (a restarted daemon's
// at its start), and at a second promote (keepalived's master notify after conntrackd's
// commit); and how a starting daemon tells that its node holds the virtual address.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "alg/daemon/ha_node.hpp"
#include "tests/alg/daemon/ha_support.hpp"

namespace pptp::daemon {
namespace {

using pptp::test::addr;
using test::OneCall;
using test::open_node;
using test::play_peer;
using test::replicated;

std::vector<std::uint16_t> call_ids_of(const std::vector<nat::CallBinding>& calls) {
  std::vector<std::uint16_t> out;
  for (const nat::CallBinding& b : calls) out.push_back(b.inside_call_id);
  return out;
}

// A node and its peer played beside it, not heard until an exchange.
class HaRetake : public test::PeeredTest {};

// A restarted daemon promotes itself at its start, before any datagram: the peer's
// snapshot comes after. Once it is whole (and the peer standby) its calls are due, once.
TEST_F(HaRetake, APromotionWithoutThePeersSnapshotTakesItsCallsOnceItIsWhole) {
  auto promoted = node->promote(true, nullptr);
  ASSERT_TRUE(promoted);
  EXPECT_TRUE(promoted->empty());
  EXPECT_FALSE(node->retake_due());  // nothing whole yet
  peer->end.publish_add(replicated(40001, 11, 1));
  peer->end.publish_add(replicated(40002, 12, 3));
  peer->exchange(io, 10);
  ASSERT_EQ(node->status_json()["synced"], true);
  const std::uint32_t epoch = node->status_json()["epoch"];
  ASSERT_TRUE(node->retake_due());
  EXPECT_FALSE(node->retake_due());  // once
  auto taken = node->retake(nullptr, {}, nullptr);
  ASSERT_TRUE(taken);
  EXPECT_EQ(call_ids_of(*taken), (std::vector<std::uint16_t>{11, 12}));
  EXPECT_EQ(node->status_json()["retaken_calls"], 2);
  EXPECT_EQ(node->status_json()["epoch"], epoch + 1);  // the peer lets go of what it handed over
  EXPECT_EQ(node->status_json()["published_calls"], 2);  // carried for the pair
  const wire::Endpoint pns{addr("192.0.2.11"), 40002}, pac{addr("198.51.100.2"), 1723};
  track::ControlConnection c;
  c.pns = pns;
  c.pac = pac;
  EXPECT_TRUE(node->holds_taken_over(c));
  auto again = node->retake(nullptr, {}, nullptr);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());  // taken over already: nothing twice
  EXPECT_EQ(node->status_json()["epoch"], epoch + 1);
}

// The retake comes at the read that completes the snapshot, not at the next tick (a
// second without the peer's calls' GRE): the handler runs then, once, with no tick.
TEST_F(HaRetake, TheRetakeHandlerRunsAtTheReadThatCompletesTheSnapshot) {
  int runs = 0;
  bool synced_then = false;
  node->set_retake_handler([&] {
    ++runs;
    synced_then = node->status_json()["synced"];
  });
  ASSERT_TRUE(node->promote(true, nullptr));
  peer->end.publish_add(replicated(40001, 11, 1));
  peer->exchange(io, 10);
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(synced_then);
  EXPECT_FALSE(node->retake_due());  // taken by the handler's run
  peer->exchange(io, 5);
  EXPECT_EQ(runs, 1);  // once
}

// keepalived's master notify promotes after conntrackd's commit; a daemon that promoted
// itself before (at its start) or earlier took only the calls whose control connection was
// in the kernel then. A second promote takes the rest, of either half (a call of ours the
// peer carried and handed back), and nothing already offloaded here.
TEST_F(HaRetake, ASecondPromoteTakesTheCallsTheFirstLeftForWantOfTheirConnection) {
  peer->end.publish_add(replicated(40001, 11, 1));
  peer->end.publish_add(replicated(40002, 12, 3));
  peer->end.publish_add(replicated(40003, 13, 4));  // of our half: ours, handed back
  peer->end.publish_add(replicated(40004, 14, 5));  // offloaded here already
  peer->exchange(io, 10);
  ASSERT_EQ(node->status_json()["synced"], true);
  const auto not_committed = [](const sync::CallKey& k) { return k.pns.port == 40001 || k.pns.port == 40004; };
  auto first = node->promote(false, not_committed);
  ASSERT_TRUE(first);
  EXPECT_EQ(call_ids_of(*first), (std::vector<std::uint16_t>{11, 14}));
  EXPECT_FALSE(node->retake_due());  // promoted synced: nothing due by itself
  const std::vector<nat::CallBinding> offloaded{(*first)[1]};
  std::vector<ControlEnds> let_go;
  auto second = node->retake(nullptr, offloaded, nullptr, [&](const std::vector<ControlEnds>& ends) { let_go = ends; });
  ASSERT_TRUE(second);
  EXPECT_EQ(call_ids_of(*second), (std::vector<std::uint16_t>{12, 13}));
  ASSERT_EQ(let_go.size(), 2u);  // their connections' stale state, before they are carried
  EXPECT_EQ(let_go[0].first.port, 40002);
  EXPECT_EQ(let_go[1].first.port, 40003);
}

// Both active is a split brain: the peer carries what it publishes, and its healing is
// what takes its calls (only those of its half). A retake is refused, and none is due.
TEST_F(HaRetake, IsRefusedWhileThePeerIsActiveToo) {
  ASSERT_TRUE(node->promote(true, nullptr));
  peer->end.set_active(true);
  peer->end.publish_add(replicated(40001, 11, 1));
  peer->exchange(io, 10);
  ASSERT_EQ(node->status_json()["synced"], true);
  EXPECT_FALSE(node->retake_due());
  auto refused = node->retake(nullptr, {}, nullptr);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("split brain"), std::string::npos) << refused.error();
  EXPECT_EQ(node->status_json()["retaken_calls"], 0);
}

// Review s22 (helper), R1: a retake whose commit is asked for while a healing's runs is
// not lost: due again at a later tick, once no commit runs.
TEST_F(HaRetake, ARetakeAskedForWhileAHealingCommitRunsComesAfterIt) {
  ASSERT_TRUE(node->promote(true, nullptr));
  peer->end.publish_add(replicated(40001, 11, 1));
  bool healing_adopted = false, retake_adopted = false;
  node->commit_then("sleep 0.3", std::chrono::milliseconds(2000), [&] { healing_adopted = true; });
  peer->exchange(io, 3);
  ASSERT_EQ(node->status_json()["synced"], true);
  EXPECT_FALSE(node->retake_due());  // a commit runs
  node->commit_then("sleep 0", std::chrono::milliseconds(2000), [&] { retake_adopted = true; }, true);
  EXPECT_FALSE(retake_adopted);
  io.run_for(std::chrono::milliseconds(800));
  EXPECT_TRUE(healing_adopted);
  ASSERT_TRUE(node->retake_due());  // its turn now
  EXPECT_FALSE(node->retake_due());
}

// R2: a start promotion read nothing of the peer (epoch 1); once its snapshot is whole the
// retake goes past the peer's epoch even when it takes nothing, so that the peer lets go of
// the records it handed over.
TEST_F(HaRetake, TheEpochGoesPastThePeersAfterAStartPromotionEvenWithNothingTaken) {
  ASSERT_TRUE(node->promote(true, nullptr));
  peer->end.set_epoch(5);
  peer->end.publish_add(replicated(40001, 11, 1));
  peer->exchange(io, 10);
  ASSERT_EQ(node->status_json()["peer_epoch"], 5);
  ASSERT_TRUE(node->retake_due());
  const std::vector<nat::CallBinding> offloaded{binding_of(replicated(40001, 11, 1))};  // adopted at the restart
  EXPECT_EQ(node->retake_candidates(offloaded), 0u);
  auto taken = node->retake(nullptr, offloaded, nullptr);
  ASSERT_TRUE(taken);
  EXPECT_TRUE(taken->empty());
  EXPECT_GT(node->status_json()["epoch"].get<std::uint32_t>(), 5u);
}

// R3: a call taken over and ended here is not brought back by a later promote while the
// peer still holds its record; nor is one whose outside Call ID a call of ours holds now.
TEST_F(HaRetake, NeitherACallThatEndedHereNorOneWhoseOutsideCallIdIsInUse) {
  peer->end.publish_add(replicated(40001, 11, 1));
  peer->end.publish_add(replicated(40002, 12, 3));
  peer->exchange(io, 10);
  const auto first_only = [](const sync::CallKey& k) { return k.pns.port == 40001; };
  ASSERT_EQ(node->promote(false, first_only)->size(), 1u);
  track::ControlConnection c;
  c.pns = {addr("192.0.2.11"), 40001};
  c.pac = {addr("198.51.100.2"), 1723};
  ASSERT_EQ(node->end_taken_over(c, gateway::TakenOverEnd{std::uint16_t{11}}).size(), 1u);
  node->retire_ended({}, 300.0);
  ASSERT_EQ(node->status_json()["published_calls"], 0);
  EXPECT_EQ(node->retake_candidates({}), 1u);  // only the second
  // Its outside Call ID 3 given to a call set up here since: left.
  const auto three_in_use = [](const nat::CallBinding& b) { return b.outside_call_id == 3; };
  auto again = node->retake(nullptr, {}, three_in_use);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
  auto free_now = node->retake(nullptr, {}, nullptr);
  ASSERT_TRUE(free_now);
  EXPECT_EQ(call_ids_of(*free_now), (std::vector<std::uint16_t>{12}));
}

// Review 2 (helper, s22), R2-1: F3 is open for a call set up HERE (never in taken_over_, so not in ever_held).
// A active with its own call K. Split brain: B promotes (epoch 5) and takes K over (it
// republishes it). B demotes (hands K over; it keeps the record for `hold`, since A's healing
// raises no epoch). A's healing leaves K (ours). K ends here. A second promote brings K back.
TEST_F(HaRetake, ACallSetUpHereAndEndedHereIsNotBroughtBackAfterASplitBrain) {
  OneCall o;
  peer->exchange(io, 5);
  ASSERT_EQ(node->status_json()["synced"], true);
  ASSERT_TRUE(node->promote(false, nullptr));
  node->call_changed(o.c, o.call, o.record, &o.m);  // K: set up here
  ASSERT_EQ(node->status_json()["published_calls"], 1);
  // Split brain: B promotes and takes K over.
  peer->end.set_epoch(5);
  peer->end.set_active(true);
  sync::CallState k = replicated(40001, 7, 8);
  k.outside = pptp::test::addr("203.0.113.1");
  peer->end.publish_add(k);
  peer->exchange(io, 5);
  // B demotes; it still publishes K (handed over).
  peer->end.set_active(false);
  peer->exchange(io, 5);
  auto healed = node->take_over_at_healing(nullptr, {});
  EXPECT_TRUE(healed.empty());  // K is ours
  // Past both epochs, as a promotion: the peer lets go of what it handed over at once.
  EXPECT_GT(node->status_json()["epoch"].get<std::uint32_t>(), 5u);
  node->call_ended(o.c, o.call);  // K ends here
  ASSERT_EQ(node->status_json()["published_calls"], 0);
  auto again = node->retake(nullptr, {}, nullptr);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty()) << "the call set up and ended here is installed again: " << again->size()
                              << " call(s)";
}

// Review 2, R2-2: ever_held is filled while STANDBY (republish_adopted at a restart) and not reset
// at a promotion: a call adopted (stale elements) at a standby restart, idled out since,
// carried by the peer now, is refused by the retake of a LATER activity.
TEST(HaRetakeAlone, ACallAdoptedAtAStandbyRestartIsNotLeftOutOfALaterActivitysRetake) {
  const int port = 45000 + 2 * static_cast<int>(::getpid() % 7500);
  const std::string state = ::testing::TempDir() + "/ha_review2_state_" + std::to_string(::getpid());
  std::remove(state.c_str());
  const sync::CallState k = replicated(40001, 11, 1);
  {
    boost::asio::io_context io;
    auto node = open_node(io, state, gateway::harness::quiet(), port);
    auto peer = play_peer(port);
    ASSERT_TRUE(node && peer);
    ASSERT_TRUE(node->promote(true, nullptr));
    peer->end.publish_add(k);
    peer->exchange(io, 5);
    ASSERT_EQ(node->retake(nullptr, {}, nullptr)->size(), 1u);  // K carried (run 1)
    node->tick();                                                // saved to the state file
  }
  boost::asio::io_context io;
  auto node = open_node(io, state, gateway::harness::quiet(), port);
  auto peer = play_peer(port);
  ASSERT_TRUE(node && peer);
  // Run 2, standby (its demote failed while it was down): K's elements still in the kernel.
  ASSERT_EQ(node->republish_adopted({binding_of(k)}), 1u);
  node->retire_ended({}, 300.0);  // idled out later: no longer offloaded
  // The peer carries K (it took it over); this node promotes, K's connection not committed yet.
  peer->end.publish_add(k);
  peer->exchange(io, 5);
  ASSERT_EQ(node->status_json()["synced"], true);
  const auto not_committed = [](const sync::CallKey&) { return false; };
  ASSERT_TRUE(node->promote(false, not_committed));
  // keepalived's notify after the commit: a second promote takes what the first left.
  auto again = node->retake(nullptr, {}, nullptr);
  std::remove(state.c_str());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), 1u) << "the live call the peer carries is left out (ever_held from the standby restart)";
}


// Review 2, R2-3: a second promote before the peer's snapshot is whole (keepalived's master notify
// right after a start promotion) raises the epoch past the peer's: the peer then retires
// the records it handed over, which this node has not received yet (lost; retake_due later
// finds them deleted).
TEST_F(HaRetake, ARetakeWithoutThePeersWholeSnapshotDoesNotRaiseTheEpochPastIt) {
  ASSERT_TRUE(node->promote(true, nullptr));  // at its start
  peer->end.set_epoch(5);
  peer->end.publish_add(replicated(40001, 11, 1));
  peer->exchange(io, 1);  // its Hello heard, its snapshot not yet
  ASSERT_EQ(node->status_json()["peer_epoch"], 5);
  ASSERT_EQ(node->status_json()["synced"], false);
  auto taken = node->retake(nullptr, {}, nullptr);  // ctl promote from the master notify
  ASSERT_TRUE(taken);
  EXPECT_LE(node->status_json()["epoch"].get<std::uint32_t>(), 5u)
      << "epoch raised past the peer's before its snapshot came: it retires the handed-over records";
}

TEST(HaRetakeAlone, IsRefusedOnAStandbyNode) {
  boost::asio::io_context io;
  auto node = open_node(io, "");
  ASSERT_TRUE(node);
  EXPECT_FALSE(node->retake(nullptr, {}, nullptr));
  EXPECT_FALSE(node->retake_due());
}

// A standby Hello of the peer held back on the sync link (no key needed to delay or reorder
// datagrams), read while the peer is active (a split brain after our start promotion), is
// stale: no retake is due (nothing the active peer carries is taken: both nodes would carry
// it), and it is not the split's end (no healing takes the active peer's half). Review s23;
// Hellos are numbered since (docs/ha.md, "Message format").
TEST_F(HaRetake, AHeldBackStandbyHelloNeitherRetakesNorHeals) {
  ASSERT_TRUE(node->promote(true, nullptr));  // the start promotion, no snapshot yet
  // The peer's first datagrams (standby Hello), held back by the link.
  peer->now += 1;
  peer->end.tick(peer->now);
  const auto held = peer->end.take_outgoing();
  ASSERT_FALSE(held.empty());
  // The peer is active (a split brain) and carries a call; the node hears it, whole.
  peer->end.set_active(true);
  peer->end.publish_add(replicated(40001, 11, 1));
  int runs = 0, healings = 0;
  std::size_t taken = 0;
  node->set_retake_handler([&] {
    ++runs;
    if (auto r = node->retake(nullptr, {}, nullptr); r) taken += r->size();
  });
  node->set_healing_handler([&] { ++healings; });
  peer->exchange(io, 10);
  ASSERT_EQ(node->status_json()["synced"], true);
  ASSERT_EQ(runs, 0);  // the peer is active: nothing due
  ASSERT_EQ(healings, 0);
  // The held-back standby Hello arrives now, the peer still active.
  for (const auto& d : held) peer->link.send(d);
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(runs, 0) << "a stale standby Hello made the retake due";
  EXPECT_EQ(taken, 0u) << "the active peer's calls were retaken";
  EXPECT_EQ(healings, 0) << "a stale standby Hello ended the split brain";
  EXPECT_EQ(node->status_json()["stale_hellos"], 1);
}

// retake_due() clears its flag before the commit runs; a retake refused after it (the peer
// seen active meanwhile: a flap) is due again once the peer is standby, else a call of our
// half the peer handed back would never be taken (the healing takes the peer's half only).
TEST_F(HaRetake, ARetakeRefusedAfterItsCommitIsDueAgainOnceThePeerIsStandby) {
  ASSERT_TRUE(node->promote(true, nullptr));
  peer->end.publish_add(replicated(40001, 11, 2));  // of our half (node 0): handed back
  peer->end.publish_add(replicated(40002, 12, 1));  // of the peer's half
  peer->exchange(io, 10);
  ASSERT_EQ(node->status_json()["synced"], true);
  ASSERT_TRUE(node->retake_due());  // the daemon starts the commit now
  peer->end.set_active(true);       // the peer flaps active while it runs
  peer->exchange(io, 3);
  ASSERT_FALSE(node->retake(nullptr, {}, nullptr));  // the commit's adopt: refused
  peer->end.set_active(false);      // standby again
  peer->exchange(io, 3);
  auto healed = node->take_over_at_healing(nullptr, {});
  std::size_t later = 0;
  if (node->retake_due()) {
    auto r = node->retake(nullptr, {}, nullptr);
    ASSERT_TRUE(r) << r.error();
    later = r->size();
  }
  EXPECT_EQ(healed.size() + later, 2u) << "healing took " << healed.size() << ", a retake " << later;
}

}  // namespace
}  // namespace pptp::daemon
