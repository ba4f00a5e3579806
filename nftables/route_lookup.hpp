// The route the kernel would use for one destination, asked per call at offload to the
// netdev fast path (docs/performance.md, "Building it into the daemon: a design"): `fwd`
// skips routing, so the daemon must know the egress device, the next hop and the MTU, and
// must leave on the ip fast path any call whose route is not a plain unicast route.
//
// parse_route_reply() is pure over the bytes of one rtnetlink answer (RTM_NEWROUTE or
// NLMSG_ERROR), so that every refusal is tested without a kernel; RouteAsker asks the
// kernel (RTM_GETROUTE through libmnl, one socket kept open) and hands the answer to it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

struct mnl_socket;

namespace pptp::nft {

// Why a call cannot use the netdev path: each is a reason the daemon counts.
enum class RouteError : std::uint8_t {
  Truncated,         // shorter than its headers or an attribute says
  NotRouteMessage,   // neither RTM_NEWROUTE nor NLMSG_ERROR
  KernelError,       // NLMSG_ERROR with a code (no route: ENETUNREACH, ...)
  NotIpv4,           // rtm_family is not AF_INET
  NotUnicast,        // local, blackhole, unreachable, prohibit, broadcast, multicast, ...
  NotMainTable,      // a policy-routing rule chose another table
  Multipath,         // RTA_MULTIPATH: the kernel would spread the call's packets
  NoOutputInterface  // no RTA_OIF
};
inline constexpr std::size_t kRouteErrorCount = 8;
std::string_view name_of(RouteError e);

struct Route {
  int output_ifindex = 0;
  std::optional<wire::Ipv4Address> gateway;  // absent: the destination is connected
  std::uint32_t mtu = 0;                     // RTA_METRICS' RTAX_MTU; 0: the device's MTU
};

// One netlink message (its nlmsghdr first), as the kernel answers RTM_GETROUTE.
Result<Route, RouteError> parse_route_reply(Bytes message);

// The device's MTU from one RTM_NEWLINK answer (IFLA_MTU).
Result<std::uint32_t, RouteError> parse_link_mtu_reply(Bytes message);

struct RouteLookupError {
  RouteError reason = RouteError::KernelError;
  int kernel_errno = 0;  // socket errors and NLMSG_ERROR codes
};

// Asks the kernel for routes on one rtnetlink socket kept open (a route change makes the
// daemon ask again for many destinations: one socket, not one per question). Not
// thread-safe: its user serialises the questions (netdev_routes.hpp).
class RouteAsker {
 public:
  RouteAsker();
  ~RouteAsker();
  RouteAsker(const RouteAsker&) = delete;
  RouteAsker& operator=(const RouteAsker&) = delete;

  // The route to `destination` (RTM_GETROUTE with RTM_F_LOOKUP_TABLE, so that the answer
  // names the table), then the egress device's MTU where the route has none. A socket that
  // failed is closed and opened again at the next question.
  Result<Route, RouteLookupError> lookup(wire::Ipv4Address destination);
  std::uint64_t sockets_opened() const { return sockets_opened_; }

 private:
  mnl_socket* socket_ = nullptr;
  std::uint32_t sequence_ = 0;
  std::uint64_t sockets_opened_ = 0;
};

// One question on a socket of its own (tools and tests).
Result<Route, RouteLookupError> lookup_route(wire::Ipv4Address destination);

}  // namespace pptp::nft
