// Incoming calls (RFC 2637 2.9 to 2.11): placed by the server, relayed to the client with
// the proxy's own Call IDs.
#include <algorithm>

#include "proxy/relay.hpp"
#include "proxy/relay_messages.hpp"

namespace pptp::proxy {

using namespace relay_detail;

// An incoming call the proxy cannot take (RFC 2637 2.10: "do not accept").
RelayOutput Relay::refuse_incoming(std::uint16_t server_call_id) {
  ++counters_.incoming_refused;
  wire::IncomingCallReply r;
  r.peer_call_id = server_call_id;
  r.result_code = result::kIncomingDoNotAccept;
  return one(Leg::Server, r);
}

// The server places a call (2.9): the client gets it from the proxy, with our Call ID A.
RelayOutput Relay::incoming_request(const wire::IncomingCallRequest& m) {
  if (by_server_id(m.call_id) != nullptr || calls_.size() >= kMaxCallsPerConnection) {
    return refuse_incoming(m.call_id);
  }
  if (server_call_id_claim(m.call_id, ordinal_now()) == Claim::Refused) {  // another proxied call's
    ++counters_.server_call_id_taken;
    if (judge_ != nullptr) judge_->server_refused(ServerRefusal::CallIdTaken, m.call_id);
    return refuse_incoming(m.call_id);
  }
  const auto unanswered = std::count_if(calls_.begin(), calls_.end(), [](const ProxyCall& c) {
    return c.server_call_id.has_value() && !c.client_known;  // placed by the server, not answered
  });
  if (static_cast<std::size_t>(unanswered) >= kMaxUnansweredIncomingCalls) {
    ++counters_.incoming_unanswered_refused;
    if (judge_ != nullptr) judge_->server_refused(ServerRefusal::IncomingUnanswered, m.call_id);
    return refuse_incoming(m.call_id);
  }
  const auto ids = allocate_pair();
  if (!ids) return refuse_incoming(m.call_id);
  ProxyCall call{0, ids->first, ids->second, m.call_id, false};
  call.ordinal = ordinal_now();
  if (auto refused = judge_refused(call, true)) return *refused;
  claim_server_call_id(m.call_id, ids->second, ordinal_now());  // not refused: looked at above
  calls_.push_back(call);
  ++counters_.incoming_placed;
  wire::IncomingCallRequest theirs = m;  // bearer, channel, numbers: the server's
  theirs.call_id = ids->first;
  theirs.call_serial_number = serial_++;
  return one(Leg::Client, theirs);
}

// The client's answer (2.10) names its own Call ID and ours (A); the server gets B and its own.
RelayOutput Relay::incoming_reply(const wire::IncomingCallReply& m) {
  ProxyCall* call = find_call(m.peer_call_id, &ProxyCall::pac_call_id);
  if (call == nullptr || call->client_known) return ignored(&RelayCounters::unknown_call);
  ++counters_.messages_relayed;
  wire::IncomingCallReply ours = m;
  ours.call_id = call->pns_call_id;
  ours.peer_call_id = *call->server_call_id;
  RelayOutput out = one(Leg::Server, ours);
  if (m.result_code == result::kCallConnected) {
    call->client_call_id = m.call_id;
    call->client_known = true;
    ++counters_.calls_connected;
    route_call(*call);
  } else {
    end_call(call);
  }
  return out;
}

// Incoming-Call-Connected names the PNS's Call ID (2.11): ours (B) here, the client's onward.
RelayOutput Relay::incoming_connected(const wire::IncomingCallConnected& m) {
  ProxyCall* call = find_call(m.peer_call_id, &ProxyCall::pns_call_id);
  if (call == nullptr || !call->client_known) return ignored(&RelayCounters::unknown_call);
  ++counters_.messages_relayed;
  wire::IncomingCallConnected theirs = m;
  theirs.peer_call_id = call->client_call_id;
  return one(Leg::Client, theirs);
}

}  // namespace pptp::proxy
