// The relay's own answers (relay_cut.cpp): what a refused client, a refused call and a cut
// call are told, on which leg, with which RFC 2637 result code.
#include <gtest/gtest.h>

#include "tests/proxy/relay_harness.hpp"

namespace pptp::proxy {
namespace {

using namespace relay_test;

// A judge that refuses what it is told to, and remembers what ended.
struct ScriptedJudge final : CallJudge {
  std::optional<Refusal> connection, call;
  std::vector<std::uint16_t> admitted, ended;
  std::optional<Refusal> admit_connection() override { return connection; }
  std::optional<Refusal> admit_call(const ProxyCall& c) override {
    if (!call) admitted.push_back(c.pac_call_id);
    return call;
  }
  void call_ended(const ProxyCall& c) override { ended.push_back(c.pac_call_id); }
  void server_refused(ServerRefusal why, std::uint16_t server_call_id) override {
    (why == ServerRefusal::IncomingUnanswered ? refused_unanswered : refused_taken).push_back(server_call_id);
  }
  std::vector<std::uint16_t> refused_taken;
  std::vector<std::uint16_t> refused_unanswered;
};

struct JudgedRelay : RelayFixture {
  ScriptedJudge judge;
  std::unique_ptr<Relay> relay = std::make_unique<Relay>(book, counters, kClient, kServer, &judge);

  void establish() {
    relay->on_client(msg(wire::StartControlConnectionRequest{}));
    wire::StartControlConnectionReply ok;
    ok.result_code = 1;
    relay->on_server(msg(ok));
    ASSERT_EQ(relay->state(), RelayState::Established);
  }
};

TEST_F(JudgedRelay, ARefusedHostIsToldNotAuthorizedAndTheServerNeverHearsOfIt) {
  judge.connection = Refusal{true, result::kStartNotAuthorized};
  const RelayOutput out = relay->on_client(msg(wire::StartControlConnectionRequest{}));
  const auto replies = sent<wire::StartControlConnectionReply>(out, Leg::Client);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].result_code, 4) << "RFC 2637 2.2: requester not authorized";
  EXPECT_FALSE(out.open_server);
  EXPECT_TRUE(sent<wire::StartControlConnectionRequest>(out, Leg::Server).empty());
  EXPECT_TRUE(out.close_client);
  EXPECT_EQ(counters.connections_refused, 1u);
}

TEST_F(JudgedRelay, OnDenyDropClosesWithoutAnAnswer) {
  judge.connection = Refusal{false, result::kStartNotAuthorized};
  const RelayOutput out = relay->on_client(msg(wire::StartControlConnectionRequest{}));
  EXPECT_TRUE(out.sends.empty());
  EXPECT_FALSE(out.open_server);
  EXPECT_TRUE(out.close_client);
}

TEST_F(JudgedRelay, ARefusedCallGetsDoNotAcceptAndTakesNoCallId) {
  establish();
  judge.call = Refusal{true, result::kCallDoNotAccept};
  wire::OutgoingCallRequest rq;
  rq.call_id = 7;
  const RelayOutput out = relay->on_client(msg(rq));
  const auto replies = sent<wire::OutgoingCallReply>(out, Leg::Client);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].result_code, 7) << "RFC 2637 2.8: do not accept";
  EXPECT_EQ(replies[0].peer_call_id, 7);
  EXPECT_TRUE(sent<wire::OutgoingCallRequest>(out, Leg::Server).empty()) << "the server never sees it";
  EXPECT_EQ(book.used(), 0u);
  EXPECT_TRUE(relay->calls().empty());
  EXPECT_EQ(counters.calls_refused, 1u);
}

TEST_F(JudgedRelay, ARefusedIncomingCallIsAnsweredToTheServer) {
  establish();
  judge.call = Refusal{true, result::kCallDoNotAccept};
  const RelayOutput out = server_places(*relay, 300);
  const auto replies = sent<wire::IncomingCallReply>(out, Leg::Server);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].peer_call_id, 300);
  EXPECT_EQ(replies[0].result_code, 3);
  EXPECT_TRUE(sent<wire::IncomingCallRequest>(out, Leg::Client).empty());
  EXPECT_EQ(book.used(), 0u);
}

TEST_F(JudgedRelay, ACutCallTellsTheClientWhyAndClearsTheServersCall) {
  establish();
  const wire::OutgoingCallReply reply = connect_call(*relay, 7, 128);
  ASSERT_EQ(judge.admitted.size(), 1u);
  const std::uint16_t ours = reply.call_id;
  const RelayOutput out = relay->cut_call(ours, result::kDisconnectAdminShutdown, "not authorized by policy");
  const auto cdn = sent<wire::CallDisconnectNotify>(out, Leg::Client);
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].call_id, ours) << "the client knows the call by our Call ID (2.13)";
  EXPECT_EQ(cdn[0].result_code, 3);
  EXPECT_EQ(cdn[0].call_statistics.text(), "not authorized by policy");
  const auto clear = sent<wire::CallClearRequest>(out, Leg::Server);
  ASSERT_EQ(clear.size(), 1u);
  EXPECT_NE(clear[0].call_id, ours);
  EXPECT_EQ(book.route(ours), nullptr) << "its GRE stops at once";
  EXPECT_EQ(book.used(), 0u);
  EXPECT_EQ(judge.ended, judge.admitted);
  EXPECT_EQ(counters.calls_cut, 1u);

  // The server's answer to our Call-Clear-Request is expected: not relayed, not an anomaly.
  wire::CallDisconnectNotify theirs;
  theirs.call_id = 128;
  EXPECT_TRUE(relay->on_server(msg(theirs)).sends.empty());
  EXPECT_EQ(counters.unknown_call, 0u);
  EXPECT_TRUE(relay->on_server(msg(theirs)).sends.empty());
  EXPECT_EQ(counters.unknown_call, 1u) << "only once";
  EXPECT_TRUE(relay->cut_call(ours, 3, "again").sends.empty()) << "a call already gone is not cut twice";
}

// A server that never answers (s29 review: calls held until the idle timeout) gets the
// call cleared, and the client hears "time-out" (RFC 2637 2.8) instead of waiting for ever.
TEST_F(JudgedRelay, AnOutgoingCallTheServerLeavesUnansweredTimesOutOnBothLegs) {
  establish();
  const std::uint16_t waiting = ask_call(*relay, 7);
  connect_call(*relay, 9, 128);  // answered: never timed out
  for (std::uint8_t i = 1; i < kAnswerTicks; ++i) {
    ASSERT_TRUE(relay->age_unanswered().sends.empty()) << "tick " << int(i);
  }
  const std::uint16_t later = ask_call(*relay, 8);  // asked late: its own age
  const RelayOutput out = relay->age_unanswered();
  const auto replies = sent<wire::OutgoingCallReply>(out, Leg::Client);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].peer_call_id, 7) << "the client's own Call ID";
  EXPECT_EQ(replies[0].result_code, 6) << "RFC 2637 2.8: time-out";
  const auto clear = sent<wire::CallClearRequest>(out, Leg::Server);
  ASSERT_EQ(clear.size(), 1u);
  EXPECT_EQ(clear[0].call_id, waiting) << "our Call ID toward the server (2.12)";
  EXPECT_FALSE(book.in_use(waiting));
  EXPECT_EQ(relay->calls().size(), 2u);
  // The server's answer, too late: "connected". The call is cleared again, the client hears
  // nothing more (s30 review).
  const RelayOutput late = relay->on_server(msg(call_reply(640, waiting)));
  EXPECT_TRUE(sent<wire::OutgoingCallReply>(late, Leg::Client).empty());
  const auto again = sent<wire::CallClearRequest>(late, Leg::Server);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].call_id, waiting);
  EXPECT_EQ(judge.ended.size(), 1u) << "its place in the limits goes back";
  EXPECT_EQ(counters.calls_timed_out, 1u);
  for (std::uint8_t i = 2; i < kAnswerTicks; ++i) ASSERT_TRUE(relay->age_unanswered().sends.empty());
  EXPECT_EQ(sent<wire::CallClearRequest>(relay->age_unanswered(), Leg::Server).size(), 1u)
      << "the later one at its own kAnswerTicks-th tick";
  EXPECT_EQ(counters.calls_timed_out, 2u);
  EXPECT_FALSE(book.in_use(later));
  EXPECT_EQ(relay->calls().size(), 1u) << "the answered call stays";
}

// A hostile server's incoming calls that the client never answers do not hold the client's
// place in the limits (s30 review, finding E).
TEST_F(JudgedRelay, AnIncomingCallTheClientLeavesUnansweredIsWithdrawnFromItAndRefusedToTheServer) {
  establish();
  const auto offered = sent<wire::IncomingCallRequest>(server_places(*relay, 300), Leg::Client);
  ASSERT_EQ(offered.size(), 1u);
  for (std::uint8_t i = 1; i < kAnswerTicks; ++i) ASSERT_TRUE(relay->age_unanswered().sends.empty());
  const RelayOutput out = relay->age_unanswered();
  const auto cdn = sent<wire::CallDisconnectNotify>(out, Leg::Client);
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].call_id, offered[0].call_id) << "the Call ID the client was offered (2.13)";
  EXPECT_EQ(cdn[0].result_code, 2);
  const auto refusal = sent<wire::IncomingCallReply>(out, Leg::Server);
  ASSERT_EQ(refusal.size(), 1u);
  EXPECT_EQ(refusal[0].peer_call_id, 300);
  EXPECT_EQ(refusal[0].result_code, 3) << "RFC 2637 2.10: do not accept";
  EXPECT_EQ(book.used(), 0u);
  EXPECT_EQ(judge.ended, judge.admitted);
  EXPECT_EQ(counters.calls_timed_out, 1u);
}

TEST_F(JudgedRelay, TheJudgeHearsOfEachIncomingCallRefusedAsUnanswered) {
  establish();
  for (std::uint16_t id = 100; id < 100 + kMaxUnansweredIncomingCalls + 2; ++id) server_places(*relay, id);
  EXPECT_EQ(judge.refused_unanswered, (std::vector<std::uint16_t>{108, 109})) << "the server's Call IDs, for its log line";
}

// A server Call ID another proxied call holds, on a call the server answered or placed: the
// judge hears of both, for the line that names the client and the server (s36 review R3:
// before, a counter only).
TEST_F(JudgedRelay, TheJudgeHearsOfEachServerCallIdRefusedAsTaken) {
  establish();
  auto holder = started(wire::Ipv4Address{0xC0000214});  // 192.0.2.20, unjudged
  connect_call(*holder, 7, 256);
  const std::uint16_t ours = ask_call(*relay, 8);
  relay->on_server(msg(call_reply(256, ours)));
  server_places(*relay, 256);
  EXPECT_EQ(judge.refused_taken, (std::vector<std::uint16_t>{256, 256}));
  EXPECT_EQ(counters.server_call_id_taken, 2u);
  EXPECT_TRUE(judge.refused_unanswered.empty());
}

}  // namespace
}  // namespace pptp::proxy
