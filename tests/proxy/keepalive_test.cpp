// Echo per leg (proxy/keepalive.hpp, RFC 2637 2.5): silence brings an Echo-Request, silence
// after it ends the leg, anything heard resets both.
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

}  // namespace
}  // namespace pptp::proxy
