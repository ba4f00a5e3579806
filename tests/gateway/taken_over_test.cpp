// Calls taken over from the HA peer at a promotion (gateway/taken_over.cpp, docs/ha.md):
// adopted with their elements and outside Call IDs, on a control connection picked up
// mid-stream (resumed at the replicated boundaries, or on a header found in a segment).
// What ends one on that connection ends it at once: its elements are removed (not
// re-armed) and its outside Call ID is free for another call.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "gateway/gateway.hpp"
#include "nat/checksum.hpp"
#include "tests/gateway/harness.hpp"
#include "tests/gateway/taken_over_support.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

TEST(TakenOver, TheServersCallDisconnectNotifyEndsTheCallAtOnce) {
  Promoted p;
  ASSERT_TRUE(p.offloaded());
  ASSERT_FALSE(p.outside_call_id_free());
  p.h.pass(p.to_pns(disconnect_notify(400)));  // another call of the server's: nothing ends
  EXPECT_TRUE(p.offloaded());
  p.h.pass(p.to_pns(disconnect_notify(500)));  // its own Call ID (RFC 2637 2.13): passes as it is
  EXPECT_FALSE(p.offloaded());
  EXPECT_TRUE(p.removed());
  EXPECT_TRUE(p.outside_call_id_free());
}

// A Windows server names the call by the client's Call ID as it knows it (the outside one,
// 8), not by its own (docs/protocol-notes.md): the taken-over call ends as an ordinary call
// does (the same reading decides, Gateway::names_pac_call), and the client reads its own (7).
TEST(TakenOver, AWindowsServersCallDisconnectNotifyNamingTheOutsideCallIdEndsTheCall) {
  Promoted p;
  Packet cdn = p.to_pns(disconnect_notify(8));
  const Verdict v = p.h.run(cdn);
  ASSERT_EQ(v.action, Action::Accept);
  EXPECT_TRUE(v.modified);
  EXPECT_EQ(tcp_u16(cdn, 12), 7);
  EXPECT_TRUE(nat::tcp_checksum_ok(cdn, 20));
  EXPECT_FALSE(p.offloaded());
  EXPECT_TRUE(p.removed());
  EXPECT_TRUE(p.outside_call_id_free());
}

// The server's messages that name the client's Call ID as the server knows it (outside, 8):
// WAN-Error-Notify (RFC 2637 2.14), Incoming-Call-Connected (2.10) and a Windows server's
// Set-Link-Info (2.15 has the PNS send it) leave with the client's own (7), their TCP
// checksum right. The client's Set-Link-Info names the server's Call ID and passes as it is.
// None of them ends the call.
TEST(TakenOver, TheServersMessagesReachTheClientWithItsOwnCallId) {
  Promoted p;
  wire::WanErrorNotify wen;
  wen.peer_call_id = 8;
  wire::IncomingCallConnected iccn;
  iccn.peer_call_id = 8;
  wire::SetLinkInfo sli;
  sli.peer_call_id = 8;
  for (const Packet& message : {test::bytes_of(wen), test::bytes_of(iccn), test::bytes_of(sli)}) {
    Packet out = p.to_pns(message);
    const Verdict v = p.h.run(out);
    ASSERT_EQ(v.action, Action::Accept);
    EXPECT_TRUE(v.modified);
    EXPECT_EQ(tcp_u16(out, 12), 7);
    EXPECT_TRUE(nat::tcp_checksum_ok(out, 20));
  }
  sli.peer_call_id = 500;
  p.h.pass(p.to_pac(test::bytes_of(sli)));
  EXPECT_TRUE(p.untouched());
}

// The client's Call-Clear-Request names the outside Call ID the server knows the call by
// (RFC 2637 2.12) and, as for a call of the tracker's, ends nothing yet: the server's answer
// still names the call. A Windows server's (a WAN-Error-Notify, then the
// Call-Disconnect-Notify, both naming the outside Call ID 8) reaches the client as 7 and
// ends the call (seen in the HA bed when the clear ended it: both reached the client as 8).
TEST(TakenOver, TheClientsCallClearRequestNamesTheOutsideCallIdAndTheServersAnswerEndsTheCall) {
  Promoted p;
  Packet clear = p.to_pac(test::bytes_of(wire::CallClearRequest{7, 0}));
  const Verdict v = p.h.run(clear);
  ASSERT_EQ(v.action, Action::Accept);
  EXPECT_EQ(tcp_u16(clear, 12), 8);
  EXPECT_TRUE(p.untouched());
  wire::WanErrorNotify wen;
  wen.peer_call_id = 8;
  for (const Packet& answer : {test::bytes_of(wen), disconnect_notify(8)}) {
    Packet out = p.to_pns(answer);
    ASSERT_EQ(p.h.run(out).action, Action::Accept);
    EXPECT_EQ(tcp_u16(out, 12), 7);
    EXPECT_TRUE(nat::tcp_checksum_ok(out, 20));
  }
  EXPECT_FALSE(p.offloaded());
  EXPECT_TRUE(p.removed());
}

TEST(TakenOver, AStopControlConnectionRequestEndsTheConnectionsCalls) {
  Promoted p;
  p.h.pass(p.to_pns(test::bytes_of(wire::StopControlConnectionRequest{})));
  EXPECT_FALSE(p.offloaded());
  EXPECT_TRUE(p.removed());
  EXPECT_TRUE(p.outside_call_id_free());
}

TEST(TakenOver, TheConnectionsResetEndsItsCalls) {
  Promoted p;
  p.h.pass(p.to_pac({}, flags::kRst | flags::kAck));
  EXPECT_FALSE(p.offloaded());
  EXPECT_TRUE(p.removed());
}

// Another client's connection to the same server names the call's Call IDs (the server's,
// the outside one, the client's own): nothing of it ends, nothing is translated to it.
TEST(TakenOver, AnotherConnectionsMessagesEndNothing) {
  Promoted p;
  Client b{{addr("192.0.2.12"), 40002}};
  p.h.pass(b.to_pac(test::bytes_of(wire::EchoRequest{1})));
  wire::WanErrorNotify wen;
  wen.peer_call_id = 8;
  for (const Packet& message : {disconnect_notify(500), disconnect_notify(8), test::bytes_of(wen)}) {
    p.h.pass(b.to_pns(message));
  }
  p.h.pass(b.to_pac(test::bytes_of(wire::CallClearRequest{7, 0})));
  p.h.pass(b.to_pac({}, flags::kRst));
  EXPECT_TRUE(p.untouched());
}

// After the window's proof the connection's new calls are followed (docs/ha.md, "New calls
// on a taken-over connection"): the client's Call ID 8, the taken-over call's outside one,
// leaves translated, the server's GRE for the new call reaches the client with its own Call
// ID, and a request naming the taken-over call's Call ID 7 is dropped.
TEST(TakenOver, ANewCallOnTheConnectionIsFollowedAndCannotTakeATakenOverCallId) {
  Promoted p(false);
  p.taken.positions = track::ResumePositions{};  // taken over, no positions known
  p.prove_window();
  Packet request = p.to_pac(test::bytes_of(ocrq(8)));
  ASSERT_EQ(p.h.run(request).action, Action::Accept);
  const std::uint16_t outside = tcp_u16(request, 12);
  EXPECT_NE(outside, 8);
  Packet reply = p.to_pns(test::bytes_of(ocrp(501, outside)));
  ASSERT_EQ(p.h.run(reply).action, Action::Accept);
  EXPECT_EQ(tcp_u16(reply, 14), 8);
  EXPECT_EQ(p.h.gw.tracker().call_count(), 1u);
  // The taken-over call's GRE goes by its adopted elements, in the kernel (offloaded below).
  Packet g = checksummed(test::gre(kServer, kPublic, outside, 1, test::ppp(0x0021, {1, 2, 3})));
  ASSERT_EQ(p.h.run(g).action, Action::Accept);
  EXPECT_EQ(wire::parse_ipv4(g)->destination, p.a.pns.address);
  EXPECT_EQ(wire::parse_gre(wire::parse_ipv4(g)->payload)->header.call_id, 8);
  Packet duplicate = p.to_pac(test::bytes_of(ocrq(7)));
  EXPECT_EQ(p.h.run(duplicate).action, Action::Drop);
  EXPECT_EQ(p.h.gw.tracker().call_count(), 1u);
  EXPECT_TRUE(p.offloaded());
}

// Reviewer's case: a host that knows the client's addresses and ports, not the
// connection's sequence numbers, sends the first segment the gateway sees on it: a
// Stop-Control-Connection-Request, or a Windows-style Call-Disconnect-Notify naming the
// call's outside Call ID.
class TakenOverSpoofed : public ::testing::TestWithParam<bool> {};

TEST_P(TakenOverSpoofed, BeforeAnyRealExchangeItEndsNothing) {
  Promoted p(false);
  Client spoofer = p.a;
  spoofer.pac_seq = 0x9e3779b9;  // any number: nothing was seen to compare it with
  Packet m = spoofer.to_pns(GetParam() ? test::bytes_of(wire::StopControlConnectionRequest{}) : disconnect_notify(8));
  (void)p.h.run(m);
  EXPECT_TRUE(p.untouched());
  EXPECT_EQ(p.h.gw.counters().taken_over_ends_unproven, 1u);
  // Held, it waits for the client's acknowledgment of those bytes, which never comes: the
  // real peers' Echo, each side acknowledging the other 2^31 away from the forged numbers,
  // proves the window, and the call stays (whatever the gateway made of their segments).
  wire::EchoReply reply;
  reply.identifier = 1;
  reply.result_code = 1;
  for (Packet real : {p.to_pac(test::bytes_of(wire::EchoRequest{1})), p.to_pns(test::bytes_of(reply)),
                      p.to_pac({}, flags::kAck)}) {
    (void)p.h.run(real);
  }
  EXPECT_TRUE(p.h.gw.tracker().find_connection(p.a.pns, p.a.pac)->tcp.established_both_ways());
  EXPECT_TRUE(p.untouched());
  EXPECT_EQ(p.h.gw.counters().taken_over_ends_acknowledged, 0u);
  EXPECT_FALSE(p.outside_call_id_free());
}
INSTANTIATE_TEST_SUITE_P(TakenOver, TakenOverSpoofed, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "StopControlConnectionRequest" : "WindowsCallDisconnectNotify"; });

// A Call-Clear at once after a failover, before any Echo: the server's answer comes before
// the window is proven (the client has acknowledged nothing of the server's yet). Held, it
// ends the call once the client acknowledges it; before s17 it was ignored and the call
// kept its elements (and its Call IDs) until its idle timeout.
TEST(TakenOver, AnAnswerBeforeTheWindowIsProvenEndsTheCallOnceItsReceiverAcknowledgesIt) {
  Promoted p(false);
  Packet clear = p.to_pac(test::bytes_of(wire::CallClearRequest{7, 0}));
  ASSERT_EQ(p.h.run(clear).action, Action::Accept);
  EXPECT_EQ(tcp_u16(clear, 12), 8);
  p.h.pass(p.to_pns(disconnect_notify(500)));
  EXPECT_TRUE(p.untouched());
  EXPECT_EQ(p.h.gw.counters().taken_over_ends_unproven, 1u);
  p.h.pass(p.to_pac({}, flags::kAck));  // the client's TCP acknowledges the answer
  EXPECT_EQ(p.h.gw.counters().taken_over_ends_acknowledged, 1u);
  EXPECT_FALSE(p.offloaded());
  EXPECT_TRUE(p.removed());
  EXPECT_TRUE(p.outside_call_id_free());
}

// Reviewer's case: 10 bytes of a message, then nothing: the gateway closes the connection
// at the half-open timeout, which says nothing of the call.
TEST(TakenOver, APartialMessageThenTheHalfOpenTimeoutEndsNothing) {
  Promoted p(false);
  Packet part = test::bytes_of(wire::EchoRequest{1});
  part.resize(10);
  Packet first = p.a.to_pac(part);
  (void)p.h.run(first);
  p.h.gw.expire(p.h.now += track::kHalfOpenTimeout + 1);
  ASSERT_EQ(p.h.gw.tracker().closed_connection_count(), 1u);  // closed ("half-open timeout")
  EXPECT_TRUE(p.untouched());
}

// The gateway's own closes of a proven connection leave its taken-over calls to their GRE.
TEST(TakenOver, TheGatewaysIdleTimeoutAndStopEndNothing) {
  Promoted p;
  p.h.gw.expire(p.h.now += 150);  // past the connection's idle timeout, not the call's
  ASSERT_EQ(p.h.gw.tracker().connection_count(), 0u);
  EXPECT_TRUE(p.untouched());
  Promoted q;
  q.h.gw.shutdown(q.h.now);
  ASSERT_EQ(q.h.gw.tracker().closed_connection_count(), 1u);
  EXPECT_TRUE(q.untouched());
}

// After a failover the first segment seen from the client starts inside a message (the old
// node passed its head): the connection resumes at the replicated boundary (true) or, with
// none known (false), on the header the segment holds after the tail; the client's
// Call-Clear-Request then names the outside Call ID and the server's answer ends the
// taken-over call. Without either the connection lost sync and closed both ways, and the
// call waited for its idle timeout.
class TakenOverResume : public ::testing::TestWithParam<bool> {};

TEST_P(TakenOverResume, FirstSegmentMidMessageThenTheCallClearRequestEndsTheCall) {
  Promoted p(false);
  const Packet sli = test::bytes_of(wire::SetLinkInfo{});
  Packet first(sli.end() - 10, sli.end());  // the tail of a message the old node passed
  const Packet echo = test::bytes_of(wire::EchoRequest{1});
  first.insert(first.end(), echo.begin(), echo.end());
  p.taken.positions = GetParam() ? track::ResumePositions{p.a.pns_seq + 10, p.a.pac_seq} : track::ResumePositions{};
  p.h.pass(p.to_pac(first));
  wire::EchoReply reply;
  reply.identifier = 1;
  reply.result_code = 1;
  p.h.pass(p.to_pns(test::bytes_of(reply)));
  p.h.pass(p.to_pac({}, flags::kAck));
  Packet clear = p.to_pac(test::bytes_of(wire::CallClearRequest{7, 0}));
  const Verdict v = p.h.run(clear);
  ASSERT_EQ(v.action, Action::Accept);
  EXPECT_EQ(tcp_u16(clear, 12), 8);  // translated: the stream was framed
  p.h.pass(p.to_pns(disconnect_notify(500)));
  EXPECT_FALSE(p.offloaded());
  EXPECT_TRUE(p.removed());
  const auto& anomalies = p.h.gw.tracker().counters();
  const auto count = [&](track::Anomaly a) { return anomalies[static_cast<std::size_t>(a)]; };
  EXPECT_EQ(count(track::Anomaly::TcpResumedAtPosition), GetParam() ? 2u : 0u);
  EXPECT_EQ(count(track::Anomaly::StreamResyncSkipped), GetParam() ? 0u : 1u);
  EXPECT_EQ(count(track::Anomaly::StreamFramingError), 0u);
}
INSTANTIATE_TEST_SUITE_P(TakenOver, TakenOverResume, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "AtTheReplicatedBoundary" : "OnAScannedHeader"; });


// A new call's request read before the taken-over connection's window is proven: the
// connection may yet be established, so the request is deferred (dropped unread), and taken
// when the client sends it again after the proof, translated away from the taken-over
// call's outside Call ID.
TEST(TakenOver, ACallSetUpBeforeTheWindowIsProvenWaitsForTheProof) {
  Promoted p(false);
  p.taken.positions = track::ResumePositions{};
  Client retransmits = p.a;
  Packet early = p.to_pac(test::bytes_of(ocrq(8)));
  EXPECT_EQ(p.h.run(early).action, Action::Drop);
  EXPECT_EQ(p.h.gw.status()["packets"]["control_deferred_dropped"], 1);
  p.a = retransmits;  // the server never had it
  wire::EchoRequest echo{1};
  p.h.pass(p.to_pns(test::bytes_of(echo)));  // the server acknowledges the client's data
  p.h.pass(p.to_pac({}, flags::kAck));       // and the client the server's
  Packet again = p.to_pac(test::bytes_of(ocrq(8)));
  ASSERT_EQ(p.h.run(again).action, Action::Accept);
  EXPECT_NE(tcp_u16(again, 12), 8);
  EXPECT_EQ(p.h.gw.tracker().call_count(), 1u);
}

// The overlap of Integrity.ARequestWhoseFirstBytesLeftIsRefusedNotDeferred on a taken-over
// connection before its window is proven: the request's first 12 bytes leave, its whole copy
// begins before what was read and is refused (not deferred), and Echo messages written at its
// bytes later never make the server read another client's outside Call ID.
TEST(TakenOver, ARequestWhoseFirstBytesLeftBeforeTheProofIsRefusedNotDeferred) {
  Promoted p(false);
  p.taken.positions = track::ResumePositions{};
  Client c{{addr("192.0.2.13"), 40003}};  // another client's call: outside Call ID 9
  p.h.start(c);
  p.h.pass(c.to_pac(test::bytes_of(ocrq(9))));
  p.h.pass(c.to_pns(test::bytes_of(ocrp(900, 9))));
  const Packet request = test::bytes_of(ocrq(300));
  Client at_request = p.a;
  p.h.pass(p.to_pac(slice(request, 0, 12)));
  p.a = at_request;
  Packet whole = p.to_pac(request);
  EXPECT_EQ(p.h.run(whole).action, Action::Drop);
  EXPECT_EQ(p.h.gw.status()["packets"]["control_deferred_dropped"], 0);
  // The server's data and the client's ACK of it (the client's own data, refused, is not
  // acknowledged: its connection is lost, as any lying client's).
  p.h.pass(p.to_pns(test::bytes_of(wire::EchoRequest{1})));
  p.h.pass(p.to_pac({}, flags::kAck));
  p.a = at_request;
  Packet lie = p.to_pac(echoes_with_id_at_12(9));
  EXPECT_EQ(p.h.run(lie).action, Action::Drop);
  Packet g = checksummed(test::gre(kServer, kPublic, 9, 1, test::ppp(0x0021, {1})));
  ASSERT_EQ(p.h.run(g).action, Action::Accept);
  EXPECT_EQ(wire::parse_ipv4(g)->destination, c.pns.address);
}

}  // namespace
}  // namespace pptp::gateway
