// The netdev fast path's table (--fast-path netdev; nftables/gre_offload.hpp): made anew at
// start, removed at exit, and its part of the status and metrics.
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "alg/daemon/daemon_loop.hpp"
#include "nftables/command.hpp"

namespace pptp::daemon {

std::optional<nft::NetdevShared> Daemon::open_netdev_table() {
  if (options_.fast_path_mode != nft::FastPathMode::Netdev) return std::nullopt;
  // A previous run's table (its chains name its hops) goes: the calls it carried keep
  // their ip elements, and are put on the new table at their adoption's re-arm.
  (void)nft::run_nft(fmt::format("delete table netdev {}\n", nft::kNetdevTable));
  if (auto r = nft::run_nft(nft::netdev_table_script({})); !r) {
    log_->warn("fast_path_netdev_unavailable error=\"{}\" note=\"offloaded GRE takes the ip fast path\"", r.error());
    return std::nullopt;
  }
  netdev_table_made_ = true;
  log_->info("fast_path_netdev_enabled table={} retry_seconds={:.0f}", nft::kNetdevTable, nft::kNetdevRetrySeconds);
  return nft::NetdevShared{std::make_shared<nft::NetdevRoutes>(nft::NetdevRoutes::kernel_lookup()),
                           std::make_shared<nft::NetdevChains>()};
}

void Daemon::open_route_watch() {
  if (!netdev_table_made_ || !fast_path_) return;
  auto w = nft::RouteWatch::open();
  const int fd = w ? ::dup((*w)->fd()) : -1;  // asio closes its own descriptor
  if (!w || fd < 0) {
    log_->warn("route_watch_unavailable error=\"{}\" note=\"calls on the netdev path keep the ways found at their "
               "offload\"", w ? std::string(std::strerror(errno)) : w.error());
    return;
  }
  route_watch_ = std::move(*w);
  route_stream_.emplace(io_, fd);
  wait_route_news();
}

void Daemon::wait_route_news() {
  route_stream_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                            [this](const boost::system::error_code& ec) { on_route_news(ec); });
}

void Daemon::on_route_news(const boost::system::error_code& ec) {
  if (ec) return;
  auto changed = route_watch_->drain();
  if (!changed) {
    log_->warn("route_watch_failed error=\"{}\" note=\"calls on the netdev path keep their ways\"", changed.error());
    route_stream_.reset();
    route_watch_.reset();
    return;
  }
  // A burst of news (a link going down takes its routes with it) is handled once, at the tick.
  routes_changed_ = routes_changed_ || *changed;
  wait_route_news();
}

void Daemon::reroute_netdev() {
  // The worker's re-arm may be putting elements with the old ways: after it.
  if (!routes_changed_ || !fast_path_ || refresh_busy_) return;
  routes_changed_ = false;
  const nft::NetdevOffloadStats* n = fast_path_->netdev_stats();
  if (n == nullptr) return;
  const auto moved = n->calls_moved, fell_back = n->calls_fell_back, joined = n->calls_joined;
  if (auto r = fast_path_->reroute(gateway_->offloaded_calls()); !r) log_netdev_error(r.error(), "reroute", false);
  log_->info("fast_path_netdev_rerouted calls_moved={} calls_fell_back={} calls_joined={}", n->calls_moved - moved,
             n->calls_fell_back - fell_back, n->calls_joined - joined);
}

void Daemon::restore_netdev_table() {
  if (!netdev_table_made_ || !fast_path_) return;
  if (nft::run_nft(fmt::format("list table netdev {}\n", nft::kNetdevTable))) return;  // still there
  if (auto r = nft::run_nft(nft::netdev_table_script({})); !r) {
    log_netdev_error(r.error(), "restore", false);
    return;
  }
  // Its chains went with it: made again as the re-armed calls need them.
  fast_path_->netdev_table_made_again();
  log_->warn("fast_path_netdev_restored table={} note=\"the ruleset was flushed; the calls are put back\"",
             nft::kNetdevTable);
}

void Daemon::remove_netdev_table() {
  // Always, also with --keep-fast-path: the ip elements carry kept calls until a new
  // daemon makes its own netdev table (whose hops may differ).
  if (!netdev_table_made_) return;
  if (auto r = nft::run_nft(fmt::format("delete table netdev {}\n", nft::kNetdevTable)); !r) {
    log_->warn("fast_path_netdev_remove_failed error=\"{}\"", r.error());
    return;
  }
  log_->info("fast_path_netdev_removed table={}", nft::kNetdevTable);
}

void Daemon::log_netdev_error(const std::optional<std::string>& error, std::string_view where, bool on_worker) {
  if (!error) return;
  if (on_worker) ++netdev_worker_errors_;  // the loop's writer counts its own
  log_->warn("fast_path_netdev_failed during={} error=\"{}\" note=\"those calls' GRE takes the ip fast path\"",
             where, *error);
}

void Daemon::netdev_status(nlohmann::json& s) const {
  const nft::NetdevOffloadStats* n = fast_path_ ? fast_path_->netdev_stats() : nullptr;
  if (n == nullptr) return;
  nlohmann::json j = {{"calls_added", n->calls_added},
                      {"calls_removed", n->calls_removed},
                      {"errors", n->errors + netdev_worker_errors_},
                      {"destinations", fast_path_->netdev_destinations()},
                      {"reroutes", n->reroutes},
                      {"calls_moved", n->calls_moved},
                      {"calls_fell_back", n->calls_fell_back},
                      {"calls_joined", n->calls_joined}};
  j["fallbacks"] = counters_json(n->fallbacks, [](const auto& c, auto&& f) { nft::visit_netdev_fallback_counters(c, f); });
  s["fast_path_netdev"] = std::move(j);
}

void Daemon::netdev_metrics(control::MetricsText& m) const {
  const nft::NetdevOffloadStats* n = fast_path_ ? fast_path_->netdev_stats() : nullptr;
  if (n == nullptr) return;
  m.counter("fast_path_netdev", "calls_added", "offloaded calls put on the netdev path", n->calls_added);
  m.counter("fast_path_netdev", "calls_removed", "calls taken off the netdev path", n->calls_removed);
  m.counter("fast_path_netdev", "errors", "netdev fast-path writes and reads that failed",
            n->errors + netdev_worker_errors_);
  m.counter("fast_path_netdev", "reroutes", "route or link changes the netdev path followed", n->reroutes);
  m.counter("fast_path_netdev", "calls_moved", "calls moved to new hops by route changes", n->calls_moved);
  m.counter("fast_path_netdev", "calls_fell_back", "calls sent back to the ip path by route changes", n->calls_fell_back);
  m.counter("fast_path_netdev", "calls_joined", "calls put on the netdev path by route changes", n->calls_joined);
  m.counters("fast_path_netdev_fallback", n->fallbacks,
             [](const auto& c, auto&& f) { nft::visit_netdev_fallback_counters(c, f); });
}

}  // namespace pptp::daemon
