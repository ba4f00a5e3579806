// A full connection table (docs/packet-path.md, "A full table"; s33 review, finding 1): a
// connection the tracker cannot follow never passes (its call set-up would leave
// untranslated and the server's GRE for it reach another client), and a flood of
// connections no server accepted gives way to a new one. And a server's full Call-ID space
// (finding 3): its reserve is kept for clients with few calls there.
#include <gtest/gtest.h>

#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

GatewayOptions roomy() {
  // The per-source budgets out of the way: one flooder fills the table alone here.
  GatewayOptions o;
  o.budgets.source_connections = 1u << 20;
  o.budgets.source_half_open = 1u << 20;
  o.budgets.memory_bytes = std::size_t{8} << 30;
  return o;
}

class FullTable : public ::testing::Test {
 protected:
  std::uint64_t counter(const char* key) { return h.gw.status()["packets"][key].get<std::uint64_t>(); }
  std::uint64_t anomaly(const char* key) { return h.gw.status()["anomalies"].value(key, std::uint64_t{0}); }
  // The table filled by a flooder's connections: half-open (a SYN each) or accepted by
  // their server (the start answered).
  void fill(bool accepted) {
    for (std::size_t i = 0; h.gw.tracker().connection_count() < track::kMaxControlConnections; ++i) {
      // Source ports 2000 up: never 1723, which would read as the server's side.
      Client c{{addr(i < 60000 ? "192.0.2.66" : "192.0.2.67"), static_cast<std::uint16_t>(2000 + i % 60000)}};
      if (accepted) {
        h.start(c);
      } else {
        h.pass(c.to_pac({}, flags::kSyn));
      }
    }
  }
  // The victim's call (Call ID 7, kept: outside 7), set up before the flood.
  void victim_call() {
    h.start(victim);
    h.pass(victim.to_pac(test::bytes_of(ocrq(7))));
    h.pass(victim.to_pns(test::bytes_of(ocrp(300, 7))));
  }

  Harness h{roomy()};
  Client victim{{addr("192.0.2.11"), 40000}};
  Client mallory{{addr("192.0.2.12"), 40000}};
};

TEST_F(FullTable, ANewConnectionTheTableCannotHoldIsDroppedNotPassedUntracked) {
  victim_call();
  fill(true);
  const std::size_t full = h.gw.tracker().connection_count();
  ASSERT_EQ(full, track::kMaxControlConnections);
  Packet syn = mallory.to_pac({}, flags::kSyn);
  EXPECT_EQ(h.run(syn).action, Action::Drop);
  // Nor a first segment with data (a connection picked up mid-stream): its request would
  // reach the server naming the victim's outside Call ID.
  Packet request = mallory.to_pac(test::bytes_of(ocrq(7)));
  EXPECT_EQ(h.run(request).action, Action::Drop);
  EXPECT_EQ(counter("control_untracked_dropped"), 2u);
  EXPECT_EQ(anomaly("too_many_connections"), 2u);
  EXPECT_EQ(anomaly("connection_evicted"), 0u);  // every connection was accepted by its server
  EXPECT_EQ(h.gw.tracker().connection_count(), full);
}

TEST_F(FullTable, ANewConnectionTakesThePlaceOfTheOldestNoServerAccepted) {
  victim_call();
  fill(false);
  ASSERT_EQ(h.gw.tracker().connection_count(), track::kMaxControlConnections);
  h.start(mallory);  // its SYN evicts the flood's oldest half-open connection
  EXPECT_EQ(anomaly("connection_evicted"), 1u);
  EXPECT_EQ(anomaly("too_many_connections"), 0u);
  EXPECT_EQ(h.gw.tracker().connection_count(), track::kMaxControlConnections);
  EXPECT_EQ(h.gw.tracker().find_connection({addr("192.0.2.66"), 2000}, victim.pac), nullptr);  // the oldest
  ASSERT_NE(h.gw.tracker().find_connection(mallory.pns, mallory.pac), nullptr);
  // Followed: its request for the victim's Call ID is translated.
  Packet request = mallory.to_pac(test::bytes_of(ocrq(7)));
  const Verdict v = h.run(request);
  EXPECT_EQ(v.action, Action::Accept);
  EXPECT_TRUE(v.modified);
  EXPECT_NE(tcp_u16(request, 12), 7u);
  // The victim's connection (accepted) is never the one that goes.
  ASSERT_NE(h.gw.tracker().find_connection(victim.pns, victim.pac), nullptr);
}

// s33 review finding 3: four inside addresses, each within its call budget (16,384), took
// every outside Call ID toward one server with unanswered requests, and every other
// client's call to it was refused. The last kReservedCallIds are kept for clients with few.
TEST(CallIdReserve, AFloodOfSetUpsFromFewAddressesLeavesAServersReserveToOthers) {
  Harness h;
  std::size_t refused = 0;
  for (const char* flooder : {"192.0.2.21", "192.0.2.22", "192.0.2.23", "192.0.2.24"}) {
    for (std::uint16_t port = 2000; port < 2016; ++port) {  // 16 connections x 1,024 calls
      Client c{{addr(flooder), port}};
      h.start(c);
      for (std::uint16_t id = 0; id < track::kMaxCallsPerConnection; ++id) {
        Packet request = c.to_pac(test::bytes_of(ocrq(id)));
        refused += h.run(request).action == Action::Drop ? 1 : 0;
        // The server acknowledges each (it answers none): the gateway keeps what it read, and
        // its translations, only until then (docs/packet-path.md).
        h.pass(checksummed(test::tcp(c.pac, c.pns, c.pac_seq, flags::kAck, {}, c.pns_seq)));
      }
    }
  }
  EXPECT_EQ(h.gw.translator().in_use(kPublic, kServer), nat::kCallIdSpace - nat::kReservedCallIds);
  EXPECT_GT(refused, 0u);
  EXPECT_GT(h.gw.translator().counters().reserve_refused, 0u);
  // A client with no call there still gets one.
  Client good{{addr("192.0.2.11"), 40000}};
  h.start(good);
  Packet request = good.to_pac(test::bytes_of(ocrq(7)));
  EXPECT_EQ(h.run(request).action, Action::Accept);
  EXPECT_EQ(h.gw.translator().size(), nat::kCallIdSpace - nat::kReservedCallIds + 1);
}

}  // namespace
}  // namespace pptp::gateway
