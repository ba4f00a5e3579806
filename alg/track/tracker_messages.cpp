// The control messages of a connection (RFC 2637 sections 2.1 to 2.16): who may send what in
// which state, and the calls they open, answer and end.
#include <algorithm>

#include "alg/track/tracker.hpp"
#include "alg/track/tracker_internal.hpp"

namespace pptp::track {

using detail::fmt;
using detail::index_of;
using wire::ControlMessage;
using wire::ControlMessageType;

namespace {
constexpr std::uint8_t kResultSuccess = 1;  // RFC 2637: 1 = success/Connected/Connect for these replies

void remember_host(ControlConnection& c, Direction dir, const wire::Text64& host,
                   const wire::Text64& vendor) {
  const bool pns = dir == Direction::PnsToPac;
  (pns ? c.pns_host_name : c.pac_host_name) = std::string(host.text());
  (pns ? c.pns_vendor : c.pac_vendor) = std::string(vendor.text());
}

bool sender_allowed(wire::Sender s, Direction d) {
  return s == wire::Sender::Either || (s == wire::Sender::Pns && d == Direction::PnsToPac) ||
         (s == wire::Sender::Pac && d == Direction::PacToPns);
}
}  // namespace

namespace {
bool sets_up_pns_call_id(ControlMessageType t) {
  return t == ControlMessageType::OutgoingCallRequest || t == ControlMessageType::IncomingCallReply;
}
}  // namespace

bool Tracker::defers_call_set_up(ControlConnection& c, Direction dir, Bytes message, std::uint32_t sequence,
                                 std::uint32_t segment_start) {
  if (!inline_ || dir != Direction::PnsToPac || c.pns_refused) return false;
  // Framing checked the header and the length: the type is at bytes 8-9, and both set-ups
  // have the PNS's Call ID at bytes 12-13 (RFC 2637 2.1, 2.7, 2.9).
  if (!sets_up_pns_call_id(static_cast<ControlMessageType>(load_u16(message.data() + 8))) || message.size() < 14) {
    return false;
  }
  establish_if_taken_over(c, dir);
  // Bytes of it in an earlier segment may have reached the server: it cannot be read again.
  if (static_cast<std::int32_t>(sequence - segment_start) < 0) return false;
  if (c.state == ConnectionState::Established) return waits_for_clearing_call(c, dir, load_u16(message.data() + 12), sequence);
  const bool may_be_established = c.state == ConnectionState::WaitStartReply ||
                                  (c.state == ConnectionState::TcpOpening && c.taken_over);
  if (!may_be_established) return false;
  raise(Anomaly::CallSetUpDeferred, &c, dir, [&] { return fmt("sequence %u in state %s", sequence, std::string(name_of(c.state)).c_str()); });
  return true;
}

// A Call ID reused while clearing whose old call may not end yet (no hold of its outside
// Call ID is left, may_end_clearing_call): the request waits, as a deferred one, for a hold
// to end or the PAC's Call-Disconnect-Notify (2.13), instead of costing the client its
// connection as a refusal would (s19 review).
bool Tracker::waits_for_clearing_call(ControlConnection& c, Direction dir, std::uint16_t id, std::uint32_t sequence) {
  const Call* old = c.find_by_pns_call_id(id);
  if (old == nullptr || old->state != CallState::Clearing || observer_.may_end_clearing_call(c, *old)) return false;
  raise(Anomaly::CallSetUpDeferred, &c, dir, [&] { return fmt("sequence %u: Call ID %u reused while clearing, no hold left", sequence, id); });
  return true;
}

void Tracker::handle_message(double time, ControlConnection& c, Direction dir, Bytes bytes,
                             std::uint32_t sequence, std::uint32_t segment_start, SegmentOutcome& outcome) {
  if (c.pns_refused && dir == Direction::PnsToPac) {
    // Dropped with the refused request it follows (gateway.cpp after_refusal).
    raise(Anomaly::AfterRefusal, &c, dir, [&] { return fmt("sequence %u", sequence); });
    return;
  }
  // Framing bounds every message to kMaxControlMessageLength; the copy lets the observer
  // rewrite Call IDs (NAT) before the message is read, so the tracker keeps the inside view.
  std::array<std::uint8_t, wire::kMaxControlMessageLength> copy{};
  const std::size_t n = std::min(bytes.size(), copy.size());
  std::copy_n(bytes.begin(), n, copy.begin());
  observer_.on_message_bytes(c, dir, std::span<std::uint8_t>(copy.data(), n), sequence);
  const bool renamed = !std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n), copy.begin());
  auto parsed = wire::parse_control_message(Bytes(copy.data(), n));
  if (!parsed) {
    // Framing already validated the header, so this is unreachable; keep it defined.
    raise(Anomaly::StreamFramingError, &c, dir, wire::describe(parsed.error()));
    return;
  }
  const ControlMessage& m = *parsed;
  ++c.messages[index_of(dir)];
  observer_.on_message(c, dir, m);
  if (m.has_defect(wire::MessageDefect::ReservedNonZero)) {
    raise(Anomaly::MessageReservedNonZero, &c, dir,
          fmt("%s: field %s", std::string(m.spec().name).c_str(), std::string(m.first_defect_field).c_str()));
  }
  if (m.has_defect(wire::MessageDefect::NumberLengthTooLong)) {
    raise(Anomaly::MessageNumberLengthTooLong, &c, dir, std::string(m.spec().name));
  }
  const wire::MessageSpec& spec = m.spec();
  if (!sender_allowed(spec.sender, dir) && spec.type != ControlMessageType::SetLinkInfo) {
    raise(Anomaly::WrongSender, &c, dir,
          fmt("%s sent by the %s", std::string(spec.name).c_str(),
              dir == Direction::PnsToPac ? "PNS" : "PAC"));
    return;
  }
  const std::string name(spec.name);

  switch (m.type()) {
    case ControlMessageType::StartControlConnectionRequest: {
      if (c.state == ConnectionState::TcpOpening) {
        c.state = ConnectionState::WaitStartReply;
        c.start_requester = dir;
      } else if (!(c.state == ConnectionState::WaitStartReply && c.start_requester != dir)) {
        // Both sides sending a request is the collision of RFC 2637 3.1.3 and is allowed.
        raise(Anomaly::UnexpectedMessage, &c, dir, [&] { return name + " in state " + std::string(name_of(c.state)); });
      }
      const auto* r = m.as<wire::StartControlConnectionRequest>();
      remember_host(c, dir, r->host_name, r->vendor_string);
      return;
    }
    case ControlMessageType::StartControlConnectionReply: {
      const auto* r = m.as<wire::StartControlConnectionReply>();
      if (c.state != ConnectionState::WaitStartReply || c.start_requester == dir) {
        raise(Anomaly::UnexpectedMessage, &c, dir, [&] { return name + " with no request outstanding"; });
        return;
      }
      remember_host(c, dir, r->host_name, r->vendor_string);
      c.start_result_code = r->result_code;
      if (r->result_code == kResultSuccess) {
        c.state = ConnectionState::Established;
      } else {
        close_connection(time, c, fmt("start refused: result %u error %u", r->result_code, r->error_code));
      }
      return;
    }
    case ControlMessageType::StopControlConnectionRequest:
      if (c.state == ConnectionState::Closed) {
        raise(Anomaly::UnexpectedMessage, &c, dir, [&] { return name + " on a closed connection"; });
        return;
      }
      c.state = ConnectionState::Stopping;
      c.stop_requester = dir;
      return;
    case ControlMessageType::StopControlConnectionReply:
      if (c.state != ConnectionState::Stopping || c.stop_requester == dir) {
        raise(Anomaly::UnexpectedMessage, &c, dir, [&] { return name + " with no request outstanding"; });
        return;
      }
      close_connection(time, c, "stop_control_connection");
      return;
    case ControlMessageType::EchoRequest:
      if (c.state != ConnectionState::Established) {
        raise(Anomaly::NotEstablished, &c, dir, [&] { return name + " in state " + std::string(name_of(c.state)); });
      }
      c.echo_outstanding[index_of(dir)] = m.as<wire::EchoRequest>()->identifier;
      return;
    case ControlMessageType::EchoReply: {
      auto& outstanding = c.echo_outstanding[index_of(reverse(dir))];
      const std::uint32_t id = m.as<wire::EchoReply>()->identifier;
      if (outstanding != id) {
        raise(Anomaly::EchoReplyUnmatched, &c, dir, [&] { return fmt("Identifier %u", id); });
      }
      outstanding.reset();
      return;
    }
    default:
      break;
  }
  establish_if_taken_over(c, dir);
  if (c.state != ConnectionState::Established) {
    raise(Anomaly::NotEstablished, &c, dir, [&] { return name + " in state " + std::string(name_of(c.state)); });
    // The PNS's own Call ID with no call to translate it for: passed on, the server (pptpd
    // answers in any state) would send the call's GRE with a Key another client may hold.
    if (sets_up_pns_call_id(m.type())) refuse_request(c, m.type(), sequence, outcome);
    return;
  }
  MessageArrival arrival{sequence, segment_start, renamed, outcome};
  handle_call_message(time, c, dir, m, arrival);
}

// A connection taken over from the HA peer was picked up mid-stream (TcpOpening): the peer
// replicated calls the server accepted on it, so its Start-Control-Connection exchange
// (RFC 2637 2.1) succeeded there. Once each side has acknowledged the other's data the
// window shows both are in the connection, not a host that knows its ports only: its new
// calls are followed from then on (docs/ha.md, "New calls on a taken-over connection").
void Tracker::establish_if_taken_over(ControlConnection& c, Direction dir) {
  if (!c.taken_over || c.state != ConnectionState::TcpOpening || !c.tcp.established_both_ways()) return;
  c.state = ConnectionState::Established;
  raise(Anomaly::TakenOverEstablished, &c, dir, "its window proven both ways");
}

// RFC 2637 2.7, 2.10: a PNS's Call ID names one call of the connection. A second live one
// (of the tracker's, or a call taken over from the HA peer) opens nothing and the message is
// dropped: passed on, it would reach the server untranslated, as an ID that another client
// may hold outside, and the server's GRE for it would reach that client.
// A call the PNS itself asked to clear (Call-Clear-Request, 2.12) is over for the PNS even
// before the PAC's Call-Disconnect-Notify (2.13): a PNS naming its Call ID again ends it
// there and the new call opens. Both are the same client's: nothing crosses to another.
bool Tracker::refuse_duplicate_pns_call_id(double time, ControlConnection& c, Direction dir,
                                           const ControlMessage& m, std::uint16_t id,
                                           MessageArrival& arrival) {
  if (Call* old = c.find_by_pns_call_id(id); old != nullptr && old->state == CallState::Clearing) {
    raise(Anomaly::CallIdReusedWhileClearing, &c, dir, [&] { return fmt("Call ID %u", id); });
    if (observer_.may_end_clearing_call(c, *old)) {
      old->pac_may_still_send = true;
      close_call(time, c, *old, "its Call ID reused by the PNS before the Call-Disconnect-Notify");
    }
  }
  if (c.find_by_pns_call_id(id) == nullptr && !observer_.holds_pns_call_id(c, id)) return false;
  raise(Anomaly::DuplicateCallId, &c, dir,
        [&] { return fmt("%s reuses Call ID %u", std::string(m.spec().name).c_str(), id); });
  refuse_request(c, m.type(), arrival.sequence, arrival.outcome);
  return true;
}

void Tracker::refuse_request(ControlConnection& c, ControlMessageType type, std::uint32_t sequence,
                             SegmentOutcome& outcome) {
  observer_.on_request_refused(c, type, sequence);
  outcome.drop = true;
  if (inline_) c.pns_refused = true;
}

bool Tracker::names_pac_call_id(double time, ControlConnection& c, Direction dir, Call& call, std::uint16_t id,
                                const MessageArrival* reply) {
  if (!observer_.may_name_pac_call_id(c, call, id)) {
    // RFC 2637 2.8: passed as Connected, the reply left the client sending GRE to nowhere.
    const bool told = reply != nullptr && observer_.tells_pns_reply_refused(c, reply->sequence, reply->segment_start);
    raise(Anomaly::PacCallIdTaken, &c, dir, [&] {
      if (reply == nullptr) return fmt("Call ID %u", id);
      return fmt("Call ID %u; the client %s", id,
                 told ? "is told General Error (No-Resource)"
                      : "is not told: the reply's Result Code left before it was whole");
    });
    // The server keeps its call: its GRE for the call's outside Call ID may come as long as
    // the connection lives, so that ID goes to no other call (s35 second review, N1).
    call.pac_call_may_live = true;
    close_call(time, c, call, fmt("the server's Call ID %u is another client's call's", id));
    return false;
  }
  c.calls.name_pac_call_id(call, id);
  return true;
}

bool Tracker::may_place_incoming_call(ControlConnection& c) {
  return c.calls.unanswered_incoming() < kMaxUnansweredIncomingCalls && observer_.may_place_incoming_call(c);
}

bool Tracker::admit_pns_call_id(double time, ControlConnection& c, Call& call, std::uint32_t sequence,
                                SegmentOutcome& outcome) {
  if (observer_.on_pns_call_id(c, call, sequence) == CallIdVerdict::Accept) return true;
  outcome.drop = true;
  if (inline_) c.pns_refused = true;
  close_call(time, c, call, "refused by the gateway");
  return false;
}

void Tracker::handle_call_message(double time, ControlConnection& c, Direction dir, const ControlMessage& m,
                                  MessageArrival& arrival) {
  const std::string name(m.spec().name);
  const auto unknown = [&](std::uint16_t id) {
    raise(Anomaly::UnknownCall, &c, dir, [&] { return fmt("%s names Call ID %u", name.c_str(), id); });
  };
  switch (m.type()) {
    case ControlMessageType::OutgoingCallRequest: {
      const auto& r = *m.as<wire::OutgoingCallRequest>();
      if (refuse_duplicate_pns_call_id(time, c, dir, m, r.call_id, arrival)) return;
      Call* call = open_call(time, c, CallOrigin::Outgoing);
      // No call, no translation: the Call ID would leave as the client wrote it, maybe
      // another client's outside Call ID toward this server (s35 review F3).
      if (call == nullptr) return refuse_request(c, m.type(), arrival.sequence, arrival.outcome);
      c.calls.name_pns_call_id(*call, r.call_id);
      call->call_serial_number = r.call_serial_number;
      // GRE toward the PNS is routed once the PAC accepts the call (Outgoing-Call-Reply):
      // a denied or unanswered request leaves no route (issue "Integrity").
      if (!admit_pns_call_id(time, c, *call, arrival.sequence, arrival.outcome)) return;
      observer_.on_call_changed(c, *call);
      return;
    }
    case ControlMessageType::OutgoingCallReply: {
      const auto& r = *m.as<wire::OutgoingCallReply>();
      Call* call = c.find_by_pns_call_id(r.peer_call_id, CallOrigin::Outgoing);
      if (call == nullptr || call->state != CallState::WaitReply) return unknown(r.peer_call_id);
      call->reply_result_code = r.result_code;
      if (r.result_code != kResultSuccess) {
        return close_call(time, c, *call,
                          fmt("refused: result %u error %u cause %u", r.result_code, r.error_code,
                              r.cause_code));
      }
      if (c.find_by_pac_call_id(r.call_id) != nullptr) {
        raise(Anomaly::DuplicateCallId, &c, dir, [&] { return fmt("%s reuses Call ID %u", name.c_str(), r.call_id); });
      }
      if (!names_pac_call_id(time, c, dir, *call, r.call_id, &arrival)) return;
      index_gre(c, *call, Direction::PnsToPac);
      index_gre(c, *call, Direction::PacToPns);
      return set_call_state(time, c, *call, CallState::Established);
    }
    case ControlMessageType::IncomingCallRequest: {
      const auto& r = *m.as<wire::IncomingCallRequest>();
      if (c.find_by_pac_call_id(r.call_id) != nullptr) {
        raise(Anomaly::DuplicateCallId, &c, dir, [&] { return fmt("%s reuses Call ID %u", name.c_str(), r.call_id); });
        return;
      }
      if (!may_place_incoming_call(c)) {
        raise(Anomaly::IncomingCallRefused, &c, dir, [&] { return fmt("Call ID %u", r.call_id); });
        return;
      }
      Call* call = open_call(time, c, CallOrigin::Incoming);
      if (call == nullptr || !names_pac_call_id(time, c, dir, *call, r.call_id, nullptr)) return;
      call->call_serial_number = r.call_serial_number;
      // Its GRE is routed from the PNS's Incoming-Call-Reply on, once admitted: before it,
      // no budget or policy has judged the call (s35 review F4).
      observer_.on_call_changed(c, *call);
      return;
    }
    case ControlMessageType::IncomingCallReply: {
      const auto& r = *m.as<wire::IncomingCallReply>();
      Call* call = c.find_by_pac_call_id(r.peer_call_id);
      if (call == nullptr || call->origin != CallOrigin::Incoming || call->state != CallState::WaitReply) {
        unknown(r.peer_call_id);
        // An accepting reply to no call would take the client's Call ID to the server
        // untranslated (a set-up that timed out, say): refused (s35 review F3).
        if (r.result_code == kResultSuccess) refuse_request(c, m.type(), arrival.sequence, arrival.outcome);
        return;
      }
      call->reply_result_code = r.result_code;
      if (r.result_code != kResultSuccess) {
        return close_call(time, c, *call, fmt("refused: result %u error %u", r.result_code, r.error_code));
      }
      if (refuse_duplicate_pns_call_id(time, c, dir, m, r.call_id, arrival)) return;
      c.calls.name_pns_call_id(*call, r.call_id);
      if (!admit_pns_call_id(time, c, *call, arrival.sequence, arrival.outcome)) return;
      index_gre(c, *call, Direction::PnsToPac);
      index_gre(c, *call, Direction::PacToPns);
      return set_call_state(time, c, *call, CallState::WaitConnect);
    }
    case ControlMessageType::IncomingCallConnected: {
      const auto& r = *m.as<wire::IncomingCallConnected>();
      Call* call = c.find_by_pns_call_id(r.peer_call_id, CallOrigin::Incoming);
      if (call == nullptr || call->state != CallState::WaitConnect) return unknown(r.peer_call_id);
      return set_call_state(time, c, *call, CallState::Established);
    }
    case ControlMessageType::CallClearRequest: {
      const auto& r = *m.as<wire::CallClearRequest>();
      Call* call = c.find_by_pns_call_id(r.call_id);
      if (call == nullptr) return unknown(r.call_id);
      return set_call_state(time, c, *call, CallState::Clearing);
    }
    case ControlMessageType::CallDisconnectNotify: {
      const auto& r = *m.as<wire::CallDisconnectNotify>();
      // RFC 2637 2.13: the Call ID is the PAC's. Windows servers put the PNS's there; end
      // that call all the same, so that its GRE stops passing, and flag it. The PAC's reading
      // wins where both name a call, unless NAT renamed the field: it does so only after
      // deciding, on the server's own view, that it is the PNS's (docs/protocol-notes.md).
      Call* call = arrival.renamed ? nullptr : c.find_by_pac_call_id(r.call_id);
      if (call == nullptr) {
        call = c.find_by_pns_call_id(r.call_id);
        if (call == nullptr) return unknown(r.call_id);
        raise(Anomaly::DisconnectNamesPnsCallId, &c, dir, [&] { return fmt("Call ID %u", r.call_id); });
      }
      call->disconnect_result_code = r.result_code;
      return close_call(time, c, *call,
                        fmt("call_disconnect_notify: result %u error %u cause %u", r.result_code,
                            r.error_code, r.cause_code));
    }
    case ControlMessageType::WanErrorNotify: {
      const auto& r = *m.as<wire::WanErrorNotify>();
      Call* call = c.find_by_pns_call_id(r.peer_call_id);
      if (call == nullptr) return unknown(r.peer_call_id);
      ++call->wan_errors_reported;
      return;
    }
    case ControlMessageType::SetLinkInfo: {
      const auto& r = *m.as<wire::SetLinkInfo>();
      // RFC 2637 2.15: the PNS sends it, naming the PAC's Call ID. Windows servers also send
      // it to the client, naming the client's: accept both, flag the second.
      Call* call = nullptr;
      if (dir == Direction::PnsToPac) {
        call = c.find_by_pac_call_id(r.peer_call_id);
      } else {
        raise(Anomaly::SetLinkInfoFromPac, &c, dir, [&] { return fmt("Peer's Call ID %u", r.peer_call_id); });
        call = c.find_by_pns_call_id(r.peer_call_id);
      }
      if (call == nullptr) return unknown(r.peer_call_id);
      ++call->set_link_info_count;
      return;
    }
    default:
      return;
  }
}

}  // namespace pptp::track
