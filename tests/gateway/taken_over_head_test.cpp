// A message cut before its Call ID field across a failover (docs/ha.md, "A message split
// before its Call ID field"). The node carrying the connection hands the head it passed to
// its observer (the HA node, which replicates it); the node that takes the connection over
// starts the direction with that head, so the rest is read as one message and its field is
// translated. Without the head the rest passed unread: the client got the outside Call ID
// the server knows it by, the server the client's own.
#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "gateway/gateway.hpp"
#include "tests/gateway/harness.hpp"
#include "tests/gateway/taken_over_support.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary
using track::Direction;

Packet wan_error_notify(std::uint16_t peer_call_id) {
  wire::WanErrorNotify wen;
  wen.peer_call_id = peer_call_id;
  return test::bytes_of(wen);
}

std::size_t count(const Promoted& p, track::Anomaly a) {
  return p.h.gw.tracker().counters()[static_cast<std::size_t>(a)];
}

// The old node passed `cut` bytes of the server's WAN-Error-Notify (its Peer's Call ID, bytes
// 12-13, is the outside Call ID 8); the rest is the promoted node's first segment.
class TakenOverHeadFromTheServer : public ::testing::TestWithParam<std::size_t> {};

TEST_P(TakenOverHeadFromTheServer, TheRestOfAWanErrorNotifyReachesTheClientNamingItsOwnCallId) {
  const std::size_t cut = GetParam();
  Promoted p(false);
  const Packet wen = wan_error_notify(8);
  p.taken.positions = track::ResumePositions{p.a.pns_seq, p.a.pac_seq};
  p.taken.heads[index_of(Direction::PacToPns)] = stream::ResumeHead{p.a.pac_seq, slice(wen, 0, cut)};
  p.a.pac_seq += static_cast<std::uint32_t>(cut);
  Packet rest = p.to_pns(slice(wen, cut, wen.size()));
  const Verdict v = p.h.run(rest);
  ASSERT_EQ(v.action, Action::Accept);
  EXPECT_EQ(tcp_u16(rest, 12 - cut), 7);  // the client's own Call ID (RFC 2637 2.14)
  EXPECT_EQ(count(p, track::Anomaly::TcpResumedAtHead), 1u);
  EXPECT_EQ(count(p, track::Anomaly::StreamResyncSkipped), 0u);
  // The stream goes on framed: the client's Call-Clear-Request is translated, the server's
  // answer ends the call.
  p.h.pass(p.to_pac(test::bytes_of(wire::EchoRequest{1})));
  p.h.pass(p.to_pns(test::bytes_of(wire::EchoReply{})));
  Packet clear = p.to_pac(test::bytes_of(wire::CallClearRequest{7, 0}));
  ASSERT_EQ(p.h.run(clear).action, Action::Accept);
  EXPECT_EQ(tcp_u16(clear, 12), 8);
  p.h.pass(p.to_pns(disconnect_notify(500)));
  EXPECT_TRUE(p.removed());
}
INSTANTIATE_TEST_SUITE_P(TakenOver, TakenOverHeadFromTheServer, ::testing::Values(1, 6, 11, 12),
                         [](const auto& info) { return "CutAt" + std::to_string(info.param); });

TEST(TakenOverHead, WithoutTheHeadTheRestPassesUntranslated) {
  Promoted p(false);
  const Packet wen = wan_error_notify(8);
  p.taken.positions = track::ResumePositions{p.a.pns_seq, p.a.pac_seq};
  p.a.pac_seq += 6;
  Packet rest = p.to_pns(slice(wen, 6, wen.size()));
  ASSERT_EQ(p.h.run(rest).action, Action::Accept);
  EXPECT_EQ(tcp_u16(rest, 6), 8);  // the gap the head closes
  EXPECT_EQ(count(p, track::Anomaly::TcpResumedAtHead), 0u);
}

TEST(TakenOverHead, TheRestOfACallClearRequestReachesTheServerNamingTheOutsideCallId) {
  Promoted p(false);
  const Packet clear = test::bytes_of(wire::CallClearRequest{7, 0});
  p.taken.positions = track::ResumePositions{p.a.pns_seq, p.a.pac_seq};
  p.taken.heads[index_of(Direction::PnsToPac)] = stream::ResumeHead{p.a.pns_seq, slice(clear, 0, 6)};
  p.a.pns_seq += 6;
  Packet rest = p.to_pac(slice(clear, 6, clear.size()));
  ASSERT_EQ(p.h.run(rest).action, Action::Accept);
  EXPECT_EQ(tcp_u16(rest, 6), 8);  // RFC 2637 2.11: the server knows the call by 8
  EXPECT_EQ(count(p, track::Anomaly::TcpResumedAtHead), 1u);
}

// A client's set-up cut up to its own Call ID field (docs/ha.md, what the heads do not
// cover): read whole on a connection whose window is not proven, its first bytes gone, it is
// refused (its connection is lost), never passed with the client's own Call ID 8, which is
// the taken-over call's outside Call ID at that server (without the head it was passed so).
TEST(TakenOverHead, ASetUpCutBeforeItsCallIdFieldIsRefusedNotPassedWithTheClientsOwnCallId) {
  Promoted p(false);
  const Packet request = test::bytes_of(ocrq(8));
  p.taken.positions = track::ResumePositions{p.a.pns_seq, p.a.pac_seq};
  p.taken.heads[index_of(Direction::PnsToPac)] = stream::ResumeHead{p.a.pns_seq, slice(request, 0, 12)};
  p.a.pns_seq += 12;
  Packet rest = p.to_pac(slice(request, 12, request.size()));
  EXPECT_EQ(p.h.run(rest).action, Action::Drop);
  EXPECT_EQ(count(p, track::Anomaly::TcpResumedAtHead), 1u);
  EXPECT_EQ(p.h.gw.status()["packets"]["control_deferred_dropped"], 0);
}

// A head the promoted node cannot use (the segment is not its rest) changes nothing: the
// present rules (the replicated boundary, a scan) apply.
TEST(TakenOverHead, AHeadTheFirstSegmentDoesNotContinueIsNotUsed) {
  Promoted p(false);
  p.taken.positions = track::ResumePositions{p.a.pns_seq, p.a.pac_seq};
  p.taken.heads[index_of(Direction::PacToPns)] = stream::ResumeHead{p.a.pac_seq - 100, slice(wan_error_notify(8), 0, 6)};
  p.h.pass(p.to_pns(test::bytes_of(wire::EchoRequest{1})));
  EXPECT_EQ(count(p, track::Anomaly::TcpResumedAtHead), 0u);
  EXPECT_EQ(count(p, track::Anomaly::TcpResumedAtPosition), 1u);
}

// The node carrying the connection: what it hands its observer.
struct HeadsPassed final : CallObserver {
  std::vector<std::tuple<Direction, std::uint32_t, Packet>> heads;
  void call_changed(const track::ControlConnection&, const track::Call&, const CallRecord&,
                    const nat::CallMapping*) override {}
  void call_ended(const track::ControlConnection&, const track::Call&) override {}
  void message_head_passed(const track::ControlConnection&, Direction d, std::uint32_t sequence, Bytes head) override {
    heads.emplace_back(d, sequence, Packet(head.begin(), head.end()));
  }
};

struct Carrying {
  Harness h;
  HeadsPassed observer;
  Client a{{addr("192.0.2.11"), 40001}};
  Carrying() {
    h.gw.set_call_observer(&observer);
    h.start(a);
    h.pass(a.to_pac(test::bytes_of(ocrq(7))));
    h.pass(a.to_pns(test::bytes_of(ocrp(500, 7))));
  }
  // `message` sent by `d`'s sender in two segments cut at `cut`: the heads handed over.
  std::vector<std::tuple<Direction, std::uint32_t, Packet>> cut(Direction d, const Packet& message, std::size_t at) {
    observer.heads.clear();
    const bool from_pns = d == Direction::PnsToPac;
    Packet head = from_pns ? a.to_pac(slice(message, 0, at)) : a.to_pns(slice(message, 0, at));
    (void)h.run(head);
    Packet rest = from_pns ? a.to_pac(slice(message, at, message.size())) : a.to_pns(slice(message, at, message.size()));
    (void)h.run(rest);
    return observer.heads;
  }
};

TEST(MessageHeadPassed, AHeadBeforeAFieldToTranslateIsHandedOverAsItsSenderWroteIt) {
  Carrying c;
  const Packet wen = wan_error_notify(7);
  const std::uint32_t at = c.a.pac_seq;
  const auto heads = c.cut(Direction::PacToPns, wen, 6);
  ASSERT_EQ(heads.size(), 1u);  // the head, not the rest
  EXPECT_EQ(heads[0], std::make_tuple(Direction::PacToPns, at, slice(wen, 0, 6)));
  const Packet clear = test::bytes_of(wire::CallClearRequest{7, 0});
  EXPECT_EQ(c.cut(Direction::PnsToPac, clear, 12).size(), 1u);
  // A client's set-up up to its own Call ID, not into it (its first byte would leave as this
  // node reserved it, which the peer cannot know).
  EXPECT_EQ(c.cut(Direction::PnsToPac, test::bytes_of(ocrq(9)), 12).size(), 1u);
  EXPECT_TRUE(c.cut(Direction::PnsToPac, test::bytes_of(ocrq(10)), 13).empty());
}

// A copy of a head's segment (a retransmission, or a client replaying it to load the sync
// link) hands nothing over again; a longer head of the same message does.
TEST(MessageHeadPassed, ACopyOfAHeadSegmentIsHandedOverOnceALongerHeadAgain) {
  Carrying c;
  const Packet clear = test::bytes_of(wire::CallClearRequest{7, 0});
  const std::uint32_t at = c.a.pns_seq;
  for (int copy = 0; copy < 20; ++copy) {
    c.a.pns_seq = at;
    Packet head = c.a.to_pac(slice(clear, 0, 6));
    (void)c.h.run(head);
  }
  ASSERT_EQ(c.observer.heads.size(), 1u);
  Packet more = c.a.to_pac(slice(clear, 6, 9));
  (void)c.h.run(more);
  ASSERT_EQ(c.observer.heads.size(), 2u);
  EXPECT_EQ(c.observer.heads[1], std::make_tuple(Direction::PnsToPac, at, slice(clear, 0, 9)));
  Packet rest = c.a.to_pac(slice(clear, 9, clear.size()));
  (void)c.h.run(rest);
  EXPECT_EQ(c.observer.heads.size(), 2u);
}

TEST(MessageHeadPassed, NoHeadPastTheFieldOrOfAMessageWithNoFieldToTranslate) {
  Carrying c;
  EXPECT_TRUE(c.cut(Direction::PacToPns, wan_error_notify(7), 14).empty());  // the field is whole
  EXPECT_TRUE(c.cut(Direction::PnsToPac, test::bytes_of(wire::EchoRequest{1}), 10).empty());
  EXPECT_EQ(c.cut(Direction::PnsToPac, test::bytes_of(wire::EchoRequest{2}), 9).size(), 1u);  // type not in yet
}

}  // namespace
}  // namespace pptp::gateway
