// The messages the relay builds itself, shared by its source files (relay*.cpp): not part
// of the relay's interface.
#pragma once

#include "proxy/relay.hpp"

namespace pptp::proxy::relay_detail {

using wire::ControlMessageType;

inline Send to(Leg leg, wire::ControlMessageBody body) { return Send{leg, wire::make_control_message(std::move(body))}; }

inline RelayOutput one(Leg leg, wire::ControlMessageBody body) {
  RelayOutput out;
  out.sends.push_back(to(leg, std::move(body)));
  return out;
}

// Our Start-Control-Connection-Reply toward the client: the server's capabilities as it
// announced them (the client dials through it), our own name (the client never learns the
// server's host name from us, RFC 2637 2.2 makes it informational).
inline wire::StartControlConnectionReply start_reply(std::uint8_t result_code, std::uint8_t error_code,
                                                     const wire::StartControlConnectionReply* server) {
  wire::StartControlConnectionReply r;
  r.result_code = result_code;
  r.error_code = error_code;
  if (server != nullptr) {
    r.framing_capabilities = server->framing_capabilities;
    r.bearer_capabilities = server->bearer_capabilities;
    r.maximum_channels = server->maximum_channels;
  }
  r.host_name = wire::Text64::from_text(kProxyHostName);
  r.vendor_string = wire::Text64::from_text(kProxyHostName);
  return r;
}

inline wire::OutgoingCallReply refused_call(std::uint16_t client_call_id, std::uint8_t result_code) {
  wire::OutgoingCallReply r;
  r.peer_call_id = client_call_id;
  r.result_code = result_code;
  return r;
}

}  // namespace pptp::proxy::relay_detail
