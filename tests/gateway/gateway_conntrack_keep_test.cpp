// A RST or FIN the tracker did not act on asks the daemon to put the connection's conntrack
// entry back in ESTABLISHED (gateway.cpp keep_conntrack; docs/packet-path.md, "Conntrack
// after a RST the tracker ignored"); one that acts, or a closed connection, asks nothing.
#include <gtest/gtest.h>

#include <vector>

#include "gateway/gateway.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

bool same(const ConntrackKeep& k, const wire::Endpoint& source, const wire::Endpoint& destination) {
  return k.source == source && k.destination == destination;
}

// A neighbour's RST and FIN with the client's address and port, past the client's next byte
// (in the window: 8 KiB past it, inside the 64 KiB the server allows).
TEST(ConntrackKeep, ARstOrFinTheTrackerIgnoredKeepsTheEntryByItsOriginalTuple) {
  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  h.start(a);
  h.pass(a.to_pac(test::bytes_of(ocrq(7))));
  ASSERT_TRUE(h.gw.take_conntrack_keeps().empty());
  for (const std::uint8_t f : {flags::kRst, std::uint8_t(flags::kFin | flags::kAck)}) {
    Client spoofer = a;
    spoofer.pns_seq += 8192;
    Packet p = spoofer.to_pac({}, f);
    (void)h.run(p);
    const auto keeps = h.gw.take_conntrack_keeps();
    ASSERT_EQ(keeps.size(), 1u) << int(f);
    EXPECT_TRUE(same(keeps[0], a.pns, a.pac));
  }
  EXPECT_EQ(h.gw.counters().conntrack_keeps, 2u);
  EXPECT_EQ(h.gw.tracker().call_count(), 1u);
  // The real RST, at the client's next byte, ends the connection and keeps nothing.
  h.pass(a.to_pac({}, flags::kRst));
  EXPECT_TRUE(h.gw.take_conntrack_keeps().empty());
  EXPECT_EQ(h.gw.tracker().call_count(), 0u);
  // Nor does anything once it is closed.
  Client late = a;
  late.pns_seq += 8192;
  Packet p = late.to_pac({}, flags::kRst);
  (void)h.run(p);
  EXPECT_TRUE(h.gw.take_conntrack_keeps().empty());
}

// A flood of them between two takes asks for at most kMaxConntrackKeeps; all are counted.
TEST(ConntrackKeep, AFloodAsksForABoundedNumber) {
  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  h.start(a);
  for (std::size_t i = 0; i < 3 * kMaxConntrackKeeps; ++i) {
    Client spoofer = a;
    spoofer.pns_seq += 1000 + static_cast<std::uint32_t>(i);
    Packet p = spoofer.to_pac({}, flags::kRst);
    (void)h.run(p);
  }
  EXPECT_EQ(h.gw.take_conntrack_keeps().size(), kMaxConntrackKeeps);
  EXPECT_EQ(h.gw.counters().conntrack_keeps, 3 * kMaxConntrackKeeps);
}

// A connection not yet up has no calls to lose: a client's own RST past its next byte,
// after an unanswered SYN or a bare handshake, asks for no keep (else two packets made a
// 2-hour ESTABLISHED conntrack entry; s17 review).
TEST(ConntrackKeep, AConnectionNotYetUpIsNeverKept) {
  Harness h;
  for (std::uint16_t port = 50000; port < 50004; ++port) {
    Client c{{addr("192.0.2.66"), port}};
    h.pass(c.to_pac({}, flags::kSyn));
    if (port % 2 == 1) h.pass(c.to_pns({}, flags::kSyn | flags::kAck));
    c.pns_seq += 4000;
    Packet rst = c.to_pac({}, flags::kRst);
    (void)h.run(rst);
  }
  EXPECT_TRUE(h.gw.take_conntrack_keeps().empty());
  EXPECT_EQ(h.gw.counters().conntrack_keeps, 0u);
}

}  // namespace
}  // namespace pptp::gateway
