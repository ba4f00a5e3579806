// Setup, the packet loop, signals and the orderly end (daemon_loop.hpp). The tick and the
// worker's jobs: housekeeping.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include <unistd.h>

#include "alg/daemon/daemon_loop.hpp"
#include "alg/daemon/files.hpp"
#include "alg/daemon/privileges.hpp"
#include "alg/service/logging.hpp"
#include "alg/service/systemd.hpp"
#include "alg/version.hpp"
#include "policy/loader.hpp"

namespace pptp::daemon {

Daemon::Daemon(DaemonOptions options)
    : options_(std::move(options)),
      log_(spdlog::default_logger()),
      started_(std::chrono::steady_clock::now()),
      // An offloaded call is idle when its counters stop: they must be read within half the
      // idle timeout, whatever it costs.
      counting_(std::clamp(options_.gateway.timeouts.call_idle / 4, kTickSeconds, kFastPathCountSeconds),
                options_.gateway.timeouts.call_idle / 2) {}

double Daemon::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

// ---- Setup ------------------------------------------------------------------------------------

int Daemon::start() {
  if (const int status = load_policy(); status != 0) return status;
  backend_ = options_.backend ? *options_.backend : nft::detect_backend();
  log_->info("starting version={} queue={} backend={} fail_open={} allow_unknown_gre={}", PPTP_ALG_VERSION,
             options_.queue, nft::name_of(backend_), options_.fail_open, options_.gateway.allow_unknown_gre);
  if (const int status = open_queue(); status != 0) return status;
  if (const int status = install_rules(); status != 0) return status;
  open_resolver();
  open_fast_path();
  gateway::GatewayOptions g = options_.gateway;
  g.fast_path = fast_path_ != nullptr;
  gateway_ = std::make_unique<gateway::Gateway>(g, log_, &resolver_);
  gateway_->set_policy(policy_);
  adopt_offloaded();
  if (const int status = open_ha(); status != 0) return status;
  open_table_watch();
  open_route_watch();
  open_gre_sink();
  write_pid_file();
  if (const int status = open_listeners(); status != 0) return status;
  if (const int status = drop_privileges(); status != 0) return status;
  ha_promote_at_start();  // after the control socket listens, before the loop reads
  worker_.emplace(1);
  socket_.emplace(io_, queue_->fd());
  watchdog_every_ = service::watchdog_interval();
  return 0;
}

int Daemon::drop_privileges() {
  // Every socket is open and the rules are in: what is left needs CAP_NET_ADMIN only.
  std::optional<Account> account;
  if (!options_.user.empty()) {
    auto found = find_account(options_.user);
    if (!found) {
      log_->error("privileges_user_unknown user={} error=\"{}\"", options_.user, found.error());
      return 1;
    }
    account = *found;
  }
  auto dropped = daemon::drop_privileges(account ? &*account : nullptr);
  if (!dropped) {
    log_->error("privileges_drop_failed error=\"{}\" note=\"run as root, or under systemd with "
                "AmbientCapabilities=CAP_NET_ADMIN\"", dropped.error());
    return 1;
  }
  log_->info("privileges_dropped user={} {}", options_.user.empty() ? "-" : options_.user, *dropped);
  return 0;
}

int Daemon::load_policy() {
  if (options_.policy_file.empty()) return 0;
  auto loaded = policy::load_policy_file(options_.policy_file);
  if (!loaded) {
    log_->error("policy_invalid error=\"{}\" note=\"fix the file; 'pptp-alg check FILE' shows what it means\"",
                loaded.error());
    return 2;
  }
  policy_ = std::make_shared<const policy::Policy>(std::move(*loaded));
  log_->info("policy_loaded file={} users={} rules={} default={}", options_.policy_file, policy_->users.size(),
             policy_->rules.size(), policy::name_of(policy_->default_action));
  return 0;
}

int Daemon::open_queue() {
  auto queue = nft::NetlinkQueue::open(nft::QueueOptions{options_.queue, options_.fail_open});
  if (!queue) {
    log_->error("queue_open_failed queue={} error=\"{}\"", options_.queue, queue.error());
    return 1;
  }
  queue_ = std::move(*queue);
  return 0;
}

nft::RuleOptions rule_options(const DaemonOptions& options, bool fast_path) {
  nft::RuleOptions r;
  r.queue = options.queue;
  r.fail_open = options.fail_open;
  r.fast_path = fast_path;
  r.syn_per_second = options.syn_limit;
  r.queued_gre_per_second = options.queued_gre_limit;
  return r;
}

int Daemon::install_rules() {
  if (!options_.install_rules) {
    arm_queue_target();  // Backend::Compat: the queue rule is the daemon's (queue_target.hpp)
    return 0;
  }
  bool kept = false;
  auto ok = nft::install_rules(backend_, rule_options(), &kept);
  if (!ok) {
    log_->error("rules_install_failed error=\"{}\"", ok.error());
    return 1;
  }
  rules_installed_ = true;
  log_->info("rules_installed backend={} table={} fast_path_elements_kept={}", nft::name_of(backend_),
             nft::kTableName, kept);
  return 0;
}

void Daemon::open_resolver() {
  if (queue_->conntrack_attached()) return;
  auto lookup = nft::ConntrackLookup::open();
  if (!lookup) {
    log_->warn("conntrack_lookup_unavailable error=\"{}\" note=\"Call IDs are translated per client address\"",
               lookup.error());
  } else {
    resolver_.lookup = std::move(*lookup);
  }
  log_->info("nat_binding_source source=ctnetlink reason=\"the kernel attaches no conntrack data to queued packets\"");
}

nft::ConntrackLookup* Daemon::conntrack_writer() {
  if (!conntrack_writer_) {
    auto c = nft::ConntrackLookup::open();
    if (!c) return nullptr;
    conntrack_writer_ = std::move(*c);
  }
  return conntrack_writer_.get();
}

// Before the packet's verdict goes: the RST or FIN that made conntrack close a control
// connection's entry, and the answers to it, find the entry ESTABLISHED again; a call's
// client GRE, which comes only after the server's reply passed, finds no other host's entry.
void Daemon::apply_conntrack_requests() {
  std::vector<gateway::ConntrackKeep> keeps = gateway_->take_conntrack_keeps();
  std::vector<gateway::StaleGre> stale = gateway_->take_stale_gre();
  if (keeps.empty() && stale.empty()) return;
  nft::ConntrackLookup* writer = conntrack_writer();
  for (const gateway::ConntrackKeep& k : keeps) {
    const bool kept = writer != nullptr &&
                      writer->keep_tcp_established(k.source, k.destination, kConntrackKeptTimeoutSeconds);
    ++(kept ? conntrack_kept_ : conntrack_keep_missed_);
    conntrack_keep_log_.limit_source("conntrack_kept_established", k.source.address, now(), [&] {
      log_->info("conntrack_kept_established client={} server={} kept={}", wire::to_string(k.source),
                 wire::to_string(k.destination), kept);
    });
  }
  for (const gateway::StaleGre& g : stale) {
    const bool deleted = writer != nullptr && writer->delete_gre_by_reply(g.server, g.outside, g.server_call_id);
    ++(deleted ? stale_gre_deleted_ : stale_gre_none_);
    if (!deleted) continue;
    conntrack_keep_log_.limit_source("stale_gre_deleted", g.outside, now(), [&] {
      log_->info("stale_gre_deleted server={} outside={} server_call_id={} note=\"another host's GRE entry for this "
                 "server Call ID would have dropped the new call's\"", wire::to_string(g.server),
                 wire::to_string(g.outside), g.server_call_id);
    });
  }
}

void Daemon::open_fast_path() {
  // The fast path needs its sets in the kernel (ours with --install-rules, or the
  // operator's from `pptp-alg rules`); without them GRE goes through the queue.
  if (!options_.fast_path) return;
  const std::optional<nft::NetdevShared> netdev = open_netdev_table();
  auto fp = nft::GreOffload::open(netdev);
  if (!fp) {
    log_->warn("fast_path_unavailable error=\"{}\" note=\"GRE goes through the queue\"", fp.error());
    return;
  }
  fast_path_ = std::move(*fp);
  log_->info("fast_path_enabled mode={} timeout_seconds={}", netdev ? "netdev" : "ip", nft::kFastPathTimeoutSeconds);
  // An offloaded call's client GRE is untracked from then on: the entry its first (queued)
  // packets made is deleted at once instead of lingering for conntrack's GRE timeout.
  if (conntrack_writer() == nullptr) {
    log_->warn("conntrack_cleanup_unavailable note=\"offloaded calls' first GRE entries expire by themselves\"");
  }
  // The worker reads counters and re-arms elements on a socket of its own.
  if (auto r = nft::GreOffload::open(netdev); r) {
    counter_reader_ = std::move(*r);
  } else {
    log_->warn("fast_path_counter_socket_failed error=\"{}\" note=\"counters are read on the packet loop\"",
               r.error());
  }
}

void Daemon::adopt_offloaded() {
  // A restart: calls the previous run handed to the kernel are still there; keep them.
  if (!fast_path_) return;
  if (auto counts = fast_path_->read_counters(); counts && !counts->empty()) {
    // Idle from now, not from the daemon's start: installing the rules may take longer
    // than the idle timeout on a loaded machine.
    const std::size_t adopted = gateway_->adopt_offloaded(*counts, now());
    log_->info("fast_path_adopted calls={} note=\"their GRE keeps flowing; they end when it stops\"", adopted);
    // Re-armed now, every map of them: the previous run's elements may lack one this run
    // uses (fast_out_source, the client's GRE source) and their timeouts ran while no
    // daemon was there; the next re-arm may be kFastPathRefreshSeconds away.
    if (adopted == 0) return;
    if (auto r = fast_path_->refresh(gateway_->offloaded_calls()); !r) {
      log_->warn("fast_path_refresh_failed error=\"{}\" note=\"adopted calls re-armed at the next tick\"", r.error());
    }
    log_netdev_error(fast_path_->take_netdev_error(), "adoption", false);
  }
}

void Daemon::write_pid_file() {
  if (options_.pid_file.empty()) return;
  if (auto r = write_private_file(options_.pid_file, std::to_string(::getpid()) + "\n"); !r) {
    log_->warn("pid_file_unwritable file={} error=\"{}\" note=\"pptp-alg reload needs it; signal the daemon "
               "with SIGHUP instead\"", options_.pid_file, r.error());
  }
}

// ---- The packet loop: receive, gateway, verdict ----------------------------------------------

void Daemon::wait_readable() {
  socket_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [this](const boost::system::error_code& ec) { on_readable(ec); });
}

void Daemon::on_readable(const boost::system::error_code& ec) {
  if (ec) return;
  {
    // The verdicts go out before the lines this wake's packets produced are written
    // (a write() each, when written at once); the lines keep their order.
    const service::LogDeferral deferral;
    queue_->receive([this](nft::QueuedPacket& p) { handle_packet(p); });
    queue_->flush();
  }
  apply_offload();
  wait_readable();
}

namespace {
nft::VerdictKind kind_of(gateway::Action a) {
  return a == gateway::Action::Drop ? nft::VerdictKind::Drop : nft::VerdictKind::Accept;
}
}  // namespace

void Daemon::handle_packet(nft::QueuedPacket& p) {
  const auto read_at = std::chrono::steady_clock::now();
  const gateway::PacketMeta meta{now(), p.id, p.conntrack_reply_destination};
  const gateway::Verdict v = gateway_->process(p.payload, meta);
  apply_conntrack_requests();
  if (log_->should_log(spdlog::level::debug)) log_packet(p, v, meta.time);
  issue_released();
  if (v.action == gateway::Action::Hold) return;
  queue_->verdict(p.id, kind_of(v.action),
                  v.modified ? std::span<const std::uint8_t>(p.payload) : std::span<const std::uint8_t>());
  verdict_latency_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - read_at).count());
}

void Daemon::issue_released() {
  // Held segments come back once their message is whole (or their time is up).
  for (const gateway::ReleasedPacket& r : gateway_->take_released()) {
    queue_->verdict(static_cast<std::uint32_t>(r.packet_id), kind_of(r.action),
                    r.modified ? std::span<const std::uint8_t>(r.bytes) : std::span<const std::uint8_t>());
  }
}

void Daemon::apply_offload() {
  // Elements follow the calls: added when a call is handed over, removed when it ends.
  if (!fast_path_) return;
  std::vector<nft::FastPathCall> add, remove;
  for (const gateway::OffloadChange& ch : gateway_->take_offload_changes()) (ch.add ? add : remove).push_back(ch.call);
  if (!remove.empty()) {
    if (auto r = fast_path_->remove(remove); !r) log_->warn("fast_path_remove_failed error=\"{}\"", r.error());
    // A re-arm in flight on the worker may put these back: removed again when it is done.
    if (refresh_busy_) removed_while_refreshing_.insert(removed_while_refreshing_.end(), remove.begin(), remove.end());
  }
  if (!add.empty()) {
    if (auto r = fast_path_->add(add); !r) {
      log_->error("fast_path_add_failed error=\"{}\"", r.error());
      gateway_->disable_fast_path(r.error());
      fast_path_.reset();
      return;
    }
    forget_queued_gre(add);
  }
  log_netdev_error(fast_path_->take_netdev_error(), "offload", false);
}

void Daemon::forget_queued_gre(const std::vector<nft::FastPathCall>& offloaded) {
  // The client's GRE went through conntrack (and the masquerade) while it was queued; its
  // entry is found by the reply tuple, as a stale one is (apply_conntrack_requests).
  nft::ConntrackLookup* writer = conntrack_writer();
  for (const nft::FastPathCall& c : offloaded) {
    const bool deleted = writer != nullptr && writer->delete_gre_by_reply(c.server, c.outside, c.server_call_id);
    ++(deleted ? conntrack_cleanup_deleted_ : conntrack_cleanup_missed_);
  }
}

// ---- Signals and the end -------------------------------------------------------------------------

void Daemon::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) { on_signal(ec, signal); });
}

void Daemon::on_signal(const boost::system::error_code& ec, int signal) {
  if (ec) return;
  if (signal == SIGHUP) {
    service::notify_reloading();
    reload_policy([](bool, const std::string& text) { service::notify_ready(text); });
    wait_signal();
    return;
  }
  log_->info("stopping signal={}", signal);
  service::notify_stopping();
  io_.stop();
}

void Daemon::run() {
  wait_readable();
  schedule_tick();
  wait_signal();
  log_->info("ready queue={} status_file={}", options_.queue,
             options_.status_file.empty() ? "-" : options_.status_file);
  service::notify_ready(fmt::format("queue {} backend {}", options_.queue, nft::name_of(backend_)));
  io_.run();
  if (worker_) worker_->join();  // its last status write must not race the one below
  if (control_) control_->answer_in_flight(stopping_answer());
  shut_down();
}

void Daemon::shut_down() {
  socket_->release();  // the queue object owns the descriptor
  gateway_->shutdown(now());
  issue_released();
  if (options_.keep_fast_path && rules_installed_) {
    (void)gateway_->take_offload_changes();  // the elements stay for the next start
  } else {
    apply_offload();  // the calls ended: their elements go
  }
  queue_->flush();
  if (!options_.status_file.empty()) {
    on_status_written(write_status_file(options_.status_file, gateway_->status_snapshot(), daemon_status()));
  }
  if (!options_.pid_file.empty()) std::remove(options_.pid_file.c_str());
  if (control_) std::remove(options_.control_socket.c_str());
  remove_netdev_table();
  if (rules_installed_) {
    nft::remove_rules(options_.keep_fast_path);
    log_->info("rules_removed table={} fast_path_kept={}", nft::kTableName, options_.keep_fast_path);
  }
  const auto& s = queue_->stats();
  log_->info("stopped packets={} verdicts={} verdict_sends={} socket_overruns={}", s.packets, s.verdicts,
             s.verdict_sends, s.socket_overruns);
}

int run_daemon(const DaemonOptions& options) {
  Daemon daemon(options);
  if (const int status = daemon.start(); status != 0) return status;
  daemon.run();
  return 0;
}

}  // namespace pptp::daemon
