// A hostile client against the Call-ID translation (docs/packet-path.md, "What was read is
// what leaves"): a call set-up the gateway cannot translate never reaches the server as
// written, and bytes the gateway read and dropped come back to the server as read or not
// at all. A takes Call ID 9 first; 9 is then A's outside Call ID, so a request of B's that
// reached the server with 9 would send GRE of B's call to A. pptpd answers an
// Outgoing-Call-Request in any state.
#include <gtest/gtest.h>

#include "gateway/gateway.hpp"
#include "nat/checksum.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

class Integrity : public ::testing::Test {
 protected:
  void SetUp() override {
    h.start(a);
    h.pass(a.to_pac(test::bytes_of(ocrq(9))));
    h.pass(a.to_pns(test::bytes_of(ocrp(100, 9))));
  }
  // Where the server's GRE with this Key goes (nullopt: dropped).
  std::optional<wire::Ipv4Address> gre_to(std::uint16_t key) {
    Packet g = checksummed(test::gre(kServer, kPublic, key, 1, test::ppp(0x0021, {1, 2, 3})));
    if (h.run(g).action != Action::Accept) return std::nullopt;
    return wire::parse_ipv4(g)->destination;
  }
  bool left_with_call_id(std::uint16_t id, Packet p) {
    const Verdict v = h.run(p);
    return v.action == Action::Accept && tcp_u16(p, 12) == id;
  }
  std::uint64_t counter(const char* name) { return h.gw.status()["packets"][name].get<std::uint64_t>(); }
  std::uint64_t anomaly(const char* name) { return h.gw.status()["anomalies"].value(name, std::uint64_t{0}); }
  void handshake(Client& c) {
    h.pass(c.to_pac({}, flags::kSyn));
    h.pass(c.to_pns({}, flags::kSyn | flags::kAck));
  }
  void request_start(Client& c) {
    handshake(c);
    h.pass(c.to_pac(test::bytes_of(wire::StartControlConnectionRequest{})));
  }
  void reply_start(Client& c) {
    wire::StartControlConnectionReply reply;
    reply.result_code = 1;
    h.pass(c.to_pns(test::bytes_of(reply)));
  }
  void refuses_overlap_then_drops_the_lie(const Packet& set_up);
  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
};

TEST_F(Integrity, ACallSetUpWithoutAStartIsDroppedAndTheOwnersGreStaysItsOwn) {
  handshake(b);
  EXPECT_FALSE(left_with_call_id(9, b.to_pac(test::bytes_of(ocrq(9)))));
  EXPECT_EQ(counter("calls_refused") + counter("control_dropped"), 1u);
  EXPECT_EQ(gre_to(9), a.pns.address);
  EXPECT_EQ(h.gw.tracker().call_count(), 1u);
  EXPECT_EQ(h.gw.translator().size(), 1u);
}

TEST_F(Integrity, ACallSetUpOnAConnectionPickedUpMidStreamIsDropped) {
  h.pass(b.to_pac(test::bytes_of(wire::EchoRequest{})));  // no SYN seen: nothing proven
  EXPECT_FALSE(left_with_call_id(9, b.to_pac(test::bytes_of(ocrq(9)))));
  EXPECT_EQ(h.gw.translator().size(), 1u);
}

// A client that sends its request before the server's Start-Control-Connection-Reply has
// it deferred, not refused: dropped unread, and taken (translated) when TCP sends it again
// after the reply. The call works.
TEST_F(Integrity, ACallSetUpPipelinedBehindTheStartWaitsForTheReplyAndThenWorks) {
  request_start(b);
  b.pac_received = b.pns_seq;  // the server gets nothing more until the retransmission
  Client retransmits = b;
  Packet early = b.to_pac(test::bytes_of(ocrq(9)));
  EXPECT_EQ(h.run(early).action, Action::Drop);
  EXPECT_EQ(counter("control_deferred_dropped"), 1u);
  EXPECT_EQ(anomaly("call_set_up_deferred"), 1u);
  reply_start(b);
  Packet again = retransmits.to_pac(test::bytes_of(ocrq(9)));
  ASSERT_EQ(h.run(again).action, Action::Accept);
  const std::uint16_t outside = tcp_u16(again, 12);
  EXPECT_NE(outside, 9);  // collides with A's: translated
  Packet answer = b.to_pns(test::bytes_of(ocrp(101, outside)));
  ASSERT_EQ(h.run(answer).action, Action::Accept);
  EXPECT_EQ(tcp_u16(answer, 14), 9);  // B's own Call ID back
  EXPECT_EQ(gre_to(outside), b.pns.address);
  EXPECT_EQ(gre_to(9), a.pns.address);
}

// Split inside the Call ID field before the start: no outside Call ID is reserved for half
// a field; the first part is held until the request is whole, then both are dropped.
TEST_F(Integrity, ASplitCallSetUpBeforeTheStartTakesNoCallIdAndNoByteLeaves) {
  handshake(b);
  const Packet whole = test::bytes_of(ocrq(9));
  Packet first = b.to_pac(Packet(whole.begin(), whole.begin() + 13));  // ends inside the field
  EXPECT_NE(h.run(first).action, Action::Accept);
  EXPECT_EQ(h.gw.translator().reservations(), 0u);
  Packet rest = b.to_pac(Packet(whole.begin() + 13, whole.end()));
  EXPECT_EQ(h.run(rest).action, Action::Drop);
  for (const ReleasedPacket& r : h.gw.take_released()) EXPECT_NE(r.action, Action::Accept);
  EXPECT_EQ(h.gw.translator().reservations(), 0u);
  EXPECT_EQ(h.gw.translator().size(), 1u);
}

// A segment ahead of a gap is dropped, but what the gateway read of it decides Call IDs: the
// client's "retransmission" with other bytes at those sequence numbers is dropped.
TEST_F(Integrity, ARetransmissionWithOtherBytesThanWereReadIsDropped) {
  h.start(b);
  const Packet echo = test::bytes_of(wire::EchoRequest{});
  Client at_gap = b;
  b.pns_seq += static_cast<std::uint32_t>(echo.size());
  Client ahead_again = b, ahead_same = b;
  Packet ahead = b.to_pac(test::bytes_of(ocrq(300)));
  EXPECT_EQ(h.run(ahead).action, Action::Drop);  // ahead of the gap: read once it fills
  h.pass(at_gap.to_pac(echo));
  EXPECT_EQ(h.gw.tracker().call_count(), 2u);  // B's call 300
  EXPECT_FALSE(left_with_call_id(9, ahead_again.to_pac(test::bytes_of(ocrq(9)))));
  EXPECT_EQ(counter("control_differs_dropped"), 1u);
  EXPECT_EQ(anomaly("tcp_retransmission_differs"), 1u);
  h.pass(ahead_same.to_pac(test::bytes_of(ocrq(300))));  // the bytes that were read: they pass
}

// A refused duplicate drops its whole segment, the good request before it included, after
// that request was read: its retransmission with another Call ID does not pass.
TEST_F(Integrity, TheGoodRequestBeforeARefusedDuplicateComesBackAsReadOrNotAtAll) {
  h.start(b);
  Packet both = test::bytes_of(ocrq(300));
  const Packet dup = test::bytes_of(ocrq(300));
  both.insert(both.end(), dup.begin(), dup.end());
  Client before = b;
  Packet p = b.to_pac(both);
  ASSERT_EQ(h.run(p).action, Action::Drop);
  EXPECT_FALSE(left_with_call_id(9, before.to_pac(test::bytes_of(ocrq(9)))));
  EXPECT_EQ(gre_to(9), a.pns.address);
}

// After a refusal nothing more of the client's reaches the server (TCP cannot deliver past
// the refused bytes), and the gateway does not read it: no calls, no outside Call IDs.
TEST_F(Integrity, RequestsAfterARefusalAreNotReadAndTakeNoCallId) {
  h.start(b);
  h.pass(b.to_pac(test::bytes_of(ocrq(300))));
  b.pac_received = b.pns_seq;  // the server gets nothing more
  Packet dup = b.to_pac(test::bytes_of(ocrq(300)));
  ASSERT_EQ(h.run(dup).action, Action::Drop);
  const std::size_t calls = h.gw.tracker().call_count(), mapped = h.gw.translator().size();
  for (std::uint16_t id = 400; id < 450; ++id) {
    Packet p = b.to_pac(test::bytes_of(ocrq(id)));
    EXPECT_EQ(h.run(p).action, Action::Drop);
  }
  EXPECT_EQ(h.gw.tracker().call_count(), calls);
  EXPECT_EQ(h.gw.translator().size(), mapped);
  EXPECT_EQ(h.gw.translator().reservations(), 0u);
  // The server's side still passes: it can still stop the connection.
  h.pass(b.to_pns(test::bytes_of(wire::EchoRequest{})));
}

// A connection the server refused is closed: a client's request on it is dropped.
TEST_F(Integrity, AClientsDataOnAClosedConnectionIsDropped) {
  request_start(b);
  wire::StartControlConnectionReply refused;
  refused.result_code = 2;
  h.pass(b.to_pns(test::bytes_of(refused)));
  EXPECT_FALSE(left_with_call_id(9, b.to_pac(test::bytes_of(ocrq(9)))));
  EXPECT_EQ(counter("control_after_close_dropped"), 1u);
  h.pass(b.to_pac({}, flags::kAck | flags::kFin));  // its close still passes
}

// s18 review: pipelined before the start reply, B sends the first 12 bytes of a call
// set-up (its header: nothing to decide yet, they leave), then the whole set-up from its
// first byte. Deferring it would forget the 12 bytes the server has; after the reply B would
// write Echo messages there, and the server would read a set-up with A's outside Call ID 9.
// A set-up that begins before what the stream already read is refused instead.
void Integrity::refuses_overlap_then_drops_the_lie(const Packet& set_up) {
  request_start(b);
  Client at_set_up = b;
  h.pass(b.to_pac(slice(set_up, 0, 12)));
  Client overlap = at_set_up;
  Packet whole = overlap.to_pac(set_up);
  EXPECT_EQ(h.run(whole).action, Action::Drop);
  EXPECT_EQ(counter("control_deferred_dropped"), 0u);
  reply_start(b);
  Client again = at_set_up;
  Packet lie = again.to_pac(echoes_with_id_at_12(9));
  EXPECT_EQ(h.run(lie).action, Action::Drop);
  EXPECT_EQ(gre_to(9), a.pns.address);
}

TEST_F(Integrity, ARequestWhoseFirstBytesLeftIsRefusedNotDeferred) {
  refuses_overlap_then_drops_the_lie(test::bytes_of(ocrq(300)));
}

// An Incoming-Call-Reply has its Call ID at bytes 12-13 too (RFC 2637 2.9); a client may
// send one before any request, and before the start reply.
TEST_F(Integrity, AnIncomingCallReplyWhoseFirstBytesLeftIsRefusedNotDeferred) {
  wire::IncomingCallReply icrp;
  icrp.call_id = 300;
  icrp.peer_call_id = 77;
  icrp.result_code = 1;
  refuses_overlap_then_drops_the_lie(test::bytes_of(icrp));
}

// The same with the first part ending inside the Call ID field (held): the whole copy is
// refused and the held part goes with it; nothing of B's leaves.
TEST_F(Integrity, AHeldFirstPartGoesWithTheRefusalOfItsOverlappingCopy) {
  request_start(b);
  const Packet request = test::bytes_of(ocrq(5));  // the Call ID's first byte is 9's
  Client at_request = b;
  Packet first = b.to_pac(slice(request, 0, 13));
  EXPECT_NE(h.run(first).action, Action::Accept);
  Client overlap = at_request;
  Packet whole = overlap.to_pac(request);
  EXPECT_EQ(h.run(whole).action, Action::Drop);
  reply_start(b);
  Client again = at_request;
  Packet lie = again.to_pac(echoes_with_id_at_12(9));
  EXPECT_EQ(h.run(lie).action, Action::Drop);
  for (const ReleasedPacket& r : h.gw.take_released()) EXPECT_NE(r.action, Action::Accept);
}

// s18 review: the server asks to stop; the client's Stop-Control-Connection-Reply closes the
// connection in the tracker and must still reach the server (before the fix it was dropped
// as data after the close).
TEST_F(Integrity, TheClientsReplyToTheServersStopReachesIt) {
  h.start(b);
  h.pass(b.to_pns(test::bytes_of(wire::StopControlConnectionRequest{})));
  wire::StopControlConnectionReply reply;
  reply.result_code = 1;
  h.pass(b.to_pac(test::bytes_of(reply), flags::kAck | flags::kPsh | flags::kFin));
  EXPECT_EQ(counter("control_after_close_dropped"), 0u);
}

// s18 review: the gateway keeps the client's bytes until the server acknowledges them, not
// the server's: a client that withholds its ACKs has nothing kept for it.
TEST_F(Integrity, AClientWithholdingItsAcksHasNothingOfTheServersKept) {
  h.start(b);
  b.pns_received = b.pac_seq;  // acknowledges nothing more of the server's
  const std::size_t before = h.gw.memory_bytes();
  for (int i = 0; i < 200; ++i) h.pass(b.to_pns(test::bytes_of(wire::EchoRequest{})));
  EXPECT_LE(h.gw.memory_bytes(), before + 1024) << "the server's 3,200 unacknowledged bytes kept";
}

// s17 review: a Call ID reused while clearing ended the old call and freed its outside Call
// ID at once; a client naming that ID as its own got it while the server could still send
// the old call's GRE with it. It is held for kHeldCallIdSeconds, and that GRE goes nowhere.
TEST_F(Integrity, TheOutsideCallIdOfACallReusedWhileClearingGoesToNoOtherCallWhileHeld) {
  h.start(b);
  Packet request = b.to_pac(test::bytes_of(ocrq(9)));
  ASSERT_EQ(h.run(request).action, Action::Accept);
  const std::uint16_t old_outside = tcp_u16(request, 12);
  ASSERT_NE(old_outside, 9);  // collides with A's: translated
  Packet answer = b.to_pns(test::bytes_of(ocrp(101, old_outside)));
  ASSERT_EQ(h.run(answer).action, Action::Accept);
  Packet clear = b.to_pac(test::bytes_of(wire::CallClearRequest{9, 0}));
  ASSERT_EQ(h.run(clear).action, Action::Accept);
  Packet again = b.to_pac(test::bytes_of(ocrq(9)));  // before the server's Call-Disconnect-Notify
  ASSERT_EQ(h.run(again).action, Action::Accept);
  EXPECT_NE(tcp_u16(again, 12), old_outside);
  EXPECT_EQ(anomaly("call_id_reused_while_clearing"), 1u);
  Client c{{addr("192.0.2.13"), 40003}};
  h.start(c);
  Packet asks = c.to_pac(test::bytes_of(ocrq(old_outside)));
  ASSERT_EQ(h.run(asks).action, Action::Accept);
  EXPECT_NE(tcp_u16(asks, 12), old_outside);
  EXPECT_EQ(gre_to(old_outside), std::nullopt);  // the old call's late GRE reaches nobody
  EXPECT_EQ(h.gw.status()["nat"]["held"], 1);
  h.gw.expire(h.now + nat::kHeldCallIdSeconds + 1);
  EXPECT_FALSE(h.gw.translator().outside_in_use(kPublic, kServer, old_outside));
  EXPECT_EQ(h.gw.status()["nat"]["held"], 0);
}

// s19 review: the server's GRE with a held (or reserved, or not yet answered) outside Call ID
// reaches no client, even where --allow-unknown-gre passes GRE of no call.
TEST(IntegrityUnknownGre, GreWithAHeldKeyIsDroppedEvenWithUnknownGreAllowed) {
  GatewayOptions options;
  options.allow_unknown_gre = true;
  Harness h{options};
  Client b{{addr("192.0.2.12"), 40002}};
  h.start(b);
  h.pass(b.to_pac(test::bytes_of(ocrq(9))));
  h.pass(b.to_pns(test::bytes_of(ocrp(101, 9))));
  h.pass(b.to_pac(test::bytes_of(wire::CallClearRequest{9, 0})));
  Packet again = b.to_pac(test::bytes_of(ocrq(9)));  // reused while clearing: the old 9 is held
  ASSERT_EQ(h.run(again).action, Action::Accept);
  ASSERT_EQ(h.gw.status()["nat"]["held"], 1);
  const std::uint16_t new_outside = h.gw.translator().find_inside(h.gw.tracker().find_connection(b.pns, b.pac)->id, 9)->outside_call_id;
  ASSERT_NE(new_outside, 9);
  Packet held = checksummed(test::gre(kServer, kPublic, 9, 1, test::ppp(0x0021, {1})));
  EXPECT_EQ(h.run(held).action, Action::Drop);
  EXPECT_EQ(h.gw.status()["packets"]["gre_unanswered_dropped"], 1);
  Packet free_key = checksummed(test::gre(kServer, kPublic, 4000, 1, test::ppp(0x0021, {1})));
  EXPECT_EQ(h.run(free_key).action, Action::Accept);  // a key of no call at all still passes
}

}  // namespace
}  // namespace pptp::gateway
