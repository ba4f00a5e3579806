// The netdev fast path's table (--fast-path netdev; nftables/gre_offload.hpp): made anew at
// start, removed at exit, and its part of the status and metrics.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

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
  auto stream = w ? watch_descriptor(io_, (*w)->fd()) : unexpected(w.error());
  if (!stream) {
    log_->warn("route_watch_unavailable error=\"{}\" note=\"calls on the netdev path keep the ways found at their "
               "offload\"", stream.error());
    return;
  }
  route_watch_ = std::move(*w);
  route_stream_.emplace(std::move(*stream));
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
  route_changes_.add(*changed);
  wait_route_news();
}

void Daemon::reroute_netdev() {
  // The worker's re-arm may be putting elements with the old ways: after it.
  if (!route_changes_.any() || !fast_path_ || refresh_busy_ || fast_path_->netdev_stats() == nullptr) return;
  const nft::RouteChanges changes = std::exchange(route_changes_, nft::RouteChanges{});
  // On the loop, at once: the calls that may move, and their routes' answers forgotten (a
  // call offloaded from now on asks the new routes). The questions and writes, which grow
  // with the calls, on the worker.
  const double started = now();
  const std::set<std::uint32_t> gone = fast_path_->reroute_destinations(changes);
  nft::GreOffload::RerouteStart start = fast_path_->begin_reroute(gateway_->offloaded_calls_to(gone), gone);
  const Rerouted what{start.destinations, start.calls.size(), started, now() - started};
  if (!counter_reader_ || start.calls.empty()) {
    auto plan = fast_path_->finish_reroute(start);
    log_netdev_error(fast_path_->take_netdev_error(), "reroute", false);
    on_rerouted(plan, what);
    return;
  }
  refresh_busy_ = true;  // ends the worker's re-arms meanwhile; removals wait for it
  boost::asio::post(*worker_, [this, start = std::move(start), what] {
    auto plan = counter_reader_->finish_reroute(start);
    boost::asio::post(io_, [this, plan = std::move(plan), what, error = counter_reader_->take_netdev_error()] {
      log_netdev_error(error, "reroute", true);
      worker_writes_done();
      on_rerouted(plan, what);
    });
  });
}

void Daemon::on_rerouted(const Result<nft::ReroutePlan, std::string>& plan, const Rerouted& what) {
  if (!plan || !fast_path_) return;  // logged and counted by its writer
  fast_path_->count_reroute(*plan);
  if (what.calls == 0) {
    log_->debug("fast_path_netdev_rerouted destinations={} calls_checked=0", what.destinations);
    return;
  }
  log_->info("fast_path_netdev_rerouted destinations={} calls_checked={} calls_moved={} calls_fell_back={} "
             "calls_joined={} select_ms={:.2f} reroute_ms={:.1f}",
             what.destinations, what.calls, plan->moved_calls, plan->fell_back, plan->joined, what.select * 1000,
             (now() - what.started) * 1000);
}

void Daemon::restore_netdev_table() {
  if (!netdev_table_made_ || !fast_path_) return;
  if (nft::run_nft(fmt::format("list table netdev {}\n", nft::kNetdevTable))) return;  // still there
  if (auto r = nft::run_nft(nft::netdev_table_script({})); !r) {
    log_netdev_error(r.error(), "restore", false);
    return;
  }
  // Its chains went with it: made again as the calls put back need them (repair_rules).
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
                      {"route_lookups", fast_path_->netdev_route_lookups()},
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
  m.counter("fast_path_netdev", "route_lookups", "routes asked of the kernel for the netdev path",
            fast_path_->netdev_route_lookups());
  m.counter("fast_path_netdev", "reroutes", "route or link changes the netdev path followed", n->reroutes);
  m.counter("fast_path_netdev", "calls_moved", "calls moved to new hops by route changes", n->calls_moved);
  m.counter("fast_path_netdev", "calls_fell_back", "calls sent back to the ip path by route changes", n->calls_fell_back);
  m.counter("fast_path_netdev", "calls_joined", "calls put on the netdev path by route changes", n->calls_joined);
  m.counters("fast_path_netdev_fallback", n->fallbacks,
             [](const auto& c, auto&& f) { nft::visit_netdev_fallback_counters(c, f); });
}

}  // namespace pptp::daemon
