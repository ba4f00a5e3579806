// Internet checksums (RFC 1071) for the headers NAT rewrites: IPv4 and TCP. GRE in PPTP
// carries no checksum (RFC 2637 section 4.1: the C bit is 0), so a GRE rewrite only
// touches the IPv4 header's.
#pragma once

#include <cstdint>
#include <span>

#include "alg/core/bytes.hpp"

namespace pptp::nat {

// One's-complement sum of `data` folded to 16 bits, added to `initial` (not inverted).
std::uint32_t ones_complement_sum(Bytes data, std::uint32_t initial = 0);
std::uint16_t fold(std::uint32_t sum);

// Recompute the IPv4 header checksum in place. `packet` starts at the IPv4 header, whose
// length the caller has validated (wire::parse_ipv4).
void update_ipv4_header_checksum(std::span<std::uint8_t> packet, std::size_t header_length);
// Recompute the TCP checksum in place over the pseudo header and the whole segment.
void update_tcp_checksum(std::span<std::uint8_t> packet, std::size_t header_length);
// True if the stored checksums are what they should be (tests, and a sanity check).
bool ipv4_header_checksum_ok(Bytes packet, std::size_t header_length);
bool tcp_checksum_ok(Bytes packet, std::size_t header_length);

}  // namespace pptp::nat
