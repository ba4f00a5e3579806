// High availability's settings read and checked (ha_options.hpp; docs/ha.md).
#include "alg/daemon/ha_options.hpp"

#include <fstream>
#include <iterator>

#include "alg/daemon/control_server.hpp"
#include "sync/message.hpp"

namespace pptp::daemon {

Result<wire::Endpoint, std::string> parse_ipv4_endpoint(std::string_view text) {
  auto at = parse_listen_address(text);
  if (!at) return unexpected(at.error());
  if (!at->address().is_v4()) return unexpected("expected an IPv4 ADDRESS:PORT, not '" + std::string(text) + "'");
  return wire::Endpoint{wire::Ipv4Address{at->address().to_v4().to_uint()}, at->port()};
}

std::optional<std::string> sync_endpoints_error(const wire::Endpoint& listen, const wire::Endpoint& peer) {
  // Not 0.0.0.0, nor multicast (224/4), nor class E and the broadcast address (240/4).
  const auto unicast = [](wire::Ipv4Address a) { return a.value != 0 && (a.value >> 24) < 224; };
  if (listen.address.value == 0) {
    return "ha-listen 0.0.0.0 would take sync datagrams on every interface, the outside too: give this node's "
           "address on the sync link";
  }
  if (!unicast(listen.address)) return "ha-listen " + wire::to_string(listen) + " is not a unicast address";
  if (!unicast(peer.address)) {
    return "ha-peer " + wire::to_string(peer) + " is not a unicast address: give the other node's sync address";
  }
  if (peer.address == listen.address && peer.port == listen.port) {
    return "ha-peer " + wire::to_string(peer) + " is ha-listen, this node's own: give the other node's sync address";
  }
  return std::nullopt;
}

Result<std::vector<std::uint8_t>, std::string> read_key_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected("cannot read the key file " + path);
  std::vector<std::uint8_t> key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < sync::kMinKeyBytes) {
    return unexpected("the key in " + path + " is shorter than " + std::to_string(sync::kMinKeyBytes) + " bytes");
  }
  return key;
}

}  // namespace pptp::daemon
