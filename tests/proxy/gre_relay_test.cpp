// GRE between the legs (proxy/gre_relay.hpp): Key rewritten per leg, sequence and
// acknowledgement numbers carried end to end (RFC 2637 4.1), strangers dropped.
#include "proxy/gre_relay.hpp"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "alg/wire/gre.hpp"
#include "proxy/gre_sockets.hpp"
#include "proxy/limits.hpp"
#include "tests/proxy/relay_harness.hpp"

namespace pptp::proxy::relay_test {
namespace {

std::vector<std::uint8_t> gre_with_ack(wire::Ipv4Address src, wire::Ipv4Address dst, std::uint16_t key,
                                       std::uint32_t seq, std::uint32_t ack, const std::vector<std::uint8_t>& ppp) {
  std::vector<std::uint8_t> g;
  wire::GreHeader h;
  h.call_id = key;
  h.sequence = seq;
  h.acknowledgment = ack;
  wire::build_gre(h, ppp, g);
  return test::ipv4(src, dst, wire::kIpProtocolGre, g);
}

TEST_F(RelayFixture, EachDirectionGetsTheOtherPeersCallIdAndKeepsItsNumbers) {
  auto r = started(kClient);
  const auto reply = connect_call(*r, 7, 128);
  const std::uint16_t ours_to_server = r->calls().at(0).pns_call_id;
  const std::vector<std::uint8_t> ppp = test::lcp_echo();

  auto up = relay_gre(book, gre_with_ack(kClient, kServer, reply.call_id, 10, 20, ppp));
  ASSERT_TRUE(up);
  EXPECT_EQ(up->toward, Leg::Server);
  EXPECT_EQ(up->destination, kServer);
  EXPECT_EQ(up->source, wire::Ipv4Address{}) << "from the router's own address";
  auto g = wire::parse_gre(up->gre);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->header.call_id, 128);
  EXPECT_EQ(g->header.sequence, 10u);
  EXPECT_EQ(g->header.acknowledgment, 20u);
  EXPECT_TRUE(std::equal(ppp.begin(), ppp.end(), g->payload.begin(), g->payload.end()));

  auto down = relay_gre(book, test::gre(kServer, test::addr("198.51.100.1"), ours_to_server, 5, ppp));
  ASSERT_TRUE(down);
  EXPECT_EQ(down->toward, Leg::Client);
  EXPECT_EQ(down->destination, kClient);
  EXPECT_EQ(down->source, kServer) << "the client expects its GRE from the server";
  g = wire::parse_gre(down->gre);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->header.call_id, 7);
  EXPECT_EQ(g->header.sequence, 5u);
  EXPECT_FALSE(g->header.acknowledgment);
}

TEST_F(RelayFixture, GreFromAnotherSenderOrForNoCallIsDropped) {
  auto r = started(kClient);
  const auto reply = connect_call(*r, 7, 128);
  auto spoofed = relay_gre(book, test::gre(kClient2, kServer, reply.call_id, 1));
  ASSERT_FALSE(spoofed);
  EXPECT_EQ(spoofed.error(), GreDrop::WrongSource) << "a neighbour cannot inject into alice's call";
  auto unknown = relay_gre(book, test::gre(kClient, kServer, static_cast<std::uint16_t>(reply.call_id + 100), 1));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), GreDrop::UnknownCall);
  auto garbage = relay_gre(book, test::ipv4(kClient, kServer, wire::kIpProtocolGre, {0x00, 0x00, 0x08, 0x00}));
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error(), GreDrop::Malformed);
}

TEST_F(RelayFixture, AClearedCallsGreFindsNothing) {
  auto r = started(kClient);
  const auto reply = connect_call(*r, 7, 128);
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 128;
  r->on_server(msg(cdn));
  auto after = relay_gre(book, test::gre(kClient, kServer, reply.call_id, 1));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error(), GreDrop::UnknownCall);
}

TEST(CallBook, CallIdsAreNotReusedUntilTheRestAreUsed) {
  CallBook book(65535);
  const auto a = book.allocate();
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, 65535);
  book.release(*a);
  const auto b = book.allocate();
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, 0) << "round robin: Call ID 0 is valid, 65535 waits its turn";
}

TEST(CallBook, RandomCallIdsDoNotTellAnotherCallsAndAFullPoolAnswersAtOnce) {
  CallBook book(CallIdOrder::Random);
  std::vector<std::uint16_t> ids;
  for (int i = 0; i < 64; ++i) ids.push_back(*book.allocate());
  // In sequence, each would be the one before plus 1: that a client could count on.
  int next_to_last = 0;
  for (std::size_t i = 1; i < ids.size(); ++i) next_to_last += ids[i] == static_cast<std::uint16_t>(ids[i - 1] + 1);
  EXPECT_LT(next_to_last, 4) << "64 random picks of 65536";
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "each Call ID once";
  while (book.allocate()) {
  }
  EXPECT_EQ(book.used(), kCallIdSpace);
  EXPECT_FALSE(book.allocate());
  book.release(ids[10]);
  EXPECT_EQ(book.allocate(), ids[10]) << "the one freed is the one free";
  EXPECT_EQ(book.used(), kCallIdSpace);
}

// s33 review: the socket toward clients was blocking; GRE to clients whose neighbour entry
// does not resolve filled its send buffer and a send then held the proxy's one loop for up
// to 18 s (every session's control legs and GRE with it). Both sockets are non-blocking, and
// the one toward clients has room for more than two vanished clients' neighbour queues.
TEST(GreSockets, NeitherSocketCanBlockTheLoop) {
  if (::geteuid() != 0) GTEST_SKIP() << "raw sockets need root";
  GreSockets sockets;
  ASSERT_TRUE(sockets.open());
  EXPECT_TRUE(sockets.non_blocking());
  // Room for GRE queued to vanished clients' unresolved neighbours beside everyone else's.
  EXPECT_GE(sockets.client_send_buffer(), kGreSendBuffer);
}

}  // namespace
}  // namespace pptp::proxy::relay_test
