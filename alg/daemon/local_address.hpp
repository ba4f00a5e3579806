// Whether an IPv4 address is configured here on an interface that is up: how a restarted
// daemon tells that keepalived holds the pair's virtual address on this node (docs/ha.md,
// "A restarted active daemon: promoting it again"). keepalived adds the virtual addresses
// in MASTER state only and removes them at BACKUP and FAULT; no packet can change that.
#pragma once

#include <string>
#include <vector>

#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

namespace pptp::daemon {

struct LocalAddress {
  wire::Ipv4Address address;
  bool up = false;  // its interface is up and has its carrier (IFF_UP, IFF_RUNNING)
};

// The IPv4 addresses of this network namespace's interfaces (getifaddrs); an error says why not.
Result<std::vector<LocalAddress>, std::string> local_addresses();

// Pure: whether `a` is among `here` on an interface that is up with its carrier (an address
// left on a link that is down is not held: keepalived's FAULT may not have removed it yet).
bool holds_address(const std::vector<LocalAddress>& here, wire::Ipv4Address a);

}  // namespace pptp::daemon
