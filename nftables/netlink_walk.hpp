// Pure walks over netlink bytes (rtnetlink answers and news): no libmnl, so that a test can
// build the bytes and every read stays inside its span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <linux/netlink.h>

#include "alg/core/bytes.hpp"

namespace pptp::nft {

inline constexpr std::size_t kAttributeHeaderLength = 4;  // rtattr / nlattr: length, type

// Netlink's own fields are in the host's byte order (unlike the addresses in them). The
// caller has checked that sizeof(T) bytes are there.
template <typename T>
T native_at(Bytes b, std::size_t at) {
  T v{};
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

inline std::size_t align4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

// Calls each(type, payload) for every attribute in `area`; false when one overruns it
// (fewer than a header's bytes left at the end are padding, not an error).
template <typename Each>
bool for_each_attribute(Bytes area, Each&& each) {
  std::size_t at = 0;
  while (at + kAttributeHeaderLength <= area.size()) {
    const auto length = native_at<std::uint16_t>(area, at);
    const auto type = static_cast<std::uint16_t>(native_at<std::uint16_t>(area, at + 2) & NLA_TYPE_MASK);
    if (length < kAttributeHeaderLength || at + length > area.size()) return false;
    each(type, area.subspan(at + kAttributeHeaderLength, length - kAttributeHeaderLength));
    at += align4(length);
  }
  return true;
}

}  // namespace pptp::nft
