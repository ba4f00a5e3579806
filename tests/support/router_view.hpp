// A control connection as the router's forward hook sees it, for tests and in-process
// benchmarks (no test framework here): both endpoints' TCP sequence numbers, and segments
// with correct checksums (the gateway ignores segments with a bad one).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "nat/checksum.hpp"
#include "tests/support/packets.hpp"

namespace pptp::test::router {

using Packet = std::vector<std::uint8_t>;

inline const wire::Ipv4Address kPublic = addr("198.51.100.1");
inline const wire::Ipv4Address kServer = addr("198.51.100.2");

inline Packet checksummed(Packet p) {
  nat::update_ipv4_header_checksum(p, 20);
  if (p[9] == wire::kIpProtocolTcp) nat::update_tcp_checksum(p, 20);
  return p;
}

// One client's (PNS's) control connection toward the server (PAC).
struct Client {
  wire::Endpoint pns;
  wire::Endpoint pac{kServer, wire::kPptpPort};
  std::uint32_t pns_seq = 1000, pac_seq = 5000;

  // Each side acknowledges everything the other has sent, as a peer that receives it all,
  // unless a test sets where the gateway's drops stopped it.
  std::optional<std::uint32_t> pns_received = std::nullopt, pac_received = std::nullopt;
  static std::uint32_t ack_of(std::uint8_t f, std::optional<std::uint32_t> received, std::uint32_t other_seq) {
    return (f & wire::tcp_flags::kAck) ? received.value_or(other_seq) : 0;
  }

  Packet to_pac(const Packet& data, std::uint8_t f = wire::tcp_flags::kAck | wire::tcp_flags::kPsh) {
    Packet p = checksummed(tcp(pns, pac, pns_seq, f, data, ack_of(f, pns_received, pac_seq)));
    pns_seq += static_cast<std::uint32_t>(data.size()) + ((f & wire::tcp_flags::kSyn) ? 1 : 0);
    return p;
  }
  Packet to_pns(const Packet& data, std::uint8_t f = wire::tcp_flags::kAck | wire::tcp_flags::kPsh) {
    Packet p = checksummed(tcp(pac, pns, pac_seq, f, data, ack_of(f, pac_received, pns_seq)));
    pac_seq += static_cast<std::uint32_t>(data.size()) + ((f & wire::tcp_flags::kSyn) ? 1 : 0);
    return p;
  }
};

}  // namespace pptp::test::router
