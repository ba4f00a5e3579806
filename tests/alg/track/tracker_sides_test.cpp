// Who may send what (RFC 2637 section 2): every message from the wrong side is flagged,
// counted and ignored. And the two readings of a Call-Disconnect-Notify's Call ID (2.13:
// the PAC's own; Windows servers: the PNS's).
#include <gtest/gtest.h>

#include <tuple>

#include "tests/alg/track/tracker_harness.hpp"

namespace pptp::track {
namespace {

using namespace pptp::wire;
using namespace tracker_test;  // NOLINT: the harness is this file's vocabulary
using test::addr;

// What a message could change: the connection's state and every call's.
using CallView = std::tuple<std::uint64_t, CallState, std::optional<std::uint16_t>, std::optional<std::uint16_t>,
                            std::uint64_t, std::uint64_t>;
struct Snapshot {
  ConnectionState state;
  std::array<std::optional<std::uint32_t>, 2> echo_outstanding;
  std::vector<CallView> calls;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const ControlConnection& c) {
  Snapshot s{c.state, c.echo_outstanding, {}};
  for (const auto& call : c.calls) {
    s.calls.emplace_back(call->id, call->state, call->pns_call_id, call->pac_call_id, call->wan_errors_reported,
                         call->set_link_info_count);
  }
  return s;
}

// An established connection with one call in each state a wrong-side message could move:
// established outgoing (PNS 7, PAC 100), outgoing awaiting its reply (PNS 8), incoming
// awaiting its reply (PAC 5), incoming awaiting Incoming-Call-Connected (PAC 6, PNS 9).
class WrongSide : public TrackerTest {
 protected:
  void SetUp() override {
    link.start();
    link.outgoing_call(7, 100);
    OutgoingCallRequest rq;
    rq.call_id = 8;
    link.send(Direction::PnsToPac, rq);
    IncomingCallRequest icrq;
    icrq.call_id = 5;
    link.send(Direction::PacToPns, icrq);
    link.incoming_call(6, 9);
    ASSERT_EQ(tracker.call_count(), 4u);
    ASSERT_TRUE(rec.anomalies.empty());
  }

  // Sends `body` from `d`; expects it flagged as `a` once, counted, and nothing changed.
  void expect_ignored(Direction d, const ControlMessageBody& body, Anomaly a, const char* what) {
    const Snapshot before = snapshot(*link.connection());
    const std::size_t flagged = rec.count(a);
    const std::uint64_t counted = tracker.counters()[static_cast<std::size_t>(a)];
    const std::size_t closed = rec.closed_calls.size();
    link.send(d, body);
    EXPECT_EQ(rec.count(a), flagged + 1) << what;
    EXPECT_EQ(tracker.counters()[static_cast<std::size_t>(a)], counted + 1) << what;
    EXPECT_EQ(snapshot(*link.connection()), before) << what << " changed the connection or a call";
    EXPECT_EQ(rec.closed_calls.size(), closed) << what;
  }
};

TEST_F(WrongSide, PacOnlyMessagesFromThePnsAreFlaggedAndIgnored) {
  expect_ignored(Direction::PnsToPac, outgoing_reply(101, 8), Anomaly::WrongSender, "Outgoing-Call-Reply");
  IncomingCallRequest icrq;
  icrq.call_id = 300;
  expect_ignored(Direction::PnsToPac, icrq, Anomaly::WrongSender, "Incoming-Call-Request");
  IncomingCallConnected iccn;
  iccn.peer_call_id = 9;
  expect_ignored(Direction::PnsToPac, iccn, Anomaly::WrongSender, "Incoming-Call-Connected");
  CallDisconnectNotify cdn;
  cdn.call_id = 100;
  cdn.result_code = 3;
  expect_ignored(Direction::PnsToPac, cdn, Anomaly::WrongSender, "Call-Disconnect-Notify (PAC's Call ID)");
  cdn.call_id = 7;
  expect_ignored(Direction::PnsToPac, cdn, Anomaly::WrongSender, "Call-Disconnect-Notify (PNS's Call ID)");
  WanErrorNotify wen;
  wen.peer_call_id = 7;
  expect_ignored(Direction::PnsToPac, wen, Anomaly::WrongSender, "WAN-Error-Notify");
}

TEST_F(WrongSide, PnsOnlyMessagesFromThePacAreFlaggedAndIgnored) {
  OutgoingCallRequest ocrq;
  ocrq.call_id = 50;
  expect_ignored(Direction::PacToPns, ocrq, Anomaly::WrongSender, "Outgoing-Call-Request");
  expect_ignored(Direction::PacToPns, incoming_reply(51, 5), Anomaly::WrongSender, "Incoming-Call-Reply");
  expect_ignored(Direction::PacToPns, CallClearRequest{7, 0}, Anomaly::WrongSender, "Call-Clear-Request");
}

TEST_F(WrongSide, RepliesFromTheSideThatAskedAreFlaggedAndIgnored) {
  // Stop-Control-Connection-Reply from the side that sent the request.
  link.send(Direction::PnsToPac, StopControlConnectionRequest{1, 0, 0});
  ASSERT_EQ(link.connection()->state, ConnectionState::Stopping);
  expect_ignored(Direction::PnsToPac, StopControlConnectionReply{1, 0, 0}, Anomaly::UnexpectedMessage,
                 "Stop-Control-Connection-Reply");
  // Echo-Reply from the side that sent the request.
  link.send(Direction::PacToPns, EchoRequest{77});
  EchoReply echo;
  echo.identifier = 77;
  echo.result_code = 1;
  expect_ignored(Direction::PacToPns, echo, Anomaly::EchoReplyUnmatched, "Echo-Reply");
}

// Start-Control-Connection-Reply (3.1.2) from the side that sent the request, either way round.
TEST_F(TrackerTest, StartReplyFromTheRequesterIsFlaggedAndIgnored) {
  for (const Direction requester : {Direction::PnsToPac, Direction::PacToPns}) {
    Link l{tracker, {addr("192.0.2.20"), static_cast<std::uint16_t>(41000 + static_cast<int>(requester))},
           {addr("198.51.100.2"), 1723}};
    l.handshake();
    l.send(requester, StartControlConnectionRequest{});
    ASSERT_EQ(l.connection()->state, ConnectionState::WaitStartReply);
    StartControlConnectionReply rp;
    rp.result_code = 1;
    const std::size_t flagged = rec.count(Anomaly::UnexpectedMessage);
    l.send(requester, rp);
    EXPECT_EQ(l.connection()->state, ConnectionState::WaitStartReply) << name_of(requester);
    EXPECT_FALSE(l.connection()->start_result_code) << name_of(requester);
    EXPECT_EQ(rec.count(Anomaly::UnexpectedMessage), flagged + 1) << name_of(requester);
    EXPECT_EQ(tracker.counters()[static_cast<std::size_t>(Anomaly::UnexpectedMessage)], flagged + 1);
    l.send(reverse(requester), rp);  // the answer from the other side establishes it
    EXPECT_EQ(l.connection()->state, ConnectionState::Established) << name_of(requester);
  }
}

// Call-Disconnect-Notify (2.13) on a connection where PAC Call ID 6 and PNS Call ID 6
// belong to different calls.
class DisconnectReadings : public TrackerTest {
 protected:
  void SetUp() override {
    link.start();
    link.outgoing_call(1, 6);    // call X: PNS 1, PAC 6
    link.outgoing_call(6, 200);  // call Y: PNS 6, PAC 200
    link.outgoing_call(2, 300);  // call Z: PNS 2, PAC 300
  }
  std::vector<std::uint16_t> live_pns_ids() {
    std::vector<std::uint16_t> ids;
    for (const auto& c : link.connection()->calls) ids.push_back(*c->pns_call_id);
    return ids;
  }
  void disconnect(std::uint16_t call_id) {
    CallDisconnectNotify cdn;
    cdn.call_id = call_id;
    cdn.result_code = 3;
    link.send(Direction::PacToPns, cdn);
  }
};

TEST_F(DisconnectReadings, ThePacsOwnCallIdEndsThatCall) {
  disconnect(300);
  EXPECT_EQ(live_pns_ids(), (std::vector<std::uint16_t>{1, 6}));
  EXPECT_EQ(rec.count(Anomaly::DisconnectNamesPnsCallId), 0u);
}

TEST_F(DisconnectReadings, ThePnsCallIdAloneEndsThatCallAndIsFlagged) {
  disconnect(2);  // no PAC Call ID 2: a Windows server naming the client's
  EXPECT_EQ(live_pns_ids(), (std::vector<std::uint16_t>{1, 6}));
  EXPECT_EQ(rec.count(Anomaly::DisconnectNamesPnsCallId), 1u);
  EXPECT_EQ(rec.count(Anomaly::UnknownCall), 0u);
}

TEST_F(DisconnectReadings, WhenBothReadingsNameACallThePacsWins) {
  disconnect(6);
  EXPECT_EQ(live_pns_ids(), (std::vector<std::uint16_t>{6, 2}));
  EXPECT_EQ(rec.count(Anomaly::DisconnectNamesPnsCallId), 0u);
}

TEST_F(DisconnectReadings, WhenNeitherNamesACallNothingEnds) {
  disconnect(4242);
  EXPECT_EQ(tracker.call_count(), 3u);
  EXPECT_EQ(rec.count(Anomaly::UnknownCall), 1u);
}

TEST_F(DisconnectReadings, TheAnomalysDetailIsMadeOnlyWhenTheObserverWantsIt) {
  disconnect(4242);
  ASSERT_EQ(rec.count(Anomaly::UnknownCall), 1u);
  EXPECT_EQ(rec.anomalies.back().detail, "Call-Disconnect-Notify names Call ID 4242");
  // An observer whose log limiter would drop the line: counted, no text made.
  rec.detail_wanted = false;
  disconnect(4343);
  ASSERT_EQ(rec.count(Anomaly::UnknownCall), 2u);
  EXPECT_EQ(rec.anomalies.back().detail, "");
}

// NAT (the gateway) rewrites the Call ID of a Windows-style disconnect from the PNS's
// outside Call ID to its inside one before the tracker reads it: the rewritten field is the
// PNS's, even where a PAC Call ID has the same value.
struct RenamingRecorder : Recorder {
  std::uint16_t from = 0, to = 0;
  void on_message_bytes(const ControlConnection&, Direction d, std::span<std::uint8_t> m, std::uint32_t) override {
    if (d == Direction::PacToPns && load_u16(m.data() + 8) == 13 && load_u16(m.data() + 12) == from) {
      store_u16(m.data() + 12, to);
    }
  }
};

TEST(DisconnectRenamedByNat, NamesThePnsCallEvenWhereAPacCallIdMatches) {
  RenamingRecorder rec;
  Tracker tracker{rec};
  Link link{tracker, {addr("192.0.2.12"), 40002}, {addr("198.51.100.2"), 1723}};
  link.start();
  link.outgoing_call(1, 6);    // X: PAC Call ID 6
  link.outgoing_call(6, 200);  // Y: inside PNS Call ID 6 (outside 9 at the server)
  rec.from = 9;
  rec.to = 6;
  CallDisconnectNotify cdn;
  cdn.call_id = 9;
  link.send(Direction::PacToPns, cdn);
  ASSERT_EQ(tracker.call_count(), 1u);
  EXPECT_EQ(link.connection()->calls[0]->pns_call_id, 1);  // X stays
  EXPECT_EQ(rec.count(Anomaly::DisconnectNamesPnsCallId), 1u);
  EXPECT_EQ(rec.count(Anomaly::UnknownCall), 0u);
}

}  // namespace
}  // namespace pptp::track
