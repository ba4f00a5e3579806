// The bytes of the fast path's set elements (fastpath.hpp): keys, values and the binding
// kept as userdata. Pure functions, so that their layout is tested without a kernel.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "alg/core/bytes.hpp"
#include "nftables/fastpath.hpp"

namespace pptp::nft {

// Concatenated keys: each field in its own 32-bit register, in network byte order; the GRE
// Key (16 bits) is padded with zeros (nftables' layout for `ip saddr . ip daddr . @th,48,16`).
using Key = std::array<std::uint8_t, 12>;

inline Key key_of(wire::Ipv4Address a, wire::Ipv4Address b, std::uint16_t call_id) {
  Key k{};
  store_u32(k.data(), a.value);
  store_u32(k.data() + 4, b.value);
  store_u16(k.data() + 8, call_id);
  return k;
}

// Leaves the fields as they are when the key is too short.
inline void parse_key(const void* data, std::uint32_t length, wire::Ipv4Address& a, wire::Ipv4Address& b,
                      std::uint16_t& call_id) {
  if (data == nullptr || length < 10) return;
  const auto* p = static_cast<const std::uint8_t*>(data);
  a.value = load_u32(p);
  b.value = load_u32(p + 4);
  call_id = load_u16(p + 8);
}

// Element values: the client's address (fast_in_plain, fast_in_address) and the client's
// Call ID (fast_in_call_id), network order, as `ip daddr set` and `@th,48,16 set` write them.
inline std::array<std::uint8_t, 4> address_value(wire::Ipv4Address a) {
  std::array<std::uint8_t, 4> v{};
  store_u32(v.data(), a.value);
  return v;
}
inline std::array<std::uint8_t, 2> call_id_value(std::uint16_t call_id) {
  std::array<std::uint8_t, 2> v{};
  store_u16(v.data(), call_id);
  return v;
}

// The call's whole binding in 18 bytes, network order, kept by the kernel with the element:
// server, outside, inside addresses, then outside, inside, server Call IDs.
inline constexpr std::size_t kBindingLength = 18;
using Binding = std::array<std::uint8_t, kBindingLength>;

inline Binding binding_of(const FastPathCall& c) {
  Binding b{};
  std::size_t at = 0;
  for (std::uint32_t v : {c.server.value, c.outside.value, c.inside.value}) {
    store_u32(b.data() + at, v);
    at += 4;
  }
  for (std::uint16_t v : {c.outside_call_id, c.inside_call_id, c.server_call_id}) {
    store_u16(b.data() + at, v);
    at += 2;
  }
  return b;
}

inline std::optional<FastPathCall> parse_binding(const void* data, std::uint32_t length) {
  if (data == nullptr || length != kBindingLength) return std::nullopt;
  const auto* p = static_cast<const std::uint8_t*>(data);
  FastPathCall c;
  c.server.value = load_u32(p);
  c.outside.value = load_u32(p + 4);
  c.inside.value = load_u32(p + 8);
  c.outside_call_id = load_u16(p + 12);
  c.inside_call_id = load_u16(p + 14);
  c.server_call_id = load_u16(p + 16);
  return c;
}

}  // namespace pptp::nft
