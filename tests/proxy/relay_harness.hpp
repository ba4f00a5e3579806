// A Relay between one client and one server, driven message by message, with helpers that
// pick out what it sent on each leg. Shared by the proxy tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "proxy/relay.hpp"
#include "tests/support/packets.hpp"

namespace pptp::proxy::relay_test {

inline const wire::Ipv4Address kClient = test::addr("192.0.2.11");
inline const wire::Ipv4Address kClient2 = test::addr("192.0.2.12");
inline const wire::Ipv4Address kServer = test::addr("198.51.100.2");

inline wire::ControlMessage msg(wire::ControlMessageBody body) { return wire::make_control_message(std::move(body)); }

// The messages of type T sent on `leg`.
template <class T>
std::vector<T> sent(const RelayOutput& out, Leg leg) {
  std::vector<T> found;
  for (const Send& s : out.sends) {
    if (s.leg == leg && s.message.as<T>() != nullptr) found.push_back(*s.message.as<T>());
  }
  return found;
}

inline wire::OutgoingCallReply call_reply(std::uint16_t server_id, std::uint16_t peer, std::uint8_t code = 1) {
  wire::OutgoingCallReply r;
  r.call_id = server_id;
  r.peer_call_id = peer;
  r.result_code = code;
  r.connect_speed = 64000;
  return r;
}

struct RelayFixture : ::testing::Test {
  CallBook book;
  RelayCounters counters;

  std::unique_ptr<Relay> started(wire::Ipv4Address client) {
    auto r = std::make_unique<Relay>(book, counters, client, kServer);
    r->on_client(msg(wire::StartControlConnectionRequest{}));
    wire::StartControlConnectionReply ok;
    ok.result_code = 1;
    r->on_server(msg(ok));
    EXPECT_EQ(r->state(), RelayState::Established);
    return r;
  }

  // The client asks for a call with its Call ID; returns the Call ID the proxy used toward the
  // server (from the relayed Outgoing-Call-Request).
  static std::uint16_t ask_call(Relay& r, std::uint16_t client_id) {
    wire::OutgoingCallRequest rq;
    rq.call_id = client_id;
    rq.maximum_bps = 100000;
    const auto out = r.on_client(msg(rq));
    const auto onward = sent<wire::OutgoingCallRequest>(out, Leg::Server);
    EXPECT_EQ(onward.size(), 1u);
    EXPECT_EQ(onward.empty() ? 0u : onward[0].maximum_bps, 100000u);
    return onward.empty() ? 0 : onward[0].call_id;
  }

  // The server places a call with its Call ID; what the relay answered (on either leg).
  static RelayOutput server_places(Relay& r, std::uint16_t server_id) {
    wire::IncomingCallRequest icrq;
    icrq.call_id = server_id;
    icrq.dialing_number = wire::Text64::from_text("5551234");
    return r.on_server(msg(icrq));
  }

  // The client (Call ID 7) answers the incoming call the proxy placed with `ours`; what the
  // server got.
  static std::vector<wire::IncomingCallReply> client_answers(Relay& r, std::uint16_t ours, std::uint8_t code) {
    wire::IncomingCallReply icrp;
    icrp.call_id = 7;
    icrp.peer_call_id = ours;
    icrp.result_code = code;
    return sent<wire::IncomingCallReply>(r.on_client(msg(icrp)), Leg::Server);
  }

  // A whole call set-up; returns the Outgoing-Call-Reply the client got.
  static wire::OutgoingCallReply connect_call(Relay& r, std::uint16_t client_id, std::uint16_t server_id) {
    const std::uint16_t ours = ask_call(r, client_id);
    const auto replies = sent<wire::OutgoingCallReply>(r.on_server(msg(call_reply(server_id, ours))), Leg::Client);
    EXPECT_EQ(replies.size(), 1u);
    return replies.empty() ? wire::OutgoingCallReply{} : replies[0];
  }
};

}  // namespace pptp::proxy::relay_test
