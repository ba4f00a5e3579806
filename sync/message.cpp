// The sync message codec (docs/ha.md, "Message format").
#include "sync/message.hpp"

#include "sync/auth.hpp"
#include "sync/record_codec.hpp"

namespace pptp::sync {

std::string_view name_of(SyncError e) {
  switch (e) {
    case SyncError::Truncated: return "truncated";
    case SyncError::BadMagic: return "bad_magic";
    case SyncError::BadVersion: return "bad_version";
    case SyncError::BadAuth: return "bad_auth";
    case SyncError::UnknownType: return "unknown_type";
    case SyncError::UnknownNode: return "unknown_node";
    case SyncError::ReservedNonZero: return "reserved_non_zero";
    case SyncError::BadRecord: return "bad_record";
    case SyncError::TrailingBytes: return "trailing_bytes";
    case SyncError::BadKey: return "bad_key";
  }
  return "?";
}

MessageType type_of(const Body& b) {
  // The variant's alternatives are in MessageType's order, from 1.
  return static_cast<MessageType>(b.index() + 1);
}

namespace {

constexpr std::uint8_t kWantSnapshot = 1, kSenderActive = 2;
constexpr std::uint8_t kFirstPart = 1, kLastPart = 2;
constexpr std::uint8_t kMaxType = static_cast<std::uint8_t>(MessageType::Head);

struct BodyWriter {
  ByteWriter& w;
  void operator()(const Hello& h) const {
    w.u8(static_cast<std::uint8_t>((h.want_snapshot ? kWantSnapshot : 0) | (h.active ? kSenderActive : 0)));
  }
  void operator()(const Ack&) const {}
  void operator()(const AddCall& a) const { write_record(w, a.call); }
  void operator()(const UpdateCall& u) const { write_record(w, u.call); }
  void operator()(const DeleteCall& d) const { write_key(w, d.key); }
  void operator()(const SnapshotPart& s) const {
    w.u32(s.snapshot_id);
    w.u8(static_cast<std::uint8_t>((s.first ? kFirstPart : 0) | (s.last ? kLastPart : 0)));
    w.u16(static_cast<std::uint16_t>(s.calls.size()));
    for (const CallState& c : s.calls) write_record(w, c);
  }
  void operator()(const MessageHead& h) const { write_head(w, h); }
};

bool records_fit(const Body& b) {
  const auto fits = [](const CallState& c) { return c.user.size() <= kMaxUserLength; };
  if (const auto* a = std::get_if<AddCall>(&b)) return fits(a->call);
  if (const auto* u = std::get_if<UpdateCall>(&b)) return fits(u->call);
  if (const auto* h = std::get_if<MessageHead>(&b)) return valid_head(*h);
  if (const auto* s = std::get_if<SnapshotPart>(&b)) {
    for (const CallState& c : s->calls)
      if (!fits(c)) return false;
    return s->calls.size() <= 0xffff;
  }
  return true;
}

Result<Body, SyncError> read_snapshot(ByteReader& r) {
  SnapshotPart s;
  s.snapshot_id = r.u32();
  const std::uint8_t flags = r.u8();
  const std::uint16_t count = r.u16();
  if (r.failed()) return unexpected(SyncError::Truncated);
  if ((flags & ~(kFirstPart | kLastPart)) != 0) return unexpected(SyncError::BadRecord);
  s.first = (flags & kFirstPart) != 0;
  s.last = (flags & kLastPart) != 0;
  // Each record takes at least its fixed bytes: a count the body cannot hold is refused
  // before anything is reserved for it.
  if (count > r.remaining() / (kKeyBytes + kRecordFixedBytes)) return unexpected(SyncError::Truncated);
  s.calls.reserve(count);
  for (std::uint16_t i = 0; i < count; ++i) {
    auto c = read_record(r);
    if (!c) return unexpected(c.error());
    s.calls.push_back(std::move(*c));
  }
  return Body{std::move(s)};
}

Result<Body, SyncError> read_body(MessageType type, ByteReader& r) {
  switch (type) {
    case MessageType::Hello: {
      const std::uint8_t flags = r.u8();
      if (r.failed()) return unexpected(SyncError::Truncated);
      if ((flags & ~(kWantSnapshot | kSenderActive)) != 0) return unexpected(SyncError::BadRecord);
      return Body{Hello{(flags & kWantSnapshot) != 0, (flags & kSenderActive) != 0}};
    }
    case MessageType::Ack: return Body{Ack{}};
    case MessageType::Add:
    case MessageType::Update: {
      auto c = read_record(r);
      if (!c) return unexpected(c.error());
      if (type == MessageType::Add) return Body{AddCall{std::move(*c)}};
      return Body{UpdateCall{std::move(*c)}};
    }
    case MessageType::Delete: {
      const CallKey k = read_key(r);
      if (r.failed()) return unexpected(SyncError::Truncated);
      return Body{DeleteCall{k}};
    }
    case MessageType::Snapshot: return read_snapshot(r);
    case MessageType::Head: {
      auto h = read_head(r);
      if (!h) return unexpected(h.error());
      return Body{std::move(*h)};
    }
  }
  return unexpected(SyncError::UnknownType);
}

}  // namespace

void encode_body(const Body& b, std::vector<std::uint8_t>& out) {
  ByteWriter w(out);
  std::visit(BodyWriter{w}, b);
}

Result<Body, SyncError> decode_body(MessageType type, Bytes body) {
  const auto t = static_cast<std::uint8_t>(type);
  if (t == 0 || t > kMaxType) return unexpected(SyncError::UnknownType);
  ByteReader r(body);
  auto b = read_body(type, r);
  if (b && r.remaining() != 0) return unexpected(SyncError::TrailingBytes);
  return b;
}

Result<std::size_t, SyncError> encode(const Message& m, Key key, std::vector<std::uint8_t>& out) {
  if (key.size() < kMinKeyBytes) return unexpected(SyncError::BadKey);
  if (m.header.node > kMaxNode) return unexpected(SyncError::UnknownNode);
  if (!records_fit(m.body)) return unexpected(SyncError::BadRecord);
  std::vector<std::uint8_t> body;
  encode_body(m.body, body);
  if (body.size() > 0xffff) return unexpected(SyncError::BadRecord);
  const std::size_t start = out.size();
  ByteWriter w(out);
  w.u32(kMagic);
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(type_of(m.body)));
  w.u8(m.header.node);
  w.u8(0);  // reserved
  w.u32(m.header.epoch);
  write_u64(w, m.header.incarnation);
  write_u64(w, m.header.sequence);
  write_u64(w, m.header.ack);
  w.u16(static_cast<std::uint16_t>(body.size()));
  w.bytes(body);
  const auto tag = compute_tag(key, Bytes(out).subspan(start));
  if (!tag) {
    out.resize(start);
    return unexpected(SyncError::BadKey);
  }
  w.bytes(*tag);
  return out.size() - start;
}

Result<Message, SyncError> decode(Bytes datagram, Key key) {
  if (key.size() < kMinKeyBytes) return unexpected(SyncError::BadKey);
  ByteReader r(datagram);
  const std::uint32_t magic = r.u32();
  const std::uint8_t version = r.u8();
  const std::uint8_t type = r.u8();
  Message m;
  m.header.node = r.u8();
  const std::uint8_t reserved = r.u8();
  m.header.epoch = r.u32();
  m.header.incarnation = get_u64(r);
  m.header.sequence = get_u64(r);
  m.header.ack = get_u64(r);
  const Bytes body = r.bytes(r.u16());
  const std::size_t signed_bytes = r.position();
  const Bytes tag = r.bytes(kTagBytes);
  if (r.failed()) return unexpected(SyncError::Truncated);
  if (magic != kMagic) return unexpected(SyncError::BadMagic);
  if (version != kVersion) return unexpected(SyncError::BadVersion);
  if (r.remaining() != 0) return unexpected(SyncError::TrailingBytes);
  // Nothing else is believed before the tag matched.
  if (!tag_matches(key, datagram.first(signed_bytes), tag)) return unexpected(SyncError::BadAuth);
  if (reserved != 0) return unexpected(SyncError::ReservedNonZero);
  if (m.header.node > kMaxNode) return unexpected(SyncError::UnknownNode);
  auto b = decode_body(static_cast<MessageType>(type), body);
  if (!b) return unexpected(b.error());
  m.body = std::move(*b);
  return m;
}

}  // namespace pptp::sync
