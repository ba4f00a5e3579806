// Call-Disconnect-Notify under Call-ID translation. RFC 2637 2.13 puts the server's own
// Call ID in it; Windows servers put the client's, as the server knows it: the OUTSIDE one.
// Two clients behind one address, both with Call ID 7; B's is translated. Whichever reading
// the server uses, the right call ends, its outside Call ID is freed, and the client reads
// a Call ID it knows.
#include <gtest/gtest.h>

#include "gateway/gateway.hpp"
#include "nat/checksum.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

constexpr std::uint16_t kPacCallIdA = 100, kPacCallIdB = 101;

class WindowsDisconnect : public ::testing::Test {
 protected:
  void SetUp() override {
    h.start(a);
    h.start(b);
    ASSERT_EQ(place_call(a, 7, kPacCallIdA), 7);  // free: kept
    b_outside = place_call(b, 7, kPacCallIdB);    // collides: translated
    ASSERT_NE(b_outside, 7);
    ASSERT_TRUE(h.gw.translator().outside_in_use(kPublic, kServer, b_outside));
  }

  // Places an outgoing call; returns the Call ID the server saw.
  std::uint16_t place_call(Client& c, std::uint16_t call_id, std::uint16_t pac_call_id) {
    Packet request = c.to_pac(test::bytes_of(ocrq(call_id)));
    EXPECT_EQ(h.run(request).action, Action::Accept);
    const std::uint16_t outside = tcp_u16(request, 12);
    Packet reply = c.to_pns(test::bytes_of(ocrp(pac_call_id, outside)));
    EXPECT_EQ(h.run(reply).action, Action::Accept);
    EXPECT_EQ(tcp_u16(reply, 14), call_id);
    return outside;
  }

  // The server sends a Call-Disconnect-Notify naming `call_id` to client `c`; returns the
  // packet as it leaves the router.
  Packet disconnect(Client& c, std::uint16_t call_id, Verdict* verdict = nullptr) {
    wire::CallDisconnectNotify cdn;
    cdn.call_id = call_id;
    cdn.result_code = 3;
    Packet p = c.to_pns(test::bytes_of(cdn));
    const Verdict v = h.run(p);
    EXPECT_EQ(v.action, Action::Accept);
    EXPECT_TRUE(nat::ipv4_header_checksum_ok(p, 20));
    EXPECT_TRUE(nat::tcp_checksum_ok(p, 20));
    if (verdict != nullptr) *verdict = v;
    return p;
  }

  std::size_t calls_of(const Client& c) const {
    const track::ControlConnection* cc = h.gw.tracker().find_connection(c.pns, c.pac);
    return cc == nullptr ? 0 : cc->calls.size();
  }
  std::uint64_t anomalies(track::Anomaly an) const {
    return h.gw.tracker().counters()[static_cast<std::size_t>(an)];
  }
  bool server_gre_reaches(std::uint16_t key) {
    Packet g = checksummed(test::gre(kServer, kPublic, key, 9, test::ppp(0x0021, {1})));
    return h.run(g).action == Action::Accept;
  }

  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
  std::uint16_t b_outside = 0;
};

TEST_F(WindowsDisconnect, TranslatedClientGetsItsOwnCallIdAndTheOutsideOneIsFreed) {
  Verdict v;
  const Packet p = disconnect(b, b_outside, &v);
  EXPECT_TRUE(v.modified);
  EXPECT_EQ(tcp_u16(p, 12), 7);  // B's own Call ID, not the one the server knows
  EXPECT_EQ(calls_of(b), 0u);
  EXPECT_EQ(calls_of(a), 1u);
  EXPECT_FALSE(h.gw.translator().outside_in_use(kPublic, kServer, b_outside));
  EXPECT_TRUE(h.gw.translator().outside_in_use(kPublic, kServer, 7));
  EXPECT_EQ(anomalies(track::Anomaly::DisconnectNamesPnsCallId), 1u);
  EXPECT_EQ(anomalies(track::Anomaly::UnknownCall), 0u);
  EXPECT_FALSE(server_gre_reaches(b_outside));
  EXPECT_TRUE(server_gre_reaches(7));
  const auto s = h.gw.status();
  for (const auto& c : s["connections"]) {
    EXPECT_EQ(c["calls"].size(), c["pns"].get<std::string>().starts_with("192.0.2.12") ? 0u : 1u) << c.dump();
  }
}

TEST_F(WindowsDisconnect, ARetransmittedDisconnectIsRewrittenTheSameWay) {
  wire::CallDisconnectNotify cdn;
  cdn.call_id = b_outside;
  const std::uint32_t seq = b.pac_seq;
  Packet first = b.to_pns(test::bytes_of(cdn));
  Packet again = first;
  ASSERT_TRUE(h.run(first).modified);
  // The call is gone by now; the remembered stream patch still applies.
  ASSERT_TRUE(h.run(again).modified);
  EXPECT_EQ(again, first);
  EXPECT_EQ(tcp_u16(again, 12), 7);
  EXPECT_TRUE(nat::tcp_checksum_ok(again, 20));
  EXPECT_EQ(b.pac_seq, seq + 148);
}

TEST_F(WindowsDisconnect, UntranslatedClientsDisconnectPassesAsItIs) {
  Verdict v;
  const Packet p = disconnect(a, 7, &v);
  EXPECT_FALSE(v.modified);
  EXPECT_EQ(tcp_u16(p, 12), 7);
  EXPECT_EQ(calls_of(a), 0u);
  EXPECT_EQ(calls_of(b), 1u);
  EXPECT_FALSE(h.gw.translator().outside_in_use(kPublic, kServer, 7));
  EXPECT_TRUE(server_gre_reaches(b_outside));
}

TEST_F(WindowsDisconnect, BothCollidingCallsClearedWindowsStyle) {
  EXPECT_EQ(tcp_u16(disconnect(a, 7), 12), 7);
  EXPECT_EQ(tcp_u16(disconnect(b, b_outside), 12), 7);
  EXPECT_EQ(h.gw.tracker().call_count(), 0u);
  EXPECT_EQ(h.gw.translator().size(), 0u);
  EXPECT_EQ(h.gw.translator().in_use(kPublic, kServer), 0u);
  EXPECT_EQ(anomalies(track::Anomaly::DisconnectNamesPnsCallId), 2u);
  EXPECT_EQ(anomalies(track::Anomaly::UnknownCall), 0u);
}

TEST_F(WindowsDisconnect, TheServersOwnCallIdPassesAsItIs) {
  Verdict v;
  const Packet p = disconnect(b, kPacCallIdB, &v);
  EXPECT_FALSE(v.modified);
  EXPECT_EQ(tcp_u16(p, 12), kPacCallIdB);
  EXPECT_EQ(calls_of(b), 0u);
  EXPECT_FALSE(h.gw.translator().outside_in_use(kPublic, kServer, b_outside));
  EXPECT_EQ(anomalies(track::Anomaly::DisconnectNamesPnsCallId), 0u);
}

TEST_F(WindowsDisconnect, WhereBothReadingsNameACallTheServersOwnWins) {
  // B's second call: inside 8 (free, kept); the server gives it B's first call's outside
  // Call ID as its own. A disconnect naming that value names both calls.
  ASSERT_EQ(place_call(b, 8, b_outside), 8);
  Verdict v;
  const Packet p = disconnect(b, b_outside, &v);
  EXPECT_FALSE(v.modified);
  EXPECT_EQ(tcp_u16(p, 12), b_outside);
  ASSERT_EQ(calls_of(b), 1u);
  EXPECT_EQ(h.gw.tracker().find_connection(b.pns, b.pac)->calls[0]->pns_call_id, 7);
  EXPECT_TRUE(h.gw.translator().outside_in_use(kPublic, kServer, b_outside));
  EXPECT_FALSE(h.gw.translator().outside_in_use(kPublic, kServer, 8));
}

TEST_F(WindowsDisconnect, WhereNeitherReadingNamesACallNothingEnds) {
  Verdict v;
  const Packet p = disconnect(b, 4242, &v);
  EXPECT_FALSE(v.modified);
  EXPECT_EQ(tcp_u16(p, 12), 4242);
  EXPECT_EQ(h.gw.tracker().call_count(), 2u);
  EXPECT_EQ(anomalies(track::Anomaly::UnknownCall), 1u);
  EXPECT_TRUE(h.gw.translator().outside_in_use(kPublic, kServer, b_outside));
}

TEST_F(WindowsDisconnect, AnotherConnectionsOutsideCallIdIsNotTaken) {
  // B's outside Call ID sent on A's connection names no call of A's.
  Verdict v;
  disconnect(a, b_outside, &v);
  EXPECT_FALSE(v.modified);
  EXPECT_EQ(h.gw.tracker().call_count(), 2u);
  EXPECT_TRUE(h.gw.translator().outside_in_use(kPublic, kServer, b_outside));
}

// Windows servers also send Set-Link-Info to the client, naming the client's Call ID as
// they know it (docs/protocol-notes.md): the translated client gets its own back.
TEST_F(WindowsDisconnect, WindowsSetLinkInfoNamesTheClientsOwnCallId) {
  wire::SetLinkInfo sli;
  sli.peer_call_id = b_outside;
  Packet p = b.to_pns(test::bytes_of(sli));
  const Verdict v = h.run(p);
  EXPECT_EQ(v.action, Action::Accept);
  EXPECT_TRUE(v.modified);
  EXPECT_EQ(tcp_u16(p, 12), 7);
  EXPECT_TRUE(nat::tcp_checksum_ok(p, 20));
  EXPECT_EQ(anomalies(track::Anomaly::UnknownCall), 0u);
  Packet untranslated = a.to_pns(test::bytes_of(sli = wire::SetLinkInfo{}));  // Peer's Call ID 0: no call
  EXPECT_FALSE(h.run(untranslated).modified);
}

}  // namespace
}  // namespace pptp::gateway
