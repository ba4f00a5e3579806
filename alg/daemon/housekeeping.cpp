// The daemon's tick and the worker's jobs (daemon_loop.hpp): expiry, the fast path's
// counters and re-arming, the status file and the summary line. Work that grows with the
// calls is paced by its cost (pacing.hpp) and runs on the worker thread; its results come
// back to the loop.


#include "alg/daemon/daemon_loop.hpp"
#include "alg/daemon/files.hpp"
#include "alg/daemon/status_worker.hpp"
#include "alg/service/systemd.hpp"
#include "alg/version.hpp"
#include "gateway/status_stream.hpp"

namespace pptp::daemon {

namespace {
// The gateway's status with the daemon's parts added; the fast path's element counters go
// into the gateway's fast_path section.
nlohmann::json with_daemon_status(nlohmann::json s, const nlohmann::json& daemon) {
  for (const auto& [key, value] : daemon.items()) {
    if (key == "fast_path") {
      s["fast_path"].update(value);
    } else {
      s[key] = value;
    }
  }
  return s;
}

}  // namespace

std::optional<std::string> write_status_file(const std::string& path, const gateway::StatusSnapshot& snapshot,
                                             const nlohmann::json& daemon) {
  const nlohmann::json summary = with_daemon_status(gateway::status_summary_json(snapshot), daemon);
  auto r = write_private_file(path, [&](const PutPiece& put) {
    gateway::StatusOut out(put);
    gateway::stream_status(summary, snapshot.connections, out);
    return out.finish();
  });
  if (r) return std::nullopt;
  return r.error();
}

std::string status_answer(const gateway::StatusSnapshot& snapshot, const nlohmann::json& daemon) {
  const nlohmann::json summary = with_daemon_status(gateway::status_summary_json(snapshot), daemon);
  // control::ok_answer's {"ok":true,"status":...}, its keys in their sorted order.
  std::string text = R"({"ok":true,"status":)";
  gateway::StatusOut out(
      [&](std::string_view piece) {
        text.append(piece);
        return true;
      },
      /*compact=*/true);
  gateway::stream_status(summary, snapshot.connections, out);
  out.finish();
  text.push_back('}');
  return text;
}

void Daemon::answer_status(Reply reply) {
  // Copied on the loop, formatted on the worker as the status file is: at 65,536 calls the
  // tree built on the loop held queued packets up to 0.6 s and the RSS 120 MB higher (s33
  // review, finding 8).
  answer_off_loop(*worker_, io_, std::move(reply), [copy = StatusCopy{gateway_->status_snapshot(), daemon_status()}] {
    return status_answer(copy.snapshot, copy.daemon);
  });
}

void Daemon::on_status_written(const std::optional<std::string>& error) {
  // A failure is logged when it starts or changes, and its end too: not once a second.
  const std::string now_error = error.value_or("");
  if (now_error == status_error_) return;
  if (error) {
    log_->error("status_file_unwritable file={} error=\"{}\" note=\"create its directory, writable by the "
                "daemon's user, or name another --status-file\"", options_.status_file, *error);
  } else {
    log_->info("status_file_written file={} note=\"writable again\"", options_.status_file);
  }
  status_error_ = now_error;
}

void Daemon::schedule_tick() {
  tick_.expires_after(std::chrono::milliseconds(static_cast<int>(kTickSeconds * 1000)));
  tick_.async_wait([this](const boost::system::error_code& ec) { on_tick(ec); });
}

void Daemon::on_tick(const boost::system::error_code& ec) {
  if (ec) return;
  const double t = now();
  if (!table_monitor_ || t - last_rules_check_ >= kRulesBackstopSeconds) watch_rules("tick");
  fast_path_tick(t);
  reroute_netdev();
  gateway_->expire(t);
  issue_released();
  apply_offload();
  queue_->flush();
  queue_->refresh_kernel_stats();
  refresh_kernel_counters();
  write_status(t);
  log_summary(t);
  report_packet_logs();
  ha_tick();
  // From the packet loop itself: a loop that hangs stops the pings, and systemd restarts it.
  if (watchdog_every_ && t - last_watchdog_ >= *watchdog_every_) {
    last_watchdog_ = t;
    service::notify_watchdog();
  }
  schedule_tick();
}

void Daemon::fast_path_tick(double t) {
  if (!fast_path_) return;
  if (counting_.due(t) && !counting_busy_) read_counters(gateway_->offloaded_calls(), t);
  // Each call's elements re-armed kFastPathRefreshSeconds after they were last armed (their
  // timeout is kFastPathTimeoutSeconds): every tick takes the calls due, no walk of the rest.
  if (!refresh_busy_) {
    std::vector<nft::FastPathCall> due = gateway_->calls_due_for_rearm(t, kFastPathRefreshSeconds);
    if (!due.empty()) refresh_elements(std::move(due));
  }
}

void Daemon::read_counters(std::vector<nft::FastPathCall> live, double t) {
  if (!counter_reader_) {
    counting_.ran(t, cpu_seconds_of([&] { on_counters(fast_path_->read_counters(live), t); }));
    return;
  }
  counting_busy_ = true;
  boost::asio::post(*worker_, [this, live = std::move(live), t] {
    Result<std::vector<nft::FastPathCount>, std::string> counts = unexpected(std::string("not read"));
    const double cost = cpu_seconds_of([&] { counts = counter_reader_->read_counters(live); });
    boost::asio::post(io_, [this, counts = std::move(counts), t, cost, error = counter_reader_->take_netdev_error()] {
      log_netdev_error(error, "counters", true);
      counting_busy_ = false;
      counting_.ran(t, cost + cpu_seconds_of([&] { on_counters(counts, now()); }));
    });
  });
}

void Daemon::on_counters(const Result<std::vector<nft::FastPathCount>, std::string>& counts, double t) {
  if (counts) {
    gateway_->note_offload_counts(*counts, t);
  } else {
    log_->warn("fast_path_counters_failed error=\"{}\"", counts.error());
  }
}

void Daemon::refresh_elements(std::vector<nft::FastPathCall> live) {
  if (!counter_reader_) {
    refresh_cost_ = cpu_seconds_of([&] {
      if (auto r = fast_path_->refresh(live); !r) log_->warn("fast_path_refresh_failed error=\"{}\"", r.error());
    });
    return;
  }
  refresh_busy_ = true;
  boost::asio::post(*worker_, [this, live = std::move(live)] {
    Result<bool, std::string> r = false;
    const double cost = cpu_seconds_of([&] { r = counter_reader_->refresh(live); });
    boost::asio::post(io_, [this, r = std::move(r), cost, calls = live.size(), error = counter_reader_->take_netdev_error()] {
      log_netdev_error(error, "refresh", true);
      on_refreshed(r, cost, calls);
    });
  });
}

void Daemon::worker_writes_done() {
  refresh_busy_ = false;
  // Calls that ended while the worker wrote: their elements may be back.
  if (!removed_while_refreshing_.empty() && fast_path_) (void)fast_path_->remove(removed_while_refreshing_);
  removed_while_refreshing_.clear();
}

void Daemon::on_refreshed(const Result<bool, std::string>& r, double cost, std::size_t calls) {
  worker_writes_done();
  refresh_cost_ = cost;
  if (r) {
    refreshed_elsewhere_ += calls;
  } else {
    log_->warn("fast_path_refresh_failed error=\"{}\"", r.error());
  }
}

nlohmann::json Daemon::daemon_status() const {
  nlohmann::json s = nlohmann::json::object();
  s["daemon"] = {{"version", PPTP_ALG_VERSION},
                 {"queue", options_.queue},
                 {"backend", nft::name_of(backend_)},
                 {"uptime_seconds", now()}};
  nlohmann::json queue = counters_json(queue_->stats(), [](const nft::QueueStats& c, auto&& f) {
    nft::visit_queue_counters(c, f);
  });
  queue["last_errno"] = queue_->stats().last_errno;
  s["queue"] = std::move(queue);
  ha_status(s);
  // Work that grows with the calls, and how often it runs (docs/daemon.md).
  s["housekeeping"] = {{"status_seconds", status_writes_.paced().last_cost()},
                       {"status_build_seconds", status_build_cost_},
                       {"status_every_seconds", status_writes_.paced().interval()},
                       {"counters_seconds", counting_.last_cost()},
                       {"counters_every_seconds", counting_.interval()},
                       {"refresh_seconds", refresh_cost_},
                       {"refresh_every_seconds", kFastPathRefreshSeconds}};
  if (fast_path_) {
    const auto& f = fast_path_->stats();
    s["fast_path"]["mode"] = fast_path_->netdev_stats() != nullptr ? "netdev" : "ip";
    s["fast_path"]["elements"] = {{"added", f.added},
                                  {"removed", f.removed},
                                  {"refreshed", f.refreshed + refreshed_elsewhere_},
                                  {"errors", f.errors}};
    // The conntrack entries of offloaded calls' first (queued) client GRE, deleted at the
    // offload; missed: none was there (or ctnetlink did not answer).
    s["fast_path"]["conntrack"] = {
        {"deleted", conntrack_cleanup_deleted_},
        {"missed", conntrack_cleanup_missed_}};
    netdev_status(s);
  }
  // Control connections' entries put back in ESTABLISHED (gateway counter conntrack_keeps).
  s["conntrack_keeps"] = {{"kept", conntrack_kept_}, {"missed", conntrack_keep_missed_}};
  // Other hosts' client GRE entries for a server Call ID just given to a call (StaleGre).
  s["stale_gre"] = {{"deleted", stale_gre_deleted_}, {"none", stale_gre_none_}};
  nft_counters_status(s);
  return s;
}

void Daemon::write_status(double t) {
  // Copied here as plain values (the loop owns the gateway); formatted and written by the
  // worker, so a status with many calls costs the loop a copy, not its JSON.
  const std::optional<double> built = write_status_off_loop(
      status_writes_, t, !options_.status_file.empty(), *worker_, io_,
      [this] { return StatusCopy{gateway_->status_snapshot(), daemon_status()}; },
      [this](StatusCopy& copy) { return write_status_file(options_.status_file, copy.snapshot, copy.daemon); },
      [this](const std::optional<std::string>& error) { on_status_written(error); });
  if (built) status_build_cost_ = *built;
}

void Daemon::log_summary(double t) {
  if (t - last_summary_ < kSummaryEverySeconds) return;
  last_summary_ = t;
  const auto& s = queue_->stats();
  log_->info("summary connections={} calls={} packets={} socket_overruns={} kernel_queue_dropped={}",
             gateway_->tracker().connection_count(), gateway_->tracker().call_count(), s.packets, s.socket_overruns,
             s.kernel_queue_dropped);
  service::notify_status(fmt::format("{} connections, {} calls, {} offloaded", gateway_->tracker().connection_count(),
                                     gateway_->tracker().call_count(), gateway_->offloader().offloaded()));
}

}  // namespace pptp::daemon
