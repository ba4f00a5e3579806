// Small helpers over libmnl attributes shared by the queue and the conntrack lookup.
#pragma once

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include <cstdint>
#include <cstring>
#include <optional>

#include "alg/wire/ip.hpp"

namespace pptp::nft {

// Walks the attributes in [first, end) (libmnl's for_each macros assign void*, which C++
// refuses) and returns the first of `type`.
inline const nlattr* find_attribute(const void* first, const void* end, std::uint16_t type) {
  for (auto* a = static_cast<const nlattr*>(first);
       mnl_attr_ok(a, static_cast<int>(static_cast<const char*>(end) - reinterpret_cast<const char*>(a)));
       a = static_cast<const nlattr*>(mnl_attr_next(a))) {
    if (mnl_attr_get_type(a) == type) return a;
  }
  return nullptr;
}

inline const nlattr* nested(const nlattr* parent, std::uint16_t type) {
  if (parent == nullptr) return nullptr;
  const auto* payload = static_cast<const char*>(mnl_attr_get_payload(parent));
  return find_attribute(payload, payload + mnl_attr_get_payload_len(parent), type);
}

// CTA_TUPLE_IP / CTA_IP_V4_DST of a conntrack tuple attribute (CTA_TUPLE_REPLY here).
inline std::optional<wire::Ipv4Address> tuple_destination(const nlattr* tuple) {
  const nlattr* dst = nested(nested(tuple, CTA_TUPLE_IP), CTA_IP_V4_DST);
  if (dst == nullptr || mnl_attr_get_payload_len(dst) != 4) return std::nullopt;
  std::uint32_t v = 0;
  std::memcpy(&v, mnl_attr_get_payload(dst), 4);
  return wire::Ipv4Address{ntohl(v)};
}

}  // namespace pptp::nft
