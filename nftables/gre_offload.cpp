#include "nftables/gre_offload.hpp"

#include <chrono>
#include <map>
#include <set>
#include <tuple>

namespace pptp::nft {

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A count's identity as the ip read fills it (fastpath.hpp): its direction and key fields.
using CountKey = std::tuple<bool, std::uint32_t, std::uint32_t, std::uint16_t>;

CountKey to_client_key(const FastPathCall& c) { return {true, c.server.value, c.outside.value, c.outside_call_id}; }
CountKey to_server_key(const FastPathCall& c) { return {false, c.inside.value, c.server.value, c.server_call_id}; }

CountKey key_of(const FastPathCount& n) {
  return n.to_client ? to_client_key(n.key) : to_server_key(n.key);
}

}  // namespace

std::string_view name_of(FastPathMode m) { return m == FastPathMode::Netdev ? "netdev" : "ip"; }

void merge_netdev_counts(const std::vector<NetdevCall>& calls, const std::vector<NetdevPackets>& packets,
                         std::vector<FastPathCount>& counts) {
  std::map<CountKey, std::size_t> index;
  for (std::size_t i = 0; i < counts.size(); ++i) index.emplace(key_of(counts[i]), i);
  const auto add = [&](bool to_client, const FastPathCall& c, std::uint64_t n) {
    if (n == 0) return;
    const CountKey k = to_client ? to_client_key(c) : to_server_key(c);
    if (auto it = index.find(k); it != index.end()) {
      counts[it->second].packets += n;
      return;
    }
    FastPathCount count;
    count.to_client = to_client;
    count.key = c;
    count.packets = n;
    index.emplace(k, counts.size());
    counts.push_back(count);
  };
  for (std::size_t i = 0; i < calls.size() && i < packets.size(); ++i) {
    add(true, calls[i].call, packets[i].to_client);
    add(false, calls[i].call, packets[i].to_server);
  }
}

ReroutePlan plan_reroute(const std::vector<NetdevCall>& before, const std::vector<NetdevCall>& after) {
  ReroutePlan plan;
  const auto key = [](const FastPathCall& c) {
    return std::tuple{c.server.value, c.outside.value, c.inside.value, c.outside_call_id, c.inside_call_id,
                      c.server_call_id};
  };
  std::map<decltype(key(FastPathCall{})), const NetdevCall*> was, is;
  std::map<std::uint32_t, NetdevHop> hop_was, hop_is;  // by destination
  for (const NetdevCall& n : before) {
    was[key(n.call)] = &n;
    hop_was[n.call.inside.value] = n.to_client;
    hop_was[n.call.server.value] = n.to_server;
  }
  for (const NetdevCall& n : after) {
    is[key(n.call)] = &n;
    hop_is[n.call.inside.value] = n.to_client;
    hop_is[n.call.server.value] = n.to_server;
  }
  for (const auto& [k, old] : was) {
    const auto now = is.find(k);
    if (now == is.end()) {
      plan.stale.push_back(*old);
      ++plan.fell_back;
    } else if (now->second->to_client != old->to_client || now->second->to_server != old->to_server) {
      plan.stale.push_back(*old);
      plan.fresh.push_back(*now->second);
      ++plan.moved_calls;
    }
  }
  for (const auto& [k, now] : is) {
    if (was.count(k) == 0) {
      plan.fresh.push_back(*now);
      ++plan.joined;
    }
  }
  for (const auto& [destination, hop] : hop_was) {
    const auto now = hop_is.find(destination);
    if (now != hop_is.end() && now->second != hop) plan.moved.push_back(wire::Ipv4Address{destination});
  }
  return plan;
}

Result<std::unique_ptr<GreOffload>, std::string> GreOffload::open(const std::optional<NetdevShared>& netdev) {
  std::unique_ptr<GreOffload> o(new GreOffload());
  auto ip = FastPath::open();
  if (!ip) return unexpected(ip.error());
  o->ip_ = std::move(*ip);
  if (netdev) {
    auto elements = NetdevElements::open(kFastPathTimeoutSeconds, netdev->chains);
    if (!elements) return unexpected(elements.error());
    o->netdev_ = std::move(*elements);
    o->shared_ = netdev;
  }
  return o;
}

std::vector<NetdevCall> GreOffload::on_netdev(const std::vector<FastPathCall>& calls, bool chains,
                                              NetdevFallbackCounters* fallbacks) {
  std::vector<NetdevCall> out;
  if (!netdev_) return out;
  const double now = seconds_now();
  out.reserve(calls.size());
  for (const FastPathCall& c : calls) {
    auto hops = shared_->routes->hops_of(c, now);
    if (!hops) {
      if (fallbacks != nullptr) fallbacks->count(hops.error());
      continue;
    }
    NetdevCall n{c, hops->first, hops->second};
    if (chains) {
      if (auto made = ensure_call_chains(*shared_->chains, n); !made) {
        if (fallbacks != nullptr) fallbacks->count(NetdevFallback::ChainFailed);
        netdev_failed(made.error());
        continue;
      }
    }
    out.push_back(n);
  }
  return out;
}

void GreOffload::netdev_failed(const std::string& error) {
  ++netdev_stats_.errors;
  netdev_stats_.last_error = error;
  error_pending_ = true;
}

std::optional<std::string> GreOffload::take_netdev_error() {
  if (!error_pending_) return std::nullopt;
  error_pending_ = false;
  return netdev_stats_.last_error;
}

Result<bool, std::string> GreOffload::add(const std::vector<FastPathCall>& calls) {
  auto r = ip_->add(calls);
  if (!r || !netdev_) return r;
  const std::vector<NetdevCall> n = on_netdev(calls, true, &netdev_stats_.fallbacks);
  if (n.empty()) return r;
  if (auto put = netdev_->add(n); !put) {
    netdev_failed(put.error());
  } else {
    netdev_stats_.calls_added += n.size();
  }
  return r;
}

Result<bool, std::string> GreOffload::refresh(const std::vector<FastPathCall>& calls) {
  auto r = ip_->refresh(calls);
  if (!netdev_) return r;
  // Also puts back what is missing: a call whose route was found since, adopted calls.
  const std::vector<NetdevCall> n = on_netdev(calls, true, nullptr);
  if (!n.empty()) {
    if (auto put = netdev_->refresh(n); !put) netdev_failed(put.error());
  }
  return r;
}

Result<bool, std::string> GreOffload::remove(const std::vector<FastPathCall>& calls) {
  if (netdev_) {
    const std::vector<NetdevCall> n = on_netdev(calls, false, nullptr);
    if (!n.empty()) {
      if (auto gone = netdev_->remove(n); !gone) {
        netdev_failed(gone.error());
      } else {
        netdev_stats_.calls_removed += n.size();
      }
    }
  }
  return ip_->remove(calls);
}

Result<std::vector<FastPathCount>, std::string> GreOffload::read_counters(const std::vector<FastPathCall>& calls) {
  auto counts = ip_->read_counters(calls);
  if (!counts || !netdev_) return counts;
  const std::vector<NetdevCall> n = on_netdev(calls, false, nullptr);
  if (n.empty()) return counts;
  auto packets = netdev_->read_packets(n);
  if (!packets) {
    netdev_failed(packets.error());
    return counts;
  }
  merge_netdev_counts(n, *packets, *counts);
  return counts;
}

Result<bool, std::string> GreOffload::restore(const std::vector<FastPathCall>& calls) {
  auto r = ip_->add(calls);
  if (!r || !netdev_) return r;
  const std::vector<NetdevCall> n = on_netdev(calls, true, nullptr);
  if (!n.empty()) {
    if (auto put = netdev_->refresh(n); !put) netdev_failed(put.error());
  }
  return r;
}

std::set<std::uint32_t> GreOffload::reroute_destinations(const RouteChanges& changes) const {
  if (!netdev_) return {};
  return shared_->routes->affected(changes);
}

GreOffload::RerouteStart GreOffload::begin_reroute(const std::vector<FastPathCall>& calls,
                                                   const std::set<std::uint32_t>& gone) {
  RerouteStart start;
  if (!netdev_ || gone.empty()) return start;
  start.destinations = gone.size();
  for (const FastPathCall& c : calls) {
    if (gone.count(c.inside.value) != 0 || gone.count(c.server.value) != 0) start.calls.push_back(c);
  }
  start.before = on_netdev(start.calls, false, nullptr);
  shared_->routes->forget(gone);
  return start;
}

Result<ReroutePlan, std::string> GreOffload::finish_reroute(const RerouteStart& start) {
  ReroutePlan plan;
  if (!netdev_ || start.calls.empty()) return plan;
  plan = plan_reroute(start.before, on_netdev(start.calls, true, nullptr));
  // The old keys go first (their packets take the ip path meanwhile), then the egress
  // verdicts that name an old hop (a verdict is not replaced in place), then the new.
  Result<bool, std::string> r = true;
  if (!plan.stale.empty()) r = netdev_->remove(plan.stale);
  if (r && !plan.moved.empty()) r = netdev_->remove_egress(plan.moved);
  if (r && !plan.fresh.empty()) r = netdev_->refresh(plan.fresh);
  if (!r) {
    netdev_failed(r.error());
    return unexpected(r.error());
  }
  return plan;
}

void GreOffload::count_reroute(const ReroutePlan& plan) {
  ++netdev_stats_.reroutes;
  netdev_stats_.calls_moved += plan.moved_calls;
  netdev_stats_.calls_fell_back += plan.fell_back;
  netdev_stats_.calls_joined += plan.joined;
}

Result<bool, std::string> GreOffload::reroute(const std::vector<FastPathCall>& calls, const RouteChanges& changes) {
  if (!netdev_) return true;
  auto plan = finish_reroute(begin_reroute(calls, reroute_destinations(changes)));
  if (!plan) return unexpected(plan.error());
  count_reroute(*plan);
  return true;
}

}  // namespace pptp::nft
