#include "nat/checksum.hpp"

namespace pptp::nat {

namespace {
constexpr std::size_t kIpChecksumOffset = 10;
constexpr std::size_t kTcpChecksumOffset = 16;

std::uint16_t ip_total_length(Bytes packet) { return load_u16(packet.data() + 2); }

// TCP pseudo header (RFC 9293 3.1): source, destination, zero, protocol, TCP length.
std::uint32_t pseudo_header_sum(Bytes packet, std::size_t tcp_length) {
  std::uint32_t sum = ones_complement_sum(packet.subspan(12, 8));
  sum += packet[9];
  sum += static_cast<std::uint32_t>(tcp_length);
  return sum;
}

std::uint16_t tcp_checksum(Bytes packet, std::size_t header_length) {
  const std::size_t total = std::min<std::size_t>(ip_total_length(packet), packet.size());
  const Bytes segment = packet.subspan(header_length, total - header_length);
  std::uint32_t sum = pseudo_header_sum(packet, segment.size());
  sum = ones_complement_sum(segment.first(kTcpChecksumOffset), sum);
  sum = ones_complement_sum(segment.subspan(kTcpChecksumOffset + 2), sum);
  return static_cast<std::uint16_t>(~fold(sum));
}

std::uint16_t ipv4_checksum(Bytes packet, std::size_t header_length) {
  std::uint32_t sum = ones_complement_sum(packet.first(kIpChecksumOffset));
  sum = ones_complement_sum(packet.subspan(kIpChecksumOffset + 2, header_length - kIpChecksumOffset - 2), sum);
  return static_cast<std::uint16_t>(~fold(sum));
}
}  // namespace

std::uint32_t ones_complement_sum(Bytes data, std::uint32_t initial) {
  std::uint64_t sum = initial;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += load_u16(data.data() + i);
  if (i < data.size()) sum += std::uint32_t{data[i]} << 8;  // odd length: pad with zero
  while (sum >> 32) sum = (sum & 0xffffffffu) + (sum >> 32);
  return static_cast<std::uint32_t>(sum);
}

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

void update_ipv4_header_checksum(std::span<std::uint8_t> packet, std::size_t header_length) {
  store_u16(packet.data() + kIpChecksumOffset, ipv4_checksum(packet, header_length));
}

void update_tcp_checksum(std::span<std::uint8_t> packet, std::size_t header_length) {
  store_u16(packet.data() + header_length + kTcpChecksumOffset, tcp_checksum(packet, header_length));
}

bool ipv4_header_checksum_ok(Bytes packet, std::size_t header_length) {
  return load_u16(packet.data() + kIpChecksumOffset) == ipv4_checksum(packet, header_length);
}

bool tcp_checksum_ok(Bytes packet, std::size_t header_length) {
  return load_u16(packet.data() + header_length + kTcpChecksumOffset) == tcp_checksum(packet, header_length);
}

}  // namespace pptp::nat
