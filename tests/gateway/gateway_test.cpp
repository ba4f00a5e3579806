// The gateway as the router sees it: two clients behind one public address call the same
// server with the same Call ID; every rewrite is checked on the bytes that leave.
#include "gateway/gateway.hpp"

#include <gtest/gtest.h>

#include "nat/checksum.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

// Two control connections from one public address; client A has placed a call with Call
// ID 7, so client B's Call ID 7 collides.
class TwoConnections : public ::testing::Test {
 protected:
  void SetUp() override {
    h.start(a);
    h.start(b);
    // Client A: Call ID 7 is free and passes unchanged.
    h.pass(a.to_pac(test::bytes_of(ocrq(7))));
  }

  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
};

class TwoClientsOneCallId : public TwoConnections {
 protected:
  void SetUp() override {
    TwoConnections::SetUp();
    h.pass(a.to_pns(test::bytes_of(ocrp(100, 7))));
    // Client B: Call ID 7 collides toward the same server from the same address.
    Packet p = b.to_pac(test::bytes_of(ocrq(7)));
    const Verdict v = h.run(p);
    ASSERT_EQ(v.action, Action::Accept);
    ASSERT_TRUE(v.modified);
    b_outside = tcp_u16(p, 12);
    ASSERT_NE(b_outside, 7);
    EXPECT_TRUE(nat::tcp_checksum_ok(p, 20));
    // The server answers with the translated ID; the client must see its own again.
    Packet reply = b.to_pns(test::bytes_of(ocrp(101, b_outside)));
    ASSERT_TRUE(h.run(reply).modified);
    EXPECT_EQ(tcp_u16(reply, 14), 7);
    EXPECT_EQ(tcp_u16(reply, 12), 101);  // the server's own Call ID is never touched
    EXPECT_TRUE(nat::tcp_checksum_ok(reply, 20));
  }

  std::uint16_t b_outside = 0;
};

TEST_F(TwoClientsOneCallId, BothCallsAreEstablishedWithDistinctOutsideIds) {
  EXPECT_EQ(h.gw.tracker().call_count(), 2u);
  EXPECT_EQ(h.gw.translator().counters().calls_translated, 1u);
  const auto s = h.gw.status();
  ASSERT_EQ(s["connections"].size(), 2u);
  for (const auto& c : s["connections"]) {
    EXPECT_EQ(c["outside"], "198.51.100.1");
    EXPECT_EQ(c["calls"][0]["state"], "established");
    EXPECT_EQ(c["calls"][0]["pns_call_id"], 7);
  }
}

TEST_F(TwoClientsOneCallId, ServerGreReachesTheRightClientWithItsOwnCallId) {
  for (const auto& [key, client] : {std::pair{std::uint16_t{7}, addr("192.0.2.11")},
                                    std::pair{b_outside, addr("192.0.2.12")}}) {
    Packet g = checksummed(test::gre(kServer, kPublic, key, 1, test::ppp(0x0021, {1, 2, 3})));
    const Verdict v = h.run(g);
    ASSERT_EQ(v.action, Action::Accept);
    ASSERT_TRUE(v.modified);
    const auto ip = wire::parse_ipv4(g);
    ASSERT_TRUE(ip);
    EXPECT_EQ(ip->destination, client);
    EXPECT_EQ(wire::parse_gre(ip->payload)->header.call_id, 7);
    EXPECT_TRUE(nat::ipv4_header_checksum_ok(g, 20));
  }
  EXPECT_EQ(h.gw.counters().gre_to_pns, 2u);
}

TEST_F(TwoClientsOneCallId, ClientGreToTheServerPassesAsItIs) {
  // Tracked by conntrack: the kernel's masquerade translates its source, not us.
  Packet g = checksummed(test::gre(addr("192.0.2.12"), kServer, 101, 1, test::ppp(0x0021, {9})));
  const Packet before = g;
  const Verdict v = h.run(g);
  ASSERT_EQ(v.action, Action::Accept);
  EXPECT_FALSE(v.modified);
  EXPECT_EQ(g, before);
  EXPECT_EQ(h.gw.counters().gre_to_pac, 1u);
}

TEST_F(TwoClientsOneCallId, GreOfNoCallIsDropped) {
  Packet stray = checksummed(test::gre(kServer, kPublic, 4242, 1, test::ppp(0x0021, {1})));
  EXPECT_EQ(h.run(stray).action, Action::Drop);
  Packet spoofed = checksummed(test::gre(addr("192.0.2.99"), kServer, 101, 1, test::ppp(0x0021, {1})));
  EXPECT_EQ(h.run(spoofed).action, Action::Drop);
  EXPECT_EQ(h.gw.counters().gre_unknown_dropped, 2u);
}

TEST_F(TwoClientsOneCallId, ClearRequestIsTranslatedDisconnectIsNotAndTheMappingGoes) {
  Packet clear = b.to_pac(test::bytes_of(wire::CallClearRequest{7, 0}));
  ASSERT_TRUE(h.run(clear).modified);
  EXPECT_EQ(tcp_u16(clear, 12), b_outside);
  // RFC 2637 2.13: Call-Disconnect-Notify carries the PAC's Call ID; it passes untouched.
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 101;
  cdn.result_code = 3;
  h.pass(b.to_pns(test::bytes_of(cdn)));
  EXPECT_EQ(h.gw.tracker().call_count(), 1u);
  EXPECT_EQ(h.gw.translator().size(), 1u);
  Packet late = checksummed(test::gre(kServer, kPublic, b_outside, 9, test::ppp(0x0021, {1})));
  EXPECT_EQ(h.run(late).action, Action::Drop);
  // Client A is untouched.
  Packet g = checksummed(test::gre(kServer, kPublic, 7, 2, test::ppp(0x0021, {1})));
  EXPECT_EQ(h.run(g).action, Action::Accept);
}

// Client B's call 7 is known to the server as b_outside; client A's as 7. B's second request
// naming its live Call ID 7 would reach the server as 7, A's outside Call ID, if passed: the
// server's GRE for that call (Key 7, RFC 2637 4.1) would reach A. It is dropped, and so is
// what B sends after it, its retransmission included.
TEST_F(TwoClientsOneCallId, ADuplicateCallIdIsDroppedNotPassedUntranslated) {
  ASSERT_NE(b_outside, 7);
  const std::size_t mappings = h.gw.translator().size();
  Packet duplicate = b.to_pac(test::bytes_of(ocrq(7)));
  const Packet again = duplicate;
  EXPECT_EQ(h.run(duplicate).action, Action::Drop);
  Packet retransmitted = again;
  EXPECT_EQ(h.run(retransmitted).action, Action::Drop);
  Packet echo = b.to_pac(test::bytes_of(wire::EchoRequest{}));
  EXPECT_EQ(h.run(echo).action, Action::Drop);
  EXPECT_EQ(h.gw.translator().size(), mappings);
  EXPECT_EQ(h.gw.tracker().call_count(), 2u);
  // A's call is untouched: the server's GRE with Key 7 still reaches A alone.
  Packet g = checksummed(test::gre(kServer, kPublic, 7, 1, test::ppp(0x0021, {1, 2, 3})));
  ASSERT_EQ(h.run(g).action, Action::Accept);
  EXPECT_EQ(wire::parse_ipv4(g)->destination, addr("192.0.2.11"));
}

// A client reusing the Call ID of a call it is clearing (before the server's
// Call-Disconnect-Notify) places a new call: it is translated again, not refused, and the
// server's GRE with Key 7 still reaches A alone.
TEST_F(TwoClientsOneCallId, ACallIdReusedWhileClearingIsANewCallTranslatedAgain) {
  Packet clear = b.to_pac(test::bytes_of(wire::CallClearRequest{7, 0}));
  ASSERT_EQ(h.run(clear).action, Action::Accept);
  Packet request = b.to_pac(test::bytes_of(ocrq(7)));
  const Verdict v = h.run(request);
  ASSERT_EQ(v.action, Action::Accept);
  ASSERT_TRUE(v.modified);
  const std::uint16_t outside = tcp_u16(request, 12);
  EXPECT_NE(outside, 7);
  Packet echo = b.to_pac(test::bytes_of(wire::EchoRequest{}));
  EXPECT_EQ(h.run(echo).action, Action::Accept);
  EXPECT_EQ(h.gw.translator().size(), 2u);
  const nat::CallMapping* m = h.gw.translator().find_outside(kServer, kPublic, outside);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->inside, addr("192.0.2.12"));
  Packet g = checksummed(test::gre(kServer, kPublic, 7, 1, test::ppp(0x0021, {1, 2, 3})));
  ASSERT_EQ(h.run(g).action, Action::Accept);
  EXPECT_EQ(wire::parse_ipv4(g)->destination, addr("192.0.2.11"));
}

TEST_F(TwoClientsOneCallId, WanErrorNotifyIsTranslatedBack) {
  wire::WanErrorNotify wen;
  wen.peer_call_id = b_outside;
  Packet p = b.to_pns(test::bytes_of(wen));
  ASSERT_TRUE(h.run(p).modified);
  EXPECT_EQ(tcp_u16(p, 12), 7);
  EXPECT_EQ(h.gw.tracker().counters()[static_cast<std::size_t>(track::Anomaly::UnknownCall)], 0u);
}

TEST_F(TwoConnections, ASplitOutgoingCallRequestLeavesRewrittenAtOnceAndSoDoesItsRetransmission) {
  // Call ID 0x0100 collides, and its replacement differs in the first byte too.
  h.pass(a.to_pac(test::bytes_of(ocrq(0x0100))));
  const Packet message = test::bytes_of(ocrq(0x0100));
  // Cut inside the Call ID field (bytes 12 and 13): each part carries one byte of it.
  const Packet head(message.begin(), message.begin() + 13);
  const Packet tail(message.begin() + 13, message.end());
  const std::uint32_t seq = b.pns_seq;
  Packet first = b.to_pac(head);
  Packet second = b.to_pac(tail);
  Packet retransmitted = checksummed(test::tcp(b.pns, b.pac, seq, flags::kAck, head));
  // The first part leaves at once (a sender under Nagle waits for its ACK), its byte of the
  // Call ID already that of an outside Call ID reserved for the request.
  const Verdict v1 = h.run(first);
  ASSERT_EQ(v1.action, Action::Accept);
  ASSERT_TRUE(v1.modified);
  EXPECT_TRUE(nat::tcp_checksum_ok(first, 20));
  const Verdict v2 = h.run(second);
  ASSERT_EQ(v2.action, Action::Accept);
  EXPECT_TRUE(h.gw.take_released().empty());
  const auto outside = static_cast<std::uint16_t>((first[40 + 12] << 8) | second[40]);
  EXPECT_NE(outside, 0x0100);
  const nat::CallMapping* m = h.gw.translator().find_outside(kServer, kPublic, outside);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->inside, b.pns.address);
  EXPECT_EQ(m->inside_call_id, 0x0100);
  EXPECT_EQ(h.gw.translator().reservations(), 0u);
  ASSERT_TRUE(h.run(retransmitted).modified);
  EXPECT_EQ(retransmitted[40 + 12], outside >> 8);
  EXPECT_TRUE(nat::tcp_checksum_ok(retransmitted, 20));
}

TEST_F(TwoConnections, IncomingCallReplyAllocatesAndConnectedTranslatesBack) {
  wire::IncomingCallRequest icrq;
  icrq.call_id = 300;
  h.pass(b.to_pns(test::bytes_of(icrq)));
  wire::IncomingCallReply icrp;
  icrp.call_id = 7;
  icrp.peer_call_id = 300;
  icrp.result_code = 1;
  Packet reply = b.to_pac(test::bytes_of(icrp));
  ASSERT_TRUE(h.run(reply).modified);
  const std::uint16_t outside = tcp_u16(reply, 12);
  EXPECT_NE(outside, 7);
  EXPECT_EQ(tcp_u16(reply, 14), 300);
  wire::IncomingCallConnected iccn;
  iccn.peer_call_id = outside;
  Packet connected = b.to_pns(test::bytes_of(iccn));
  ASSERT_TRUE(h.run(connected).modified);
  EXPECT_EQ(tcp_u16(connected, 12), 7);
  const auto s = h.gw.status();
  bool found = false;
  for (const auto& c : s["connections"]) {
    for (const auto& call : c["calls"]) {
      if (call["origin"] == "incoming") {
        found = true;
        EXPECT_EQ(call["state"], "established");
        EXPECT_EQ(call["outside_call_id"], outside);
      }
    }
  }
  EXPECT_TRUE(found);
}

TEST(Gateway, RequestsTheTrackerRefusesTakeNoCallId) {
  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  // Outgoing-Call-Requests before the control connection is up: no call, no Call ID, and
  // dropped: passed on, a server that answers in any state would send GRE keyed by a Call
  // ID another client may hold.
  h.pass(a.to_pac({}, flags::kSyn));
  h.pass(a.to_pns({}, flags::kSyn | flags::kAck));
  for (std::uint16_t id = 1; id <= 50; ++id) {
    Packet early = a.to_pac(test::bytes_of(ocrq(id)));
    EXPECT_EQ(h.run(early).action, Action::Drop) << id;
  }
  EXPECT_EQ(h.gw.translator().size(), 0u);
  // The refusal ends what the gateway reads from that client: TCP cannot deliver past it.
  Packet after = a.to_pac(test::bytes_of(wire::StartControlConnectionRequest{}));
  EXPECT_EQ(h.run(after).action, Action::Drop);
  // Once up, a duplicate of a live Call ID on the same connection takes none either: it is
  // dropped (TwoClientsOneCallId.ADuplicateCallIdIsDroppedNotPassedUntranslated).
  Client b{{addr("192.0.2.11"), 40002}};
  h.start(b);
  h.pass(b.to_pac(test::bytes_of(ocrq(7))));
  Packet duplicate = b.to_pac(test::bytes_of(ocrq(7)));
  EXPECT_EQ(h.run(duplicate).action, Action::Drop);
  EXPECT_EQ(h.gw.translator().size(), 1u);
  EXPECT_EQ(h.gw.tracker().call_count(), 1u);
}

TEST(Gateway, NonPptpGrePassesAndGarbageIsDropped) {
  Harness h;
  Packet v0 = checksummed(test::ipv4(addr("192.0.2.11"), kServer, wire::kIpProtocolGre, {0, 0, 0x08, 0x00}));
  EXPECT_EQ(h.run(v0).action, Action::Accept);
  Packet cut = checksummed(test::ipv4(addr("192.0.2.11"), kServer, wire::kIpProtocolGre, {0x30, 0x81, 0x88}));
  EXPECT_EQ(h.run(cut).action, Action::Drop);
  Packet junk{0x45, 0, 0, 3};
  EXPECT_EQ(h.run(junk).action, Action::Drop);  // a header that does not parse never passes
  EXPECT_EQ(h.gw.counters().malformed_dropped, 2u);
}

TEST(Gateway, ABurstBehindALostSegmentIsRefusedAndTakenAgainInOrder) {
  // A client pipelines 400 Outgoing-Call-Requests, one per segment; the first is lost
  // before the queue. What fits the reassembly bounds waits in the reassembler, the rest is
  // refused, instead of the connection losing sync and its calls their GRE. None of it
  // leaves before the gap fills: where its Call ID fields lie is not known until then (TCP
  // sends it all again).
  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  h.start(a);
  std::vector<Packet> burst;
  for (std::uint16_t i = 0; i < 400; ++i) burst.push_back(a.to_pac(test::bytes_of(ocrq(static_cast<std::uint16_t>(100 + i)))));
  std::vector<std::size_t> refused;
  for (std::size_t i = 1; i < burst.size(); ++i) {
    Packet p = burst[i];
    const Action act = h.run(p).action;
    if (act == Action::Drop) refused.push_back(i);
  }
  EXPECT_EQ(refused.size(), burst.size() - 1);
  const nlohmann::json status = h.gw.status();
  const auto& packets = status["packets"];
  EXPECT_GT(packets["control_refused"], 0u);
  EXPECT_GT(packets["control_gap_dropped"], 0u);
  EXPECT_EQ(packets["control_refused"].get<std::size_t>() + packets["control_gap_dropped"].get<std::size_t>(),
            refused.size());
  EXPECT_EQ(h.gw.tracker().call_count(), 0u);
  Packet first = burst[0];
  EXPECT_NE(h.run(first).action, Action::Drop);
  for (std::size_t i : refused) {
    Packet again = burst[i];
    EXPECT_NE(h.run(again).action, Action::Drop) << i;
    // The server acknowledges what reached it: the gateway keeps what it read until then,
    // to check a retransmission against it (docs/packet-path.md).
    const std::uint32_t delivered = load_u32(&again[24]) + static_cast<std::uint32_t>(again.size() - 40);
    h.pass(checksummed(test::tcp(a.pac, a.pns, a.pac_seq, flags::kAck, {}, delivered)));
  }
  EXPECT_EQ(h.gw.tracker().call_count(), 400u);
  EXPECT_EQ(h.gw.translator().size(), 400u);
}

TEST(Gateway, IdleCallsExpireAndFreeTheirCallIdWhenTheirConnectionEnds) {
  GatewayOptions o;
  o.timeouts.call_idle = 5;
  Harness h(o);
  Client a{{addr("192.0.2.11"), 40001}};
  h.start(a);
  Packet request = a.to_pac(test::bytes_of(ocrq(7)));
  h.run(request);
  Packet reply = a.to_pns(test::bytes_of(ocrp(100, 7)));
  h.run(reply);
  ASSERT_EQ(h.gw.translator().size(), 1u);
  h.gw.expire(h.now + 10);
  EXPECT_EQ(h.gw.tracker().call_count(), 0u);
  EXPECT_EQ(h.gw.translator().size(), 0u);
  EXPECT_EQ(h.gw.translator().parked(), 1u);  // its connection lives: the server's call may too
  h.pass(a.to_pac({}, flags::kRst));
  EXPECT_EQ(h.gw.translator().parked(), 0u);
  EXPECT_EQ(h.gw.translator().in_use(kPublic, kServer), 0u);
}

// s33 review, finding 2: a call ended by its idle timeout while its control connection and
// the server's call live. Before, its outside Call ID was free at once: another client that
// asked for it got every later GRE the server sent for the idle call.
TEST(Gateway, AnIdledOutCallsOutsideCallIdGoesToNoOtherClientWhileItsConnectionLives) {
  GatewayOptions o;
  o.timeouts.call_idle = 5;
  Harness h(o);
  Client victim{{addr("192.0.2.11"), 40001}}, mallory{{addr("192.0.2.12"), 40002}};
  ASSERT_NO_FATAL_FAILURE(call_then_idle_out(h, victim, 7, 300));
  h.start(mallory);
  Packet request = mallory.to_pac(test::bytes_of(ocrq(7)));
  ASSERT_EQ(h.run(request).action, Action::Accept);
  const std::uint16_t mallory_outside = tcp_u16(request, 12);
  EXPECT_NE(mallory_outside, 7u);
  Packet answer = mallory.to_pns(test::bytes_of(ocrp(301, mallory_outside)));
  ASSERT_EQ(h.run(answer).action, Action::Accept);
  // The server's GRE for the victim's idle call (Key 7): to nobody.
  Packet late = checksummed(test::gre(kServer, kPublic, 7, 9, test::ppp(0x0021, {1})));
  EXPECT_EQ(h.run(late).action, Action::Drop);
  EXPECT_EQ(h.gw.counters().gre_to_pns, 0u);
}

// The lifecycle lines name the connection and the call in the words operators grep for
// (describe.hpp writes them into the line without building strings).
TEST(LifecycleLines, NameTheConnectionAndTheCall) {
  CapturedLog captured;
  Harness h({}, captured.log);
  Client a{{addr("192.0.2.11"), 40001}};
  h.start(a);
  h.pass(a.to_pac(test::bytes_of(ocrq(7))));
  h.pass(a.to_pns(test::bytes_of(ocrp(100, 7))));
  EXPECT_EQ(captured.lines_with("call_established connection=1 pns=192.0.2.11:40001 pac=198.51.100.2:1723 "
                                "call=1 pns_call_id=7 pac_call_id=100 outside_call_id=7 origin=outgoing"),
            1u)
      << captured.text.str();
}

}  // namespace
}  // namespace pptp::gateway
