// The fast path at netdev ingress (issue 17; docs/performance.md, "Building it into the
// daemon: a design"): table netdev pptp_alg_fast takes an offloaded call's GRE as the
// interface receives it, rewrites it as the ip table's fast_lookup does (fastpath.hpp) and
// hands it to the egress device with `fwd` (nft_fwd_netdev), past prerouting, routing,
// forward and postrouting.
//
//   in_<device>   one ingress base chain per interface that carries offloaded calls; its
//                 guards send the normal way (return: the ip table's fast_in, the queue)
//                 whatever is not enhanced GRE (RFC 2637 4.1), fragments, TTL 1 or less
//                 (`fwd` drops those silently; routing sends ICMP Time Exceeded), and PPP
//                 link control and authentication (issue 12), as fast_ppp does; then the
//                 lookups of the device's roles (lookup_from_server, lookup_from_client)
//   in_plain, in_address, in_call_id, out_source
//                 the ip table's maps with the ingress ifindex first in the key: a call's
//                 key is only looked up on the interface its route points to (the check
//                 routing's reverse-path filter gave, which `fwd` skips)
//   egress        rewritten destination : goto hop_<ifindex>_<next hop>, whose one rule is
//                 `fwd ip to <next hop> device <device>` (a connected destination: to ip daddr)
//
// This file: the table's script, the elements' bytes and the per-call choice (all pure).
// The daemon uses it with --fast-path netdev (gre_offload.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"
#include "nftables/route_lookup.hpp"

namespace pptp::nft {

inline constexpr std::string_view kNetdevTable = "pptp_alg_fast";
inline constexpr std::string_view kNetdevInPlain = "in_plain";
inline constexpr std::string_view kNetdevInAddress = "in_address";
inline constexpr std::string_view kNetdevInCallId = "in_call_id";
inline constexpr std::string_view kNetdevOutSource = "out_source";
inline constexpr std::string_view kNetdevEgress = "egress";
// A rewritten packet whose destination has no egress element: dropped and counted, since
// the normal path would see a half-rewritten packet.
inline constexpr std::string_view kNetdevCounterNoEgress = "no_egress";
inline constexpr std::size_t kDeviceNameMax = 15;  // IFNAMSIZ - 1

// One distinct way out: the egress device and the next hop (none: the destination is on
// the device's own subnet, `fwd` resolves it).
struct NetdevHop {
  int ifindex = 0;
  std::string device;
  std::optional<wire::Ipv4Address> gateway;
  auto operator<=>(const NetdevHop&) const = default;
};

// A device name nft may quote: 1-15 characters, none of which ends a quoted string.
bool valid_device_name(std::string_view name);

// The chain a hop's packets go to (unique per ifindex and next hop).
std::string hop_chain_name(const NetdevHop& hop);

// The whole table for these ingress devices (each named by valid_device_name, each with
// both roles), created from nothing: `table netdev pptp_alg_fast` is deleted first by the caller (or absent).
std::string netdev_table_script(const std::vector<std::string>& ingress_devices);

// One hop's chain, added to the existing table.
std::string netdev_hop_script(const NetdevHop& hop);

// Which GRE a device receives for a call: the server's (its lookups: in_plain, in_address)
// or the client's (out_source). A device may have both (a one-armed router).
enum class NetdevRole : std::uint8_t { FromServer, FromClient };

// One ingress chain with its guards and no lookups, added to the existing table: for the
// first call whose GRE arrives on that device.
std::string netdev_ingress_script(const std::string& device);

// The jumps to one role's lookups, appended to the device's ingress chain: a packet pays
// only the lookups of the roles its device has (the client's GRE, three map misses fewer).
std::string netdev_role_script(const std::string& device, NetdevRole role);

// Element keys: the ingress ifindex (meta iif: host byte order, one register), then the ip
// table's key (fastpath_keys.hpp): two addresses and the Key, network order.
using NetdevKey = std::array<std::uint8_t, 16>;
NetdevKey netdev_key_of(int ingress_ifindex, wire::Ipv4Address a, wire::Ipv4Address b, std::uint16_t call_id);

// Why a call whose routes were found stays on the ip fast path (route_lookup.hpp names the
// reasons a route is refused): counted by name.
enum class NetdevRefusal : std::uint8_t {
  MtuDiffers,  // `fwd` checks no MTU: a packet that fits the ingress must fit the egress
  DeviceName   // a device name nft could not quote
};
std::string_view name_of(NetdevRefusal r);

// One direction's way out, from its route and the name of its device.
struct NetdevRoute {
  Route route;
  std::string device;
};

// The two hops of a call whose GRE may take the netdev path: both devices' MTUs equal (each
// direction's ingress is the other's egress), both names usable.
Result<std::pair<NetdevHop, NetdevHop>, NetdevRefusal> netdev_hops(const NetdevRoute& to_client,
                                                                   const NetdevRoute& to_server);

}  // namespace pptp::nft
