// The ways out of the netdev fast path (issue 17; docs/packet-path.md, "Netdev fast path"),
// per destination: `fwd` skips routing, so an offloaded call's elements in table netdev
// pptp_alg_fast name the device and next hop its routes use (route_lookup.hpp). Each
// destination is looked up the first time a call needs it and the answer kept, so that
// every writer of the call's elements (the daemon's loop and its worker, gre_offload.hpp)
// computes the same keys from the call alone: shared, the answers guarded by a mutex that
// is never held across a question to the kernel (the loop does not wait on the worker's).
//
// A destination whose lookup refused (no route yet, a blackhole, policy routing, ...) is
// asked again after kNetdevRetrySeconds: a call found later to have a usable way is put on
// the netdev path at its next re-arm. When routes or links change (route_watch.hpp) the
// daemon forgets the answers those changes may alter (affected()), and moves the calls
// whose ways changed (GreOffload::begin_reroute).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>

#include "alg/core/counter_list.hpp"
#include "alg/core/result.hpp"
#include "nftables/fastpath.hpp"
#include "nftables/netdev_fastpath.hpp"
#include "nftables/route_lookup.hpp"
#include "nftables/route_watch.hpp"

namespace pptp::nft {

inline constexpr double kNetdevRetrySeconds = 30;

// Why an offloaded call stays on the ip fast path (its GRE still offloaded, by table ip
// pptp_alg's rules after routing): counted once per call, at its offload.
#define PPTP_NETDEV_FALLBACK_COUNTERS(X)                                                                        \
  X(no_route, "no_route", "calls left on the ip fast path: the kernel has no route to one end")                   \
  X(not_unicast, "not_unicast", "calls left on the ip fast path: a local, blackhole, unreachable or broadcast route") \
  X(not_main_table, "not_main_table", "calls left on the ip fast path: policy routing chose another table")        \
  X(multipath, "multipath", "calls left on the ip fast path: a multipath route")                                  \
  X(mtu_differs, "mtu_differs", "calls left on the ip fast path: the two ends' devices differ in MTU")             \
  X(device_name, "device_name", "calls left on the ip fast path: a device name nft cannot quote")                  \
  X(lookup_failed, "lookup_failed", "calls left on the ip fast path: the route's answer was unreadable")            \
  X(chain_failed, "chain_failed", "calls left on the ip fast path: a hop's chain could not be made")

enum class NetdevFallback : std::uint8_t {
  NoRoute, NotUnicast, NotMainTable, Multipath, MtuDiffers, DeviceName, LookupFailed, ChainFailed
};

struct NetdevFallbackCounters {
  PPTP_NETDEV_FALLBACK_COUNTERS(PPTP_COUNTER_FIELD)
  void count(NetdevFallback f);
};
template <class F>
void visit_netdev_fallback_counters(const NetdevFallbackCounters& c, F&& f) {
  PPTP_NETDEV_FALLBACK_COUNTERS(PPTP_COUNTER_VISIT)
}

NetdevFallback fallback_of(RouteError e);
NetdevFallback fallback_of(NetdevRefusal r);

// Whether `changes` may alter the kernel's answer for `destination`: a changed prefix
// holding the destination or the answer's gateway (the gateway's own route), or a changed
// device the answer goes out of. Pure.
bool answer_affected(const RouteChanges& changes, std::uint32_t destination,
                     const Result<NetdevRoute, RouteError>& answer);

class NetdevRoutes {
 public:
  // The route to a destination and its device's name (the kernel's: kernel_lookup(), one
  // rtnetlink socket, questions one at a time). Called without the answers' mutex.
  using Lookup = std::function<Result<NetdevRoute, RouteError>(wire::Ipv4Address)>;
  static Lookup kernel_lookup();
  explicit NetdevRoutes(Lookup lookup) : lookup_(std::move(lookup)) {}

  // The hops of a call's two directions: toward its client, toward its server. `now` in
  // seconds (a refusal is asked again kNetdevRetrySeconds after it was found).
  Result<std::pair<NetdevHop, NetdevHop>, NetdevFallback> hops_of(const FastPathCall& call, double now);
  std::size_t destinations() const;
  std::uint64_t lookups() const;  // questions asked of the kernel
  // The destinations whose answers `changes` may alter (answer_affected).
  std::set<std::uint32_t> affected(const RouteChanges& changes) const;
  // Those destinations are asked again at their next use.
  void forget(const std::set<std::uint32_t>& destinations);
  void forget();  // every one

 private:
  struct Entry {
    Result<NetdevRoute, RouteError> route;
    double found_at;
  };
  Result<NetdevRoute, RouteError> route_to(wire::Ipv4Address destination, double now);

  Lookup lookup_;
  mutable std::mutex mutex_;
  std::map<std::uint32_t, Entry> routes_;  // by destination
  // Raised by every forget: an answer asked before it is not kept (it may be the old one).
  std::uint64_t generation_ = 0;
  std::uint64_t lookups_ = 0;
};

}  // namespace pptp::nft
