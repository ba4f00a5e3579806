// Surviving the firewall's own reloads (issue 15): when nf_tables announces that our table,
// a chain or a set of it went, or that the table was created again (nftables/monitor.hpp),
// and as a backstop every kRulesBackstopSeconds (every tick without the monitor), the daemon
// asks the kernel whether its table and chains are there and are still the table it saw
// (nftables/table_watch.hpp). Gone, with rules it installed itself: it installs them again, re-arms
// the fast path's elements, logs a warning and counts it (metrics: daemon_rules_repaired).
// Re-created by someone else (an nftables.conf include from `pptp-alg rules --format nft`):
// the chains are back but the elements are not, so it re-arms them.
#include "alg/daemon/daemon_loop.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace pptp::daemon {

void Daemon::open_table_watch() {
  auto w = nft::TableWatch::open();
  if (!w) {
    log_->warn("rules_watch_unavailable error=\"{}\" note=\"a flushed ruleset is not repaired\"", w.error());
    return;
  }
  table_watch_ = std::move(*w);
  watched_chains_ = nft::table_chains(backend_, rule_options());
  if (auto state = table_watch_->look(watched_chains_); state && state->chains_complete) table_handle_ = state->handle;
  open_table_monitor();
  if (auto c = nft::NamedCounters::open(); c) {
    named_counters_ = std::move(*c);
    refresh_kernel_counters();
  } else {
    log_->warn("nft_counters_unavailable error=\"{}\" note=\"gre_spoofed and no_egress are not in the status\"",
               c.error());
  }
}

std::optional<nft::NamedCount> Daemon::read_named_counter(nft::TableFamily family, std::string_view table,
                                                          std::string_view name) const {
  if (!named_counters_) return std::nullopt;
  auto c = named_counters_->read(family, table, name);
  if (!c) return std::nullopt;  // not ours to install, or the table is being repaired
  return *c;
}

namespace {

// The ip table's named counters (nftables/rules.hpp), in the status as rules.<name> and on
// the metrics endpoint as pptp_alg_rules_<name>_packets_total. The first three are the nft
// and compat backends' (the xtables backend counts in its iptables rules instead).
struct RulesCounter {
  std::string_view name, help;
};
constexpr std::array<RulesCounter, 6> kRulesCounters{{
    {nft::kCounterInvalid, "TCP/1723 and client GRE conntrack found invalid (out of window), dropped before the queue"},
    {nft::kCounterSynLimited, "TCP/1723 SYNs over a source's rate, dropped before the queue"},
    {nft::kCounterGreLimited, "client GRE over a source's queued rate, dropped before the queue"},
    {nft::kCounterGreSpoofed, "GRE whose source does not route back through its interface (forged), dropped first"},
    {nft::kCounterControlSpoofed, "TCP/1723 whose source does not route back through its interface (forged), dropped first"},
    {nft::kCounterControlStray, nft::kCounterControlStrayHelp},
}};

}  // namespace

static_assert(kRulesCounters.size() == kRulesCounterCount);

Daemon::KernelCounters Daemon::read_kernel_counters(bool netdev) const {
  KernelCounters k;
  for (std::size_t i = 0; i < kRulesCounters.size(); ++i) {
    k.rules[i] = read_named_counter(nft::TableFamily::Ip, nft::kTableName, kRulesCounters[i].name);
  }
  if (netdev) k.no_egress = read_named_counter(nft::TableFamily::Netdev, nft::kNetdevTable, nft::kNetdevCounterNoEgress);
  return k;
}

void Daemon::refresh_kernel_counters() {
  if (!named_counters_ || kernel_counters_busy_) return;
  if (!worker_) {  // at start, before the worker: the first status has them
    kernel_counters_ = read_kernel_counters(netdev_table_made_);
    return;
  }
  // A netlink question per counter: on the worker, the only user of named_counters_ from then on.
  kernel_counters_busy_ = true;
  boost::asio::post(*worker_, [this, netdev = netdev_table_made_] {
    KernelCounters k = read_kernel_counters(netdev);
    boost::asio::post(io_, [this, k] {
      kernel_counters_ = k;
      kernel_counters_busy_ = false;
    });
  });
}

void Daemon::nft_counters_status(nlohmann::json& s) const {
  for (std::size_t i = 0; i < kRulesCounters.size(); ++i) {
    if (const auto& c = kernel_counters_.rules[i]) {
      s["rules"][std::string(kRulesCounters[i].name)] = {{"packets", c->packets}, {"bytes", c->bytes}};
    }
  }
  if (const auto& c = kernel_counters_.no_egress) {
    s["fast_path_netdev"]["no_egress"] = {{"packets", c->packets}, {"bytes", c->bytes}};
  }
}

void Daemon::nft_counters_metrics(control::MetricsText& m) const {
  for (std::size_t i = 0; i < kRulesCounters.size(); ++i) {
    if (const auto& c = kernel_counters_.rules[i]) {
      m.counter("rules", std::string(kRulesCounters[i].name) + "_packets", kRulesCounters[i].help, c->packets);
    }
  }
  if (const auto& c = kernel_counters_.no_egress) {
    m.counter("fast_path_netdev", "no_egress_packets", "rewritten GRE dropped on the netdev path: no way out",
              c->packets);
  }
}

Result<boost::asio::posix::stream_descriptor, std::string> watch_descriptor(boost::asio::io_context& io, int fd) {
  const int own = ::dup(fd);
  if (own < 0) return unexpected(std::string(std::strerror(errno)));
  return boost::asio::posix::stream_descriptor(io, own);
}

void Daemon::open_table_monitor() {
  auto m = nft::TableMonitor::open();
  auto stream = m ? watch_descriptor(io_, (*m)->fd()) : unexpected(m.error());
  if (!stream) {
    log_->warn("rules_monitor_unavailable error=\"{}\" note=\"the table is checked every {} s instead\"",
               stream.error(), kTickSeconds);
    return;
  }
  table_monitor_ = std::move(*m);
  monitor_stream_.emplace(std::move(*stream));
  wait_table_news();
}

void Daemon::wait_table_news() {
  monitor_stream_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                              [this](const boost::system::error_code& ec) { on_table_news(ec); });
}

void Daemon::on_table_news(const boost::system::error_code& ec) {
  if (ec) return;
  auto drained = table_monitor_->drain(nft::kTableName);
  if (!drained) {
    log_->warn("rules_monitor_failed error=\"{}\" note=\"the table is checked every {} s instead\"", drained.error(),
               kTickSeconds);
    monitor_stream_.reset();
    table_monitor_.reset();
    return;
  }
  // Lost or unreadable notifications may have been ours: look.
  if (drained->overrun) ++rules_monitor_overruns_;
  const nft::TableNews& news = drained->news;
  if (news.removed || news.created || news.malformed || drained->overrun) watch_rules("netlink_monitor");
  wait_table_news();
}

// Before the privileges go: the raw socket needs CAP_NET_RAW, which the daemon then drops.
void Daemon::open_gre_sink() {
  if (!rules_installed_) return;  // rules from the firewall's own file come back in its transaction
  auto sink = nft::GreSink::open();
  if (!sink) {
    log_->warn("gre_sink_unavailable error=\"{}\" note=\"give CAP_NET_RAW at start: without it a flushed ruleset "
               "makes this router answer the servers' GRE with ICMP protocol unreachable, which ends their calls\"",
               sink.error());
    return;
  }
  gre_sink_ = std::move(*sink);
}

void Daemon::arm_queue_target() {
  if (backend_ != nft::Backend::Compat) return;
  if (auto armed = nft::arm_queue_target(nft::kTableName, rule_options()); !armed) {
    log_->error("queue_target_failed error=\"{}\" note=\"PPTP is not queued ({}); load the table from 'pptp-alg rules' "
                "or run with --install-rules\"", armed.error(), options_.fail_open ? "it passes unjudged" : "it is dropped");
  }
}

nft::RuleOptions Daemon::rule_options() const {
  return pptp::daemon::rule_options(options_, options_.fast_path);
}

void Daemon::watch_rules(std::string_view noticed_by) {
  if (!table_watch_) return;
  last_rules_check_ = now();
  auto state = table_watch_->look(watched_chains_);
  if (!state) {
    log_->warn("rules_watch_failed error=\"{}\"", state.error());
    return;
  }
  const bool whole = state->handle && state->chains_complete;
  if (whole && state->handle == table_handle_) return;
  if (!whole && !rules_installed_) {
    // Not ours to install: said once, until they are back.
    if (table_handle_) log_->warn("rules_missing table={} note=\"PPTP is not queued; load the rules from "
                                  "'pptp-alg rules' again\"", nft::kTableName);
    table_handle_.reset();
    return;
  }
  repair_rules(!whole, !state->handle, noticed_by);
}

void Daemon::repair_rules(bool reinstall, bool table_gone, std::string_view noticed_by) {
  const double started = now();
  if (reinstall) {
    bool kept = false;
    auto ok = table_gone && nft::queues_in_table(backend_) ? nft::reload_vanished_table(backend_, rule_options())
                                                            : nft::install_rules(backend_, rule_options(), &kept);
    if (!ok) {
      log_->error("rules_repair_failed error=\"{}\"", ok.error());
      return;
    }
  } else {
    arm_queue_target();  // a table re-created from the operator's include: its placeholder only
  }
  std::size_t rearmed = 0;
  restore_netdev_table();
  if (fast_path_) {
    const std::vector<nft::FastPathCall> live = gateway_->offloaded_calls();
    if (auto r = live.empty() ? Result<bool, std::string>(true) : fast_path_->restore(live); !r) {
      log_->warn("fast_path_rearm_failed error=\"{}\"", r.error());
    } else {
      rearmed = live.size();
    }
  }
  ++rules_repaired_;
  auto state = table_watch_->look(watched_chains_);
  table_handle_ = state && state->chains_complete ? state->handle : std::nullopt;
  log_->warn("rules_repaired table={} reinstalled={} fast_path_rearmed={} times={} noticed_by={} repair_ms={:.0f} "
             "note=\"the table or its chains vanished (nft flush ruleset, a firewall reload?)\"",
             nft::kTableName, reinstall, rearmed, rules_repaired_, noticed_by, (now() - started) * 1000);
}

}  // namespace pptp::daemon
