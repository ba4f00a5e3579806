// Echo per leg (proxy/keepalive.hpp, RFC 2637 2.5): silence brings an Echo-Request, silence
// after it ends the leg, anything heard resets both; a leg we do not read is not asked, and
// only the leg whose writes stall is taken as not reading.
#include "proxy/keepalive.hpp"

#include <gtest/gtest.h>

namespace pptp::proxy {
namespace {

const Clock::time_point t0{};

TEST(Keepalive, ASilentPeerIsAskedOnceThenTakenAsGone) {
  Keepalive k(t0);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(59)), KeepaliveStep::Nothing);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(60)), KeepaliveStep::SendEcho);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(65)), KeepaliveStep::Nothing) << "one Echo-Request, not one per tick";
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(119)), KeepaliveStep::Nothing);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(120)), KeepaliveStep::PeerGone);
}

TEST(Keepalive, APeerThatAnswersOrTalksStaysUp) {
  Keepalive k(t0);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(60)), KeepaliveStep::SendEcho);
  k.heard(t0 + std::chrono::seconds(61));  // its Echo-Reply
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(120)), KeepaliveStep::Nothing);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(121)), KeepaliveStep::SendEcho) << "asked again after a new silence";
  k.heard(t0 + std::chrono::seconds(150));
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(200)), KeepaliveStep::Nothing);
}

// Both legs read-paused because the server does not read what the client pipelines: before,
// the client's leg (checked first) was taken as gone at 120 s for a silence that was ours.
TEST(Keepalive, WhileBothLegsArePausedOnlyTheLegWhoseWritesStallIsBlamed) {
  Keepalive client(t0), server(t0);
  const LegWatch client_leg{.read_paused = true, .backlogged = false};
  const LegWatch server_leg{.read_paused = true, .backlogged = true};
  server.wrote(t0 + std::chrono::seconds(1));  // its last write started, never completed
  const auto stalled = t0 + std::chrono::seconds(1) + kWriteStall;
  for (auto now = t0; now < stalled; now += std::chrono::seconds(5)) {
    EXPECT_EQ(server.tick(now, server_leg), KeepaliveStep::Nothing);
  }
  for (int s = 5; s <= 300; s += 5) {
    EXPECT_EQ(client.tick(t0 + std::chrono::seconds(s), client_leg), KeepaliveStep::Nothing)
        << s << " s: the client is not to blame";
  }
  EXPECT_EQ(server.tick(stalled, server_leg), KeepaliveStep::PeerNotReading);
}

TEST(Keepalive, ABackloggedLegWhoseWritesCompleteIsNotCut) {
  Keepalive k(t0);
  const LegWatch backlogged{.read_paused = true, .backlogged = true};
  for (auto now = t0; now < t0 + 10 * kWriteStall; now += kWriteStall / 2) {
    k.wrote(now);  // the peer takes a write now and then
    EXPECT_EQ(k.tick(now + kWriteStall - std::chrono::seconds(1), backlogged), KeepaliveStep::Nothing);
  }
}

TEST(Keepalive, ALegReadAgainAfterAPauseIsAskedAfterAFullSilence) {
  Keepalive k(t0);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(200), LegWatch{.read_paused = true}), KeepaliveStep::Nothing);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(259)), KeepaliveStep::Nothing) << "the pause's silence was ours";
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(260)), KeepaliveStep::SendEcho);
  EXPECT_EQ(k.tick(t0 + std::chrono::seconds(320)), KeepaliveStep::PeerGone);
}

}  // namespace
}  // namespace pptp::proxy
