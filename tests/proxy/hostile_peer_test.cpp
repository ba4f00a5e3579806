// Hostile peers (docs/proxy.md, "Threat model"): a client or a server that names another
// connection's calls, in control messages or in GRE Keys, reaches nothing but its own; a
// flood of call requests on one connection stops at its limit with "busy"; a server Call ID
// another proxied call has is refused (s35 review F0: Poptop's ranges of 128 a connection).
#include <string>
#include <string_view>

#include "proxy/gre_relay.hpp"
#include "tests/proxy/relay_harness.hpp"

namespace pptp::proxy::relay_test {
namespace {

struct TwoClients : RelayFixture {
  std::unique_ptr<Relay> alice = started(kClient);
  std::unique_ptr<Relay> bob = started(kClient2);
  wire::OutgoingCallReply alice_call = connect_call(*alice, 7, 128);
  wire::OutgoingCallReply bob_call = connect_call(*bob, 8, 256);
  std::uint16_t bob_toward_server = bob->calls().at(0).pns_call_id;
};

TEST_F(TwoClients, GreWithAnotherCallsKeyNeverReachesThatCall) {
  // alice uses bob's Key toward the client side (our PAC Call ID of bob's call) ...
  auto as_bob = relay_gre(book, test::gre(kClient, kServer, bob_call.call_id, 1));
  ASSERT_FALSE(as_bob);
  EXPECT_EQ(as_bob.error(), GreDrop::WrongSource);
  // ... and the Key only the server may send with (our PNS Call ID of bob's call).
  auto as_server = relay_gre(book, test::gre(kClient, test::addr("198.51.100.1"), bob_toward_server, 1));
  ASSERT_FALSE(as_server);
  EXPECT_EQ(as_server.error(), GreDrop::WrongSource) << "alice cannot write into bob's call toward him";
  // Her own still works.
  EXPECT_TRUE(relay_gre(book, test::gre(kClient, kServer, alice_call.call_id, 1)));
}

TEST_F(TwoClients, ControlMessagesNamingAnotherConnectionsCallAreIgnored) {
  wire::CallClearRequest clear;
  clear.call_id = 8;  // bob's own Call ID, sent on alice's connection (she has none such)
  EXPECT_TRUE(alice->on_client(msg(clear)).sends.empty());
  wire::SetLinkInfo sli;
  sli.peer_call_id = bob_call.call_id;  // our Call ID of bob's call
  EXPECT_TRUE(alice->on_client(msg(sli)).sends.empty());
  EXPECT_EQ(counters.unknown_call, 2u);
  EXPECT_EQ(bob->calls().size(), 1u);
  EXPECT_NE(book.route(bob_call.call_id), nullptr) << "bob's call is untouched";
}

TEST_F(TwoClients, AServerNamingAnotherConnectionsCallIsIgnoredAndCounted) {
  // A second Outgoing-Call-Reply, or one naming bob's Call ID toward the server, on alice's
  // server leg: nothing reaches either client.
  EXPECT_TRUE(alice->on_server(msg(call_reply(999, bob_toward_server))).sends.empty());
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 256;  // bob's server Call ID
  EXPECT_TRUE(alice->on_server(msg(cdn)).sends.empty());
  wire::WanErrorNotify wen;
  wen.peer_call_id = bob_toward_server;
  EXPECT_TRUE(alice->on_server(msg(wen)).sends.empty());
  EXPECT_EQ(counters.unknown_call, 3u);
  EXPECT_EQ(alice->calls().size(), 1u);
  EXPECT_EQ(bob->calls().size(), 1u);
}

TEST_F(TwoClients, AServerCallIdAnotherProxiedCallHasIsRefused) {
  // All server legs leave from the router's address: the server would take alice's second
  // call's GRE as bob's call (its Call ID 256).
  const std::uint16_t ours = ask_call(*alice, 9);
  const RelayOutput out = alice->on_server(msg(call_reply(256, ours)));
  const auto to_client = sent<wire::OutgoingCallReply>(out, Leg::Client);
  ASSERT_EQ(to_client.size(), 1u);
  EXPECT_EQ(to_client[0].result_code, result::kCallGeneralError);
  EXPECT_EQ(to_client[0].peer_call_id, 9);
  const auto cleared = sent<wire::CallClearRequest>(out, Leg::Server);
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0].call_id, ours);
  EXPECT_EQ(counters.server_call_id_taken, 1u);
  EXPECT_EQ(alice->calls().size(), 1u);
  EXPECT_NE(book.route(bob_call.call_id), nullptr) << "bob's call is untouched";
  // The server's Call-Disconnect-Notify for it reaches nobody.
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 256;
  EXPECT_TRUE(alice->on_server(msg(cdn)).sends.empty());
  // A call the server places with it is refused too (ICRP "do not accept").
  const auto placed = sent<wire::IncomingCallReply>(server_places(*alice, 256), Leg::Server);
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0].result_code, result::kIncomingDoNotAccept);
  EXPECT_EQ(counters.server_call_id_taken, 2u);
  // Once bob's call ends the Call ID is free again.
  wire::CallDisconnectNotify bobs_end;
  bobs_end.call_id = 256;
  bob->on_server(msg(bobs_end));
  connect_call(*alice, 10, 256);
  EXPECT_EQ(alice->calls().size(), 2u);
  EXPECT_EQ(counters.server_call_id_taken, 2u);
}

// The session's side of a cut (Session::cut_connection): the relay's output, kept.
struct KeptCut : ConnectionCutter {
  explicit KeptCut(Relay& r) : relay(r) { relay.set_cutter(this); }
  void cut_connection(std::string_view why) override {
    reason = why;
    output = relay.cut_connection(why);
    ++cuts;
  }
  Relay& relay;
  RelayOutput output;
  std::string reason;
  int cuts = 0;
};

// bob's connection holds `calls` calls, server Call IDs 256 on.
static void bobs_calls(Relay& bob, std::size_t calls) {
  for (std::size_t i = 0; i < calls; ++i) {
    RelayFixture::connect_call(bob, static_cast<std::uint16_t>(20 + i), static_cast<std::uint16_t>(256 + i));
  }
}

// Poptop's ranges of 128 (s36 review R2): bob's connection ran past its range (129 calls), and
// the server gives alice's first call the Call ID of bob's last. bob's connection is cut (as the
// transparent gateway cuts it); alice's call is connected. A Call ID within bob's range, given
// to alice's call, is refused though bob holds more calls.
TEST_F(RelayFixture, AServerCallIdOfAConnectionPastItsRangeIsTakenAndThatConnectionCut) {
  auto bob = started(kClient2);
  KeptCut bob_session(*bob);
  bobs_calls(*bob, gateway::kCallsInAServerRange + 1);
  const std::uint16_t bobs_first_toward_client = bob->calls().at(0).pac_call_id;
  auto alice = started(kClient);
  const auto past = static_cast<std::uint16_t>(256 + gateway::kCallsInAServerRange);  // bob's last call's
  EXPECT_EQ(connect_call(*alice, 8, 257).result_code, result::kCallGeneralError)
      << "bob's second call's Call ID lies within his range: alice's call is refused";
  const wire::OutgoingCallReply alices = connect_call(*alice, 9, past);
  EXPECT_EQ(alices.result_code, result::kCallConnected) << "alice's call keeps the Call ID the server gave it";
  EXPECT_EQ(alice->calls().size(), 1u);
  EXPECT_EQ(counters.server_call_id_taken, 1u);
  EXPECT_EQ(counters.connections_cut_server_call_id, 1u);
  // bob's client hears of each call's end and of the cut's reason; the server gets a Stop.
  ASSERT_EQ(bob_session.cuts, 1);
  EXPECT_NE(bob_session.reason.find("Call ID " + std::to_string(past)), std::string::npos);
  const auto cdns = sent<wire::CallDisconnectNotify>(bob_session.output, Leg::Client);
  ASSERT_EQ(cdns.size(), gateway::kCallsInAServerRange + 1);
  EXPECT_EQ(cdns[0].result_code, result::kDisconnectAdminShutdown);
  EXPECT_EQ(sent<wire::StopControlConnectionRequest>(bob_session.output, Leg::Server).size(), 1u);
  EXPECT_EQ(sent<wire::StopControlConnectionRequest>(bob_session.output, Leg::Client).size(), 1u);
  EXPECT_TRUE(bob_session.output.close_client);
  EXPECT_TRUE(bob_session.output.close_server);
  EXPECT_EQ(bob->state(), RelayState::Closed);
  EXPECT_TRUE(bob->calls().empty());
  EXPECT_EQ(book.route(bobs_first_toward_client), nullptr) << "bob's calls' GRE routes are gone";
  EXPECT_NE(book.route(alices.call_id), nullptr);
  // The ID is alice's call's now: a third client given it is refused, alice's call ends it.
  auto carol = started(test::addr("192.0.2.13"));
  EXPECT_EQ(connect_call(*carol, 5, past).result_code, result::kCallGeneralError);
  EXPECT_EQ(counters.server_call_id_taken, 2u);
  EXPECT_EQ(counters.connections_cut_server_call_id, 1u);
}

// A call of the cut connection still waiting for the server's reply is answered as one: the
// client knows no Call ID of ours for it (s37 review F3: it got a Call-Disconnect-Notify).
TEST_F(RelayFixture, ACutConnectionsCallWaitingForTheServerGetsAnOutgoingCallReply) {
  auto bob = started(kClient2);
  KeptCut bob_session(*bob);
  bobs_calls(*bob, gateway::kCallsInAServerRange + 1);
  ask_call(*bob, 500);  // not answered yet
  auto alice = started(kClient);
  EXPECT_EQ(connect_call(*alice, 9, static_cast<std::uint16_t>(256 + gateway::kCallsInAServerRange)).result_code,
            result::kCallConnected);
  const auto replies = sent<wire::OutgoingCallReply>(bob_session.output, Leg::Client);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].peer_call_id, 500);
  EXPECT_EQ(replies[0].result_code, result::kCallGeneralError);
  EXPECT_EQ(sent<wire::CallDisconnectNotify>(bob_session.output, Leg::Client).size(), gateway::kCallsInAServerRange + 1);
}

// The same for a call the server places (2.9): the holder with more calls is cut, and the
// incoming call reaches its client.
TEST_F(RelayFixture, AnIncomingCallGivenTheServerCallIdOfAConnectionPastItsRangeCutsThatConnection) {
  auto bob = started(kClient2);
  KeptCut bob_session(*bob);
  bobs_calls(*bob, gateway::kCallsInAServerRange + 1);
  auto alice = started(kClient);
  const RelayOutput placed = server_places(*alice, static_cast<std::uint16_t>(256 + gateway::kCallsInAServerRange));
  EXPECT_EQ(sent<wire::IncomingCallRequest>(placed, Leg::Client).size(), 1u);
  EXPECT_TRUE(sent<wire::IncomingCallReply>(placed, Leg::Server).empty()) << "not refused";
  EXPECT_EQ(bob_session.cuts, 1);
  EXPECT_EQ(counters.connections_cut_server_call_id, 1u);
}

// A holder within its range (3 calls here: pptpd's ranges wrap after 512 connections, which a
// client can open), or a holder this relay cannot cut (no session): the new call is refused
// and nothing is cut. Within one connection a duplicate is always refused.
TEST_F(RelayFixture, AHolderWithinItsRangeOrOnesOwnDuplicateRefusesTheNewCallAndCutsNothing) {
  auto bob = started(kClient2);
  KeptCut bob_session(*bob);
  bobs_calls(*bob, 3);
  auto alice = started(kClient);
  EXPECT_EQ(connect_call(*alice, 9, 256).result_code, result::kCallGeneralError);
  EXPECT_EQ(connect_call(*bob, 30, 256).result_code, result::kCallGeneralError) << "bob's own duplicate";
  EXPECT_EQ(bob_session.cuts, 0);
  EXPECT_EQ(counters.connections_cut_server_call_id, 0u);
  EXPECT_EQ(counters.server_call_id_taken, 2u);
  EXPECT_EQ(bob->calls().size(), 3u);
}

TEST_F(RelayFixture, AnOutgoingCallFloodStopsAtTheConnectionsLimitWithBusy) {
  auto r = started(kClient);
  std::size_t relayed = 0, busy = 0;
  for (std::uint16_t id = 1; id <= kMaxCallsPerConnection + 50; ++id) {
    wire::OutgoingCallRequest rq;
    rq.call_id = id;
    const RelayOutput out = r->on_client(msg(rq));
    relayed += sent<wire::OutgoingCallRequest>(out, Leg::Server).size();
    for (const auto& reply : sent<wire::OutgoingCallReply>(out, Leg::Client)) {
      EXPECT_EQ(reply.result_code, result::kCallBusy);
      EXPECT_EQ(reply.peer_call_id, id);
      ++busy;
    }
  }
  EXPECT_EQ(relayed, kMaxCallsPerConnection);
  EXPECT_EQ(busy, 50u);
  EXPECT_EQ(book.used(), 2 * kMaxCallsPerConnection) << "refused requests take no Call ID";
}

}  // namespace
}  // namespace pptp::proxy::relay_test
