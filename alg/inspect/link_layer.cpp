#include "alg/inspect/link_layer.hpp"

namespace pptp::inspect {

namespace {
constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
constexpr std::uint16_t kEtherTypeVlan = 0x8100;
constexpr std::uint16_t kEtherTypeQinQ = 0x88A8;
constexpr std::uint16_t kEtherTypeIpv6 = 0x86DD;
constexpr int kMaxVlanTags = 4;
constexpr std::size_t kIpv6HeaderLength = 40;
constexpr std::uint8_t kIpv6NextIpv4 = 4;  // IPv4-in-IPv6 (RFC 2473), as DS-Lite carries it

std::optional<Bytes> ipv4_after(std::uint16_t ether_type, Bytes rest) {
  if (ether_type == kEtherTypeIpv6 && rest.size() > kIpv6HeaderLength && (rest[0] >> 4) == 6 &&
      rest[6] == kIpv6NextIpv4) {
    rest = rest.subspan(kIpv6HeaderLength);
    ether_type = kEtherTypeIpv4;
  }
  if (ether_type != kEtherTypeIpv4 || rest.empty() || (rest[0] >> 4) != 4) return std::nullopt;
  return rest;
}
}  // namespace

bool link_type_supported(int dlt) {
  switch (dlt) {
    case kDltNull: case kDltEthernet: case kDltRaw: case kDltRawAlt: case kDltLoop:
    case kDltRawLinktype: case kDltLinuxSll: case kDltLinuxSll2: case kLinktypeIpv4:
      return true;
    default:
      return false;
  }
}

std::optional<Bytes> ipv4_in_frame(int dlt, Bytes frame) {
  switch (dlt) {
    case kDltEthernet: {
      if (frame.size() < 14) return std::nullopt;
      std::size_t pos = 12;
      std::uint16_t type = load_u16(frame.data() + pos);
      for (int i = 0; i < kMaxVlanTags && (type == kEtherTypeVlan || type == kEtherTypeQinQ); ++i) {
        pos += 4;
        if (frame.size() < pos + 2) return std::nullopt;
        type = load_u16(frame.data() + pos);
      }
      return ipv4_after(type, frame.subspan(pos + 2));
    }
    case kDltLinuxSll:
      if (frame.size() < 16) return std::nullopt;
      return ipv4_after(load_u16(frame.data() + 14), frame.subspan(16));
    case kDltLinuxSll2:
      if (frame.size() < 20) return std::nullopt;
      return ipv4_after(load_u16(frame.data()), frame.subspan(20));
    case kDltNull:
    case kDltLoop: {
      if (frame.size() < 4) return std::nullopt;
      // The family is in host order of the capturing machine (NULL) or network order (LOOP).
      const bool v4 = frame[0] == 2 || frame[3] == 2;
      if (!v4) return std::nullopt;
      return ipv4_after(kEtherTypeIpv4, frame.subspan(4));
    }
    case kDltRaw:
    case kDltRawAlt:
    case kDltRawLinktype:
    case kLinktypeIpv4:
      return ipv4_after(kEtherTypeIpv4, frame);
    default:
      return std::nullopt;
  }
}

}  // namespace pptp::inspect
