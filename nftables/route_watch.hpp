// Hearing that routes or links changed (--fast-path netdev; docs/packet-path.md, "Fast path
// at netdev ingress"): the netdev path's elements name the device and next hop each call's
// routes had when it was offloaded, and `fwd` skips routing, so a route or a device that
// changes (an MTU, a link down, a new next hop) must move the calls it carries. The daemon
// subscribes to rtnetlink's IPv4 route and link groups and, at its next tick, asks every
// offloaded call's routes again (GreOffload::reroute).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "alg/core/result.hpp"

struct mnl_socket;

namespace pptp::nft {

// Route and link messages in one datagram (RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWLINK,
// RTM_DELLINK); malformed: a header ran past the datagram. Pure.
struct RouteNews {
  std::size_t changes = 0;
  bool malformed = false;
};
RouteNews classify_route_news(std::span<const std::uint8_t> datagram);

class RouteWatch {
 public:
  static Result<std::unique_ptr<RouteWatch>, std::string> open();
  ~RouteWatch();
  RouteWatch(const RouteWatch&) = delete;
  RouteWatch& operator=(const RouteWatch&) = delete;

  int fd() const;
  // Reads every datagram waiting (non-blocking): true if any says that routes or links
  // changed, or the kernel dropped notifications (ENOBUFS: something may have).
  Result<bool, std::string> drain();

 private:
  RouteWatch() = default;
  mnl_socket* socket_ = nullptr;
};

}  // namespace pptp::nft
