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

}  // namespace
}  // namespace pptp::daemon
