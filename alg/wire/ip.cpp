#include "alg/wire/ip.hpp"

#include <charconv>
#include <cstdio>

namespace pptp::wire {

std::string to_string(Ipv4Address a) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", (a.value >> 24) & 0xff, (a.value >> 16) & 0xff,
                (a.value >> 8) & 0xff, a.value & 0xff);
  return buf;
}

bool parse_ipv4_address(std::string_view text, Ipv4Address& out) {
  std::uint32_t value = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 4; ++i) {
    unsigned octet = 0;
    auto [next, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc{} || octet > 255 || next == p || next - p > 3) return false;
    value = (value << 8) | octet;
    p = next;
    if (i < 3) {
      if (p == end || *p != '.') return false;
      ++p;
    }
  }
  if (p != end) return false;
  out.value = value;
  return true;
}

std::string to_string(const Endpoint& e) { return to_string(e.address) + ":" + std::to_string(e.port); }

std::string_view name_of(IpErrorCode c) {
  switch (c) {
    case IpErrorCode::Truncated: return "ip_truncated";
    case IpErrorCode::NotIpv4: return "ip_not_ipv4";
    case IpErrorCode::BadHeaderLength: return "ip_bad_header_length";
    case IpErrorCode::BadTotalLength: return "ip_bad_total_length";
    case IpErrorCode::Fragment: return "ip_fragment";
  }
  return "unknown";
}

std::string describe(const IpError& e) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s (value %u, expected %u)", std::string(name_of(e.code)).c_str(),
                e.actual, e.expected);
  return buf;
}

Result<Ipv4Packet, IpError> parse_ipv4(Bytes data) {
  if (data.size() < 20) {
    return unexpected(IpError{IpErrorCode::Truncated, static_cast<std::uint32_t>(data.size()), 20});
  }
  const unsigned version = data[0] >> 4;
  if (version != 4) return unexpected(IpError{IpErrorCode::NotIpv4, version, 4});
  const std::size_t ihl = ipv4_header_length(data[0]);
  if (ihl < 20 || ihl > data.size()) {
    return unexpected(IpError{IpErrorCode::BadHeaderLength, static_cast<std::uint32_t>(ihl), 20});
  }
  const std::uint16_t total = load_u16(data.data() + 2);
  if (total < ihl || total > data.size()) {
    return unexpected(IpError{IpErrorCode::BadTotalLength, total, static_cast<std::uint32_t>(data.size())});
  }
  const std::uint16_t frag = load_u16(data.data() + 6);
  if ((frag & 0x3fff) != 0) {  // MF set or a fragment offset
    return unexpected(IpError{IpErrorCode::Fragment, frag, 0});
  }
  Ipv4Packet p;
  p.protocol = data[9];
  p.source.value = load_u32(data.data() + 12);
  p.destination.value = load_u32(data.data() + 16);
  p.header_length = ihl;
  p.payload = data.subspan(ihl, total - ihl);
  return p;
}

namespace {
constexpr std::uint8_t kTcpOptionEnd = 0;
constexpr std::uint8_t kTcpOptionNop = 1;
constexpr std::uint8_t kTcpOptionWindowScale = 3;  // RFC 7323 2.2: kind 3, length 3, shift

std::optional<std::uint8_t> window_scale_option(Bytes options) {
  std::size_t pos = 0;
  while (pos < options.size()) {
    const std::uint8_t kind = options[pos];
    if (kind == kTcpOptionEnd) break;
    if (kind == kTcpOptionNop) {
      ++pos;
      continue;
    }
    if (pos + 1 >= options.size()) break;
    const std::size_t length = options[pos + 1];
    if (length < 2 || pos + length > options.size()) break;
    if (kind == kTcpOptionWindowScale && length == 3) return options[pos + 2];
    pos += length;
  }
  return std::nullopt;
}
}  // namespace

Result<TcpSegment, IpError> parse_tcp(Bytes data) {
  if (data.size() < 20) {
    return unexpected(IpError{IpErrorCode::Truncated, static_cast<std::uint32_t>(data.size()), 20});
  }
  TcpSegment s;
  s.source_port = load_u16(data.data());
  s.destination_port = load_u16(data.data() + 2);
  s.sequence = load_u32(data.data() + 4);
  s.acknowledgment = load_u32(data.data() + 8);
  s.header_length = static_cast<std::size_t>(data[12] >> 4) * 4;
  s.flags = data[13];
  if (s.header_length < 20 || s.header_length > data.size()) {
    return unexpected(IpError{IpErrorCode::BadHeaderLength, static_cast<std::uint32_t>(s.header_length), 20});
  }
  s.window = load_u16(data.data() + 14);
  s.window_scale = window_scale_option(data.subspan(20, s.header_length - 20));
  s.payload = data.subspan(s.header_length);
  return s;
}

bool tcp_checksum_ok(const Ipv4Packet& ip) {
  const Bytes t = ip.payload;
  // RFC 1071: the one's complement sum over the pseudo header (addresses, protocol, TCP
  // length) and the segment, checksum field included, is all ones.
  std::uint64_t sum = (ip.source.value >> 16) + (ip.source.value & 0xffff) + (ip.destination.value >> 16) +
                      (ip.destination.value & 0xffff) + kIpProtocolTcp + t.size();
  for (std::size_t i = 0; i + 1 < t.size(); i += 2) sum += load_u16(t.data() + i);
  if (t.size() % 2 != 0) sum += static_cast<std::uint64_t>(t.back()) << 8;
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

}  // namespace pptp::wire
