// Control connections and their TCP segments, the lifecycle of connections and calls, and
// expiry. The RFC message state machine: tracker_messages.cpp; GRE and PPP: tracker_gre.cpp.
#include "alg/track/tracker.hpp"

#include <algorithm>

#include "alg/track/tracker_internal.hpp"

namespace pptp::track {

using detail::fmt;
using detail::index_of;

using wire::ControlMessage;
using wire::ControlMessageType;

namespace {
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
    case stream::StreamAnomaly::ResumedAtPosition: return Anomaly::TcpResumedAtPosition;
    case stream::StreamAnomaly::ResyncSkipped: return Anomaly::StreamResyncSkipped;
    case stream::StreamAnomaly::ResumedAtHead: return Anomaly::TcpResumedAtHead;
  }
  return Anomaly::StreamFramingError;
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

// Bridges one direction's reassembler to the tracker.
class Tracker::StreamSink final : public stream::MessageSink {
 public:
  StreamSink(Tracker& t, ControlConnection& c, Direction d, double time, SegmentOutcome& out,
             std::uint32_t segment_start)
      : tracker_(t), connection_(c), direction_(d), time_(time), outcome_(out), segment_start_(segment_start) {}
  bool on_message(Bytes message, std::uint32_t sequence) override {
    if (tracker_.defers_call_set_up(connection_, direction_, message, sequence, segment_start_)) {
      outcome_.deferred = true;
      return false;
    }
    ++outcome_.messages;
    tracker_.handle_message(time_, connection_, direction_, message, sequence, segment_start_, outcome_);
    return true;
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
  std::uint32_t segment_start_;  // the segment's first data byte the stream had not read
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

std::optional<Tracker::ConnectionKey> Tracker::key_of(const wire::Ipv4Packet& ip, const wire::TcpSegment& tcp) const {
  // The side that listens on 1723 is the PAC.
  const wire::Endpoint src{ip.source, tcp.source_port};
  const wire::Endpoint dst{ip.destination, tcp.destination_port};
  if (tcp.destination_port == wire::kPptpPort) return ConnectionKey{src, dst};
  if (tcp.source_port == wire::kPptpPort) return ConnectionKey{dst, src};
  return std::nullopt;
}

namespace {
// A SYN from the PNS on a closed connection's ports starts afresh; a SYN on a live one is
// judged by its TCP window (and ignored).
bool restarts(const ControlConnection& c, const wire::TcpSegment& tcp) {
  return c.state == ConnectionState::Closed && tcp.destination_port == wire::kPptpPort &&
         tcp.has(wire::tcp_flags::kSyn) && !tcp.has(wire::tcp_flags::kAck);
}
// What may open a connection: a SYN, or data (picked up mid-stream); never a RST, a bare
// ACK or FIN.
bool may_open(const wire::TcpSegment& tcp) {
  return !tcp.has(wire::tcp_flags::kRst) && (tcp.has(wire::tcp_flags::kSyn) || !tcp.payload.empty());
}
}  // namespace

bool Tracker::opens_connection(const wire::Ipv4Packet& ip, const wire::TcpSegment& tcp) const {
  const auto key = key_of(ip, tcp);
  if (!key || !may_open(tcp)) return false;
  const auto it = connections_.find(*key);
  return it == connections_.end() || restarts(*it->second, tcp);
}

ControlConnection* Tracker::connection_for(double time, Direction dir, const wire::Ipv4Packet& ip,
                                           const wire::TcpSegment& tcp, SegmentOutcome& outcome) {
  const ConnectionKey key = *key_of(ip, tcp);
  auto it = connections_.find(key);
  if (it != connections_.end() && restarts(*it->second, tcp)) {
    connections_.erase(it);
    --closed_count_;
    it = connections_.end();
  }
  if (it != connections_.end()) return it->second.get();
  if (!may_open(tcp)) return nullptr;  // nothing to reset; a bare ACK or FIN of an unknown connection
  if (!make_room(time, dir)) {
    raise(Anomaly::TooManyConnections, nullptr, dir,
          fmt("%s -> %s: limit %zu", wire::to_string(key.pns).c_str(), wire::to_string(key.pac).c_str(),
              kMaxControlConnections));
    ++outcome.anomalies;
    outcome.table_full = true;
    return nullptr;
  }
  auto c = std::make_unique<ControlConnection>();
  c->id = next_connection_id_++;
  c->pns = key.pns;
  c->pac = key.pac;
  // A SYN's sender opened it; picked up mid-stream, the PNS is taken for the opener.
  c->opener = tcp.has(wire::tcp_flags::kSyn) ? ip.source : key.pns.address;
  c->opened_at = time;
  for (auto& stream : c->streams) stream.refuse_when_full(inline_);
  // The client's bytes only: the server is not behind the NAT and its retransmissions are
  // its own, while a client that withheld ACKs would have the gateway keep the server's.
  c->streams[index_of(Direction::PnsToPac)].keep_read(inline_);
  if (!tcp.has(wire::tcp_flags::kSyn)) {
    if (const auto resume = observer_.resume_positions(*c)) {
      c->taken_over = true;
      for (std::size_t i = 0; i < c->streams.size(); ++i) {
        c->streams[i].resume((*resume)[i], observer_.resume_head(*c, static_cast<Direction>(i)));
      }
    }
  }
  unproven_.emplace_back(key, c->id);
  return connections_.emplace(key, std::move(c)).first->second.get();
}

SegmentOutcome Tracker::on_tcp_segment(double time, const wire::Ipv4Packet& ip,
                                       const wire::TcpSegment& tcp) {
  SegmentOutcome outcome;
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
    outcome.close_ignored = a == Anomaly::TcpRstInWindow || a == Anomaly::TcpFinOutOfSequence;
    raise(a, &c, dir, [&] { return fmt("sequence %u flags 0x%02x", tcp.sequence, tcp.flags); });
    ++outcome.anomalies;
  }
  if (!v.take && !v.rst_acts) return outcome;
  c.last_activity = time;
  stream::Reassembler& s = c.streams[index_of(dir)];
  if (v.take && tcp.has(wire::tcp_flags::kSyn)) s.on_syn(tcp.sequence);
  // What the receiver of the other direction has, it no longer needs checked.
  if (const auto ack = c.tcp.highest_ack(index_of(dir))) c.streams[index_of(reverse(dir))].acknowledged(*ack);
  // Data rides after the SYN's own sequence number.
  const std::uint32_t data_seq = tcp.has(wire::tcp_flags::kSyn) ? tcp.sequence + 1 : tcp.sequence;
  if (v.take && !s.agrees_with_read(data_seq, tcp.payload)) {
    // The gateway dropped it after reading it, and the sender now writes other bytes there
    // (docs/packet-path.md, "What was read is what leaves").
    outcome.differs = true;
    raise(Anomaly::TcpRetransmissionDiffers, &c, dir, [&] { return fmt("sequence %u length %zu", data_seq, tcp.payload.size()); });
    ++outcome.anomalies;
    return outcome;
  }
  // A closed connection's data goes nowhere: its streams are gone (close_connection).
  if (v.take && !tcp.payload.empty() && c.state != ConnectionState::Closed) {
    // Where a message must start to be deferred: in this segment and past what the stream
    // already read (bytes before that may have reached the server; a request they begin
    // cannot be left unread, s18 review).
    const bool overlaps = s.state() == stream::StreamState::Synced &&
                          static_cast<std::int32_t>(data_seq - s.next_sequence()) < 0;
    StreamSink sink(*this, c, dir, time, outcome, overlaps ? s.next_sequence() : data_seq);
    if (!s.feed(data_seq, tcp.payload, sink)) {
      outcome.refused = !outcome.deferred;  // its FIN, if any, comes again with it
      return outcome;
    }
    // In the path, a stream whose message boundaries are lost ends its connection both ways
    // (calls and routes go): the gateway can no longer tell where a Call ID lies.
    if (inline_ && s.state() == stream::StreamState::LostSync) {
      close_connection(time, c, "lost_sync");
      return outcome;
    }
  }
  if (v.rst_acts) {
    close_connection(time, c, "tcp_reset");
  } else if (v.fin_acts) {
    c.fin[index_of(dir)] = true;
    if (c.fin[0] && c.fin[1]) close_connection(time, c, "tcp_closed");
  }
  if (c.state == ConnectionState::Closed) drop_streams(c);
  return outcome;
}

Call* Tracker::open_call(double time, ControlConnection& c, CallOrigin origin) {
  if (c.calls.size() >= kMaxCallsPerConnection) {
    raise(Anomaly::TooManyCalls, &c, std::nullopt, [&] { return fmt("limit %zu", kMaxCallsPerConnection); });
    return nullptr;
  }
  auto call = std::make_unique<Call>();
  call->id = next_call_id_++;
  call->origin = origin;
  call->ordinal = static_cast<std::uint16_t>(std::min<std::uint32_t>(c.outgoing_requests, 65535));
  if (origin == CallOrigin::Outgoing) ++c.outgoing_requests;
  call->opened_at = time;
  call->last_activity = time;
  return &c.calls.add(std::move(call));
}

void Tracker::set_call_state(double time, ControlConnection& c, Call& call, CallState s) {
  call.state = s;
  call.last_activity = time;
  if (s == CallState::Established) call.established_at = time;
  observer_.on_call_changed(c, call);
}

void Tracker::close_call(double time, ControlConnection& c, Call& call, std::string reason) {
  c.calls.close(call);
  call.closed_at = time;
  call.close_reason = std::move(reason);
  unindex_gre(c, call);
  observer_.on_call_closed(c, call);
  c.calls.remove(call);
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
  // the closed connection do not open a new one; the oldest go first past the bound.
  ++closed_count_;
  closed_.emplace_back(ConnectionKey{c.pns, c.pac}, c.id);
  while (closed_.size() > kMaxClosedConnections) forget(closed_.front());  // never `c`: it is the newest
}

void Tracker::drop_streams(ControlConnection& c) {
  // What was buffered can never be delivered now: give its memory back. Not from
  // close_connection, which a message handler may call while its stream is delivering.
  for (auto& stream : c.streams) stream = stream::Reassembler{};
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
          call.pac_call_may_live = true;
          close_call(now, c, call, "idle timeout");
        } else {
          ++i;
        }
      }
      // A connection that never said anything (a SYN flood's) goes sooner than an idle one.
      const double idle_limit = c.half_open() ? std::min(kHalfOpenTimeout, timeouts_.connection_idle)
                                              : timeouts_.connection_idle;
      if (now - c.last_activity > idle_limit) {
        close_connection(now, c, c.half_open() ? "half-open timeout" : "idle timeout");
        drop_streams(c);
      }
    }
    // Closed connections linger one idle period for their late segments, then go.
    if (c.state == ConnectionState::Closed && now - c.last_activity > timeouts_.connection_idle) {
      it = connections_.erase(it);
      --closed_count_;
    } else {
      ++it;
    }
  }
}

void Tracker::close_all(double now, std::string_view reason) {
  for (auto& [k, c] : connections_) close_connection(now, *c, std::string(reason));
}

bool Tracker::release_connection(double time, const wire::Endpoint& pns, const wire::Endpoint& pac,
                                 std::string reason) {
  const auto it = connections_.find(ConnectionKey{pns, pac});
  if (it == connections_.end() || it->second->state == ConnectionState::Closed) return false;
  close_connection(time, *it->second, std::move(reason));
  drop_streams(*it->second);
  // Its entry in closed_ is stale now (forget() skips it by id).
  connections_.erase(it);
  --closed_count_;
  return true;
}

}  // namespace pptp::track
