// IPv4 and TCP headers, as far as PPTP needs them (RFC 791, RFC 9293). Pure parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"

namespace pptp::wire {

inline constexpr std::uint8_t kIpProtocolTcp = 6;
inline constexpr std::uint16_t kPptpPort = 1723;  // RFC 2637 section 1.3

struct Ipv4Address {
  std::uint32_t value = 0;  // host order
  auto operator<=>(const Ipv4Address&) const = default;
};
std::string to_string(Ipv4Address a);
// "192.0.2.1" -> address; false on anything else.
bool parse_ipv4_address(std::string_view text, Ipv4Address& out);

struct Endpoint {
  Ipv4Address address;
  std::uint16_t port = 0;
  auto operator<=>(const Endpoint&) const = default;
};
std::string to_string(const Endpoint& e);

enum class IpErrorCode : std::uint8_t {
  Truncated,
  NotIpv4,
  BadHeaderLength,
  BadTotalLength,
  Fragment,  // fragments are not reassembled here; the kernel's defrag runs before the queue
};
std::string_view name_of(IpErrorCode c);

struct IpError {
  IpErrorCode code = IpErrorCode::Truncated;
  std::uint32_t actual = 0;
  std::uint32_t expected = 0;
};
std::string describe(const IpError& e);

struct Ipv4Packet {
  Ipv4Address source;
  Ipv4Address destination;
  std::uint8_t protocol = 0;
  std::size_t header_length = 0;
  Bytes payload;  // up to the Total Length (link-layer padding cut off)
};
Result<Ipv4Packet, IpError> parse_ipv4(Bytes data);
// The header length an IPv4 header's first byte states (IHL x 4): the one place it is
// decoded. The caller has checked that the byte is there.
inline std::size_t ipv4_header_length(std::uint8_t first_byte) { return static_cast<std::size_t>(first_byte & 0x0f) * 4; }

namespace tcp_flags {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kPsh = 0x08;
inline constexpr std::uint8_t kAck = 0x10;
}  // namespace tcp_flags

struct TcpSegment {
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  std::uint32_t sequence = 0;
  std::uint32_t acknowledgment = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;  // as sent: unscaled
  std::optional<std::uint8_t> window_scale;  // the Window Scale option's shift (RFC 7323 2.2)
  std::size_t header_length = 0;
  Bytes payload;
  bool has(std::uint8_t flag) const { return (flags & flag) != 0; }
};
// Options that do not parse end the option list (as Linux's tcp_parse_options does): they
// are not an error.
Result<TcpSegment, IpError> parse_tcp(Bytes data);

// The TCP checksum (RFC 9293 3.1) over the pseudo header and ip.payload is right. Captures
// taken on the sender's host hold checksums the NIC had yet to fill in (offload): only
// trust this on packets that came from a wire.
bool tcp_checksum_ok(const Ipv4Packet& ip);

}  // namespace pptp::wire
