// Echo per leg (proxy/keepalive.hpp, RFC 2637 2.5): silence brings an Echo-Request, silence
// after it ends the leg, anything heard resets both; a leg we do not read is not asked, and
// only the leg whose writes stall is taken as not reading; an Echo the peer's TCP has not
// taken waits longer for the link.
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

// s33 review: a 64-s outage covering the Echo-Request ended the session at 60 s after it, though
// TCP's retransmission at 112 s would have got through.
TEST(Keepalive, AnEchoTheLinkHasNotDeliveredWaitsForTcpsNextRetransmission) {
  Keepalive k(t0);
  const auto echo = t0 + std::chrono::seconds(60);
  ASSERT_EQ(k.tick(echo), KeepaliveStep::SendEcho);
  EXPECT_FALSE(k.echo_overdue(echo + kEchoWait - std::chrono::seconds(1)));
  EXPECT_TRUE(k.echo_overdue(echo + kEchoWait));
  const LegWatch eight_resent{.unacknowledged = true, .retransmissions = 8};
  for (auto s = kEchoWait; s < kEchoWait + kEchoLinkGrace; s += kKeepaliveTick) {
    EXPECT_EQ(k.tick(echo + s, eight_resent), KeepaliveStep::Nothing) << s.count() << " s after the Echo";
  }
  // The ninth got through at 112 s and the peer answered: the leg lives on.
  k.heard(echo + std::chrono::seconds(112));
  EXPECT_EQ(k.tick(echo + kEchoWait + kEchoLinkGrace), KeepaliveStep::Nothing);
}

TEST(Keepalive, AnEchoStillNotTakenAfterARetransmissionPastTheWaitEndsTheLegAsLinkDown) {
  Keepalive k(t0);
  const auto echo = t0 + std::chrono::seconds(60);
  ASSERT_EQ(k.tick(echo), KeepaliveStep::SendEcho);
  EXPECT_EQ(k.tick(echo + kEchoWait, LegWatch{.unacknowledged = true, .retransmissions = 8}), KeepaliveStep::Nothing);
  EXPECT_EQ(k.tick(echo + std::chrono::seconds(110), LegWatch{.unacknowledged = true, .retransmissions = 8}),
            KeepaliveStep::Nothing);
  const LegWatch nine{.unacknowledged = true, .retransmissions = 9};
  EXPECT_EQ(k.tick(echo + std::chrono::seconds(115), nine), KeepaliveStep::Nothing) << "a tick for its ACK";
  EXPECT_EQ(k.tick(echo + std::chrono::seconds(120), nine), KeepaliveStep::LinkDown);
}

TEST(Keepalive, ALinkThatNeverTakesTheEchoIsDownAtTheBound) {
  Keepalive k(t0);
  const auto echo = t0 + std::chrono::seconds(60);
  ASSERT_EQ(k.tick(echo), KeepaliveStep::SendEcho);
  const LegWatch unacked{.unacknowledged = true, .retransmissions = 3};
  EXPECT_EQ(k.tick(echo + kEchoWait + kEchoLinkGrace - std::chrono::seconds(1), unacked), KeepaliveStep::Nothing);
  EXPECT_EQ(k.tick(echo + kEchoWait + kEchoLinkGrace, unacked), KeepaliveStep::LinkDown);
}

TEST(Keepalive, APeerWhoseTcpTookTheEchoButNeverAnswersIsGoneWithoutGrace) {
  Keepalive k(t0);
  const auto echo = t0 + std::chrono::seconds(60);
  ASSERT_EQ(k.tick(echo), KeepaliveStep::SendEcho);
  EXPECT_EQ(k.tick(echo + kEchoWait, LegWatch{.unacknowledged = false}), KeepaliveStep::PeerGone);
}

TEST(Keepalive, ALinkBackWithoutAnAnswerIsGoneATickLater) {
  Keepalive k(t0);
  const auto echo = t0 + std::chrono::seconds(60);
  ASSERT_EQ(k.tick(echo), KeepaliveStep::SendEcho);
  EXPECT_EQ(k.tick(echo + kEchoWait, LegWatch{.unacknowledged = true, .retransmissions = 8}), KeepaliveStep::Nothing);
  const auto back = echo + kEchoWait + std::chrono::seconds(45);
  EXPECT_EQ(k.tick(back), KeepaliveStep::Nothing) << "its Echo-Reply may be a moment behind the ACK";
  EXPECT_EQ(k.tick(back + kKeepaliveTick), KeepaliveStep::PeerGone);
}

// s34 review: a peer that acknowledges late while the other leg sends has bytes in flight at
// every tick; without a retransmission since the Echo that is no outage, and it is cut at 60 s.
TEST(Keepalive, BytesInFlightWithoutARetransmissionSinceTheEchoAreNoOutage) {
  Keepalive k(t0);
  const auto echo = t0 + std::chrono::seconds(60);
  ASSERT_EQ(k.tick(echo), KeepaliveStep::SendEcho);
  k.echo_sent(4);  // earlier retransmissions of this connection
  EXPECT_EQ(k.tick(echo + kEchoWait, LegWatch{.unacknowledged = true, .retransmissions = 4}), KeepaliveStep::PeerGone);
  // The same leg, its TCP sending the Echo again since: the link's silence.
  Keepalive lost(t0);
  ASSERT_EQ(lost.tick(echo), KeepaliveStep::SendEcho);
  lost.echo_sent(4);
  EXPECT_EQ(lost.tick(echo + kEchoWait, LegWatch{.unacknowledged = true, .retransmissions = 12}), KeepaliveStep::Nothing);
}

}  // namespace
}  // namespace pptp::proxy
