// This namespace's IPv4 addresses (local_address.hpp).
#include "alg/daemon/local_address.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pptp::daemon {

Result<std::vector<LocalAddress>, std::string> local_addresses() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return unexpected("getifaddrs: " + std::string(std::strerror(errno)));
  std::vector<LocalAddress> out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    sockaddr_in in{};
    std::memcpy(&in, i->ifa_addr, sizeof in);  // sockaddr is not sockaddr_in's alignment
    const bool up = (i->ifa_flags & IFF_UP) != 0 && (i->ifa_flags & IFF_RUNNING) != 0;  // and its carrier
    out.push_back(LocalAddress{wire::Ipv4Address{ntohl(in.sin_addr.s_addr)}, up});
  }
  ::freeifaddrs(list);
  return out;
}

bool holds_address(const std::vector<LocalAddress>& here, wire::Ipv4Address a) {
  return std::ranges::any_of(here, [&](const LocalAddress& l) { return l.up && l.address == a; });
}

}  // namespace pptp::daemon
