#include "alg/wire/gre.hpp"

#include <cstdio>

namespace pptp::wire {

namespace {
// First flag octet: C R K S s Recur(3); second: A Flags(4) Ver(3).
constexpr std::uint8_t kFlagChecksum = 0x80;
constexpr std::uint8_t kFlagRouting = 0x40;
constexpr std::uint8_t kFlagKey = 0x20;
constexpr std::uint8_t kFlagSequence = 0x10;
constexpr std::uint8_t kFlagStrictRoute = 0x08;
constexpr std::uint8_t kRecurMask = 0x07;
constexpr std::uint8_t kFlagAck = 0x80;
constexpr std::uint8_t kFlagsMask = 0x78;
constexpr std::uint8_t kVersionMask = 0x07;
}  // namespace

std::string_view name_of(GreErrorCode c) {
  switch (c) {
    case GreErrorCode::Truncated: return "gre_truncated";
    case GreErrorCode::NotEnhanced: return "gre_not_version_1";
    case GreErrorCode::NotPpp: return "gre_not_ppp";
    case GreErrorCode::KeyMissing: return "gre_key_missing";
    case GreErrorCode::ForbiddenFlag: return "gre_forbidden_flag";
  }
  return "unknown";
}

std::string describe(const GreError& e) {
  char buf[128];
  switch (e.code) {
    case GreErrorCode::Truncated:
      std::snprintf(buf, sizeof buf, "GRE packet truncated: %u bytes, need %u", e.actual, e.expected);
      break;
    case GreErrorCode::NotEnhanced:
      std::snprintf(buf, sizeof buf, "GRE version %u, PPTP uses version 1", e.actual);
      break;
    case GreErrorCode::NotPpp:
      std::snprintf(buf, sizeof buf, "GRE protocol 0x%04x, PPTP uses 0x880b", e.actual);
      break;
    case GreErrorCode::KeyMissing:
      std::snprintf(buf, sizeof buf, "GRE version 1 without the Key (Call ID) field");
      break;
    case GreErrorCode::ForbiddenFlag:
      std::snprintf(buf, sizeof buf, "GRE flags 0x%04x set that RFC 2637 4.1 requires clear",
                    e.actual);
      break;
  }
  return buf;
}

Result<GrePacket, GreError> parse_gre(Bytes data) {
  if (data.size() < 4) {
    return unexpected(GreError{GreErrorCode::Truncated, static_cast<std::uint32_t>(data.size()), 4});
  }
  const std::uint8_t f0 = data[0];
  const std::uint8_t f1 = data[1];
  if ((f1 & kVersionMask) != kGreVersionEnhanced) {
    return unexpected(GreError{GreErrorCode::NotEnhanced, static_cast<std::uint32_t>(f1 & kVersionMask), kGreVersionEnhanced});
  }
  const std::uint16_t protocol = load_u16(data.data() + 2);
  if (protocol != kGreProtocolPpp) {
    return unexpected(GreError{GreErrorCode::NotPpp, protocol, kGreProtocolPpp});
  }
  if ((f0 & kFlagKey) == 0) return unexpected(GreError{GreErrorCode::KeyMissing, f0, std::uint32_t{kFlagKey}});
  const std::uint8_t forbidden0 = f0 & (kFlagChecksum | kFlagRouting | kFlagStrictRoute | kRecurMask);
  const std::uint8_t forbidden1 = f1 & kFlagsMask;
  if (forbidden0 != 0 || forbidden1 != 0) {
    return unexpected(GreError{GreErrorCode::ForbiddenFlag,
                               static_cast<std::uint32_t>((forbidden0 << 8) | forbidden1), 0});
  }
  GrePacket p;
  const bool has_seq = (f0 & kFlagSequence) != 0;
  const bool has_ack = (f1 & kFlagAck) != 0;
  const std::size_t need = kGreBaseHeaderLength + (has_seq ? 4 : 0) + (has_ack ? 4 : 0);
  if (data.size() < need) {
    return unexpected(GreError{GreErrorCode::Truncated, static_cast<std::uint32_t>(data.size()),
                               static_cast<std::uint32_t>(need)});
  }
  ByteReader r(data.subspan(4));
  p.header.payload_length = r.u16();
  p.header.call_id = r.u16();
  if (has_seq) p.header.sequence = r.u32();
  if (has_ack) p.header.acknowledgment = r.u32();
  const Bytes rest = r.rest();
  if (rest.size() < p.header.payload_length) {
    return unexpected(GreError{GreErrorCode::Truncated, static_cast<std::uint32_t>(data.size()),
                               static_cast<std::uint32_t>(need + p.header.payload_length)});
  }
  p.payload = rest.first(p.header.payload_length);
  p.trailing = rest.size() - p.header.payload_length;
  return p;
}

void build_gre(const GreHeader& header, Bytes payload, std::vector<std::uint8_t>& out) {
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>(kFlagKey | (header.sequence ? kFlagSequence : 0)));
  w.u8(static_cast<std::uint8_t>((header.acknowledgment ? kFlagAck : 0) | kGreVersionEnhanced));
  w.u16(kGreProtocolPpp);
  w.u16(static_cast<std::uint16_t>(payload.size()));
  w.u16(header.call_id);
  if (header.sequence) w.u32(*header.sequence);
  if (header.acknowledgment) w.u32(*header.acknowledgment);
  w.bytes(payload);
}

}  // namespace pptp::wire
