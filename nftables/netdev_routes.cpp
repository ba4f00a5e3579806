#include "nftables/netdev_routes.hpp"

#include <net/if.h>

#include <algorithm>
#include <memory>

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

bool answer_affected(const RouteChanges& changes, std::uint32_t destination,
                     const Result<NetdevRoute, RouteError>& answer) {
  if (changes.everything) return true;
  for (const RoutePrefix& p : changes.prefixes) {
    if (p.contains(destination)) return true;
    if (answer && answer->route.gateway && p.contains(answer->route.gateway->value)) return true;
  }
  if (!answer) return false;  // a refusal's device is unknown: its prefix's news covers it
  return std::find(changes.links.begin(), changes.links.end(), answer->route.output_ifindex) != changes.links.end();
}

NetdevRoutes::Lookup NetdevRoutes::kernel_lookup() {
  struct Kernel {
    std::mutex mutex;  // one question at a time on the one socket
    RouteAsker asker;
  };
  auto kernel = std::make_shared<Kernel>();
  return [kernel](wire::Ipv4Address destination) -> Result<NetdevRoute, RouteError> {
    const std::lock_guard lock(kernel->mutex);
    auto route = kernel->asker.lookup(destination);
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
  std::uint64_t asked_in = 0;
  {
    const std::lock_guard lock(mutex_);
    auto it = routes_.find(destination.value);
    if (it != routes_.end() && (it->second.route || now - it->second.found_at < kNetdevRetrySeconds)) {
      return it->second.route;
    }
    asked_in = generation_;
    ++lookups_;
  }
  Entry e{lookup_(destination), now};
  const std::lock_guard lock(mutex_);
  // Forgotten meanwhile: this answer may be from before the change, not kept (asked again).
  if (generation_ == asked_in) routes_.insert_or_assign(destination.value, e);
  return e.route;
}

Result<std::pair<NetdevHop, NetdevHop>, NetdevFallback> NetdevRoutes::hops_of(const FastPathCall& call, double now) {
  auto to_client = route_to(call.inside, now);
  if (!to_client) return unexpected(fallback_of(to_client.error()));
  auto to_server = route_to(call.server, now);
  if (!to_server) return unexpected(fallback_of(to_server.error()));
  auto hops = netdev_hops(*to_client, *to_server);
  if (!hops) return unexpected(fallback_of(hops.error()));
  return *hops;
}

std::set<std::uint32_t> NetdevRoutes::affected(const RouteChanges& changes) const {
  std::set<std::uint32_t> out;
  const std::lock_guard lock(mutex_);
  for (const auto& [destination, entry] : routes_) {
    if (answer_affected(changes, destination, entry.route)) out.insert(destination);
  }
  return out;
}

void NetdevRoutes::forget(const std::set<std::uint32_t>& destinations) {
  const std::lock_guard lock(mutex_);
  ++generation_;
  for (std::uint32_t d : destinations) routes_.erase(d);
}

void NetdevRoutes::forget() {
  const std::lock_guard lock(mutex_);
  ++generation_;
  routes_.clear();
}

std::uint64_t NetdevRoutes::lookups() const {
  const std::lock_guard lock(mutex_);
  return lookups_;
}

std::size_t NetdevRoutes::destinations() const {
  const std::lock_guard lock(mutex_);
  return routes_.size();
}

}  // namespace pptp::nft
