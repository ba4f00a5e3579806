// No byte of a Call ID field that must be translated ever leaves untranslated (issue
// "Integrity", docs/packet-path.md "Held segments"): split at every byte, with pauses far
// longer than any timer, retransmitted in other cuts, ahead of a gap, past the bounds, after
// lost sync; and a call's GRE reaches its client only once the server has answered.
#include <gtest/gtest.h>

#include <memory>

#include "gateway/gateway.hpp"
#include "nat/checksum.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

constexpr std::uint16_t kColliding = 0x0100;  // A keeps it; B's must change, first byte too

class Hold : public ::testing::Test {
 protected:
  void SetUp() override { reset(); }
  // A fresh router: A has placed and the server answered a call with kColliding.
  void reset(GatewayOptions o = {}) {
    h = std::make_unique<Harness>(std::move(o));
    a = Client{{addr("192.0.2.11"), 40001}};
    b = Client{{addr("192.0.2.12"), 40002}};
    left.clear();
    h->start(a);
    h->start(b);
    h->pass(a.to_pac(test::bytes_of(ocrq(kColliding))));
    h->pass(a.to_pns(test::bytes_of(ocrp(100, kColliding))));
  }
  // Sends a packet; what leaves now (it, if accepted, and held packets released) goes to
  // `left`. Returns its own verdict.
  Action send(Packet p) {
    const Action action = h->run(p).action;
    if (action == Action::Accept) left.push_back(p);
    for (ReleasedPacket& r : h->gw.take_released()) {
      if (r.action == Action::Accept) left.push_back(std::move(r.bytes));
    }
    return action;
  }
  Packet b_segment(std::uint32_t seq, const Packet& data) { return checksummed(test::tcp(b.pns, b.pac, seq, flags::kAck, data)); }
  Packet b_reply(std::uint32_t seq, const Packet& data) { return checksummed(test::tcp(b.pac, b.pns, seq, flags::kAck, data)); }
  // Every copy of the field's two bytes that left carries `expected`; returns how many did.
  std::size_t expect_field(std::uint32_t field_sequence, std::uint16_t expected) const {
    std::size_t seen = 0;
    for (const Packet& p : left) {
      const auto at = nat::tcp_payload_of(p);
      if (!at) continue;
      EXPECT_TRUE(nat::tcp_checksum_ok(p, 20));
      for (std::uint32_t k = 0; k < 2; ++k) {
        const std::uint32_t offset = field_sequence + k - at->sequence;
        if (offset >= at->length) continue;
        ++seen;
        EXPECT_EQ(p[at->offset + offset], static_cast<std::uint8_t>(k == 0 ? expected >> 8 : expected));
      }
    }
    return seen;
  }
  const nat::CallMapping* b_mapping(std::uint16_t inside) const {
    const track::ControlConnection* c = h->gw.tracker().find_connection(b.pns, b.pac);
    return c == nullptr ? nullptr : h->gw.translator().find_inside(c->id, inside);
  }

  std::unique_ptr<Harness> h;
  Client a, b;
  std::vector<Packet> left;
};

TEST_F(Hold, AnOutgoingCallRequestSplitAtAnyByteAndDelayedNeverShowsTheInsideCallId) {
  const Packet message = test::bytes_of(ocrq(kColliding));
  for (std::size_t cut = 1; cut < message.size(); ++cut) {
    SCOPED_TRACE(cut);
    reset();
    const std::uint32_t start = b.pns_seq;
    // The first part leaves (a sender under Nagle waits for its ACK before the rest), then
    // 1 s and 5 s pass with no rest: nothing may leave untranslated meanwhile.
    EXPECT_EQ(send(b.to_pac(slice(message, 0, cut))), Action::Accept);
    h->gw.expire(h->now += 1.0);
    EXPECT_EQ(send(b_segment(start, slice(message, 0, cut))), Action::Accept);  // retransmitted
    h->gw.expire(h->now += 5.0);
    EXPECT_EQ(send(b.to_pac(slice(message, cut, message.size()))), Action::Accept);
    // Retransmitted cut differently: the whole message, and a segment across the cut.
    EXPECT_EQ(send(b_segment(start, message)), Action::Accept);
    EXPECT_EQ(send(b_segment(start + static_cast<std::uint32_t>(cut / 2),
                             slice(message, cut / 2, std::min(message.size(), cut + 7)))),
              Action::Accept);
    const nat::CallMapping* m = b_mapping(kColliding);
    ASSERT_NE(m, nullptr);
    ASSERT_NE(m->outside_call_id, kColliding);
    EXPECT_GE(expect_field(start + 12, m->outside_call_id), 4u);  // the tail and the whole message at least
    EXPECT_EQ(h->gw.translator().reservations(), 0u);
    EXPECT_EQ(h->gw.counters().control_held, 0u);
  }
}

TEST_F(Hold, AServerFieldSplitIsHeldWithNoTimeLimitThenLeavesTranslatedBack) {
  Packet request = b.to_pac(test::bytes_of(ocrq(kColliding)));
  ASSERT_TRUE(h->run(request).modified);
  const std::uint16_t outside = b_mapping(kColliding)->outside_call_id;
  const Packet reply = test::bytes_of(ocrp(101, outside));
  const std::uint32_t start = b.pac_seq;
  // Cut inside the Peer's Call ID (bytes 14-15): the first part waits for the second.
  EXPECT_EQ(send(b.to_pns(slice(reply, 0, 15))), Action::Hold);
  h->gw.expire(h->now += 5.0);
  EXPECT_TRUE(h->gw.take_released().empty());
  EXPECT_TRUE(left.empty());
  EXPECT_EQ(send(b.to_pns(slice(reply, 15, reply.size()))), Action::Accept);
  EXPECT_EQ(left.size(), 2u);
  EXPECT_EQ(expect_field(start + 14, kColliding), 2u);
  EXPECT_EQ(h->gw.counters().control_held, 1u);
}

// B's call: placed, answered; its outside Call ID (kColliding was A's: another first byte).
std::uint16_t place_b_call(Harness& h, Client& b, std::uint16_t inside, std::uint16_t pac_call_id) {
  Packet request = b.to_pac(test::bytes_of(ocrq(inside)));
  h.run(request);
  const track::ControlConnection* c = h.gw.tracker().find_connection(b.pns, b.pac);
  const nat::CallMapping* m = h.gw.translator().find_inside(c->id, inside);
  Packet reply = b.to_pns(test::bytes_of(ocrp(pac_call_id, m->outside_call_id)));
  h.run(reply);
  return m->outside_call_id;
}

Packet ccrq(std::uint16_t call_id) {
  wire::CallClearRequest r;
  r.call_id = call_id;
  return test::bytes_of(r);
}

TEST_F(Hold, AClientsCallClearRequestCutInsideItsCallIdLeavesAtOnceTranslated) {
  // A client whose TCP waits for the ACK of the first part (Nagle, or a congestion window of
  // one after a loss) never sends the rest while the first part is held: it must leave now.
  const std::uint16_t outside = place_b_call(*h, b, kColliding, 101);
  ASSERT_NE(outside >> 8, kColliding >> 8);
  const Packet message = ccrq(kColliding);
  const std::uint32_t start = b.pns_seq;
  EXPECT_EQ(send(b.to_pac(slice(message, 0, 13))), Action::Accept);
  EXPECT_EQ(send(b_segment(start, slice(message, 0, 13))), Action::Accept);  // retransmitted
  EXPECT_EQ(send(b.to_pac(slice(message, 13, message.size()))), Action::Accept);
  EXPECT_EQ(send(b_segment(start, message)), Action::Accept);  // and whole
  EXPECT_EQ(expect_field(start + 12, outside), 5u);
  EXPECT_EQ(h->gw.counters().control_held, 0u);
}

TEST_F(Hold, ACallClearRequestsFirstByteNamingNoCallLeavesAsWrittenAndOneNamingTwoIsHeld) {
  place_b_call(*h, b, kColliding, 101);
  // 0x0101 is free toward the server: B keeps it. B's two calls starting with 0x01 disagree
  // on their outside first byte: the second byte decides, so the first part waits for it.
  ASSERT_EQ(place_b_call(*h, b, kColliding + 1, 102), kColliding + 1);
  Packet message = ccrq(kColliding + 1);
  std::uint32_t start = b.pns_seq;
  EXPECT_EQ(send(b.to_pac(slice(message, 0, 13))), Action::Hold);
  EXPECT_EQ(send(b.to_pac(slice(message, 13, message.size()))), Action::Accept);
  EXPECT_EQ(expect_field(start + 12, kColliding + 1), 2u);
  // A first byte no call of B's starts with: the field can name none, and is as written.
  left.clear();
  message = ccrq(0x4242);
  start = b.pns_seq;
  EXPECT_EQ(send(b.to_pac(slice(message, 0, 13))), Action::Accept);
  EXPECT_EQ(send(b.to_pac(slice(message, 13, message.size()))), Action::Accept);
  EXPECT_EQ(expect_field(start + 12, 0x4242), 2u);
  EXPECT_EQ(h->gw.counters().control_held, 1u);
}

TEST_F(Hold, PastTheHoldBoundTheNewSegmentIsDroppedNotReleased) {
  Packet request = b.to_pac(test::bytes_of(ocrq(kColliding)));
  ASSERT_TRUE(h->run(request).modified);
  const Packet reply = test::bytes_of(ocrp(101, b_mapping(kColliding)->outside_call_id));
  const std::uint32_t start = b.pac_seq;
  for (std::size_t i = 0; i < kMaxHeldSegments; ++i) EXPECT_EQ(send(b_reply(start, slice(reply, 0, 15))), Action::Hold);
  EXPECT_EQ(send(b_reply(start, slice(reply, 0, 15))), Action::Drop);
  EXPECT_EQ(h->gw.counters().control_hold_bound_dropped, 1u);
  EXPECT_TRUE(left.empty());
}

TEST_F(Hold, ASegmentAheadOfAGapIsDroppedUntilTheGapFills) {
  const Packet message = test::bytes_of(ocrq(kColliding));
  const std::uint32_t start = b.pns_seq;
  // The tail (with the whole Call ID) overtakes the head: where its fields lie is unknown.
  EXPECT_EQ(send(b_segment(start + 10, slice(message, 10, message.size()))), Action::Drop);
  EXPECT_EQ(h->gw.counters().control_gap_dropped, 1u);
  EXPECT_EQ(send(b_segment(start, slice(message, 0, 10))), Action::Accept);
  EXPECT_EQ(send(b_segment(start + 10, slice(message, 10, message.size()))), Action::Accept);  // sent again
  const nat::CallMapping* m = b_mapping(kColliding);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(expect_field(start + 12, m->outside_call_id), 2u);
}

TEST_F(Hold, ARetransmissionWhosePatchLeftTheBoundIsDropped) {
  // More translated calls than the patch table keeps: the first request's patch goes.
  const std::uint32_t first = b.pns_seq;
  for (std::uint16_t i = 0; i <= nat::kMaxStreamPatches; ++i) {
    h->pass(a.to_pac(test::bytes_of(ocrq(static_cast<std::uint16_t>(kColliding + 1 + i)))));
  }
  for (std::uint16_t i = 0; i <= nat::kMaxStreamPatches; ++i) {
    EXPECT_EQ(send(b.to_pac(test::bytes_of(ocrq(static_cast<std::uint16_t>(kColliding + 1 + i))))), Action::Accept);
  }
  const Packet again = test::bytes_of(ocrq(kColliding + 1));
  EXPECT_EQ(send(b_segment(first, again)), Action::Drop);
  EXPECT_EQ(h->gw.counters().control_patch_lost_dropped, 1u);
  EXPECT_EQ(expect_field(first + 12, b_mapping(kColliding + 1)->outside_call_id), 2u);
}

TEST_F(Hold, AfterLostSyncTheConnectionIsClosedAndItsDataDropped) {
  ASSERT_EQ(h->gw.tracker().call_count(), 1u);
  Packet garbage = a.to_pac(Packet(16, 0xee));  // no PPTP framing: lost sync
  EXPECT_EQ(h->run(garbage).action, Action::Drop);
  EXPECT_EQ(h->gw.counters().connections_desynced, 1u);
  EXPECT_EQ(h->gw.tracker().call_count(), 0u);
  Packet later = a.to_pac(test::bytes_of(ocrq(9)));
  EXPECT_EQ(h->run(later).action, Action::Drop);
  Packet from_server = a.to_pns(test::bytes_of(wire::EchoRequest{}));
  EXPECT_EQ(h->run(from_server).action, Action::Drop);
  Packet ack = a.to_pac({}, flags::kAck);
  EXPECT_EQ(h->run(ack).action, Action::Accept);
  EXPECT_EQ(h->gw.counters().control_desync_dropped, 3u);
  Packet gre = checksummed(test::gre(kServer, kPublic, kColliding, 1, test::ppp(0x0021, {1})));
  EXPECT_EQ(h->run(gre).action, Action::Drop);
}

TEST_F(Hold, ServerGreReachesAClientOnlyOnceTheServerAnsweredItsCall) {
  GatewayOptions o;
  o.allow_unknown_gre = true;  // even so
  reset(o);
  Packet request = b.to_pac(test::bytes_of(ocrq(kColliding)));
  ASSERT_TRUE(h->run(request).modified);
  const std::uint16_t outside = b_mapping(kColliding)->outside_call_id;
  Packet early = checksummed(test::gre(kServer, kPublic, outside, 1, test::ppp(0x0021, {1})));
  EXPECT_EQ(h->run(early).action, Action::Drop);
  EXPECT_EQ(h->gw.counters().gre_unanswered_dropped, 1u);
  Packet reply = b.to_pns(test::bytes_of(ocrp(101, outside)));
  ASSERT_EQ(h->run(reply).action, Action::Accept);
  Packet answered = checksummed(test::gre(kServer, kPublic, outside, 2, test::ppp(0x0021, {1})));
  EXPECT_EQ(h->run(answered).action, Action::Accept);
  const auto ip = wire::parse_ipv4(answered);
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->destination, b.pns.address);
}

}  // namespace
}  // namespace pptp::gateway
