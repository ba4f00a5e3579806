// The relay state machine (proxy/relay.hpp): each leg answered on its own, call messages
// relayed with each leg's own Call IDs (RFC 2637 section 2), failures carried across.
#include "tests/proxy/relay_harness.hpp"

namespace pptp::proxy::relay_test {
namespace {

TEST_F(RelayFixture, TheClientIsAnsweredOnlyOnceTheServerAcceptedTheProxysOwnStart) {
  Relay r(book, counters, kClient, kServer);
  wire::StartControlConnectionRequest rq;
  rq.host_name = wire::Text64::from_text("client-host");
  auto out = r.on_client(msg(rq));
  EXPECT_TRUE(out.open_server);
  const auto ours = sent<wire::StartControlConnectionRequest>(out, Leg::Server);
  ASSERT_EQ(ours.size(), 1u);
  EXPECT_EQ(ours[0].host_name.text(), "pptp-alg") << "the server never learns the client's name";
  EXPECT_TRUE(sent<wire::StartControlConnectionReply>(out, Leg::Client).empty());

  wire::StartControlConnectionReply ok;
  ok.result_code = 1;
  ok.maximum_channels = 9;
  ok.host_name = wire::Text64::from_text("server-host");
  out = r.on_server(msg(ok));
  const auto reply = sent<wire::StartControlConnectionReply>(out, Leg::Client);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0].result_code, 1);
  EXPECT_EQ(reply[0].maximum_channels, 9);
  EXPECT_EQ(reply[0].host_name.text(), "pptp-alg");
  EXPECT_EQ(r.state(), RelayState::Established);
}

TEST_F(RelayFixture, AServersRefusalReachesTheClientWithItsResultCodeAndEndsBothLegs) {
  Relay r(book, counters, kClient, kServer);
  r.on_client(msg(wire::StartControlConnectionRequest{}));
  wire::StartControlConnectionReply no;
  no.result_code = 4;  // not authorized (RFC 2637 2.2)
  const auto out = r.on_server(msg(no));
  const auto reply = sent<wire::StartControlConnectionReply>(out, Leg::Client);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0].result_code, 4);
  EXPECT_TRUE(out.close_client);
  EXPECT_TRUE(out.close_server);
}

TEST_F(RelayFixture, EchoIsAnsweredOnTheLegThatAskedAndNotRelayed) {
  auto r = started(kClient);
  wire::EchoRequest rq;
  rq.identifier = 42;
  auto out = r->on_client(msg(rq));
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_EQ(out.sends[0].leg, Leg::Client);
  EXPECT_EQ(out.sends[0].message.as<wire::EchoReply>()->identifier, 42u);
  EXPECT_EQ(out.sends[0].message.as<wire::EchoReply>()->result_code, 1);
  rq.identifier = 43;
  out = r->on_server(msg(rq));
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_EQ(out.sends[0].leg, Leg::Server);
  EXPECT_EQ(out.sends[0].message.as<wire::EchoReply>()->identifier, 43u);
  EXPECT_EQ(counters.echoes_answered, 2u);
}

TEST_F(RelayFixture, TwoClientsWithTheSameCallIdGetCallsThatNeverCollide) {
  auto alice = started(kClient);
  auto bob = started(kClient2);
  const std::uint16_t a_out = ask_call(*alice, 7);
  const std::uint16_t b_out = ask_call(*bob, 7);
  EXPECT_NE(a_out, b_out) << "the server sees two different Call IDs";
  const auto a = sent<wire::OutgoingCallReply>(alice->on_server(msg(call_reply(128, a_out))), Leg::Client);
  const auto b = sent<wire::OutgoingCallReply>(bob->on_server(msg(call_reply(256, b_out))), Leg::Client);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].peer_call_id, 7);
  EXPECT_EQ(b[0].peer_call_id, 7);
  EXPECT_EQ(a[0].connect_speed, 64000u) << "the server's answer is relayed, not invented";
  EXPECT_NE(a[0].call_id, b[0].call_id);
  EXPECT_NE(a[0].call_id, 128) << "the client never learns the server's Call ID";

  // Each call's GRE: the client's (Key = our PAC Call ID) goes to the server with the
  // server's Call ID; the server's (Key = our PNS Call ID) back to its own client with 7.
  const GreRoute* up = book.route(a[0].call_id);
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(*up, (GreRoute{kClient, kServer, {}, 128, Leg::Server, a[0].call_id, a_out}));
  const GreRoute* down = book.route(b_out);
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(*down, (GreRoute{kServer, kClient2, kServer, 7, Leg::Client, b[0].call_id, b[0].call_id}));
  EXPECT_EQ(counters.calls_connected, 2u);
}

TEST_F(RelayFixture, ClearAndDisconnectNotifyCarryEachLegsOwnCallIds) {
  auto r = started(kClient);
  const auto reply = connect_call(*r, 7, 128);
  const std::uint16_t ours_to_server = r->calls().at(0).pns_call_id;
  wire::CallClearRequest clear;
  clear.call_id = 7;
  const auto onward = sent<wire::CallClearRequest>(r->on_client(msg(clear)), Leg::Server);
  ASSERT_EQ(onward.size(), 1u);
  EXPECT_EQ(onward[0].call_id, ours_to_server);

  wire::CallDisconnectNotify cdn;
  cdn.call_id = 128;
  cdn.result_code = 4;  // request (RFC 2637 2.13)
  const auto back = sent<wire::CallDisconnectNotify>(r->on_server(msg(cdn)), Leg::Client);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].call_id, reply.call_id);
  EXPECT_EQ(back[0].result_code, 4);
  EXPECT_TRUE(r->calls().empty());
  EXPECT_EQ(book.used(), 0u) << "both Call IDs are free again";
  EXPECT_EQ(book.route(reply.call_id), nullptr) << "the call's GRE finds no route";
}

TEST_F(RelayFixture, SetLinkInfoAndWanErrorNotifyAreRelayedToTheRightCall) {
  auto r = started(kClient);
  const auto reply = connect_call(*r, 7, 128);
  wire::SetLinkInfo sli;
  sli.peer_call_id = reply.call_id;
  sli.send_accm = 0x000A0000;
  const auto up = sent<wire::SetLinkInfo>(r->on_client(msg(sli)), Leg::Server);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].peer_call_id, 128);
  EXPECT_EQ(up[0].send_accm, 0x000A0000u);

  wire::WanErrorNotify wen;
  wen.peer_call_id = r->calls().at(0).pns_call_id;
  wen.crc_errors = 3;
  const auto down = sent<wire::WanErrorNotify>(r->on_server(msg(wen)), Leg::Client);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].peer_call_id, 7);
  EXPECT_EQ(down[0].crc_errors, 3u);
}

TEST_F(RelayFixture, SeveralCallsOnOneConnectionEndOneByOne) {
  auto r = started(kClient);
  const auto first = connect_call(*r, 7, 300);
  const auto second = connect_call(*r, 8, 301);
  EXPECT_NE(first.call_id, second.call_id);
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 300;
  r->on_server(msg(cdn));
  ASSERT_EQ(r->calls().size(), 1u);
  EXPECT_EQ(r->calls()[0].client_call_id, 8);
  EXPECT_NE(book.route(second.call_id), nullptr) << "the other call still flows";
}

TEST_F(RelayFixture, ARefusedCallIsPassedOnAndItsCallIdsFreed) {
  auto r = started(kClient);
  const std::uint16_t ours = ask_call(*r, 7);
  const auto reply = sent<wire::OutgoingCallReply>(r->on_server(msg(call_reply(0, ours, 7))), Leg::Client);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0].result_code, 7);
  EXPECT_TRUE(r->calls().empty());
  EXPECT_EQ(book.used(), 0u);
}

TEST_F(RelayFixture, StopOnOneLegIsAnsweredThereAndStopsTheOther) {
  auto r = started(kClient);
  connect_call(*r, 7, 128);
  wire::StopControlConnectionRequest stop;
  stop.reason = 2;  // stop protocol
  auto out = r->on_client(msg(stop));
  EXPECT_EQ(sent<wire::StopControlConnectionReply>(out, Leg::Client).size(), 1u);
  const auto onward = sent<wire::StopControlConnectionRequest>(out, Leg::Server);
  ASSERT_EQ(onward.size(), 1u);
  EXPECT_EQ(onward[0].reason, 2);
  EXPECT_TRUE(out.close_client);
  EXPECT_FALSE(out.close_server) << "the server's reply is awaited";
  EXPECT_EQ(book.used(), 0u) << "stop clears every call (RFC 2637 2.3)";
  out = r->on_server(msg(wire::StopControlConnectionReply{}));
  EXPECT_TRUE(out.close_server);
}

TEST_F(RelayFixture, ADeadServerClearsEveryCallOfTheClientWithCallDisconnectNotify) {
  auto r = started(kClient);
  const auto a = connect_call(*r, 7, 128);
  const auto b = connect_call(*r, 8, 129);
  const auto out = r->on_closed(Leg::Server);
  const auto cdns = sent<wire::CallDisconnectNotify>(out, Leg::Client);
  ASSERT_EQ(cdns.size(), 2u);
  EXPECT_EQ(cdns[0].call_id, a.call_id);
  EXPECT_EQ(cdns[1].call_id, b.call_id);
  EXPECT_EQ(cdns[0].result_code, 1);  // lost carrier
  EXPECT_TRUE(out.close_client);
  EXPECT_EQ(book.used(), 0u);
}

TEST_F(RelayFixture, AServerThatCannotBeReachedIsAGeneralErrorForTheClient) {
  Relay r(book, counters, kClient, kServer);
  r.on_client(msg(wire::StartControlConnectionRequest{}));
  const auto out = r.on_closed(Leg::Server);
  const auto reply = sent<wire::StartControlConnectionReply>(out, Leg::Client);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0].result_code, 2);
  EXPECT_TRUE(out.close_client);
}

TEST_F(RelayFixture, AVanishedClientStopsTheServersConnection) {
  auto r = started(kClient);
  connect_call(*r, 7, 128);
  const auto out = r->on_closed(Leg::Client);
  EXPECT_EQ(sent<wire::StopControlConnectionRequest>(out, Leg::Server).size(), 1u);
  EXPECT_TRUE(out.close_server);
  EXPECT_EQ(book.used(), 0u);
}

TEST_F(RelayFixture, AnIncomingCallReachesTheClientAndItsAnswerTheServerWithEachLegsCallIds) {
  auto r = started(kClient);
  const auto placed = sent<wire::IncomingCallRequest>(server_places(*r, 55), Leg::Client);
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_NE(placed[0].call_id, 55) << "the client never learns the server's Call ID";
  EXPECT_EQ(placed[0].dialing_number.text(), "5551234");

  const auto answered = client_answers(*r, placed[0].call_id, 1);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].peer_call_id, 55);
  const std::uint16_t ours_to_server = answered[0].call_id;
  EXPECT_EQ(ours_to_server, r->calls().at(0).pns_call_id);

  wire::IncomingCallConnected iccn;
  iccn.peer_call_id = ours_to_server;
  iccn.connect_speed = 64000;
  const auto connected = sent<wire::IncomingCallConnected>(r->on_server(msg(iccn)), Leg::Client);
  ASSERT_EQ(connected.size(), 1u);
  EXPECT_EQ(connected[0].peer_call_id, 7);
  EXPECT_EQ(connected[0].connect_speed, 64000u);
  // GRE both ways, as for an outgoing call.
  ASSERT_NE(book.route(placed[0].call_id), nullptr);
  EXPECT_EQ(book.route(placed[0].call_id)->key, 55);
  ASSERT_NE(book.route(ours_to_server), nullptr);
  EXPECT_EQ(book.route(ours_to_server)->key, 7);
}

TEST_F(RelayFixture, AnIncomingCallTheClientRefusesIsRefusedToTheServer) {
  auto r = started(kClient);
  const auto placed = sent<wire::IncomingCallRequest>(server_places(*r, 55), Leg::Client);
  ASSERT_EQ(placed.size(), 1u);
  const auto answered = client_answers(*r, placed[0].call_id, 3);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].result_code, 3);
  EXPECT_EQ(answered[0].peer_call_id, 55);
  EXPECT_TRUE(r->calls().empty());
  EXPECT_EQ(book.used(), 0u);
}

TEST_F(RelayFixture, AnUnansweredIncomingCallDoesNotBlockTheClientsOwnCallId0) {
  auto r = started(kClient);
  server_places(*r, 55);
  const auto reply = connect_call(*r, 0, 128);  // Call ID 0 is valid (Poptop hands it out)
  EXPECT_EQ(reply.result_code, 1);
  EXPECT_EQ(reply.peer_call_id, 0);
}

TEST_F(RelayFixture, WithoutAFreeCallIdAnIncomingCallIsRefusedWithDoNotAccept) {
  auto r = started(kClient);
  while (book.allocate()) {
  }
  const auto out = server_places(*r, 55);
  const auto reply = sent<wire::IncomingCallReply>(out, Leg::Server);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0].peer_call_id, 55);
  EXPECT_EQ(reply[0].result_code, 3);
  EXPECT_TRUE(sent<wire::IncomingCallRequest>(out, Leg::Client).empty());
  EXPECT_EQ(counters.incoming_refused, 1u);
}

// A hostile server's flood of incoming calls the client never answers: at most
// kMaxUnansweredIncomingCalls reach the client; once one is answered, another may come.
TEST_F(RelayFixture, AServerGetsAtMostEightUnansweredIncomingCallsToAClient) {
  auto r = started(kClient);
  std::vector<std::uint16_t> ours;  // the Call IDs the client was given
  for (std::uint16_t id = 100; id < 100 + kMaxUnansweredIncomingCalls + 4; ++id) {
    const auto out = server_places(*r, id);
    for (const auto& rq : sent<wire::IncomingCallRequest>(out, Leg::Client)) ours.push_back(rq.call_id);
  }
  EXPECT_EQ(ours.size(), kMaxUnansweredIncomingCalls);
  EXPECT_EQ(counters.incoming_unanswered_refused, 4u);
  EXPECT_EQ(counters.incoming_refused, 4u);
  wire::IncomingCallReply answer;  // the client answers one: a place is free again
  answer.call_id = 9;
  answer.peer_call_id = ours[0];
  answer.result_code = 1;
  r->on_client(msg(answer));
  EXPECT_EQ(sent<wire::IncomingCallRequest>(server_places(*r, 500), Leg::Client).size(), 1u);
  EXPECT_TRUE(sent<wire::IncomingCallRequest>(server_places(*r, 501), Leg::Client).empty());
}

TEST_F(RelayFixture, WithEveryCallIdTakenTheCallIsRefusedAsBusy) {
  auto r = started(kClient);
  while (book.allocate()) {
  }
  wire::OutgoingCallRequest rq;
  rq.call_id = 7;
  const auto out = r->on_client(msg(rq));
  const auto reply = sent<wire::OutgoingCallReply>(out, Leg::Client);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0].result_code, 4);
  EXPECT_EQ(reply[0].peer_call_id, 7);
  EXPECT_TRUE(sent<wire::OutgoingCallRequest>(out, Leg::Server).empty());
  EXPECT_EQ(counters.call_ids_exhausted, 1u);
}

TEST_F(RelayFixture, CallMessagesBeforeTheStartAreIgnored) {
  Relay r(book, counters, kClient, kServer);
  wire::OutgoingCallRequest rq;
  rq.call_id = 7;
  EXPECT_TRUE(r.on_client(msg(rq)).sends.empty());
  EXPECT_EQ(counters.wrong_sender, 1u);
  EXPECT_EQ(book.used(), 0u);
}

TEST_F(RelayFixture, ADestroyedRelayGivesItsCallIdsBack) {
  {
    auto r = started(kClient);
    connect_call(*r, 7, 128);
    EXPECT_EQ(book.used(), 2u);
  }
  EXPECT_EQ(book.used(), 0u);
}

}  // namespace
}  // namespace pptp::proxy::relay_test
