// Heads of messages passed in part, as the HA node sends them (docs/ha.md, "A message split
// before its Call ID field"): for which connections, within which budget.
#include <gtest/gtest.h>

#include "alg/daemon/ha_node.hpp"
#include "tests/alg/daemon/ha_support.hpp"

namespace pptp::daemon {
namespace {

using test::OneCall;

const std::vector<std::uint8_t> kHead{0x00, 0x10, 0x00, 0x01, 0x1a, 0x2b};

// `count` heads on o's connection; the node's clock stands still, so its budget never refills.
void pass_heads(HaNode& node, const OneCall& o, std::uint32_t count) {
  for (std::uint32_t i = 0; i < count; ++i) {
    node.message_head_passed(o.c, track::Direction::PnsToPac, 1000 + i, kHead);
  }
}

class HaHeads : public test::PeeredTest {
 protected:
  OneCall o;
};

// Heads go to the peer only for connections of our published calls, and at most
// kMaxHeadsPerSecond a second: clients cutting their messages small cannot load the link.
TEST_F(HaHeads, AreSentForPublishedConnectionsOnlyAndWithinTheirBudget) {
  peer->exchange(io, 10);
  pass_heads(*node, o, kMaxHeadsPerSecond + 1);  // no call of ours on it: nothing to send
  EXPECT_EQ(node->status_json()["heads_limited"], 0);
  EXPECT_EQ(node->status_json()["heads_sent"], 0);
  node->call_changed(o.c, o.call, o.record, &o.m);
  pass_heads(*node, o, kMaxHeadsPerSecond + 1);
  EXPECT_EQ(node->status_json()["heads_sent"], kMaxHeadsPerSecond);
  EXPECT_EQ(node->status_json()["heads_limited"], 1);
}

// Until a peer is heard the channel drops heads: they take nothing from the budget, which
// is whole for the first heads after the peer comes.
TEST_F(HaHeads, WithNoPeerHeardAreNotChargedToTheBudget) {
  node->call_changed(o.c, o.call, o.record, &o.m);
  pass_heads(*node, o, kMaxHeadsPerSecond + 1);
  EXPECT_EQ(node->status_json()["heads_limited"], 0);
  EXPECT_EQ(node->status_json()["heads_sent"], 0);
  peer->exchange(io, 10);  // heard now
  pass_heads(*node, o, kMaxHeadsPerSecond);
  EXPECT_EQ(node->status_json()["heads_sent"], kMaxHeadsPerSecond);
  EXPECT_EQ(node->status_json()["heads_limited"], 0);
}

// The peer passed a head and was then demoted: once it sees us active it lets go of its
// connections, deleting their calls, and the replica's heads go with them. The rest of the
// message may come after that (it did in CI: both directions then resynced mid-message and
// their Call-ID fields passed untranslated); the head taken at the promotion still starts it.
TEST_F(HaHeads, TakenAtThePromotionOutliveThePeersDeleteOfTheirCall) {
  const sync::CallState call = test::replicated(40001, 7, 0);
  peer->exchange(io, 3);
  peer->end.publish_add(call);
  peer->end.publish_head(sync::MessageHead{call.key.pns, call.key.pac, 1, 5000, kHead});
  peer->exchange(io, 3);
  ASSERT_EQ(node->status_json()["heads_kept"], 1);
  ASSERT_TRUE(node->promote(true, nullptr));
  const auto resumed = [&] { return node->resume_head(o.c, track::Direction::PacToPns); };
  ASSERT_TRUE(resumed());
  peer->end.publish_delete(call.key);  // the demoted peer let go of the connection
  peer->exchange(io, 3);
  ASSERT_EQ(node->status_json()["replicated_calls"], 0);
  const auto head = resumed();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->sequence, 5000u);
  EXPECT_EQ(head->bytes, kHead);
  EXPECT_FALSE(node->resume_head(o.c, track::Direction::PnsToPac));  // none passed that way
  // The connection's end takes its heads with its last call.
  EXPECT_EQ(node->end_taken_over(o.c, gateway::TakenOverEnd{}).size(), 1u);
  EXPECT_FALSE(resumed());
}

}  // namespace
}  // namespace pptp::daemon
