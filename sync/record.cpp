// Call records on the wire: fixed fields in network order, the user name with a one-octet
// length (docs/ha.md, "Message format").
#include "sync/record_codec.hpp"

namespace pptp::sync {

std::string to_string(const CallKey& k) {
  return wire::to_string(k.pns) + " -> " + wire::to_string(k.pac) + " call " + std::to_string(k.pns_call_id);
}

std::string_view name_of(PolicyVerdict v) {
  switch (v) {
    case PolicyVerdict::NoPolicy: return "none";
    case PolicyVerdict::Allow: return "allow";
    case PolicyVerdict::Deny: return "deny";
    case PolicyVerdict::Pending: return "pending";
  }
  return "?";
}

namespace {

constexpr std::uint8_t kPositionsKnown = 1;

void put_endpoint(ByteWriter& w, const wire::Endpoint& e) {
  w.u32(e.address.value);
  w.u16(e.port);
}
wire::Endpoint get_endpoint(ByteReader& r) {
  wire::Endpoint e;
  e.address.value = r.u32();
  e.port = r.u16();
  return e;
}
void put_u64(ByteWriter& w, std::uint64_t v) {
  w.u32(static_cast<std::uint32_t>(v >> 32));
  w.u32(static_cast<std::uint32_t>(v));
}

}  // namespace

std::uint64_t get_u64(ByteReader& r) {
  const std::uint64_t high = r.u32();
  return (high << 32) | r.u32();
}
void write_u64(ByteWriter& w, std::uint64_t v) { put_u64(w, v); }

void write_key(ByteWriter& w, const CallKey& k) {
  put_endpoint(w, k.pns);
  put_endpoint(w, k.pac);
  w.u16(k.pns_call_id);
}

bool valid_head(const MessageHead& h) {
  return h.direction <= 1 && !h.bytes.empty() && h.bytes.size() <= kMaxHeadBytes;
}

void write_head(ByteWriter& w, const MessageHead& h) {
  put_endpoint(w, h.pns);
  put_endpoint(w, h.pac);
  w.u8(h.direction);
  w.u32(h.sequence);
  w.u8(static_cast<std::uint8_t>(h.bytes.size()));
  w.bytes(h.bytes);
}

Result<MessageHead, SyncError> read_head(ByteReader& r) {
  MessageHead h;
  h.pns = get_endpoint(r);
  h.pac = get_endpoint(r);
  h.direction = r.u8();
  h.sequence = r.u32();
  const std::uint8_t length = r.u8();
  const Bytes bytes = r.bytes(length);
  if (r.failed()) return unexpected(SyncError::Truncated);
  h.bytes.assign(bytes.begin(), bytes.end());
  if (!valid_head(h)) return unexpected(SyncError::BadRecord);
  return h;
}

CallKey read_key(ByteReader& r) {
  CallKey k;
  k.pns = get_endpoint(r);
  k.pac = get_endpoint(r);
  k.pns_call_id = r.u16();
  return k;
}

std::size_t record_bytes(const CallState& c) { return kKeyBytes + kRecordFixedBytes + c.user.size(); }

void write_record(ByteWriter& w, const CallState& c) {
  write_key(w, c.key);
  w.u32(c.outside.value);
  w.u16(c.pac_call_id);
  w.u16(c.outside_call_id);
  w.u8(static_cast<std::uint8_t>(c.verdict));
  w.u8(c.positions_known ? kPositionsKnown : 0);
  put_u64(w, c.started_ms);
  put_u64(w, c.updated_ms);
  w.u32(c.next_sequence[0]);
  w.u32(c.next_sequence[1]);
  w.u8(static_cast<std::uint8_t>(c.user.size()));
  w.bytes(Bytes(reinterpret_cast<const std::uint8_t*>(c.user.data()), c.user.size()));
}

Result<CallState, SyncError> read_record(ByteReader& r) {
  CallState c;
  c.key = read_key(r);
  c.outside.value = r.u32();
  c.pac_call_id = r.u16();
  c.outside_call_id = r.u16();
  const std::uint8_t verdict = r.u8();
  const std::uint8_t flags = r.u8();
  c.started_ms = get_u64(r);
  c.updated_ms = get_u64(r);
  c.next_sequence[0] = r.u32();
  c.next_sequence[1] = r.u32();
  const Bytes user = r.bytes(r.u8());
  if (r.failed()) return unexpected(SyncError::Truncated);
  if (verdict > kMaxPolicyVerdict || (flags & ~kPositionsKnown) != 0) return unexpected(SyncError::BadRecord);
  c.verdict = static_cast<PolicyVerdict>(verdict);
  c.positions_known = (flags & kPositionsKnown) != 0;
  c.user.assign(user.begin(), user.end());
  return c;
}

}  // namespace pptp::sync
