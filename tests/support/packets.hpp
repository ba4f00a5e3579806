// Test helpers: craft IPv4/TCP/GRE packets and PPTP messages as bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/wire/control_message.hpp"
#include "alg/wire/gre.hpp"
#include "alg/wire/ip.hpp"

namespace pptp::test {

inline wire::Ipv4Address addr(const char* text) {
  wire::Ipv4Address a;
  if (!wire::parse_ipv4_address(text, a)) throw std::runtime_error(std::string("bad address ") + text);
  return a;
}

inline std::vector<std::uint8_t> ipv4(wire::Ipv4Address src, wire::Ipv4Address dst, std::uint8_t proto,
                                      const std::vector<std::uint8_t>& payload) {
  // Sized once, then filled (GCC 12 -O3 misreads an insert after indexed stores: -Warray-bounds).
  std::vector<std::uint8_t> p(20 + payload.size());
  p[0] = 0x45;
  store_u16(&p[2], static_cast<std::uint16_t>(20 + payload.size()));
  p[8] = 64;
  p[9] = proto;
  store_u32(&p[12], src.value);
  store_u32(&p[16], dst.value);
  std::copy(payload.begin(), payload.end(), p.begin() + 20);
  return p;
}

inline std::vector<std::uint8_t> tcp(wire::Endpoint src, wire::Endpoint dst, std::uint32_t seq,
                                     std::uint8_t flags, const std::vector<std::uint8_t>& data = {},
                                     std::uint32_t ack = 0) {
  std::vector<std::uint8_t> t(20 + data.size());
  store_u16(&t[0], src.port);
  store_u16(&t[2], dst.port);
  store_u32(&t[4], seq);
  store_u32(&t[8], ack);
  t[12] = 5 << 4;
  t[13] = flags;
  store_u16(&t[14], 65535);
  std::copy(data.begin(), data.end(), t.begin() + 20);
  return ipv4(src.address, dst.address, wire::kIpProtocolTcp, t);
}

inline std::vector<std::uint8_t> gre(wire::Ipv4Address src, wire::Ipv4Address dst, std::uint16_t call_id,
                                     std::optional<std::uint32_t> seq,
                                     const std::vector<std::uint8_t>& ppp = {}) {
  std::vector<std::uint8_t> g;
  wire::GreHeader h;
  h.call_id = call_id;
  h.sequence = seq;
  wire::build_gre(h, ppp, g);
  return ipv4(src, dst, wire::kIpProtocolGre, g);
}

inline std::vector<std::uint8_t> bytes_of(const wire::ControlMessageBody& body) {
  return wire::serialize(wire::make_control_message(body));
}

inline std::vector<std::uint8_t> concat(std::initializer_list<std::vector<std::uint8_t>> parts) {
  std::vector<std::uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// PPP frames with address/control and a two-octet protocol.
inline std::vector<std::uint8_t> ppp(std::uint16_t protocol, std::vector<std::uint8_t> info) {
  // Built in one pass: GCC 12 misreads an insert after a 4-element initializer (-Warray-bounds).
  std::vector<std::uint8_t> f(4 + info.size());
  f[0] = 0xFF;
  f[1] = 0x03;
  store_u16(&f[2], protocol);
  std::copy(info.begin(), info.end(), f.begin() + 4);
  return f;
}

inline std::vector<std::uint8_t> pap_request(const std::string& user, const std::string& password) {
  // Sized once, then filled: GCC 12 at -O3 misreads inserts after a short initializer.
  std::vector<std::uint8_t> p(6 + user.size() + password.size());
  p[0] = 1;  // Authenticate-Request
  p[1] = 1;  // Identifier
  store_u16(&p[2], static_cast<std::uint16_t>(p.size()));
  p[4] = static_cast<std::uint8_t>(user.size());
  std::copy(user.begin(), user.end(), p.begin() + 5);
  p[5 + user.size()] = static_cast<std::uint8_t>(password.size());
  std::copy(password.begin(), password.end(), p.begin() + 6 + static_cast<std::ptrdiff_t>(user.size()));
  return p;
}

// The PAC's PAP Authenticate-Ack (RFC 1334 2.2.2) answering Identifier `id` (pap_request uses 1).
inline std::vector<std::uint8_t> pap_ack(std::uint8_t id = 1) { return ppp(0xc023, {2, id, 0, 5, 0}); }
// An LCP Echo-Request (RFC 1661 5.8): link control, which passes before authentication.
inline std::vector<std::uint8_t> lcp_echo() { return ppp(0xc021, {9, 1, 0, 8, 0, 0, 0, 0}); }

}  // namespace pptp::test
