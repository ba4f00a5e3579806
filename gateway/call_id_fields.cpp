// Call ID fields decided as soon as they are whole, not when their message is (issue
// "Integrity", docs/packet-path.md "Held segments"): no byte of a field that must be
// translated ever leaves untranslated, whatever the segmentation, loss, reordering,
// retransmission or delay, and no segment waits on a timer.
#include "gateway/describe.hpp"
#include "gateway/gateway.hpp"

namespace pptp::gateway {

using track::Direction;

namespace {
// Serial arithmetic (RFC 9293 3.4): a is after b.
bool after(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) > 0; }
constexpr std::size_t kTypeEnd = 10;  // the Control Message Type is at bytes 8-9 (RFC 2637 2.1)
constexpr std::uint32_t kCallIdLength = 2;
}  // namespace

SegmentFate segment_fate(const stream::Reassembler& s, const nat::StreamPatches& patches, const nat::TcpPayload& at,
                         const PartialField& field) {
  const auto end = static_cast<std::uint32_t>(at.sequence + at.length);
  if (patches.lost_before(at.sequence)) return SegmentFate::DropPatchLost;
  // Past the next byte in order the reassembler has not framed it: which of its bytes are
  // Call ID fields is not known yet.
  if (s.state() == stream::StreamState::Synced && after(end, s.next_sequence())) return SegmentFate::DropUnframed;
  if (field.undecided && after(field.sequence + kCallIdLength, at.sequence) && after(end, field.sequence)) {
    return SegmentFate::Hold;
  }
  return SegmentFate::Forward;
}

PartialField Gateway::decide_partial_field(const track::ControlConnection& c, ConnectionRecord& r, Direction dir) {
  const stream::Reassembler& s = c.streams[index_of(dir)];
  if (s.state() != stream::StreamState::Synced || c.state == track::ConnectionState::Closed) return {};
  const bool from_pns = dir == Direction::PnsToPac;
  // Reservations for messages that were whole and opened no call (invalid, a duplicate):
  // given back. Those that did were confirmed in on_pns_call_id.
  if (from_pns) translator_.give_back_before(c.id, s.partial_sequence());
  const Bytes partial = s.partial();
  if (partial.size() < kTypeEnd) return {};  // framing checked the type once it was in
  const auto type = static_cast<wire::ControlMessageType>(load_u16(partial.data() + 8));
  const nat::CallIdField field = nat::call_id_field(type, from_pns);
  if (field.rewrite == nat::CallIdRewrite::None || partial.size() <= field.offset) return {};
  const std::uint32_t sequence = s.partial_sequence() + field.offset;
  const bool whole = partial.size() >= field.offset + kCallIdLength;
  const std::optional<std::uint16_t> id =
      whole ? std::optional<std::uint16_t>(load_u16(partial.data() + field.offset)) : std::nullopt;
  if (field.rewrite == nat::CallIdRewrite::Allocate) {
    // The PNS's own Call ID: an outside one is reserved now, even from half the field (the
    // other byte may come much later: a sender under Nagle waits for the ACK of the first).
    // Not on a connection that is not established: such a request is refused once whole
    // (Tracker::refuse_request), unless the connection is established by then; until it is
    // whole its bytes are held, so no byte leaves that a reservation given back would free.
    if (c.state != track::ConnectionState::Established || c.pns_refused) return {true, sequence};
    reserve_call_id(c, r, sequence, id);
    return {};
  }
  if (!id) {
    if (field.rewrite == nat::CallIdRewrite::ToOutside) {
      if (const auto high = outside_high_byte(c, partial[field.offset])) {
        r.first_byte_field = sequence;
        r.patches[index_of(dir)].edit().add(sequence, static_cast<std::uint16_t>(*high << 8));
        return {};
      }
    }
    return {true, sequence};  // a lookup needs the whole value: held until it is in
  }
  decide_whole_field(c, r, field, dir, sequence, *id);
  return {};
}

void Gateway::decide_whole_field(const track::ControlConnection& c, ConnectionRecord& r, nat::CallIdField field,
                                 Direction dir, std::uint32_t sequence, std::uint16_t id) {
  LazyPatches& patches = r.patches[index_of(dir)];
  const std::optional<std::uint16_t> v = translated_value(c, field, id);
  if (r.first_byte_field == sequence) {
    // Its first byte left as decided then; the second is the translation's, or as written.
    const std::uint16_t first = patches.view().find(sequence).value_or(id) & 0xff00U;
    patches.edit().add(sequence, static_cast<std::uint16_t>(first | (v.value_or(id) & 0x00ffU)));
    r.first_byte_field.reset();
    return;
  }
  if (v) patches.edit().add(sequence, *v);
}

// A message cut before its Call ID field is whole, its head gone through this node: if the
// node fails over now, the peer sees the rest first and could not frame it, so the field in
// it would pass untranslated (a client's own Call ID to the server, the server's name for a
// client to that client). The HA peer gets the head instead (docs/ha.md, "A message split
// before its Call ID field"). Only for messages with a field to translate; a client's own
// Call ID (Allocate) cut inside the field is not: its first byte left as this node reserved
// it, which the peer cannot know.
void Gateway::pass_message_head(const track::ControlConnection& c, ConnectionRecord& r, Direction dir,
                                const nat::TcpPayload& at) {
  if (call_observer_ == nullptr) return;
  const stream::Reassembler& s = c.streams[index_of(dir)];
  const Bytes head = s.partial();
  if (s.state() != stream::StreamState::Synced || head.empty() || head.size() > stream::kMaxResumeHeadBytes) return;
  if (static_cast<std::uint32_t>(at.sequence + at.length) != s.next_sequence()) return;  // not the head's last segment
  if (head.size() >= kTypeEnd) {
    const auto type = static_cast<wire::ControlMessageType>(load_u16(head.data() + 8));
    const nat::CallIdField field = nat::call_id_field(type, dir == Direction::PnsToPac);
    if (field.rewrite == nat::CallIdRewrite::None || head.size() >= field.offset + kCallIdLength) return;
    if (field.rewrite == nat::CallIdRewrite::Allocate && head.size() > field.offset) return;
  }
  // Once per head: a copy of its segment (a retransmission, or a client replaying it to
  // load the sync link) is not sent again; a longer head of the same message is.
  ConnectionRecord::HeadPassed& last = r.head_passed[index_of(dir)];
  if (last.length != 0 && last.sequence == s.partial_sequence() && last.length >= head.size()) return;
  last = {s.partial_sequence(), static_cast<std::uint8_t>(head.size())};
  call_observer_->message_head_passed(c, dir, s.partial_sequence(), head);
}

// A client's Call-Clear-Request (RFC 2637 2.11: its own Call ID) cut inside the field by a
// TCP that then waits for the ACK of the first part (Nagle, or a congestion window of one
// after a loss): held, its second byte would never come. So the first byte alone decides,
// when every call of the connection whose Call ID starts with it has an outside Call ID
// starting with the same byte; where none does, no call can be named and the byte is as
// written. Calls taken over from the HA peer are not all in the list: held as before.
std::optional<std::uint8_t> Gateway::outside_high_byte(const track::ControlConnection& c,
                                                       std::uint8_t inside_high) const {
  if (call_observer_ != nullptr && call_observer_->resume_positions(c)) return std::nullopt;
  std::optional<std::uint8_t> decided;
  for (const track::CallList::Owned& call : c.calls) {
    if (!call->pns_call_id || (*call->pns_call_id >> 8) != inside_high) continue;
    const nat::CallMapping* m = translator_.find_inside(c.id, *call->pns_call_id);
    const auto high = static_cast<std::uint8_t>((m != nullptr ? m->outside_call_id : *call->pns_call_id) >> 8);
    if (decided && *decided != high) return std::nullopt;  // two calls disagree: the second byte decides
    decided = high;
  }
  return decided.value_or(inside_high);
}

void Gateway::reserve_call_id(const track::ControlConnection& c, ConnectionRecord& r, std::uint32_t field_sequence,
                              std::optional<std::uint16_t> inside_call_id) {
  if (translator_.reserved(c.id, field_sequence)) return;
  resolve_outside(c, r);
  const auto outside = translator_.reserve(c.id, c.pns.address, r.outside, c.pac.address, field_sequence, inside_call_id);
  if (!outside) {
    // No Call ID left (or only the reserve, kept for others): the field must not leave as
    // it is, so the request is refused here (after_refusal drops it and what follows).
    ++counters_.calls_refused;
    refuse(r, field_sequence);
    return;
  }
  if (!inside_call_id || *outside != *inside_call_id) r.patches[index_of(Direction::PnsToPac)].edit().add(field_sequence, *outside);
}

std::optional<std::uint16_t> Gateway::translated_value(const track::ControlConnection& c, nat::CallIdField field,
                                                       std::uint16_t id) const {
  std::optional<CallIdPair> pair;
  switch (field.rewrite) {
    case nat::CallIdRewrite::Allocate:  // reserve_call_id, then on_pns_call_id
    case nat::CallIdRewrite::None:
      return std::nullopt;
    case nat::CallIdRewrite::ToOutside:
      pair = call_id_pair(c, CallIdSide::Pns, id);
      if (pair && pair->outside != id) return pair->outside;
      return std::nullopt;
    case nat::CallIdRewrite::DisconnectCallId:
      // RFC 2637 2.13: the PAC's own Call ID, passed as it is when it names a call here.
      // Otherwise it is the PNS's outside Call ID (Windows servers), translated back.
      if (names_pac_call(c, id)) return std::nullopt;
      [[fallthrough]];
    case nat::CallIdRewrite::ToInside:
      pair = call_id_pair(c, CallIdSide::Outside, id);
      if (pair && pair->inside != id) return pair->inside;
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<Gateway::CallIdPair> Gateway::call_id_pair(const track::ControlConnection& c, CallIdSide by,
                                                         std::uint16_t id) const {
  const nat::CallMapping* m =
      by == CallIdSide::Pns ? translator_.find_inside(c.id, id) : translator_.find_outside_on_connection(c.id, id);
  if (m != nullptr) return CallIdPair{m->inside_call_id, m->outside_call_id};
  if (call_observer_ == nullptr) return std::nullopt;
  // A call taken over from the HA peer (docs/ha.md): the connection's own, by its endpoints.
  const auto t = call_observer_->taken_over_call(c, by, id);
  if (!t) return std::nullopt;
  return CallIdPair{t->pns_call_id, t->outside_call_id};
}

bool Gateway::names_pac_call(const track::ControlConnection& c, std::uint16_t id) const {
  if (c.find_by_pac_call_id(id) != nullptr) return true;
  return call_observer_ != nullptr && call_observer_->taken_over_call(c, CallIdSide::Pac, id).has_value();
}

bool Gateway::desynced(const track::ControlConnection& c, ConnectionRecord& r) {
  if (r.desynced) return true;
  for (std::size_t d = 0; d < 2; ++d) {
    if (c.streams[d].state() != stream::StreamState::LostSync) continue;
    // Where its messages start is no longer known, so neither is where a Call ID lies: the
    // tracker has closed the connection (its calls and routes are gone) and nothing more of
    // its data passes either way.
    r.desynced = true;
    ++counters_.connections_desynced;
    warnings_.limit_source("connection_desynced", c.opener, packet_.time, [&] {
      log_->warn("connection_desynced {} direction={} note=\"closed both ways; its data is dropped\"", describe(c),
                 track::name_of(static_cast<Direction>(d)));
    });
    for (SegmentHold& h : r.held) h.drop(held_overall_, counters_, released_);
    return true;
  }
  return false;
}

void Gateway::resolve_outside(const track::ControlConnection& c, ConnectionRecord& r) {
  if (r.outside_known || resolver_ == nullptr) return;
  if (const auto a = resolver_->outside_address(c.pns, c.pac)) {
    r.outside = *a;
    r.outside_known = true;
  } else {
    warnings_.warn("nat_binding_unknown", packet_.time, [&] {
      return fmt::format("{} note=\"no conntrack entry; using the client's own address\"", describe(c));
    });
  }
}

}  // namespace pptp::gateway
