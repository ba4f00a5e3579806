#include "proxy/relay.hpp"

#include <algorithm>

#include "proxy/relay_messages.hpp"

namespace pptp::proxy {

namespace {

wire::EchoReply echo_reply(const wire::EchoRequest& m) {
  wire::EchoReply r;
  r.identifier = m.identifier;
  r.result_code = result::kEchoOk;
  return r;
}

wire::StopControlConnectionReply stop_ok() {
  wire::StopControlConnectionReply r;
  r.result_code = result::kStopOk;
  return r;
}

}  // namespace

using namespace relay_detail;

Relay::Relay(CallBook& book, RelayCounters& counters, wire::Ipv4Address client, wire::Ipv4Address server,
             CallJudge* judge)
    : book_(book), counters_(counters), client_(client), server_(server), judge_(judge) {
  ++counters_.connections;
}

Relay::~Relay() { end_all_calls(); }

// Echo and Stop-Control-Connection: answered on the leg that sent them, whichever it is.
std::optional<RelayOutput> Relay::on_either(Leg from, const wire::ControlMessage& message) {
  switch (message.type()) {
    case ControlMessageType::EchoRequest:
      ++counters_.echoes_answered;
      return one(from, echo_reply(*message.as<wire::EchoRequest>()));
    case ControlMessageType::EchoReply:
      return RelayOutput{};  // the answer to our own Echo-Request
    case ControlMessageType::StopControlConnectionRequest:
      return stop_request(from, *message.as<wire::StopControlConnectionRequest>());
    case ControlMessageType::StopControlConnectionReply:
      return stop_reply(from);
    default:
      return std::nullopt;
  }
}

RelayOutput Relay::on_client(const wire::ControlMessage& message) {
  if (auto answered = on_either(Leg::Client, message)) return *answered;
  if (message.type() == ControlMessageType::StartControlConnectionRequest) {
    return client_start(*message.as<wire::StartControlConnectionRequest>());
  }
  if (state_ != RelayState::Established) return ignored(&RelayCounters::wrong_sender);
  switch (message.type()) {
    case ControlMessageType::OutgoingCallRequest:
      return outgoing_request(*message.as<wire::OutgoingCallRequest>());
    case ControlMessageType::CallClearRequest:
      return clear_request(*message.as<wire::CallClearRequest>());
    case ControlMessageType::SetLinkInfo:
      return set_link_info(*message.as<wire::SetLinkInfo>());
    case ControlMessageType::IncomingCallReply:
      return incoming_reply(*message.as<wire::IncomingCallReply>());
    default:
      return ignored(&RelayCounters::wrong_sender);  // PAC messages
  }
}

RelayOutput Relay::on_server(const wire::ControlMessage& message) {
  if (auto answered = on_either(Leg::Server, message)) return *answered;
  if (message.type() == ControlMessageType::StartControlConnectionReply) {
    return server_start(*message.as<wire::StartControlConnectionReply>());
  }
  if (state_ != RelayState::Established) return ignored(&RelayCounters::wrong_sender);
  switch (message.type()) {
    case ControlMessageType::OutgoingCallReply:
      return outgoing_reply(*message.as<wire::OutgoingCallReply>());
    case ControlMessageType::CallDisconnectNotify:
      return disconnect_notify(*message.as<wire::CallDisconnectNotify>());
    case ControlMessageType::WanErrorNotify:
      return wan_error(*message.as<wire::WanErrorNotify>());
    case ControlMessageType::IncomingCallRequest:
      return incoming_request(*message.as<wire::IncomingCallRequest>());
    case ControlMessageType::IncomingCallConnected:
      return incoming_connected(*message.as<wire::IncomingCallConnected>());
    default:
      return ignored(&RelayCounters::wrong_sender);
  }
}

// The client's start: ours goes to the server (a connection of its own, from the router);
// the client's answer waits for the server's (server_start).
RelayOutput Relay::client_start(const wire::StartControlConnectionRequest& m) {
  if (state_ != RelayState::Idle) return ignored(&RelayCounters::wrong_sender);
  if (auto refusal = judge_ ? judge_->admit_connection() : std::nullopt) {
    // Refused before the server hears of it (RFC 2637 2.2: "requester not authorized").
    state_ = RelayState::Closed;
    ++counters_.connections_refused;
    RelayOutput out;
    if (refusal->answer) out = one(Leg::Client, start_reply(result::kStartNotAuthorized, 0, nullptr));
    out.close_client = true;
    return out;
  }
  state_ = RelayState::StartingServer;
  wire::StartControlConnectionRequest ours;
  ours.framing_capabilities = m.framing_capabilities;
  ours.bearer_capabilities = m.bearer_capabilities;
  ours.host_name = wire::Text64::from_text(kProxyHostName);
  ours.vendor_string = wire::Text64::from_text(kProxyHostName);
  RelayOutput out = one(Leg::Server, ours);
  out.open_server = true;
  return out;
}

RelayOutput Relay::server_start(const wire::StartControlConnectionReply& m) {
  if (state_ != RelayState::StartingServer) return ignored(&RelayCounters::wrong_sender);
  if (m.result_code == result::kStartOk) {
    state_ = RelayState::Established;
    return one(Leg::Client, start_reply(result::kStartOk, 0, &m));
  }
  // The server's refusal, as it gave it (2.2: general error, exists, not authorized, version).
  state_ = RelayState::Closed;
  RelayOutput out = one(Leg::Client, start_reply(m.result_code, m.error_code, &m));
  out.close_client = out.close_server = true;
  return out;
}

RelayOutput Relay::outgoing_request(const wire::OutgoingCallRequest& m) {
  if (by_client_id(m.call_id) != nullptr) {
    return one(Leg::Client, refused_call(m.call_id, result::kCallGeneralError));  // already in use
  }
  if (calls_.size() >= kMaxCallsPerConnection) return one(Leg::Client, refused_call(m.call_id, result::kCallBusy));
  const auto ids = allocate_pair();
  if (!ids) return one(Leg::Client, refused_call(m.call_id, result::kCallBusy));
  const ProxyCall call{m.call_id, ids->first, ids->second, std::nullopt, true};
  if (auto refused = judge_refused(call, false)) return *refused;
  calls_.push_back(call);
  calls_.back().ordinal = ordinal_now();
  ++outgoing_requests_;
  ++counters_.calls_placed;
  wire::OutgoingCallRequest ours = m;  // speeds, bearer, framing, window, number: the client's
  ours.call_id = ids->second;
  ours.call_serial_number = serial_++;
  return one(Leg::Server, ours);
}

RelayOutput Relay::outgoing_reply(const wire::OutgoingCallReply& m) {
  ProxyCall* call = find_call(m.peer_call_id, &ProxyCall::pns_call_id);
  if (call == nullptr && m.result_code == result::kCallConnected && clearing(m.peer_call_id)) {
    // Connected after we cleared it (the answer came too late, relay_cut.cpp): clear it
    // again, or the server keeps a call nobody uses (2.12).
    wire::CallClearRequest clear;
    clear.call_id = m.peer_call_id;
    return one(Leg::Server, clear);
  }
  if (call == nullptr || call->server_call_id) return ignored(&RelayCounters::unknown_call);
  if (m.result_code == result::kCallConnected && !claim_server_call_id(m.call_id, call->pns_call_id, call->ordinal)) {
    return refuse_taken_server_call_id(*call, m.call_id);
  }
  ++counters_.messages_relayed;
  wire::OutgoingCallReply theirs = m;
  theirs.call_id = call->pac_call_id;
  theirs.peer_call_id = call->client_call_id;
  RelayOutput out = one(Leg::Client, theirs);
  if (m.result_code == result::kCallConnected) {
    call->server_call_id = m.call_id;
    ++counters_.calls_connected;
    route_call(*call);
  } else {
    end_call(call);
  }
  return out;
}

// Call-Clear-Request carries the PNS's own Call ID (RFC 2637 2.12).
RelayOutput Relay::clear_request(const wire::CallClearRequest& m) {
  ProxyCall* call = by_client_id(m.call_id);
  if (call == nullptr) return ignored(&RelayCounters::unknown_call);
  ++counters_.messages_relayed;
  wire::CallClearRequest ours = m;
  ours.call_id = call->pns_call_id;
  return one(Leg::Server, ours);
}

// Call-Disconnect-Notify carries the PAC's own Call ID (2.13); some servers (Windows) put
// the PNS's there, so ours toward the server is accepted too.
RelayOutput Relay::disconnect_notify(const wire::CallDisconnectNotify& m) {
  ProxyCall* call = by_server_id(m.call_id);
  if (call == nullptr) call = find_call(m.call_id, &ProxyCall::pns_call_id);
  if (call == nullptr) return was_cut(m.call_id) ? RelayOutput{} : ignored(&RelayCounters::unknown_call);
  ++counters_.messages_relayed;
  wire::CallDisconnectNotify theirs = m;
  theirs.call_id = call->pac_call_id;
  end_call(call);
  return one(Leg::Client, theirs);
}

// Set-Link-Info names the PAC's Call ID (2.16): ours toward the client, the server's onward.
RelayOutput Relay::set_link_info(const wire::SetLinkInfo& m) {
  ProxyCall* call = find_call(m.peer_call_id, &ProxyCall::pac_call_id);
  if (call == nullptr || !call->server_call_id) return ignored(&RelayCounters::unknown_call);
  ++counters_.messages_relayed;
  wire::SetLinkInfo ours = m;
  ours.peer_call_id = *call->server_call_id;
  return one(Leg::Server, ours);
}

// WAN-Error-Notify names the PNS's Call ID (2.15): ours toward the server, the client's back.
RelayOutput Relay::wan_error(const wire::WanErrorNotify& m) {
  ProxyCall* call = find_call(m.peer_call_id, &ProxyCall::pns_call_id);
  if (call == nullptr) return ignored(&RelayCounters::unknown_call);
  ++counters_.messages_relayed;
  wire::WanErrorNotify theirs = m;
  theirs.peer_call_id = call->client_call_id;
  return one(Leg::Client, theirs);
}

// Stop on one leg: answered there, and the other leg is stopped too (2.3: it clears every
// call). The leg that asked is closed once our reply is written; the other once it replies.
RelayOutput Relay::stop_request(Leg from, const wire::StopControlConnectionRequest& m) {
  const bool server_open = state_ == RelayState::StartingServer || state_ == RelayState::Established;
  state_ = RelayState::Stopping;
  end_all_calls();
  RelayOutput out = one(from, stop_ok());
  wire::StopControlConnectionRequest onward;
  onward.reason = m.reason;
  if (from == Leg::Client) {
    out.close_client = true;
    if (server_open) out.sends.push_back(to(Leg::Server, onward));
    out.close_server = !server_open;
  } else {
    out.close_server = true;
    out.sends.push_back(to(Leg::Client, onward));
  }
  return out;
}

RelayOutput Relay::stop_reply(Leg from) {
  if (state_ != RelayState::Stopping) return ignored(&RelayCounters::wrong_sender);
  RelayOutput out;
  (from == Leg::Client ? out.close_client : out.close_server) = true;
  return out;
}

// A leg that ends takes the other with it: the client's calls get Call-Disconnect-Notify
// (lost carrier) when the server goes; the server gets Stop-Control-Connection when the
// client goes.
RelayOutput Relay::on_closed(Leg leg) {
  RelayOutput out;
  if (state_ == RelayState::Closed) return out;
  const RelayState was = state_;
  state_ = RelayState::Closed;
  if (leg == Leg::Client) {
    if (was == RelayState::Established) {
      wire::StopControlConnectionRequest stop;
      stop.reason = result::kStopGeneral;
      out.sends.push_back(to(Leg::Server, stop));
    }
    out.close_server = true;
  } else {
    if (was == RelayState::StartingServer) {
      out.sends.push_back(to(Leg::Client, start_reply(result::kStartGeneralError, 0, nullptr)));
    }
    for (const ProxyCall& call : calls_) {
      wire::CallDisconnectNotify cdn;
      cdn.call_id = call.pac_call_id;
      cdn.result_code = result::kDisconnectLostCarrier;
      out.sends.push_back(to(Leg::Client, cdn));
    }
    out.close_client = true;
  }
  end_all_calls();
  return out;
}

// Both directions of the call's GRE (RFC 2637 4.1): the client sends with our PAC Call ID
// to the server's address, the server with our PNS Call ID to the router's.
void Relay::route_call(const ProxyCall& call) {
  book_.set_route(call.pac_call_id,
                  GreRoute{client_, server_, {}, *call.server_call_id, Leg::Server, call.pac_call_id, call.pns_call_id});
  book_.set_route(call.pns_call_id,
                  GreRoute{server_, client_, server_, call.client_call_id, Leg::Client, call.pac_call_id, call.pac_call_id});
}

// The server connected the call with a Call ID another proxied call to it has: at the server
// the two calls' GRE would be one. The client is told the call failed; the server clears it.
RelayOutput Relay::refuse_taken_server_call_id(ProxyCall& call, std::uint16_t server_call_id) {
  ++counters_.server_call_id_taken;
  if (judge_ != nullptr) judge_->server_refused(ServerRefusal::CallIdTaken, server_call_id);
  RelayOutput out = one(Leg::Client, refused_call(call.client_call_id, result::kCallGeneralError));
  call.server_call_id = server_call_id;  // what the server's Call-Disconnect-Notify will name
  clear_at_server(out, call);
  end_call(&call);
  return out;
}

void Relay::end_call(const ProxyCall* call) {
  // Given back only by the call that holds it (not by one refused for another's, above).
  if (call->server_call_id) book_.give_back_server_call_id(server_, *call->server_call_id, call->pns_call_id);
  if (judge_ != nullptr) judge_->call_ended(*call);
  book_.release(call->pac_call_id);
  book_.release(call->pns_call_id);
  ++counters_.calls_ended;
  calls_.erase(calls_.begin() + (call - calls_.data()));
}

void Relay::end_all_calls() {
  while (!calls_.empty()) end_call(&calls_.back());
}

RelayOutput Relay::ignored(std::uint64_t RelayCounters::*counter) {
  ++(counters_.*counter);
  return {};
}

ProxyCall* Relay::find_call(std::uint16_t id, std::uint16_t ProxyCall::*field) {
  auto it = std::find_if(calls_.begin(), calls_.end(), [&](const ProxyCall& c) { return c.*field == id; });
  return it == calls_.end() ? nullptr : &*it;
}

// Our two Call IDs for a new call: A toward the client, B toward the server.
std::optional<std::pair<std::uint16_t, std::uint16_t>> Relay::allocate_pair() {
  const auto pac_id = book_.allocate();
  const auto pns_id = pac_id ? book_.allocate() : std::nullopt;
  if (pns_id) return std::pair{*pac_id, *pns_id};
  if (pac_id) book_.release(*pac_id);
  ++counters_.call_ids_exhausted;
  return std::nullopt;
}

// Only calls whose client Call ID is known: an unanswered incoming call has none yet.
ProxyCall* Relay::by_client_id(std::uint16_t id) {
  auto it = std::find_if(calls_.begin(), calls_.end(),
                         [&](const ProxyCall& c) { return c.client_known && c.client_call_id == id; });
  return it == calls_.end() ? nullptr : &*it;
}

ProxyCall* Relay::by_server_id(std::uint16_t id) {
  auto it = std::find_if(calls_.begin(), calls_.end(), [&](const ProxyCall& c) { return c.server_call_id == id; });
  return it == calls_.end() ? nullptr : &*it;
}

}  // namespace pptp::proxy
