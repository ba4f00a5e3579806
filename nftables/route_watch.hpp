// Hearing that routes or links changed (--fast-path netdev; docs/packet-path.md, "Fast path
// at netdev ingress"): the netdev path's elements name the device and next hop each call's
// routes had when it was offloaded, and `fwd` skips routing, so a route or a device that
// changes (an MTU, a link down, a new next hop) must move the calls it carries. The daemon
// subscribes to rtnetlink's IPv4 route and link groups, notes which prefixes and devices
// changed and, at its next tick, asks again for the routes those changes may alter
// (NetdevRoutes::affected, GreOffload::begin_reroute).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "alg/core/result.hpp"

struct mnl_socket;

namespace pptp::nft {

// Beyond this many prefixes or devices, a burst of news is taken as "everything changed".
inline constexpr std::size_t kRouteChangesListed = 256;

// An IPv4 prefix, its address in host order.
struct RoutePrefix {
  std::uint32_t address = 0;
  std::uint8_t length = 0;  // 0: the default route, every destination
  bool contains(std::uint32_t destination) const;
  bool operator==(const RoutePrefix&) const = default;
};

// What changed since the routes were last asked: IPv4 routes added or removed (any table:
// a new local route makes a destination local), devices changed or gone (an MTU, a link
// down); `everything` when news was lost (ENOBUFS), unreadable or too much to list.
struct RouteChanges {
  std::vector<RoutePrefix> prefixes;
  std::vector<int> links;  // ifindexes
  bool everything = false;
  std::size_t messages = 0;  // route and link messages heard

  bool any() const { return everything || !prefixes.empty() || !links.empty(); }
  void add(const RouteChanges& more);  // kept short: past kRouteChangesListed, everything
};

// The route and link messages of one datagram (RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWLINK,
// RTM_DELLINK); a header or attribute running past the datagram makes it `everything`,
// never read further. Pure.
RouteChanges classify_route_news(std::span<const std::uint8_t> datagram);

class RouteWatch {
 public:
  static Result<std::unique_ptr<RouteWatch>, std::string> open();
  ~RouteWatch();
  RouteWatch(const RouteWatch&) = delete;
  RouteWatch& operator=(const RouteWatch&) = delete;

  int fd() const;
  // Reads every datagram waiting (non-blocking): what they say changed; everything when the
  // kernel dropped notifications (ENOBUFS: anything may have).
  Result<RouteChanges, std::string> drain();

 private:
  RouteWatch() = default;
  mnl_socket* socket_ = nullptr;
};

}  // namespace pptp::nft
