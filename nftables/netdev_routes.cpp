#include "nftables/netdev_routes.hpp"

#include <net/if.h>

namespace pptp::nft {

void NetdevFallbackCounters::count(NetdevFallback f) {
  switch (f) {
    case NetdevFallback::NoRoute: ++no_route; return;
    case NetdevFallback::NotUnicast: ++not_unicast; return;
    case NetdevFallback::NotMainTable: ++not_main_table; return;
    case NetdevFallback::Multipath: ++multipath; return;
    case NetdevFallback::MtuDiffers: ++mtu_differs; return;
    case NetdevFallback::DeviceName: ++device_name; return;
    case NetdevFallback::LookupFailed: ++lookup_failed; return;
    case NetdevFallback::ChainFailed: ++chain_failed; return;
  }
}

NetdevFallback fallback_of(RouteError e) {
  switch (e) {
    case RouteError::KernelError: return NetdevFallback::NoRoute;  // ENETUNREACH and the like
    case RouteError::NotUnicast: return NetdevFallback::NotUnicast;
    case RouteError::NotMainTable: return NetdevFallback::NotMainTable;
    case RouteError::Multipath: return NetdevFallback::Multipath;
    case RouteError::Truncated:
    case RouteError::NotRouteMessage:
    case RouteError::NotIpv4:
    case RouteError::NoOutputInterface: return NetdevFallback::LookupFailed;
  }
  return NetdevFallback::LookupFailed;
}

NetdevFallback fallback_of(NetdevRefusal r) {
  return r == NetdevRefusal::MtuDiffers ? NetdevFallback::MtuDiffers : NetdevFallback::DeviceName;
}

NetdevRoutes::Lookup NetdevRoutes::kernel_lookup() {
  return [](wire::Ipv4Address destination) -> Result<NetdevRoute, RouteError> {
    auto route = lookup_route(destination);
    if (!route) return unexpected(route.error().reason);
    char name[IF_NAMESIZE] = {};
    // A device gone between the two answers: the lookup is asked again later.
    if (if_indextoname(static_cast<unsigned>(route->output_ifindex), name) == nullptr) {
      return unexpected(RouteError::NoOutputInterface);
    }
    return NetdevRoute{*route, name};
  };
}

Result<NetdevRoute, RouteError> NetdevRoutes::route_to(wire::Ipv4Address destination, double now) {
  auto it = routes_.find(destination.value);
  if (it != routes_.end() && (it->second.route || now - it->second.found_at < kNetdevRetrySeconds)) {
    return it->second.route;
  }
  Entry e{lookup_(destination), now};
  routes_.insert_or_assign(destination.value, e);
  return e.route;
}

Result<std::pair<NetdevHop, NetdevHop>, NetdevFallback> NetdevRoutes::hops_of(const FastPathCall& call, double now) {
  const std::lock_guard lock(mutex_);
  auto to_client = route_to(call.inside, now);
  if (!to_client) return unexpected(fallback_of(to_client.error()));
  auto to_server = route_to(call.server, now);
  if (!to_server) return unexpected(fallback_of(to_server.error()));
  auto hops = netdev_hops(*to_client, *to_server);
  if (!hops) return unexpected(fallback_of(hops.error()));
  return *hops;
}

void NetdevRoutes::forget() {
  const std::lock_guard lock(mutex_);
  routes_.clear();
}

std::size_t NetdevRoutes::destinations() const {
  const std::lock_guard lock(mutex_);
  return routes_.size();
}

}  // namespace pptp::nft
