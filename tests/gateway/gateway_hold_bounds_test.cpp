// Holds of outside Call IDs (docs/packet-path.md, "One reuse is honest") under a hostile
// client: the outside Call ID of a call reused while clearing is held 10 s, at most
// kMaxHeldCallIdsPerClient per client and kMaxHeldCallIds in all. Past a bound the reuse
// waits (deferred) and the old call stays: no hold is dropped, and no client loses its
// connection for it. The s19 reviews' findings, each a test here.
#include <gtest/gtest.h>

#include "gateway/gateway.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

class HoldBounds : public ::testing::Test {
 protected:
  bool accepted(Packet p) { return h.run(p).action == Action::Accept; }  // translated or not
  std::uint64_t packets(const char* name) { return h.gw.status()["packets"].value(name, std::uint64_t{0}); }
  // `c` holds its share of outside Call IDs by reusing Call ID `id` while clearing (no
  // server answer needed), then clears `id` once more.
  void fill_holds(Client& c, std::uint16_t id) {
    ASSERT_TRUE(accepted(c.to_pac(test::bytes_of(ocrq(id)))));
    for (std::size_t n = 0; n < nat::kMaxHeldCallIdsPerClient; ++n) {
      ASSERT_TRUE(accepted(c.to_pac(test::bytes_of(wire::CallClearRequest{id, 0}))));
      ASSERT_TRUE(accepted(c.to_pac(test::bytes_of(ocrq(id)))));
    }
    ASSERT_TRUE(accepted(c.to_pac(test::bytes_of(wire::CallClearRequest{id, 0}))));
  }
  // An honest client's call 9, answered and cleared (its Call ID free to reuse); returns
  // the old call's outside Call ID.
  std::uint16_t clear_call_nine(Client& c) {
    h.start(c);
    Packet request = c.to_pac(test::bytes_of(ocrq(9)));
    EXPECT_TRUE(accepted(request));
    const std::uint16_t outside = tcp_u16(request, 12);
    EXPECT_TRUE(accepted(c.to_pns(test::bytes_of(ocrp(101, outside)))));
    EXPECT_TRUE(accepted(c.to_pac(test::bytes_of(wire::CallClearRequest{9, 0}))));
    return outside;
  }
  std::optional<wire::Ipv4Address> gre_to(std::uint16_t key) {
    Packet g = checksummed(test::gre(kServer, kPublic, key, 1, test::ppp(0x0021, {1, 2, 3})));
    if (h.run(g).action != Action::Accept) return std::nullopt;
    return wire::parse_ipv4(g)->destination;
  }
  Harness h;
  Client m{{addr("192.0.2.14"), 40004}};
  Client b{{addr("192.0.2.12"), 40002}};
};

// s19 review: with one gateway-wide bound on holds, a client reusing its own Call IDs while
// clearing filled it, and then another client's hold was freed at once (a third client
// could take it with the server's late GRE). Now each client holds at most its share; past
// it its reuse waits, and the other client's hold is kept.
TEST_F(HoldBounds, OneClientsHoldsLeaveAnotherClientsHoldWhole) {
  h.start(m);
  fill_holds(m, 7);
  EXPECT_FALSE(accepted(m.to_pac(test::bytes_of(ocrq(7)))));  // waits: the old call stays
  EXPECT_EQ(h.gw.status()["nat"]["holds_unavailable"], 1);
  EXPECT_EQ(packets("control_deferred_dropped"), 1u);
  const std::uint16_t old_outside = clear_call_nine(b);
  ASSERT_TRUE(accepted(b.to_pac(test::bytes_of(ocrq(9)))));
  EXPECT_TRUE(h.gw.translator().outside_in_use(kPublic, kServer, old_outside));
  EXPECT_EQ(gre_to(old_outside), std::nullopt);
}

// s19 review 2: a reuse refused at the bound cost the client its connection for good
// (after a refusal all it sends is dropped), though holds last 10 s. Deferred, its
// retransmission goes through once the holds end, and so do its Echo and its other call's
// clear.
TEST_F(HoldBounds, ADeferredReuseLeavesTheConnectionWholeOnceTheHoldsEnd) {
  h.start(m);
  h.pass(m.to_pac(test::bytes_of(ocrq(20))));  // another call of the same connection
  fill_holds(m, 7);
  Client retransmits = m;
  ASSERT_FALSE(accepted(m.to_pac(test::bytes_of(ocrq(7)))));
  m = retransmits;
  ASSERT_FALSE(accepted(m.to_pac(test::bytes_of(ocrq(7)))));  // still no room: waits again
  h.now += nat::kHeldCallIdSeconds + 1;
  h.gw.expire(h.now);
  ASSERT_EQ(h.gw.status()["nat"]["held"], 0);
  m = retransmits;
  EXPECT_TRUE(accepted(m.to_pac(test::bytes_of(ocrq(7)))));
  EXPECT_TRUE(accepted(m.to_pac(test::bytes_of(wire::EchoRequest{}))));
  EXPECT_TRUE(accepted(m.to_pac(test::bytes_of(wire::CallClearRequest{20, 0}))));
  EXPECT_EQ(packets("control_dropped"), 0u) << h.gw.status()["packets"].dump();
  EXPECT_EQ(h.gw.status()["anomalies"].value("duplicate_call_id", std::uint64_t{0}), 0u);
}

// s19 review 2: 256 inside addresses of 64 holds each fill the whole bound; another client's
// reuse then waits for its server's Call-Disconnect-Notify, which ends the old call without
// a hold, and its connection stays whole.
TEST_F(HoldBounds, AFullBoundDelaysAnotherClientsReuseUntilItsServersAnswer) {
  const std::size_t clients = nat::kMaxHeldCallIds / nat::kMaxHeldCallIdsPerClient;
  for (std::size_t i = 0; i < clients; ++i) {
    Client hostile{{wire::Ipv4Address{0x0a000001u + static_cast<std::uint32_t>(i)}, 41000}};
    h.start(hostile);
    fill_holds(hostile, 7);
  }
  ASSERT_EQ(h.gw.status()["nat"]["held"], nat::kMaxHeldCallIds);
  clear_call_nine(b);
  Client retransmits = b;
  EXPECT_FALSE(accepted(b.to_pac(test::bytes_of(ocrq(9)))));  // no hold left: it waits
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 101;
  cdn.result_code = 3;
  ASSERT_TRUE(accepted(retransmits.to_pns(test::bytes_of(cdn))));
  b = retransmits;
  EXPECT_TRUE(accepted(b.to_pac(test::bytes_of(ocrq(9)))));
  EXPECT_TRUE(accepted(b.to_pac(test::bytes_of(wire::EchoRequest{}))));
  EXPECT_EQ(packets("control_dropped"), 0u);
}

}  // namespace
}  // namespace pptp::gateway
