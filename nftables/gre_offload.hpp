// What the daemon writes for its offloaded calls (docs/packet-path.md, "Fast path" and
// "Netdev fast path"): always table ip pptp_alg's elements (FastPath); with --fast-path
// netdev also, for each call whose two routes allow it (netdev_routes.hpp), table netdev
// pptp_alg_fast's (NetdevElements), which take the call's GRE at ingress, before the ip
// table sees it. The ip elements stay: what the netdev path leaves (a fragment, TTL 1, a
// call that fell back, a netdev write that failed) still takes the ip fast path.
//
// A call is on the netdev path when its routes are found and its hops' chains made; every
// change recomputes that from the call alone (the routes are shared, netdev_routes.hpp), so
// that the loop's writer and the worker's agree. The two tables are written one after the
// other, not in one transaction: ip first when adding (a packet the netdev path has not
// taken yet finds the ip path ready), netdev first when removing.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "alg/core/result.hpp"
#include "nftables/fastpath.hpp"
#include "nftables/netdev_elements.hpp"
#include "nftables/netdev_routes.hpp"

namespace pptp::nft {

enum class FastPathMode : std::uint8_t { Ip, Netdev };
std::string_view name_of(FastPathMode m);

struct NetdevOffloadStats {
  std::uint64_t calls_added = 0, calls_removed = 0, errors = 0;
  // Route or link changes handled; calls moved to new hops, gone back to the ip path, or
  // put on the netdev path by them.
  std::uint64_t reroutes = 0, calls_moved = 0, calls_fell_back = 0, calls_joined = 0;
  NetdevFallbackCounters fallbacks;
  std::string last_error;
};

// What both writers share in netdev mode.
struct NetdevShared {
  std::shared_ptr<NetdevRoutes> routes;
  std::shared_ptr<NetdevChains> chains;
};

// The netdev path's packets added to the ip elements' counts of the same call and
// direction (a count the ip read left out, its element expired, is appended): the daemon's
// idle test sees a call busy whichever path its GRE took. Pure.
void merge_netdev_counts(const std::vector<NetdevCall>& calls, const std::vector<NetdevPackets>& packets,
                         std::vector<FastPathCount>& counts);

// What a change of routes does to the netdev path's calls: `before` and `after` are the
// calls on it with their hops as they were and as they are now. Stale: elements to remove
// (a call whose hops changed, or that left); fresh: to put (whose hops changed, or that
// joined); moved: destinations whose egress element names an old hop. Pure.
struct ReroutePlan {
  std::vector<NetdevCall> stale, fresh;
  std::vector<wire::Ipv4Address> moved;
  std::size_t moved_calls = 0, fell_back = 0, joined = 0;
};
ReroutePlan plan_reroute(const std::vector<NetdevCall>& before, const std::vector<NetdevCall>& after);

class GreOffload {
 public:
  // netdev: nullopt for the ip fast path alone.
  static Result<std::unique_ptr<GreOffload>, std::string> open(const std::optional<NetdevShared>& netdev);
  GreOffload(const GreOffload&) = delete;
  GreOffload& operator=(const GreOffload&) = delete;

  // Each returns the ip table's result (the daemon's fast path depends on it); a netdev
  // write that fails is counted (netdev_stats) and its calls keep the ip path.
  Result<bool, std::string> add(const std::vector<FastPathCall>& calls);
  Result<bool, std::string> refresh(const std::vector<FastPathCall>& calls);
  Result<bool, std::string> remove(const std::vector<FastPathCall>& calls);
  Result<std::vector<FastPathCount>, std::string> read_counters(const std::vector<FastPathCall>& calls);
  // The ip elements put back and the netdev ones re-armed or put back (a flushed ruleset's
  // repair): not counted as calls added again.
  Result<bool, std::string> restore(const std::vector<FastPathCall>& calls);

  // Routes or links changed, in two steps. begin_reroute (where the calls are written, at
  // once: a call offloaded after it asks the new routes) notes, of these calls, those
  // that use a destination the changes may alter, with their hops as they are, and forgets
  // those destinations' answers. finish_reroute (on any writer of the same shared routes:
  // the daemon's worker) asks them again and moves the netdev elements of the calls whose
  // ways changed; count_reroute adds its plan to this writer's netdev_stats. Not while
  // another writer may put elements with the old ways (the daemon waits for its re-arm).
  struct RerouteStart {
    std::vector<FastPathCall> calls;  // those that may move
    std::vector<NetdevCall> before;   // of them, those on the netdev path, as they were
    std::size_t destinations = 0;     // answers forgotten
  };
  // The destinations whose route answers the changes may alter: only calls to these are
  // looked at (the daemon selects them without a list of every call).
  std::set<std::uint32_t> reroute_destinations(const RouteChanges& changes) const;
  RerouteStart begin_reroute(const std::vector<FastPathCall>& calls, const std::set<std::uint32_t>& gone);
  Result<ReroutePlan, std::string> finish_reroute(const RerouteStart& start);
  void count_reroute(const ReroutePlan& plan);
  // The three on this writer (tests, and a daemon without its worker).
  Result<bool, std::string> reroute(const std::vector<FastPathCall>& calls, const RouteChanges& changes);
  // Every ip element (a restart's adoption; the netdev table is made anew at start).
  Result<std::vector<FastPathCount>, std::string> read_counters() { return ip_->read_counters(); }

  const FastPathStats& stats() const { return ip_->stats(); }
  const NetdevOffloadStats* netdev_stats() const { return netdev_ ? &netdev_stats_ : nullptr; }
  std::size_t netdev_destinations() const { return shared_ ? shared_->routes->destinations() : 0; }
  std::uint64_t netdev_route_lookups() const { return shared_ ? shared_->routes->lookups() : 0; }
  // The netdev table was made again (empty, a flushed ruleset): its chains are made anew
  // by the next writes.
  void netdev_table_made_again() {
    if (shared_) shared_->chains->forget();
  }
  // The last netdev failure since the previous call, for the daemon's log.
  std::optional<std::string> take_netdev_error();

 private:
  GreOffload() = default;
  // The calls on the netdev path; with `chains`, their hops' chains made (a call whose
  // chain cannot be made is left out); with `fallbacks`, the others counted.
  std::vector<NetdevCall> on_netdev(const std::vector<FastPathCall>& calls, bool chains,
                                    NetdevFallbackCounters* fallbacks);
  void netdev_failed(const std::string& error);

  std::unique_ptr<FastPath> ip_;
  std::unique_ptr<NetdevElements> netdev_;
  std::optional<NetdevShared> shared_;
  NetdevOffloadStats netdev_stats_;
  bool error_pending_ = false;
};

}  // namespace pptp::nft
