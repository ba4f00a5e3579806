// New calls on a control connection taken over from the HA peer (docs/ha.md, "New calls on a
// taken-over connection"), and the PNS's duplicate Call IDs, which are refused
// (docs/packet-path.md, "A duplicate Call ID").
#include <gtest/gtest.h>

#include "alg/track/tracker.hpp"
#include "tests/alg/track/tracker_harness.hpp"

namespace pptp::track {
namespace {

using namespace pptp::wire;
using namespace tracker_test;  // NOLINT: the harness is this file's vocabulary

// The HA node's answers: the connection carries taken-over calls (no positions known), one
// of them with the client's Call ID 7.
struct TakenOverRecorder : Recorder {
  bool taken_over = true;
  std::vector<std::uint32_t> refused;  // message sequence numbers
  std::optional<ResumePositions> resume_positions(const ControlConnection&) override {
    if (!taken_over) return std::nullopt;
    return ResumePositions{};
  }
  bool holds_pns_call_id(const ControlConnection&, std::uint16_t id) const override { return taken_over && id == 7; }
  void on_request_refused(const ControlConnection&, ControlMessageType, std::uint32_t sequence) override {
    refused.push_back(sequence);
  }
};

class TakenOverConnection : public ::testing::Test {
 protected:
  // A message of `l`'s side `d` at `seq`, acknowledging `ack`; returns the next sequence number.
  std::uint32_t say(Direction d, std::uint32_t seq, std::uint32_t ack, const ControlMessageBody& body,
                    PacketOutcome* out = nullptr) {
    const auto data = test::bytes_of(body);
    const PacketOutcome o = link.packet(segment(link, d, seq, tcp_flags::kAck | tcp_flags::kPsh, ack, data));
    if (out != nullptr) *out = o;
    return seq + static_cast<std::uint32_t>(data.size());
  }
  static OutgoingCallRequest ocrq(std::uint16_t id) {
    OutgoingCallRequest rq;
    rq.call_id = id;
    return rq;
  }

  TakenOverRecorder rec;
  Tracker tracker{rec};
  Link link{tracker, {test::addr("192.0.2.11"), 40001}, {test::addr("198.51.100.2"), 1723}};
};

// Picked up mid-stream after a failover, the connection follows nothing until each side has
// acknowledged the other's data; then a new call is followed (its GRE matched both ways) and
// one naming the taken-over call's Call ID is refused.
TEST_F(TakenOverConnection, FollowsNewCallsOnceItsWindowIsProvenBothWays) {
  std::uint32_t pns = 1000, pac = 50000;
  const std::uint32_t early_at = pns;
  pns = say(Direction::PnsToPac, pns, pac, ocrq(5));  // the PAC's side not seen yet: nothing proven
  EXPECT_EQ(rec.count(Anomaly::NotEstablished), 1u);
  pac = say(Direction::PacToPns, pac, pns + 4000, EchoRequest{});  // acknowledges what was never sent
  const std::uint32_t second_at = pns;
  pns = say(Direction::PnsToPac, pns, pac, ocrq(6));
  EXPECT_EQ(rec.count(Anomaly::NotEstablished), 3u);  // the Echo and both requests
  // Both requests are refused: no call to translate their Call IDs for (in the path a request
  // that may yet be taken is deferred instead, TakenOver.ACallSetUpBeforeTheWindowIsProvenWaitsForTheProof).
  EXPECT_EQ(rec.refused, (std::vector<std::uint32_t>{early_at, second_at}));
  EXPECT_EQ(tracker.call_count(), 0u);
  EXPECT_EQ(link.connection()->state, ConnectionState::TcpOpening);

  pac = say(Direction::PacToPns, pac, pns, EchoReply{});  // the PAC acknowledges the PNS's data
  pns = say(Direction::PnsToPac, pns, pac, ocrq(9));      // and the PNS the PAC's
  EXPECT_EQ(rec.count(Anomaly::TakenOverEstablished), 1u);
  EXPECT_EQ(link.connection()->state, ConnectionState::Established);
  pac = say(Direction::PacToPns, pac, pns, outgoing_reply(300, 9));
  ASSERT_EQ(tracker.call_count(), 1u);
  EXPECT_EQ(link.gre_to_pns(9).verdict, GreVerdict::Matched);
  EXPECT_EQ(link.gre_to_pac(300).verdict, GreVerdict::Matched);

  PacketOutcome dup;
  const std::uint32_t dup_at = pns;
  pns = say(Direction::PnsToPac, pns, pac, ocrq(7), &dup);  // the taken-over call's Call ID
  EXPECT_TRUE(dup.segment.drop);
  EXPECT_EQ(rec.count(Anomaly::DuplicateCallId), 1u);
  EXPECT_EQ(rec.refused, (std::vector<std::uint32_t>{early_at, second_at, dup_at}));
  EXPECT_EQ(tracker.call_count(), 1u);
}

// Without the HA node's word (an ordinary pick-up mid-stream, e.g. a restart without HA) the
// same exchange follows no call: nothing says the server ever accepted the connection.
TEST_F(TakenOverConnection, APickUpNotTakenOverIsNeverEstablished) {
  rec.taken_over = false;
  std::uint32_t pns = 1000, pac = 50000;
  pns = say(Direction::PnsToPac, pns, pac, EchoRequest{});
  pac = say(Direction::PacToPns, pac, pns, EchoReply{});
  pns = say(Direction::PnsToPac, pns, pac, ocrq(9));
  say(Direction::PacToPns, pac, pns, outgoing_reply(300, 9));
  EXPECT_EQ(link.connection()->state, ConnectionState::TcpOpening);
  EXPECT_EQ(rec.count(Anomaly::TakenOverEstablished), 0u);
  EXPECT_EQ(tracker.call_count(), 0u);
}

// RFC 2637 2.7, 2.10: the PNS's Outgoing-Call-Request or Incoming-Call-Reply names its Call
// ID for a call; one already live on the connection opens nothing and is dropped.
TEST_F(TrackerTest, DuplicateCallIdOnOneConnectionIsRefused) {
  link.start();
  link.outgoing_call(7, 1);
  OutgoingCallRequest rq;
  rq.call_id = 7;
  EXPECT_TRUE(link.send(Direction::PnsToPac, rq).segment.drop);
  EXPECT_EQ(tracker.call_count(), 1u);
  IncomingCallRequest icrq;
  icrq.call_id = 20;
  link.send(Direction::PacToPns, icrq);
  EXPECT_TRUE(link.send(Direction::PnsToPac, incoming_reply(7, 20)).segment.drop);
  EXPECT_EQ(rec.count(Anomaly::DuplicateCallId), 2u);
  const Call* incoming = link.connection()->find_by_pac_call_id(20);
  ASSERT_NE(incoming, nullptr);
  EXPECT_FALSE(incoming->pns_call_id.has_value());
  EXPECT_EQ(incoming->state, CallState::WaitReply);
}

// RFC 2637 2.12, 2.13: a call the PNS asked to clear is over for the PNS; naming its Call ID
// again before the PAC's Call-Disconnect-Notify ends the old call and opens the new one.
TEST_F(TrackerTest, ACallIdTheClientIsClearingMayBeReused) {
  link.start();
  link.outgoing_call(7, 1);
  link.send(Direction::PnsToPac, CallClearRequest{7, 0});
  OutgoingCallRequest rq;
  rq.call_id = 7;
  EXPECT_FALSE(link.send(Direction::PnsToPac, rq).segment.drop);
  EXPECT_EQ(rec.count(Anomaly::CallIdReusedWhileClearing), 1u);
  EXPECT_EQ(rec.count(Anomaly::DuplicateCallId), 0u);
  ASSERT_EQ(tracker.call_count(), 1u);
  EXPECT_EQ(link.connection()->find_by_pac_call_id(1), nullptr);
  link.send(Direction::PacToPns, outgoing_reply(2, 7));
  CallDisconnectNotify cdn;  // the old call's, late: it names no live call
  cdn.call_id = 1;
  link.send(Direction::PacToPns, cdn);
  const Call* call = link.connection()->find_by_pns_call_id(7);
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call->state, CallState::Established);
  EXPECT_EQ(call->pac_call_id, std::optional<std::uint16_t>{2});
  EXPECT_EQ(link.gre_to_pns(7).verdict, GreVerdict::Matched);
  // A call not being cleared still refuses its Call ID.
  EXPECT_TRUE(link.send(Direction::PnsToPac, rq).segment.drop);
  EXPECT_EQ(rec.count(Anomaly::DuplicateCallId), 1u);
}

}  // namespace
}  // namespace pptp::track
