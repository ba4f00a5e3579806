#include "gateway/gateway.hpp"

#include "gateway/describe.hpp"
#include "nat/rewrite.hpp"

namespace pptp::gateway {

using track::Direction;
using wire::to_string;

Gateway::Gateway(GatewayOptions options, std::shared_ptr<spdlog::logger> log, OutsideResolver* resolver)
    : options_(options),
      log_(std::move(log)),
      resolver_(resolver),
      warnings_(log_),
      gate_(log_, options_.wall_clock, counters_, warnings_),
      offloader_(options_.fast_path, options_.timeouts.call_idle, log_, warnings_, counters_, pac_call_ids_),
      tracker_(*this, options_.timeouts),
      budgets_(options_.budgets) {
  tracker_.set_inline(true);
  tracker_.set_verify_checksums(options_.verify_checksums);
}

const ConnectionRecord* Gateway::connection_record(std::uint64_t connection_id) const {
  const auto it = connections_.find(connection_id);
  return it != connections_.end() ? &it->second : nullptr;
}

const CallRecord* Gateway::call_record(std::uint64_t call_id) const {
  const auto it = calls_.find(call_id);
  return it != calls_.end() ? &it->second : nullptr;
}

// ---- The packet path: parse once, then control or GRE -------------------------------------

Verdict Gateway::process(std::span<std::uint8_t> packet, const PacketMeta& meta) {
  packet_ = PacketContext{meta.time, meta.outside_address};
  const track::ParsedPacket parsed = track::parse_packet(packet);
  switch (parsed.kind) {
    case track::PacketKind::Gre:
      return process_gre(packet, parsed.ip, meta);
    case track::PacketKind::Control:
      return process_control(packet, parsed, meta);
    case track::PacketKind::Malformed:
      tracker_.report(parsed.anomaly, parsed.detail);
      ++counters_.malformed_dropped;
      return {Action::Drop, false};
    case track::PacketKind::Other:
      break;
  }
  ++counters_.other_passed;
  return {};
}

Verdict Gateway::process_control(std::span<std::uint8_t> packet, const track::ParsedPacket& parsed,
                                 const PacketMeta& meta) {
  const wire::TcpSegment& tcp = parsed.tcp;
  const Direction dir = tcp.destination_port == wire::kPptpPort ? Direction::PnsToPac : Direction::PacToPns;
  std::optional<policy::Charge> admitted;
  bool closed_before = false;  // a client's data after the close; not the segment that closes
  if (tracker_.opens_connection(parsed.ip, tcp)) {
    if (const auto refused = admit_opening(parsed, admitted)) return *refused;
  } else if (const auto dropped = drop_before_reading(parsed, dir, closed_before)) {
    return *dropped;
  }
  const track::SegmentOutcome out = tracker_.on_tcp_segment(meta.time, parsed.ip, tcp);
  keep_charge(out, admitted);
  ++counters_.control_segments;
  if (out.connection == nullptr) {
    if (!out.table_full) return {};  // a bare ACK, FIN or RST of no connection; a bad checksum
    ++counters_.control_untracked_dropped;
    return {Action::Drop, false};
  }
  if (out.close_ignored) keep_conntrack(*out.connection);
  if (const auto dropped = drop_unread(out, tcp, closed_before)) return *dropped;
  // A closed connection without a record: it had nothing to patch or hold (on_connection_closed).
  if (out.connection->state == track::ConnectionState::Closed && connection_record(out.connection->id) == nullptr) {
    return out.drop ? Verdict{Action::Drop, false} : Verdict{};
  }
  ConnectionRecord& r = record_of(*out.connection);
  if (r.killed && !tcp.payload.empty()) {  // ended by the operator: only the TCP close passes
    ++counters_.killed_dropped;
    return {Action::Drop, false};
  }
  settle(r, *out.connection);
  settle_unproven_ends(*out.connection, r);
  if (out.drop || (dir == Direction::PnsToPac && after_refusal(r, tcp))) {
    ++counters_.control_dropped;
    return {Action::Drop, false};
  }
  const Verdict v = hold_or_patch(packet, parsed, *out.connection, r, dir, meta);
  settle(r, *out.connection);  // its held segments, taken or released just now
  return v;
}

// A segment the tracker did not take in, or that must not reach the receiver as written.
std::optional<Verdict> Gateway::drop_unread(const track::SegmentOutcome& out, const wire::TcpSegment& tcp,
                                            bool closed_before) {
  if (out.refused) {
    // Too far ahead of a gap to keep, or past what may be read and not yet acknowledged: not
    // forwarded, so the client or server sends it again in order.
    ++counters_.control_refused;
    return Verdict{Action::Drop, false};
  }
  if (out.deferred) {
    // A call set-up before the connection is established, left unread: read again when TCP
    // sends it again, once the server has answered the start (or the window is proven).
    ++counters_.control_deferred_dropped;
    return Verdict{Action::Drop, false};
  }
  if (out.differs) {
    // Bytes read at these sequence numbers (and dropped) come back as other bytes: the
    // receiver gets what the Call IDs were decided from, or nothing (docs/packet-path.md,
    // "What was read is what leaves").
    ++counters_.control_differs_dropped;
    return Verdict{Action::Drop, false};
  }
  if (closed_before && !tcp.payload.empty() && !lost_sync(*out.connection)) {
    // Its calls are gone, so a Call ID in it could not be translated: a client has nothing
    // left to say on a connection the tracker closed (a stop, a timeout, a refused start).
    // The segment that closes it (a Stop-Control-Connection-Reply) passes: it was open.
    ++counters_.control_after_close_dropped;
    return Verdict{Action::Drop, false};
  }
  return std::nullopt;
}

// Closed for lost sync, now or before: desynced() drops its data both ways.
bool Gateway::lost_sync(const track::ControlConnection& c) const {
  for (const stream::Reassembler& s : c.streams) {
    if (s.state() == stream::StreamState::LostSync) return true;
  }
  const ConnectionRecord* r = connection_record(c.id);
  return r != nullptr && r->desynced;
}

// A segment of a known connection the tracker must not read, judged with one lookup of it.
std::optional<Verdict> Gateway::drop_before_reading(const track::ParsedPacket& parsed, Direction dir,
                                                    bool& closed_before) {
  const wire::TcpSegment& tcp = parsed.tcp;
  const wire::Endpoint src{parsed.ip.source, tcp.source_port}, dst{parsed.ip.destination, tcp.destination_port};
  const bool to_pac = dir == Direction::PnsToPac;
  const track::ControlConnection* c = tracker_.find_connection(to_pac ? src : dst, to_pac ? dst : src);
  if (c == nullptr) return std::nullopt;
  if (c->state == track::ConnectionState::Closed) {
    closed_before = to_pac;
    return std::nullopt;
  }
  const ConnectionRecord* r = connection_record(c->id);
  if (const auto hit = refuse_buffering(*c, r, tcp, dir)) {
    // Not buffered: dropped, so TCP sends it again once the gap before it is filled.
    note_refusal(*hit, parsed.ip.source, "out_of_order_segment");
    return Verdict{Action::Drop, false};
  }
  if (to_pac && r != nullptr && after_refusal(*r, tcp)) {
    // After a refused call set-up nothing more of the client's reaches the server, and the
    // tracker reads none of it: no call opens and no Call ID is reserved for a request that
    // never leaves.
    ++counters_.control_segments;
    ++counters_.control_dropped;
    return Verdict{Action::Drop, false};
  }
  return std::nullopt;
}

// A RST in the window not at the receiver's next number, or a FIN out of sequence: the
// endpoints take neither (RFC 5961 3.2, RFC 9293 3.10.7.4), nor does the tracker. Conntrack,
// before the queue, takes a RST at the end of the sender's last data as the end of a "RST
// train", and a FIN in its window, and the entry would then die in seconds while the
// connection lives: put it back, so that a decision rests on what the tracker judged.
void Gateway::keep_conntrack(const track::ControlConnection& c) {
  if (c.state == track::ConnectionState::Closed || c.fin[0] || c.fin[1]) return;
  // Only a connection the server accepted (or one taken over, whose calls the HA peer
  // replicated) has calls to lose; one not yet up is conntrack's to end as it judges.
  // Else a client's SYN and its own RST past its next byte made a 2-hour ESTABLISHED entry
  // where conntrack gives an unanswered SYN 120 s (s17 review).
  if (c.state != track::ConnectionState::Established && !c.taken_over) return;
  ++counters_.conntrack_keeps;
  if (conntrack_keeps_.size() >= kMaxConntrackKeeps) return;
  const bool pac_opened = c.opener == c.pac.address && c.opener != c.pns.address;
  conntrack_keeps_.push_back(pac_opened ? ConntrackKeep{c.pac, c.pns} : ConntrackKeep{c.pns, c.pac});
}

std::optional<Verdict> Gateway::admit_opening(const track::ParsedPacket& parsed,
                                              std::optional<policy::Charge>& admitted) {
  // The host that opens the connection is judged and charged as its client, whichever side
  // uses port 1723 (a host connecting from 1723 is the tracker's PAC, and no less a client
  // of the router). A refused opening gets nothing through, not even its SYN.
  // Picked up mid-stream (no SYN: a restart), the opener is unknown: the side that does not
  // use port 1723 is taken as the client, as the tracker takes it.
  const wire::Endpoint src{parsed.ip.source, parsed.tcp.source_port};
  const wire::Endpoint dst{parsed.ip.destination, parsed.tcp.destination_port};
  const bool src_opens = parsed.tcp.has(wire::tcp_flags::kSyn) || dst.port == wire::kPptpPort;
  const wire::Endpoint& opener = src_opens ? src : dst;
  const wire::Endpoint& peer = src_opens ? dst : src;
  if (const auto hit = budgets_.refuse_connection(opener.address, lingering_bytes())) {
    note_refusal(*hit, opener.address, "connection");
    return Verdict{Action::Drop, false};
  }
  if (!gate_.policy()) return std::nullopt;
  admitted = gate_.admit_connection(opener, peer, packet_.time);
  if (admitted) return std::nullopt;
  ++counters_.control_policy_dropped;
  return Verdict{Action::Drop, false};
}

std::optional<BudgetHit> Gateway::refuse_buffering(const track::ControlConnection& c, const ConnectionRecord* r,
                                                   const wire::TcpSegment& tcp, Direction dir) const {
  if (tcp.payload.empty()) return std::nullopt;
  const stream::Reassembler& s = c.streams[index_of(dir)];
  const std::uint32_t data_sequence = tcp.sequence + (tcp.has(wire::tcp_flags::kSyn) ? 1u : 0u);
  // Only a segment ahead of the next expected byte is buffered (serial arithmetic).
  if (s.state() != stream::StreamState::Synced || static_cast<std::int32_t>(data_sequence - s.next_sequence()) <= 0) {
    return std::nullopt;
  }
  return budgets_.refuse_buffering(r != nullptr ? r->budget.source : c.opener, tcp.payload.size(), lingering_bytes());
}

void Gateway::keep_charge(const track::SegmentOutcome& out, const std::optional<policy::Charge>& admitted) {
  if (!admitted) return;
  // The connection holds its share of the limits until it closes; a segment that opened
  // nothing (a bare ACK) gives it back at once.
  track::ControlConnection* opened = out.connection;
  if (opened != nullptr && opened->state != track::ConnectionState::Closed && !record_of(*opened).charge) {
    record_of(*opened).charge = std::make_unique<policy::Charge>(*admitted);
  } else {
    gate_.release_connection(*admitted);
  }
}

bool Gateway::after_refusal(const ConnectionRecord& r, const wire::TcpSegment& tcp) const {
  // The set-up we refused, its retransmission, and any data after it: the request must not
  // reach the server with a Call ID that collides, and the server could not deliver what
  // follows it anyway. Segments without data (the PNS's ACKs) still pass.
  if (!r.refused_sequence || tcp.payload.empty()) return false;
  const auto end = static_cast<std::uint32_t>(tcp.sequence + tcp.payload.size());
  return static_cast<std::int32_t>(end - *r.refused_sequence) > 0;  // serial arithmetic
}

Verdict Gateway::hold_or_patch(std::span<std::uint8_t> packet, const track::ParsedPacket& parsed,
                               const track::ControlConnection& c, ConnectionRecord& r, Direction dir,
                               const PacketMeta& meta) {
  // No byte of a Call ID field that must be translated leaves untranslated (docs/packet-path.md,
  // "Held segments"): a segment goes with the patches once every field it touches is decided,
  // is held while one is not, and is dropped where that cannot be known (TCP sends it again).
  const std::size_t d = index_of(dir);
  const nat::TcpPayload at = nat::tcp_payload_of(packet, parsed.ip, parsed.tcp);
  if (desynced(c, r)) {
    if (at.length == 0) return {};  // ACKs, FIN and RST still pass: the peers close
    ++counters_.control_desync_dropped;
    return {Action::Drop, false};
  }
  const PartialField field = decide_partial_field(c, r, dir);
  if (!field.undecided) r.held[d].release(r.patches[d].view(), held_overall_, counters_, released_);
  if (at.length == 0) return {};
  if (dir == Direction::PnsToPac && after_refusal(r, parsed.tcp)) {  // refused just now: no Call ID left
    ++counters_.control_dropped;
    return {Action::Drop, false};
  }
  switch (segment_fate(c.streams[d], r.patches[d].view(), at, field)) {
    case SegmentFate::DropPatchLost:
      ++counters_.control_patch_lost_dropped;
      return {Action::Drop, false};
    case SegmentFate::DropUnframed:
      ++counters_.control_gap_dropped;
      return {Action::Drop, false};
    case SegmentFate::Hold:
      if (const auto hit = budgets_.refuse_holding(r.budget.source, packet.size(), lingering_bytes())) {
        note_refusal(*hit, r.budget.source, "held_segment");  // dropped: TCP sends it again
        return {Action::Drop, false};
      }
      if (!r.held[d].hold(meta, packet, at, held_overall_)) {
        ++counters_.control_hold_bound_dropped;
        return {Action::Drop, false};
      }
      ++counters_.control_held;
      return {Action::Hold, false};
    case SegmentFate::Forward:
      break;
  }
  pass_message_head(c, r, dir, at);
  if (nat::patch_tcp_payload(packet, at, r.patches[d].view())) {
    ++counters_.control_rewritten;
    return {Action::Accept, true};
  }
  return {};
}

Verdict Gateway::process_gre(std::span<std::uint8_t> packet, wire::Ipv4Packet ip, const PacketMeta& meta) {
  const GreTowardClient toward = rewrite_toward_client(packet, ip);
  return judge_gre(tracker_.on_gre(meta.time, ip), toward);
}

Gateway::GreTowardClient Gateway::rewrite_toward_client(std::span<std::uint8_t> packet, wire::Ipv4Packet& ip) {
  // Server to client: the key is the Call ID the server was told; find the client.
  const auto gre = wire::parse_gre(ip.payload);
  if (!gre) return {};
  const nat::CallMapping* m = translator_.find_outside(ip.source, ip.destination, gre->header.call_id);
  if (m == nullptr) return {false, translator_.outside_in_use(ip.destination, ip.source, gre->header.call_id)};
  if (m->inside == m->outside && !m->translated()) return {false, true};
  if (m->inside != ip.destination) {
    nat::set_ipv4_destination(packet, m->inside);
    ip.destination = m->inside;  // the parsed view follows the bytes (its payload is the same span)
  }
  if (m->translated()) nat::set_gre_call_id(packet, m->inside_call_id);
  return {true, true};
}

Verdict Gateway::judge_gre(const track::GreOutcome& out, GreTowardClient toward) {
  const bool modified = toward.modified;
  switch (out.verdict) {
    case track::GreVerdict::NotPptp:
      ++counters_.gre_not_pptp_passed;  // another GRE tunnel: not ours to judge
      return {Action::Accept, modified};
    case track::GreVerdict::Malformed:
      ++counters_.malformed_dropped;
      return {Action::Drop, false};
    case track::GreVerdict::UnknownCall:
      if (toward.key_taken) {
        // The server's GRE with an outside Call ID the table has taken but routes nowhere (a
        // call not answered yet or refused, a reserved or held ID): it must not reach a
        // client, whatever --allow-unknown-gre says.
        ++counters_.gre_unanswered_dropped;
        return {Action::Drop, false};
      }
      if (options_.allow_unknown_gre) {
        ++counters_.gre_unknown_passed;
        return {Action::Accept, modified};
      }
      ++counters_.gre_unknown_dropped;
      return {Action::Drop, false};
    case track::GreVerdict::Matched:
      break;
  }
  if (out.connection != nullptr && killed(out.connection->id)) {
    ++counters_.killed_dropped;
    return {Action::Drop, false};
  }
  CallRecord* r = out.call != nullptr ? &calls_[out.call->id] : nullptr;
  if (r != nullptr && r->policy) {
    // The name had its chance: judge the call with what was seen (docs/policy.md).
    if (r->policy->outcome == policy::Outcome::Pending && gate_.name_final(*out.call) &&
        gate_.judge_again(*out.connection, *out.call, *r->policy, "call_authentication")) {
      offloader_.withdraw(*r);
    }
    if (r->policy->outcome == policy::Outcome::Deny) {
      ++counters_.gre_policy_dropped;
      return {Action::Drop, false};
    }
    // Until the call's user is decided only link control and authentication pass (RFC 1661
    // 3.5: the network phase follows authentication): a tunnel whose user may yet be denied
    // carries none of its data.
    if (r->policy->outcome == policy::Outcome::Pending && out.ppp == track::PppFrameClass::NetworkLayer) {
      ++counters_.gre_before_user;
      return {Action::Drop, false};
    }
  }
  // Once its first packets have been seen here, a call's GRE can go to the kernel.
  if (r != nullptr) maybe_offload(*out.connection, *out.call, *r);
  // Client to server GRE is tracked by conntrack, so the operator's masquerade rule
  // translates its source like any other packet; it passes here as it is.
  ++(out.direction == Direction::PacToPns ? counters_.gre_to_pns : counters_.gre_to_pac);
  if (modified) ++counters_.gre_rewritten;
  return {Action::Accept, modified};
}

ConnectionRecord& Gateway::record_of(const track::ControlConnection& c) {
  auto [it, inserted] = connections_.try_emplace(c.id);
  ConnectionRecord& r = it->second;
  if (inserted) {
    r.outside = c.pns.address;
    r.budget.source = c.opener;
  }
  // The conntrack binding is there from the first packet after the SYN left the router.
  if (packet_.outside) {
    r.outside = *packet_.outside;
    r.outside_known = true;
  }
  return r;
}

}  // namespace pptp::gateway
