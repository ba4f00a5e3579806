// The netdev fast path's pieces for e2e/test_netdev_rules_e2e.py, so that it tests what the
// daemon's code writes, not a copy:
//   netdev_script table DEVICE...       prints table netdev pptp_alg_fast's script
//   netdev_script add SERVER PUBLIC CLIENT OUTSIDE_ID INSIDE_ID SERVER_ID
//                                       resolves both routes (route_lookup.hpp) and adds the
//                                       call's elements (netdev_elements.hpp)
//   netdev_script packets (the same)     prints the packets the call's elements counted
#include <net/if.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "nftables/netdev_elements.hpp"
#include "nftables/netdev_fastpath.hpp"
#include "nftables/route_lookup.hpp"

namespace {

using namespace pptp;
using namespace pptp::nft;

int print_table(int argc, char** argv) {
  std::vector<std::string> devices;
  for (int i = 2; i < argc; ++i) {
    if (!valid_device_name(argv[i])) {
      std::cerr << "not a device name: " << argv[i] << "\n";
      return 2;
    }
    devices.emplace_back(argv[i]);
  }
  std::cout << netdev_table_script(devices);
  return 0;
}

bool route_to(const char* text, wire::Ipv4Address& address, NetdevRoute& out) {
  if (!wire::parse_ipv4_address(text, address)) return false;
  auto route = lookup_route(address);
  if (!route) {
    std::cerr << "route to " << text << ": " << name_of(route.error().reason) << "\n";
    return false;
  }
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(route->output_ifindex), name) == nullptr) return false;
  out = NetdevRoute{*route, name};
  return true;
}

int add_call(char** argv, bool read) {
  NetdevCall c;
  NetdevRoute to_server, to_client;
  if (!route_to(argv[2], c.call.server, to_server) || !wire::parse_ipv4_address(argv[3], c.call.outside) ||
      !route_to(argv[4], c.call.inside, to_client)) {
    return 2;
  }
  auto hops = netdev_hops(to_client, to_server);
  if (!hops) {
    std::cerr << "stays on the ip fast path: " << name_of(hops.error()) << "\n";
    return 3;
  }
  c.to_client = hops->first;
  c.to_server = hops->second;
  c.call.outside_call_id = static_cast<std::uint16_t>(std::atoi(argv[5]));
  c.call.inside_call_id = static_cast<std::uint16_t>(std::atoi(argv[6]));
  c.call.server_call_id = static_cast<std::uint16_t>(std::atoi(argv[7]));
  auto elements = NetdevElements::open();
  if (!elements) {
    std::cerr << elements.error() << "\n";
    return 1;
  }
  if (read) {
    auto packets = (*elements)->read_packets({c});
    if (!packets) std::cerr << packets.error() << "\n";
    if (packets) std::cout << packets->front().to_client + packets->front().to_server << "\n";
    return packets ? 0 : 1;
  }
  auto added = (*elements)->add({c});
  if (!added) std::cerr << added.error() << "\n";
  return added ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "table") return print_table(argc, argv);
  if ((mode == "add" || mode == "packets") && argc == 8) return add_call(argv, mode == "packets");
  std::cerr << "usage: netdev_script table DEVICE... | add|packets SERVER PUBLIC CLIENT OUTSIDE_ID INSIDE_ID SERVER_ID\n";
  return 2;
}
