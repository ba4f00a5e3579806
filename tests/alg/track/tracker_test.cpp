#include "alg/track/tracker.hpp"

#include <gtest/gtest.h>

#include "tests/alg/track/tracker_harness.hpp"

namespace pptp::track {
namespace {

using namespace pptp::wire;
using namespace tracker_test;  // NOLINT: the harness is this file's vocabulary
using test::addr;

TEST_F(TrackerTest, OutgoingCallLifecycleAndGreInBothDirections) {
  link.start();
  ASSERT_NE(link.connection(), nullptr);
  EXPECT_EQ(link.connection()->state, ConnectionState::Established);
  link.outgoing_call(7, 0);  // PAC Call ID 0 is valid
  ASSERT_EQ(tracker.call_count(), 1u);
  const Call& call = *link.connection()->calls[0];
  EXPECT_EQ(call.state, CallState::Established);
  EXPECT_EQ(call.pns_call_id, 7);
  EXPECT_EQ(call.pac_call_id, 0);

  // GRE toward the PAC carries the PAC's Call ID, toward the PNS the PNS's.
  auto g = link.gre_to_pac(0);
  EXPECT_EQ(g.verdict, GreVerdict::Matched);
  EXPECT_EQ(g.direction, Direction::PnsToPac);
  g = link.gre_to_pns(7);
  EXPECT_EQ(g.verdict, GreVerdict::Matched);
  EXPECT_EQ(g.direction, Direction::PacToPns);
  EXPECT_EQ(link.gre_to_pac(7).verdict, GreVerdict::UnknownCall);
  EXPECT_EQ(link.gre_to_pns(0).verdict, GreVerdict::UnknownCall);
  EXPECT_EQ(call.gre[0].packets, 1u);
  EXPECT_EQ(call.gre[1].packets, 1u);

  link.send(Direction::PnsToPac, CallClearRequest{7, 0});
  EXPECT_EQ(call.state, CallState::Clearing);
  CallDisconnectNotify cdn;
  cdn.call_id = 0;
  cdn.result_code = 3;
  link.send(Direction::PacToPns, cdn);
  EXPECT_EQ(tracker.call_count(), 0u);
  ASSERT_EQ(rec.closed_calls.size(), 1u);
  EXPECT_NE(rec.closed_calls[0].find("call_disconnect_notify: result 3"), std::string::npos);
  EXPECT_EQ(link.gre_to_pac(0).verdict, GreVerdict::UnknownCall);  // its GRE no longer passes
}

TEST_F(TrackerTest, IncomingCallPlacedByThePac) {
  link.start();
  link.incoming_call(5, 9);
  const Call& call = *link.connection()->calls[0];
  EXPECT_EQ(call.origin, CallOrigin::Incoming);
  EXPECT_EQ(call.state, CallState::WaitConnect);
  IncomingCallConnected iccn;
  iccn.peer_call_id = 9;
  link.send(Direction::PacToPns, iccn);
  EXPECT_EQ(call.state, CallState::Established);
  EXPECT_EQ(link.gre_to_pac(5).verdict, GreVerdict::Matched);
  EXPECT_EQ(link.gre_to_pns(9).verdict, GreVerdict::Matched);
  EXPECT_TRUE(rec.anomalies.empty());
}

TEST_F(TrackerTest, SeveralCallsOnOneControlConnection) {
  link.start();
  for (std::uint16_t i = 0; i < 5; ++i) link.outgoing_call(100 + i, 200 + i);
  ASSERT_EQ(tracker.call_count(), 5u);
  for (std::uint16_t i = 0; i < 5; ++i) {
    auto g = link.gre_to_pns(100 + i);
    ASSERT_EQ(g.verdict, GreVerdict::Matched);
    EXPECT_EQ(g.call->pns_call_id, 100 + i);
    g = link.gre_to_pac(200 + i);
    ASSERT_EQ(g.verdict, GreVerdict::Matched);
    EXPECT_EQ(g.call->pac_call_id, 200 + i);
  }
  // The PAC ends one call; the others stay.
  CallDisconnectNotify cdn;
  cdn.call_id = 202;
  link.send(Direction::PacToPns, cdn);
  EXPECT_EQ(tracker.call_count(), 4u);
  EXPECT_EQ(link.gre_to_pac(202).verdict, GreVerdict::UnknownCall);
  EXPECT_EQ(link.gre_to_pac(203).verdict, GreVerdict::Matched);
}

TEST_F(TrackerTest, SameCallIdFromTwoClientsOnDifferentAddresses) {
  Link other{tracker, {addr("192.0.2.12"), 40001}, {addr("198.51.100.2"), 1723}};
  link.start();
  other.start();
  link.outgoing_call(7, 128);
  other.outgoing_call(7, 384);
  auto a = link.gre_to_pns(7);
  auto b = other.gre_to_pns(7);
  ASSERT_EQ(a.verdict, GreVerdict::Matched);
  ASSERT_EQ(b.verdict, GreVerdict::Matched);
  EXPECT_NE(a.call, b.call);
  EXPECT_EQ(rec.count(Anomaly::GreKeyCollision), 0u);
}

TEST_F(TrackerTest, SameCallIdFromOneAddressIsACollision) {
  // What NAT produces without Call-ID translation: the GRE cannot tell the calls apart.
  Link other{tracker, {addr("192.0.2.11"), 40002}, {addr("198.51.100.2"), 1723}};
  link.start();
  other.start();
  link.outgoing_call(7, 128);
  other.outgoing_call(7, 384);
  EXPECT_EQ(rec.count(Anomaly::GreKeyCollision), 1u);
}

TEST_F(TrackerTest, RefusedCallIsClosedWithItsResult) {
  link.start();
  link.outgoing_call(7, 0, /*result=*/4);
  EXPECT_EQ(tracker.call_count(), 0u);
  ASSERT_EQ(rec.closed_calls.size(), 1u);
  EXPECT_NE(rec.closed_calls[0].find("refused: result 4"), std::string::npos);
}

TEST_F(TrackerTest, ServerGreRoutesToTheClientOnlyOnceTheServerAcceptedTheCall) {
  // Issue "Integrity": a denied or unanswered set-up leaves no route toward the PNS.
  link.start();
  OutgoingCallRequest rq;
  rq.call_id = 7;
  link.send(Direction::PnsToPac, rq);
  ASSERT_EQ(tracker.call_count(), 1u);
  EXPECT_EQ(link.gre_to_pns(7).verdict, GreVerdict::UnknownCall);
  OutgoingCallReply refused;
  refused.peer_call_id = 7;
  refused.result_code = 4;
  link.send(Direction::PacToPns, refused);
  EXPECT_EQ(link.gre_to_pns(7).verdict, GreVerdict::UnknownCall);
  link.outgoing_call(7, 128);
  EXPECT_EQ(link.gre_to_pns(7).verdict, GreVerdict::Matched);
}

TEST_F(TrackerTest, InThePathLostSyncClosesTheConnectionBothWays) {
  tracker.set_inline(true);
  link.start();
  link.outgoing_call(7, 128);
  ASSERT_EQ(link.gre_to_pns(7).verdict, GreVerdict::Matched);
  // Bytes that frame as no PPTP message: where a Call ID lies is no longer known.
  link.packet(test::tcp(link.pns, link.pac, link.seq[0], tcp_flags::kAck, std::vector<std::uint8_t>(16, 0xee)));
  EXPECT_EQ(tracker.call_count(), 0u);
  ASSERT_EQ(rec.closed_connections.size(), 1u);
  EXPECT_EQ(rec.closed_connections[0], "lost_sync");
  EXPECT_EQ(link.gre_to_pns(7).verdict, GreVerdict::UnknownCall);
  EXPECT_EQ(link.gre_to_pac(128).verdict, GreVerdict::UnknownCall);
}

TEST_F(TrackerTest, WrongSenderAndNotEstablishedAreReported) {
  link.handshake();
  OutgoingCallRequest rq;
  rq.call_id = 1;
  link.send(Direction::PnsToPac, rq);  // before Start-Control-Connection
  EXPECT_EQ(rec.count(Anomaly::NotEstablished), 1u);
  link.send(Direction::PnsToPac, StartControlConnectionRequest{});
  StartControlConnectionReply rp;
  rp.result_code = 1;
  link.send(Direction::PacToPns, rp);
  link.send(Direction::PacToPns, rq);  // only a PNS places outgoing calls
  EXPECT_EQ(rec.count(Anomaly::WrongSender), 1u);
  EXPECT_EQ(tracker.call_count(), 0u);
  link.send(Direction::PacToPns, CallDisconnectNotify{});
  EXPECT_EQ(rec.count(Anomaly::UnknownCall), 1u);
  ASSERT_NE(rec.anomalies.back().connection, nullptr);
}

TEST_F(TrackerTest, SetLinkInfoFromThePacIsAcceptedAndFlagged) {
  link.start();
  link.outgoing_call(0, 11755);
  SetLinkInfo sli;
  sli.peer_call_id = 0;  // the client's Call ID, as a Windows server sends it
  link.send(Direction::PacToPns, sli);
  EXPECT_EQ(rec.count(Anomaly::SetLinkInfoFromPac), 1u);
  EXPECT_EQ(rec.count(Anomaly::UnknownCall), 0u);
  EXPECT_EQ(link.connection()->calls[0]->set_link_info_count, 1u);
}

TEST_F(TrackerTest, StopControlConnectionEndsEveryCall) {
  link.start();
  link.outgoing_call(1, 2);
  link.outgoing_call(3, 4);
  link.send(Direction::PnsToPac, StopControlConnectionRequest{1, 0, 0});
  EXPECT_EQ(link.connection()->state, ConnectionState::Stopping);
  link.send(Direction::PacToPns, StopControlConnectionReply{1, 0, 0});
  EXPECT_EQ(link.connection()->state, ConnectionState::Closed);
  EXPECT_EQ(tracker.call_count(), 0u);
  EXPECT_EQ(rec.closed_calls.size(), 2u);
  EXPECT_EQ(link.gre_to_pac(2).verdict, GreVerdict::UnknownCall);
}

TEST_F(TrackerTest, ResetOrBothFinsCloseTheConnectionWithoutStop) {
  link.start();
  link.outgoing_call(1, 2);
  link.packet(test::tcp(link.pns, link.pac, link.seq[0], tcp_flags::kAck | tcp_flags::kFin));
  EXPECT_EQ(link.connection()->state, ConnectionState::Established);  // half-closed
  link.packet(test::tcp(link.pac, link.pns, link.seq[1], tcp_flags::kAck | tcp_flags::kFin));
  EXPECT_EQ(link.connection()->state, ConnectionState::Closed);
  EXPECT_EQ(rec.closed_connections.back(), "tcp_closed");

  Link other{tracker, {addr("192.0.2.12"), 40001}, {addr("198.51.100.2"), 1723}};
  other.start();
  other.outgoing_call(1, 2);
  other.packet(test::tcp(other.pac, other.pns, other.seq[1], tcp_flags::kRst));
  EXPECT_EQ(rec.closed_connections.back(), "tcp_reset");
  EXPECT_EQ(tracker.call_count(), 0u);
}

// Issue 12: RST, FIN and SYN with wrong sequence numbers, sent with the client's address and
// port, leave the connection and its call alone; the real close still ends them.
TEST_F(TrackerTest, OffPathRstFinAndSynDoNotEndACall) {
  link.start();
  link.outgoing_call(7, 0);
  const auto live = [&] { return link.connection()->state == ConnectionState::Established && tracker.call_count() == 1; };
  link.packet(test::tcp(link.pns, link.pac, link.seq[0] + 3000, tcp_flags::kRst));
  link.packet(test::tcp(link.pac, link.pns, link.seq[1] - 1, tcp_flags::kRst | tcp_flags::kAck));
  EXPECT_TRUE(live());
  EXPECT_EQ(rec.count(Anomaly::TcpRstInWindow), 2u);  // no window known yet: every RST is "in" it
  link.packet(test::tcp(link.pns, link.pac, link.seq[0] + 77, tcp_flags::kFin | tcp_flags::kAck));
  link.packet(test::tcp(link.pac, link.pns, link.seq[1] + 77, tcp_flags::kFin | tcp_flags::kAck));
  EXPECT_TRUE(live());
  EXPECT_EQ(rec.count(Anomaly::TcpFinOutOfSequence), 2u);
  const PacketOutcome syn = link.packet(test::tcp(link.pns, link.pac, 123, tcp_flags::kSyn));
  EXPECT_EQ(syn.segment.ignored, Anomaly::TcpSynOnLiveConnection);
  EXPECT_TRUE(live());
  EXPECT_EQ(link.gre_to_pac(0).verdict, GreVerdict::Matched);
  // The stream still runs at the old numbers, and the real FINs close it.
  link.send(Direction::PnsToPac, EchoRequest{1});
  EXPECT_EQ(link.connection()->messages[0], 3u);
  link.packet(test::tcp(link.pns, link.pac, link.seq[0], tcp_flags::kAck | tcp_flags::kFin));
  link.packet(test::tcp(link.pac, link.pns, link.seq[1], tcp_flags::kAck | tcp_flags::kFin));
  EXPECT_EQ(link.connection()->state, ConnectionState::Closed);
  EXPECT_EQ(tracker.call_count(), 0u);
}

// The handshake and a Start-Control-Connection-Request the PAC acknowledged: both windows
// known. Returns the PNS's next sequence number.
std::uint32_t open_with_known_window(Link& l) {
  l.packet(segment(l, Direction::PnsToPac, 1000, tcp_flags::kSyn, 0));
  l.packet(segment(l, Direction::PacToPns, 50000, tcp_flags::kSyn | tcp_flags::kAck, 1001));
  const auto start = test::bytes_of(StartControlConnectionRequest{});
  l.packet(segment(l, Direction::PnsToPac, 1001, tcp_flags::kAck, 50001, start));
  const std::uint32_t pns_next = 1001 + static_cast<std::uint32_t>(start.size());
  l.packet(segment(l, Direction::PacToPns, 50001, tcp_flags::kAck, pns_next));
  return pns_next;
}

// With real acknowledgments the window is known: a RST far from it is out of window, one at
// the expected number ends the connection.
TEST_F(TrackerTest, RealResetAtTheExpectedNumberEndsTheCall) {
  Link& l = link;
  const std::uint32_t pns_next = open_with_known_window(l);
  const PacketOutcome far = l.packet(segment(l, Direction::PnsToPac, pns_next + 1000000, tcp_flags::kRst, 0));
  EXPECT_EQ(far.segment.ignored, Anomaly::TcpRstOutOfWindow);
  EXPECT_EQ(l.connection()->state, ConnectionState::WaitStartReply);
  l.packet(segment(l, Direction::PnsToPac, pns_next, tcp_flags::kRst, 0));
  EXPECT_EQ(l.connection()->state, ConnectionState::Closed);
  EXPECT_EQ(rec.closed_connections.back(), "tcp_reset");
}

// A blind neighbour whose data segment landed in the window (past a gap: the receiver holds
// it out of order) knows where it ends; its RST there must not end the connection (RFC
// 5961 3.2: the receiver's RCV.NXT did not move), nor its FIN. The real RST still does.
TEST_F(TrackerTest, ARstOrFinAtTheEndOfDataForgedInTheWindowEndsNothing) {
  Link& l = link;
  const std::uint32_t pns_next = open_with_known_window(l);
  const std::vector<std::uint8_t> junk(20, 0x41);
  l.packet(segment(l, Direction::PnsToPac, pns_next + 200, tcp_flags::kAck, 50001, junk));  // forged, in the window
  const PacketOutcome rst = l.packet(segment(l, Direction::PnsToPac, pns_next + 220, tcp_flags::kRst, 0));
  EXPECT_EQ(rst.segment.ignored, Anomaly::TcpRstInWindow);
  l.packet(segment(l, Direction::PnsToPac, pns_next + 220, tcp_flags::kFin | tcp_flags::kAck, 50001));
  l.packet(segment(l, Direction::PacToPns, 50001, tcp_flags::kFin | tcp_flags::kAck, pns_next));
  EXPECT_EQ(l.connection()->state, ConnectionState::WaitStartReply);
  l.packet(segment(l, Direction::PnsToPac, pns_next, tcp_flags::kRst, 0));
  EXPECT_EQ(l.connection()->state, ConnectionState::Closed);
  EXPECT_EQ(rec.closed_connections.back(), "tcp_reset");
}

TEST_F(TrackerTest, SegmentsWithABadChecksumAreNotParsedWhenChecksumsAreVerified) {
  tracker.set_verify_checksums(true);
  auto syn = segment(link, Direction::PnsToPac, 1000, tcp_flags::kSyn, 0);
  syn[36] ^= 0xff;  // the checksum
  const PacketOutcome bad = link.packet(syn);
  EXPECT_EQ(bad.segment.ignored, Anomaly::TcpBadChecksum);
  EXPECT_EQ(tracker.connection_count(), 0u);
  EXPECT_EQ(tracker.counters()[static_cast<std::size_t>(Anomaly::TcpBadChecksum)], 1u);
  syn[36] ^= 0xff;
  EXPECT_FALSE(link.packet(syn).segment.ignored);
  EXPECT_EQ(tracker.connection_count(), 1u);
}

TEST_F(TrackerTest, MessageCutByTheCloseIsReported) {
  link.start();
  const auto m = test::bytes_of(EchoRequest{5});
  link.packet(test::tcp(link.pns, link.pac, link.seq[0], tcp_flags::kAck, {m.begin(), m.begin() + 6}));
  link.packet(test::tcp(link.pns, link.pac, link.seq[0] + 6, tcp_flags::kRst));
  EXPECT_EQ(rec.count(Anomaly::StreamGapAtClose), 1u);
}

TEST_F(TrackerTest, EchoRepliesMatchTheirRequests) {
  link.start();
  link.send(Direction::PacToPns, EchoRequest{77});
  EchoReply ok;
  ok.identifier = 77;
  ok.result_code = 1;
  link.send(Direction::PnsToPac, ok);
  EXPECT_EQ(rec.count(Anomaly::EchoReplyUnmatched), 0u);
  ok.identifier = 78;
  link.send(Direction::PnsToPac, ok);
  EXPECT_EQ(rec.count(Anomaly::EchoReplyUnmatched), 1u);
}

// RFC 1334: the name counts once the PAC's Authenticate-Ack answers its request.
TEST_F(TrackerTest, UserIsTheNameThePacAccepted) {
  link.start();
  link.outgoing_call(7, 0);
  link.gre_to_pac(0, test::ppp(kPppLcp, {1, 1, 0, 4}));
  link.gre_to_pac(0, test::ppp(kPppPap, test::pap_request("alice", "secret")));
  const Call& call = *link.connection()->calls[0];
  EXPECT_FALSE(call.user);  // a claim, not yet accepted
  ASSERT_TRUE(call.first_claim);
  EXPECT_EQ(call.first_claim->name, "alice");
  const GreOutcome ack = link.gre_to_pns(7, test::ppp(kPppPap, {2, 1, 0, 5, 0}));
  EXPECT_EQ(ack.ppp, PppFrameClass::Authentication);
  ASSERT_TRUE(call.user);
  EXPECT_EQ(call.user->name, "alice");
  EXPECT_EQ(call.user->method, AuthMethod::Pap);
  EXPECT_EQ(call.user->sent, Direction::PnsToPac);
  EXPECT_EQ(call.auth_succeeded, true);
  EXPECT_EQ(link.gre_to_pac(0).ppp, PppFrameClass::NetworkLayer);
}

// Issue 12: a forged CHAP Response naming an allowed user, then PAP as the user the server
// acks; then the same client re-authenticates as a third name, after the GRE has run long.
TEST_F(TrackerTest, ForgedClaimIsKeptApartAndReauthenticationIsReported) {
  struct Changes : Recorder {
    std::vector<std::string> users;
    void on_call_changed(const ControlConnection&, const Call& c) override {
      if (c.user) users.push_back(c.user->name);
    }
  } changes;
  Tracker t(changes);
  Link l{t, link.pns, link.pac};
  l.start();
  l.outgoing_call(7, 0);
  std::vector<std::uint8_t> forged{2, 1, 0, 0, 16};
  forged.resize(21, 0xaa);
  forged.insert(forged.end(), {'b', 'o', 's', 's'});
  forged[3] = static_cast<std::uint8_t>(forged.size());
  l.gre_to_pac(0, test::ppp(kPppChap, forged));
  l.gre_to_pac(0, test::ppp(kPppPap, test::pap_request("mallory", "pw")));
  l.gre_to_pns(7, test::ppp(kPppPap, {2, 1, 0, 5, 0}));
  const Call& call = *l.connection()->calls[0];
  ASSERT_TRUE(call.user);
  EXPECT_EQ(call.user->name, "mallory");
  EXPECT_EQ(call.first_claim->name, "boss");
  EXPECT_EQ(changes.count(Anomaly::AuthUnsolicitedResponse), 1u);
  for (int i = 0; i < 100; ++i) l.gre_to_pac(0);
  // The server's new link establishment, then PAP again as someone else.
  l.gre_to_pns(7, test::ppp(kPppLcp, {1, 9, 0, 4}));
  auto again = test::pap_request("trent", "pw");
  again[1] = 2;  // Identifier
  l.gre_to_pac(0, test::ppp(kPppPap, again));
  l.gre_to_pns(7, test::ppp(kPppPap, {2, 2, 0, 5, 0}));
  EXPECT_EQ(call.user->name, "trent");
  EXPECT_EQ(call.authentications, 2u);
  EXPECT_EQ(changes.users, (std::vector<std::string>{"mallory", "trent"}));
}

TEST_F(TrackerTest, StuckSetUpAndIdleConnectionsExpire) {
  link.start();
  OutgoingCallRequest rq;
  rq.call_id = 9;
  link.send(Direction::PnsToPac, rq);  // no reply ever comes
  tracker.expire(link.time + kCallSetupTimeout + 1);
  EXPECT_EQ(tracker.call_count(), 0u);
  EXPECT_EQ(rec.closed_calls.back(), "set-up timed out");
  tracker.expire(link.time + kConnectionIdleTimeout + 1);
  EXPECT_EQ(rec.closed_connections.back(), "idle timeout");
  tracker.expire(link.time + 2 * kConnectionIdleTimeout + 2);
  EXPECT_EQ(tracker.connection_count(), 0u);
}

TEST_F(TrackerTest, CallsPerConnectionAreBounded) {
  link.start();
  for (std::size_t i = 0; i <= kMaxCallsPerConnection; ++i) {
    OutgoingCallRequest rq;
    rq.call_id = static_cast<std::uint16_t>(i);
    link.send(Direction::PnsToPac, rq);
  }
  EXPECT_EQ(tracker.call_count(), kMaxCallsPerConnection);
  EXPECT_EQ(rec.count(Anomaly::TooManyCalls), 1u);
}

TEST_F(TrackerTest, NonPptpGreAndMalformedPacketsAreCountedNotMatched) {
  std::vector<std::uint8_t> v0{0x00, 0x00, 0x08, 0x00, 0x45};
  auto pkt = test::ipv4(addr("192.0.2.1"), addr("198.51.100.2"), kIpProtocolGre, v0);
  EXPECT_EQ(link.packet(pkt).gre.verdict, GreVerdict::NotPptp);
  EXPECT_EQ(tracker.counters()[static_cast<std::size_t>(Anomaly::GreNotPptp)], 1u);
  std::vector<std::uint8_t> bad{0x30, 0x81, 0x88, 0x0b, 0x00};
  pkt = test::ipv4(addr("192.0.2.1"), addr("198.51.100.2"), kIpProtocolGre, bad);
  EXPECT_EQ(link.packet(pkt).gre.verdict, GreVerdict::Malformed);
  EXPECT_EQ(link.packet({0x45, 0x00}).kind, PacketKind::Malformed);
}

}  // namespace
}  // namespace pptp::track
