#include "proxy/gre_relay.hpp"

#include "alg/wire/gre.hpp"

namespace pptp::proxy {

std::string_view name_of(GreDrop d) {
  switch (d) {
    case GreDrop::Malformed: return "malformed";
    case GreDrop::UnknownCall: return "unknown_call";
    case GreDrop::WrongSource: return "wrong_source";
  }
  return "?";
}

Result<GreForward, GreDrop> relay_gre(const CallBook& book, Bytes ipv4_packet) {
  auto ip = wire::parse_ipv4(ipv4_packet);
  if (!ip || ip->protocol != wire::kIpProtocolGre) return unexpected(GreDrop::Malformed);
  auto gre = wire::parse_gre(ip->payload);
  if (!gre) return unexpected(GreDrop::Malformed);
  const GreRoute* route = book.route(gre->header.call_id);
  if (route == nullptr) return unexpected(GreDrop::UnknownCall);
  if (route->expected_source != ip->source) return unexpected(GreDrop::WrongSource);
  GreForward out{route->toward, route->source, route->destination, {}, route->call, gre->header.header_length()};
  // Only the GRE the header and its payload length cover: trailing bytes are not relayed.
  const std::size_t length = gre->header.header_length() + gre->payload.size();
  out.gre.assign(ip->payload.begin(), ip->payload.begin() + static_cast<std::ptrdiff_t>(length));
  store_u16(out.gre.data() + wire::kGreCallIdOffset, route->key);
  return out;
}

}  // namespace pptp::proxy
