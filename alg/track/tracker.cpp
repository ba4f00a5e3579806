#include "alg/track/tracker.hpp"

#include <algorithm>
#include <cstdio>

namespace pptp::track {

using wire::ControlMessage;
using wire::ControlMessageType;

namespace {
constexpr std::uint8_t kResultSuccess = 1;  // RFC 2637: 1 = success/Connected/Connect for these replies

std::size_t index_of(Direction d) { return static_cast<std::size_t>(d); }

std::string fmt(const char* format, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}

Anomaly window_anomaly(stream::TcpWindowAnomaly a) {
  switch (a) {
    case stream::TcpWindowAnomaly::OutOfWindow: return Anomaly::TcpOutOfWindow;
    case stream::TcpWindowAnomaly::RstInWindow: return Anomaly::TcpRstInWindow;
    case stream::TcpWindowAnomaly::RstOutOfWindow: return Anomaly::TcpRstOutOfWindow;
    case stream::TcpWindowAnomaly::FinOutOfSequence: return Anomaly::TcpFinOutOfSequence;
    case stream::TcpWindowAnomaly::SynOnLive: return Anomaly::TcpSynOnLiveConnection;
  }
  return Anomaly::TcpOutOfWindow;
}

Anomaly stream_anomaly(stream::StreamAnomaly a) {
  switch (a) {
    case stream::StreamAnomaly::Retransmission: return Anomaly::TcpRetransmission;
    case stream::StreamAnomaly::Overlap: return Anomaly::TcpOverlap;
    case stream::StreamAnomaly::OutOfOrder: return Anomaly::TcpOutOfOrder;
    case stream::StreamAnomaly::MidStreamStart: return Anomaly::TcpMidStreamStart;
    case stream::StreamAnomaly::WindowExceeded: return Anomaly::StreamWindowExceeded;
    case stream::StreamAnomaly::FramingError: return Anomaly::StreamFramingError;
  }
  return Anomaly::StreamFramingError;
}

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

std::string_view name_of(Direction d) { return d == Direction::PnsToPac ? "pns_to_pac" : "pac_to_pns"; }

std::string_view name_of(ConnectionState s) {
  switch (s) {
    case ConnectionState::TcpOpening: return "tcp_opening";
    case ConnectionState::WaitStartReply: return "wait_start_reply";
    case ConnectionState::Established: return "established";
    case ConnectionState::Stopping: return "stopping";
    case ConnectionState::Closed: return "closed";
  }
  return "unknown";
}

std::string_view name_of(CallOrigin o) { return o == CallOrigin::Outgoing ? "outgoing" : "incoming"; }

std::string_view name_of(CallState s) {
  switch (s) {
    case CallState::WaitReply: return "wait_reply";
    case CallState::WaitConnect: return "wait_connect";
    case CallState::Established: return "established";
    case CallState::Clearing: return "clearing";
    case CallState::Closed: return "closed";
  }
  return "unknown";
}

Call* ControlConnection::find_by_pns_call_id(std::uint16_t id, CallOrigin origin) const {
  for (const auto& c : calls) {
    if (c->pns_call_id == id && c->origin == origin) return c.get();
  }
  return nullptr;
}
Call* ControlConnection::find_by_pns_call_id(std::uint16_t id) const {
  for (const auto& c : calls) {
    if (c->pns_call_id == id) return c.get();
  }
  return nullptr;
}
Call* ControlConnection::find_by_pac_call_id(std::uint16_t id) const {
  for (const auto& c : calls) {
    if (c->pac_call_id == id) return c.get();
  }
  return nullptr;
}

// Bridges one direction's reassembler to the tracker.
class Tracker::StreamSink final : public stream::MessageSink {
 public:
  StreamSink(Tracker& t, ControlConnection& c, Direction d, double time, SegmentOutcome& out)
      : tracker_(t), connection_(c), direction_(d), time_(time), outcome_(out) {}
  void on_message(Bytes message, std::uint32_t sequence) override {
    ++outcome_.messages;
    tracker_.handle_message(time_, connection_, direction_, message, sequence, outcome_);
  }
  void on_stream_anomaly(stream::StreamAnomaly a, const wire::ParseError* error) override {
    ++outcome_.anomalies;
    tracker_.raise(stream_anomaly(a), &connection_, direction_,
                   error != nullptr ? wire::describe(*error) : std::string(stream::name_of(a)));
  }

 private:
  Tracker& tracker_;
  ControlConnection& connection_;
  Direction direction_;
  double time_;
  SegmentOutcome& outcome_;
};

Tracker::~Tracker() = default;

void Tracker::raise(Anomaly a, const ControlConnection* c, std::optional<Direction> d, std::string detail) {
  ++counters_[static_cast<std::size_t>(a)];
  observer_.on_anomaly(AnomalyEvent{a, c, d, std::move(detail)});
}

void Tracker::report(Anomaly anomaly, std::string detail) {
  raise(anomaly, nullptr, std::nullopt, std::move(detail));
}

std::size_t Tracker::call_count() const {
  std::size_t n = 0;
  for (const auto& [k, c] : connections_) n += c->calls.size();
  return n;
}

ControlConnection* Tracker::connection_for(double time, Direction dir, const wire::Ipv4Packet& ip,
                                           const wire::TcpSegment& tcp, SegmentOutcome& outcome) {
  const wire::Endpoint src{ip.source, tcp.source_port};
  const wire::Endpoint dst{ip.destination, tcp.destination_port};
  const ConnectionKey key = dir == Direction::PnsToPac ? ConnectionKey{src, dst} : ConnectionKey{dst, src};
  auto it = connections_.find(key);
  const bool syn = tcp.has(wire::tcp_flags::kSyn);
  // A closed connection's 4-tuple may be used again: a new SYN starts afresh. A SYN on a
  // live one is judged by its TCP window (and ignored).
  if (it != connections_.end() && syn && dir == Direction::PnsToPac && !tcp.has(wire::tcp_flags::kAck) &&
      it->second->state == ConnectionState::Closed) {
    connections_.erase(it);
    it = connections_.end();
  }
  if (it != connections_.end()) return it->second.get();
  if (tcp.has(wire::tcp_flags::kRst)) return nullptr;  // nothing to reset
  if (!syn && tcp.payload.empty()) return nullptr;      // a bare ACK or FIN of an unknown connection
  if (connections_.size() >= kMaxControlConnections) {
    raise(Anomaly::TooManyConnections, nullptr, dir,
          fmt("%s -> %s: limit %zu", wire::to_string(src).c_str(), wire::to_string(dst).c_str(),
              kMaxControlConnections));
    ++outcome.anomalies;
    return nullptr;
  }
  auto c = std::make_unique<ControlConnection>();
  c->id = next_connection_id_++;
  c->pns = key.pns;
  c->pac = key.pac;
  c->opened_at = time;
  for (auto& stream : c->streams) stream.refuse_when_full(inline_);
  return connections_.emplace(key, std::move(c)).first->second.get();
}

SegmentOutcome Tracker::on_tcp_segment(double time, const wire::Ipv4Packet& ip,
                                       const wire::TcpSegment& tcp) {
  SegmentOutcome outcome;
  // The side that listens on 1723 is the PAC.
  const bool to_pac = tcp.destination_port == wire::kPptpPort;
  if (!to_pac && tcp.source_port != wire::kPptpPort) return outcome;
  const Direction dir = to_pac ? Direction::PnsToPac : Direction::PacToPns;
  if (verify_checksums_ && !wire::tcp_checksum_ok(ip)) {
    // The receiver drops it too: never parsed, rewritten or repaired.
    outcome.ignored = Anomaly::TcpBadChecksum;
    raise(Anomaly::TcpBadChecksum, nullptr, dir,
          fmt("%s:%u -> %s:%u sequence %u", wire::to_string(ip.source).c_str(), tcp.source_port,
              wire::to_string(ip.destination).c_str(), tcp.destination_port, tcp.sequence));
    ++outcome.anomalies;
    return outcome;
  }
  ControlConnection* found = connection_for(time, dir, ip, tcp, outcome);
  if (found == nullptr) return outcome;
  ControlConnection& c = *found;
  outcome.connection = &c;
  const stream::TcpVerdict v = c.tcp.judge(index_of(dir), tcp);
  if (v.anomaly) {
    const Anomaly a = window_anomaly(*v.anomaly);
    if (!v.take) outcome.ignored = a;
    raise(a, &c, dir, fmt("sequence %u flags 0x%02x", tcp.sequence, tcp.flags));
    ++outcome.anomalies;
  }
  if (!v.take && !v.rst_acts) return outcome;
  c.last_activity = time;
  stream::Reassembler& s = c.streams[index_of(dir)];
  if (v.take && tcp.has(wire::tcp_flags::kSyn)) s.on_syn(tcp.sequence);
  // Data rides after the SYN's own sequence number.
  const std::uint32_t data_seq = tcp.has(wire::tcp_flags::kSyn) ? tcp.sequence + 1 : tcp.sequence;
  if (v.take && !tcp.payload.empty()) {
    StreamSink sink(*this, c, dir, time, outcome);
    if (!s.feed(data_seq, tcp.payload, sink)) {
      outcome.refused = true;  // its FIN, if any, comes again with it
      return outcome;
    }
  }
  if (v.rst_acts) {
    close_connection(time, c, "tcp_reset");
  } else if (v.fin_acts) {
    c.fin[index_of(dir)] = true;
    if (c.fin[0] && c.fin[1]) close_connection(time, c, "tcp_closed");
  }
  return outcome;
}

void Tracker::handle_message(double time, ControlConnection& c, Direction dir, Bytes bytes,
                             std::uint32_t sequence, SegmentOutcome& outcome) {
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
        raise(Anomaly::UnexpectedMessage, &c, dir, name + " in state " + std::string(name_of(c.state)));
      }
      const auto* r = m.as<wire::StartControlConnectionRequest>();
      remember_host(c, dir, r->host_name, r->vendor_string);
      return;
    }
    case ControlMessageType::StartControlConnectionReply: {
      const auto* r = m.as<wire::StartControlConnectionReply>();
      if (c.state != ConnectionState::WaitStartReply || c.start_requester == dir) {
        raise(Anomaly::UnexpectedMessage, &c, dir, name + " with no request outstanding");
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
        raise(Anomaly::UnexpectedMessage, &c, dir, name + " on a closed connection");
        return;
      }
      c.state = ConnectionState::Stopping;
      c.stop_requester = dir;
      return;
    case ControlMessageType::StopControlConnectionReply:
      if (c.state != ConnectionState::Stopping || c.stop_requester == dir) {
        raise(Anomaly::UnexpectedMessage, &c, dir, name + " with no request outstanding");
        return;
      }
      close_connection(time, c, "stop_control_connection");
      return;
    case ControlMessageType::EchoRequest:
      if (c.state != ConnectionState::Established) {
        raise(Anomaly::NotEstablished, &c, dir, name + " in state " + std::string(name_of(c.state)));
      }
      c.echo_outstanding[index_of(dir)] = m.as<wire::EchoRequest>()->identifier;
      return;
    case ControlMessageType::EchoReply: {
      auto& outstanding = c.echo_outstanding[index_of(reverse(dir))];
      const std::uint32_t id = m.as<wire::EchoReply>()->identifier;
      if (outstanding != id) {
        raise(Anomaly::EchoReplyUnmatched, &c, dir, fmt("Identifier %u", id));
      }
      outstanding.reset();
      return;
    }
    default:
      break;
  }
  if (c.state != ConnectionState::Established) {
    raise(Anomaly::NotEstablished, &c, dir, name + " in state " + std::string(name_of(c.state)));
    return;
  }
  MessageArrival arrival{sequence, renamed, outcome};
  handle_call_message(time, c, dir, m, arrival);
}

bool Tracker::admit_pns_call_id(double time, ControlConnection& c, Call& call, std::uint32_t sequence,
                                SegmentOutcome& outcome) {
  if (observer_.on_pns_call_id(c, call, sequence) == CallIdVerdict::Accept) return true;
  outcome.drop = true;
  close_call(time, c, call, "refused by the gateway");
  return false;
}

void Tracker::handle_call_message(double time, ControlConnection& c, Direction dir, const ControlMessage& m,
                                  MessageArrival& arrival) {
  const std::string name(m.spec().name);
  const auto unknown = [&](std::uint16_t id) {
    raise(Anomaly::UnknownCall, &c, dir, fmt("%s names Call ID %u", name.c_str(), id));
  };
  switch (m.type()) {
    case ControlMessageType::OutgoingCallRequest: {
      const auto& r = *m.as<wire::OutgoingCallRequest>();
      if (c.find_by_pns_call_id(r.call_id) != nullptr) {
        raise(Anomaly::DuplicateCallId, &c, dir, fmt("%s reuses Call ID %u", name.c_str(), r.call_id));
        return;
      }
      Call* call = open_call(time, c, CallOrigin::Outgoing);
      if (call == nullptr) return;
      call->pns_call_id = r.call_id;
      call->call_serial_number = r.call_serial_number;
      index_gre(c, *call, Direction::PacToPns);
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
        raise(Anomaly::DuplicateCallId, &c, dir, fmt("%s reuses Call ID %u", name.c_str(), r.call_id));
      }
      call->pac_call_id = r.call_id;
      index_gre(c, *call, Direction::PnsToPac);
      return set_call_state(time, c, *call, CallState::Established);
    }
    case ControlMessageType::IncomingCallRequest: {
      const auto& r = *m.as<wire::IncomingCallRequest>();
      if (c.find_by_pac_call_id(r.call_id) != nullptr) {
        raise(Anomaly::DuplicateCallId, &c, dir, fmt("%s reuses Call ID %u", name.c_str(), r.call_id));
        return;
      }
      Call* call = open_call(time, c, CallOrigin::Incoming);
      if (call == nullptr) return;
      call->pac_call_id = r.call_id;
      call->call_serial_number = r.call_serial_number;
      index_gre(c, *call, Direction::PnsToPac);
      observer_.on_call_changed(c, *call);
      return;
    }
    case ControlMessageType::IncomingCallReply: {
      const auto& r = *m.as<wire::IncomingCallReply>();
      Call* call = c.find_by_pac_call_id(r.peer_call_id);
      if (call == nullptr || call->origin != CallOrigin::Incoming || call->state != CallState::WaitReply) {
        return unknown(r.peer_call_id);
      }
      call->reply_result_code = r.result_code;
      if (r.result_code != kResultSuccess) {
        return close_call(time, c, *call, fmt("refused: result %u error %u", r.result_code, r.error_code));
      }
      call->pns_call_id = r.call_id;
      index_gre(c, *call, Direction::PacToPns);
      if (!admit_pns_call_id(time, c, *call, arrival.sequence, arrival.outcome)) return;
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
        raise(Anomaly::DisconnectNamesPnsCallId, &c, dir, fmt("Call ID %u", r.call_id));
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
        raise(Anomaly::SetLinkInfoFromPac, &c, dir, fmt("Peer's Call ID %u", r.peer_call_id));
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

Call* Tracker::open_call(double time, ControlConnection& c, CallOrigin origin) {
  if (c.calls.size() >= kMaxCallsPerConnection) {
    raise(Anomaly::TooManyCalls, &c, std::nullopt, fmt("limit %zu", kMaxCallsPerConnection));
    return nullptr;
  }
  auto call = std::make_unique<Call>();
  call->id = next_call_id_++;
  call->origin = origin;
  call->opened_at = time;
  call->last_activity = time;
  c.calls.push_back(std::move(call));
  return c.calls.back().get();
}

void Tracker::set_call_state(double time, ControlConnection& c, Call& call, CallState s) {
  call.state = s;
  call.last_activity = time;
  if (s == CallState::Established) call.established_at = time;
  observer_.on_call_changed(c, call);
}

void Tracker::close_call(double time, ControlConnection& c, Call& call, std::string reason) {
  call.state = CallState::Closed;
  call.closed_at = time;
  call.close_reason = std::move(reason);
  unindex_gre(c, call);
  observer_.on_call_closed(c, call);
  std::erase_if(c.calls, [&](const std::unique_ptr<Call>& p) { return p.get() == &call; });
}

void Tracker::close_connection(double time, ControlConnection& c, std::string reason) {
  if (c.state == ConnectionState::Closed) return;
  for (std::size_t d = 0; d < 2; ++d) {
    const stream::Reassembler& s = c.streams[d];
    if (s.state() == stream::StreamState::Synced && s.buffered_bytes() > 0) {
      raise(Anomaly::StreamGapAtClose, &c, static_cast<Direction>(d),
            fmt("%zu bytes held (%s)", s.buffered_bytes(), s.has_gap() ? "gap" : "message cut"));
    }
  }
  while (!c.calls.empty()) close_call(time, c, *c.calls.back(), "control connection ended: " + reason);
  c.state = ConnectionState::Closed;
  c.closed_at = time;
  c.close_reason = std::move(reason);
  observer_.on_connection_closed(c);
  // The entry stays until a new SYN on the same ports or expiry, so that late segments of
  // the closed connection do not open a new one.
}

std::optional<Tracker::GreKey> Tracker::gre_key(const ControlConnection& c, const Call& call,
                                               Direction toward) {
  // GRE toward the PAC carries the PAC's Call ID, toward the PNS the PNS's (RFC 2637 4.1).
  const bool to_pac = toward == Direction::PnsToPac;
  const std::optional<std::uint16_t> id = to_pac ? call.pac_call_id : call.pns_call_id;
  if (!id) return std::nullopt;
  return to_pac ? GreKey{c.pns.address.value, c.pac.address.value, *id}
                : GreKey{c.pac.address.value, c.pns.address.value, *id};
}

void Tracker::index_gre(ControlConnection& c, Call& call, Direction toward) {
  const std::optional<GreKey> key = gre_key(c, call, toward);
  if (!key) return;
  const bool to_pac = toward == Direction::PnsToPac;
  const std::uint16_t id = key->call_id;
  auto [it, inserted] = gre_routes_.try_emplace(*key, GreRoute{&c, &call, toward});
  if (!inserted && it->second.call != &call) {
    raise(Anomaly::GreKeyCollision, &c, toward,
          fmt("Call ID %u toward the %s is already used by connection %llu", id,
              to_pac ? "PAC" : "PNS", static_cast<unsigned long long>(it->second.connection->id)));
  }
}

void Tracker::unindex_gre(const ControlConnection& c, const Call& call) {
  // Only the call's own two keys, and only where they still point at this call (a colliding
  // call may own the key).
  for (const Direction d : {Direction::PnsToPac, Direction::PacToPns}) {
    const std::optional<GreKey> key = gre_key(c, call, d);
    if (!key) continue;
    const auto it = gre_routes_.find(*key);
    if (it != gre_routes_.end() && it->second.call == &call) gre_routes_.erase(it);
  }
}

void Tracker::note_offloaded_gre(const wire::Endpoint& pns, const wire::Endpoint& pac, std::uint16_t pns_call_id,
                                 Direction d, std::uint64_t packets, std::uint64_t bytes, double time) {
  const auto it = connections_.find(ConnectionKey{pns, pac});
  if (it == connections_.end() || packets == 0) return;
  ControlConnection& c = *it->second;
  Call* call = c.find_by_pns_call_id(pns_call_id);
  if (call == nullptr || call->state == CallState::Closed) return;
  GreFlowStats& st = call->gre[static_cast<std::size_t>(d)];
  st.packets += packets;
  st.payload_bytes += bytes;
  call->last_activity = std::max(call->last_activity, time);
  c.last_activity = std::max(c.last_activity, time);
}

GreOutcome Tracker::on_gre(double time, const wire::Ipv4Packet& ip) {
  GreOutcome out;
  auto parsed = wire::parse_gre(ip.payload);
  if (!parsed) {
    const wire::GreError& e = parsed.error();
    const bool not_pptp = e.code == wire::GreErrorCode::NotEnhanced || e.code == wire::GreErrorCode::NotPpp;
    out.verdict = not_pptp ? GreVerdict::NotPptp : GreVerdict::Malformed;
    raise(not_pptp ? Anomaly::GreNotPptp : Anomaly::GreMalformed, nullptr, std::nullopt,
          wire::to_string(ip.source) + " -> " + wire::to_string(ip.destination) + ": " + wire::describe(e));
    observer_.on_gre(nullptr, nullptr, Direction::PnsToPac, ip, nullptr);
    return out;
  }
  const wire::GrePacket& gre = *parsed;
  auto it = gre_routes_.find(GreKey{ip.source.value, ip.destination.value, gre.header.call_id});
  if (it == gre_routes_.end()) {
    out.verdict = GreVerdict::UnknownCall;
    raise(Anomaly::GreUnknownCall, nullptr, std::nullopt,
          fmt("%s -> %s Call ID %u", wire::to_string(ip.source).c_str(),
              wire::to_string(ip.destination).c_str(), gre.header.call_id));
    observer_.on_gre(nullptr, nullptr, Direction::PnsToPac, ip, &gre.header);
    return out;
  }
  GreRoute& route = it->second;
  Call& call = *route.call;
  out.verdict = GreVerdict::Matched;
  out.connection = route.connection;
  out.call = &call;
  out.direction = route.direction;
  GreFlowStats& st = call.gre[index_of(route.direction)];
  ++st.packets;
  st.payload_bytes += gre.payload.size();
  if (gre.header.ack_only()) ++st.ack_only;
  if (gre.header.sequence) {
    const std::uint32_t seq = *gre.header.sequence;
    if (st.highest_sequence && static_cast<std::int32_t>(seq - *st.highest_sequence) < 0) {
      ++st.sequence_backwards;
    } else {
      st.highest_sequence = seq;
    }
  }
  call.last_activity = time;
  route.connection->last_activity = std::max(route.connection->last_activity, time);
  if (call.state != CallState::Established && call.state != CallState::Clearing) {
    raise(Anomaly::GreBeforeEstablished, route.connection, route.direction,
          fmt("call %llu in state %s", static_cast<unsigned long long>(call.id),
              std::string(name_of(call.state)).c_str()));
  }
  if (!gre.payload.empty()) out.ppp = scan_ppp(*route.connection, call, route.direction, gre.payload);
  observer_.on_gre(route.connection, &call, route.direction, ip, &gre.header);
  return out;
}

std::optional<PppFrameClass> Tracker::scan_ppp(ControlConnection& c, Call& call, Direction dir, Bytes payload) {
  auto frame = wire::parse_ppp_frame(payload);
  if (!frame) {
    raise(Anomaly::PppMalformed, &c, dir, wire::describe(frame.error()));
    return std::nullopt;
  }
  AuthStep step = call.auth.on_frame(dir, *frame);
  if (step.event.kind != AuthEventKind::None) apply_auth_event(c, call, dir, std::move(step.event));
  return step.frame_class;
}

void Tracker::apply_auth_event(ControlConnection& c, Call& call, Direction dir, AuthEvent event) {
  if (event.name && !call.first_claim) call.first_claim = event.name;
  switch (event.kind) {
    case AuthEventKind::Anomaly:
      raise(*event.anomaly, &c, dir, std::move(event.detail));
      break;
    case AuthEventKind::Accepted: {
      ++call.authentications;
      call.auth_succeeded = true;
      const bool changed = !call.user || call.user->name != event.name->name;
      call.user = std::move(event.name);
      if (changed) observer_.on_call_changed(c, call);
      break;
    }
    case AuthEventKind::Rejected:
      call.auth_succeeded = false;
      call.rejected = std::move(event.name);
      observer_.on_call_changed(c, call);
      break;
    default:
      break;
  }
}

void Tracker::expire(double now) {
  for (auto it = connections_.begin(); it != connections_.end();) {
    ControlConnection& c = *it->second;
    if (c.state != ConnectionState::Closed) {
      for (std::size_t i = 0; i < c.calls.size();) {
        Call& call = *c.calls[i];
        const bool setting_up = call.state == CallState::WaitReply || call.state == CallState::WaitConnect;
        const double idle = now - call.last_activity;
        if (setting_up && idle > timeouts_.call_setup) {
          close_call(now, c, call, "set-up timed out");
        } else if (!setting_up && idle > timeouts_.call_idle) {
          close_call(now, c, call, "idle timeout");
        } else {
          ++i;
        }
      }
      if (now - c.last_activity > timeouts_.connection_idle) close_connection(now, c, "idle timeout");
    }
    // Closed connections linger one idle period for their late segments, then go.
    if (c.state == ConnectionState::Closed && now - c.last_activity > timeouts_.connection_idle) {
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void Tracker::close_all(double now, std::string_view reason) {
  for (auto& [k, c] : connections_) close_connection(now, *c, std::string(reason));
}

}  // namespace pptp::track
