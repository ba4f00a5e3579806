// The daemon as one object with named steps (as conntrack-tools' cthelper.c: pkt_get,
// helper_run, pkt_verdict_issue). Setup: start(). The packet loop: on_readable ->
// handle_packet (gateway) -> verdicts, then apply_offload. The tick: on_tick -> expiry,
// fast-path counters and re-arming, status file, summary. Signals: on_signal -> reload or
// stop. Work that grows with the calls runs on one worker thread (counter reads, re-arming,
// status writes); its results come back to the loop, the only thread that touches the
// gateway. Private to the daemon library.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange
#include <vector>

#include <boost/asio.hpp>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>  // default_logger: conntrack_keep_log_

#include "alg/core/window_budget.hpp"
#include "alg/control/metrics.hpp"
#include "alg/daemon/control_server.hpp"
#include "alg/daemon/daemon.hpp"
#include "alg/daemon/ha_node.hpp"
#include "alg/daemon/local_address.hpp"
#include "alg/daemon/pacing.hpp"
#include "gateway/gateway.hpp"
#include "nftables/conntrack.hpp"
#include "nftables/fastpath.hpp"
#include "nftables/gre_offload.hpp"
#include "nftables/gre_sink.hpp"
#include "nftables/monitor.hpp"
#include "nftables/named_counter.hpp"
#include "nftables/queue.hpp"
#include "nftables/queue_target.hpp"
#include "nftables/route_watch.hpp"
#include "nftables/table_watch.hpp"

namespace pptp::daemon {

inline constexpr std::uint64_t kPacketLogsPerSecond = 20;  // --log-level debug
// A control connection's conntrack entry put back in ESTABLISHED lives this long without
// traffic (RFC 5382 REQ-5: at least 2 h 4 min); its next segment sets conntrack's own timeout.
inline constexpr std::uint32_t kConntrackKeptTimeoutSeconds = 7440;
// With the nf_tables monitor, the tick's own table check is a backstop (lost notifications).
inline constexpr double kRulesBackstopSeconds = 10.0;
// The ip table's named counters shown in the status (rules_watch.cpp kRulesCounters).
inline constexpr std::size_t kRulesCounterCount = 6;

// Without conntrack data on queued packets, ask ctnetlink once per control connection.
class ConntrackResolver final : public gateway::OutsideResolver {
 public:
  std::unique_ptr<nft::ConntrackLookup> lookup;
  std::optional<wire::Ipv4Address> outside_address(const wire::Endpoint& pns, const wire::Endpoint& pac) override {
    return lookup ? lookup->reply_destination(pns, pac) : std::nullopt;
  }
};

// Writes the status to `path` (alg/daemon/files.hpp), streamed from the gateway's snapshot
// with the daemon's parts added (gateway/status_stream.hpp); the error, if it could not.
// A netlink socket the loop waits on (the nf_tables monitor, the route watch): asio's
// descriptor gets a duplicate (it closes its own), the watch keeps the original.
Result<boost::asio::posix::stream_descriptor, std::string> watch_descriptor(boost::asio::io_context& io, int fd);

std::optional<std::string> write_status_file(const std::string& path, const gateway::StatusSnapshot& snapshot,
                                             const nlohmann::json& daemon);
// The status as the control socket answers `status` (control::ok_answer's line, without its
// newline), streamed from the same snapshot on one line.
std::string status_answer(const gateway::StatusSnapshot& snapshot, const nlohmann::json& daemon);
// The status copied on the loop as plain values, for the worker to format.
struct StatusCopy {
  gateway::StatusSnapshot snapshot;
  nlohmann::json daemon;
};
// A tracked call as `ctl calls` lists it, copied on the loop as plain values; calls_json
// (control_requests.cpp) formats them on the worker.
struct CallRow {
  std::uint64_t id = 0;
  std::uint64_t connection = 0;
  wire::Endpoint client;
  wire::Endpoint server;
  std::optional<std::string> user;  // printable
  track::CallState state{};
  std::optional<std::uint16_t> pns_call_id;
  std::optional<std::uint16_t> outside_call_id;
  std::optional<std::uint16_t> pac_call_id;
  double age_seconds = 0;
  track::GreFlowStats to_server;
  track::GreFlowStats to_client;
  bool fast_path = false;
  bool killed = false;
};
nlohmann::json calls_json(const std::vector<CallRow>& rows);
// What `ctl calls` answers, copied on the loop (Daemon::calls_copy).
struct CallsCopy {
  std::vector<CallRow> rows;
  nlohmann::json adopted;  // few: calls adopted at a restart
  std::optional<std::vector<sync::CallState>> replicated;  // with HA
  std::optional<std::vector<sync::CallState>> taken_over;
};
nlohmann::json calls_answer(const CallsCopy& copy);

class Daemon {
 public:
  explicit Daemon(DaemonOptions options);
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Loads the policy, opens the queue, installs the rules, opens the fast path. Returns 0,
  // or the exit status to end with.
  int start();
  // Runs the loop until SIGINT or SIGTERM, then shuts down in order.
  void run();

 private:
  // Setup.
  int load_policy();
  int open_queue();
  int install_rules();
  void open_resolver();
  // Before a packet's verdict: the gateway's conntrack requests (below), on one socket.
  void apply_conntrack_requests();
  nft::ConntrackLookup* conntrack_writer();  // opened at the first request; null if it cannot be
  void open_fast_path();
  // --fast-path netdev (netdev_path.cpp): its table, the writers' shared routes and chains.
  std::optional<nft::NetdevShared> open_netdev_table();
  void remove_netdev_table();
  void log_netdev_error(const std::optional<std::string>& error, std::string_view where, bool on_worker);
  void netdev_status(nlohmann::json& s) const;
  void netdev_metrics(control::MetricsText& m) const;
  void open_route_watch();
  void wait_route_news();
  void on_route_news(const boost::system::error_code& ec);
  // The kernel's named counters of our tables, in the status and metrics (rules_watch.cpp):
  // read by the worker at each tick (a netlink question each), shown as last read.
  struct KernelCounters {
    std::array<std::optional<nft::NamedCount>, kRulesCounterCount> rules;  // kRulesCounters' order
    std::optional<nft::NamedCount> no_egress;                            // --fast-path netdev
  };
  std::optional<nft::NamedCount> read_named_counter(nft::TableFamily family, std::string_view table,
                                                    std::string_view name) const;
  KernelCounters read_kernel_counters(bool netdev) const;  // on the worker (at start: the loop)
  void refresh_kernel_counters();                          // the tick's step
  void nft_counters_status(nlohmann::json& s) const;
  void nft_counters_metrics(control::MetricsText& m) const;
  void reroute_netdev();  // at the tick, after route news
  struct Rerouted {
    std::size_t destinations = 0, calls = 0;  // answers forgotten, calls that may move
    double started = 0, select = 0;            // the loop's part: selecting the calls (s)
  };
  void on_rerouted(const Result<nft::ReroutePlan, std::string>& plan, const Rerouted& what);
  void restore_netdev_table();  // a flushed ruleset took it: before the calls are re-armed
  void adopt_offloaded();
  void write_pid_file();
  int drop_privileges();
  // The packet loop.
  void wait_readable();
  void on_readable(const boost::system::error_code& ec);
  void handle_packet(nft::QueuedPacket& p);
  void log_packet(const nft::QueuedPacket& p, const gateway::Verdict& v, double t);  // packet_log.cpp
  void report_packet_logs();
  // The firewall's reloads (rules_watch.cpp).
  void open_table_watch();
  void open_gre_sink();
  nft::RuleOptions rule_options() const;
  void watch_rules(std::string_view noticed_by);
  void repair_rules(bool reinstall, bool table_gone, std::string_view noticed_by);
  // Backend::Compat: puts the NFQUEUE target at the head of chain to_queue (an error is logged).
  void arm_queue_target();
  void open_table_monitor();
  void wait_table_news();
  void on_table_news(const boost::system::error_code& ec);
  void issue_released();
  void apply_offload();
  void forget_queued_gre(const std::vector<nft::FastPathCall>& offloaded);  // their conntrack entries
  // The tick.
  void schedule_tick();
  void on_tick(const boost::system::error_code& ec);
  void fast_path_tick(double now);
  void read_counters(std::vector<nft::FastPathCall> live, double now);
  void on_counters(const Result<std::vector<nft::FastPathCount>, std::string>& counts, double now);
  void refresh_elements(std::vector<nft::FastPathCall> live);  // on the worker
  void worker_writes_done();  // a re-arm or reroute on the worker ended: removals done again
  void on_refreshed(const Result<bool, std::string>& r, double cost, std::size_t calls);
  void write_status(double now);
  void on_status_written(const std::optional<std::string>& error);
  void answer_status(Reply reply);  // housekeeping.cpp: formatted off the loop
  // The daemon's own parts of the status (daemon, queue, ha, housekeeping, fast-path
  // elements): fixed in size, built on the loop beside the gateway's snapshot.
  nlohmann::json daemon_status() const;
  void log_summary(double now);
  // Signals and the end.
  void wait_signal();
  void on_signal(const boost::system::error_code& ec, int signal);
  // Reads the policy file on the worker, installs it on the loop; `done` hears the result
  // (SIGHUP: the service manager; `ctl reload`: the client).
  void reload_policy(std::function<void(bool ok, const std::string& text)> done);
  void shut_down();
  double now() const;
  // Operations (control_requests.cpp): the control socket, the metrics.
  int open_listeners();
  void on_control(std::string_view line, Reply reply);
  std::vector<CallRow> call_rows() const;
  void answer_calls(Reply reply);
  // `ctl calls`: calls adopted at a restart that no tracker or HA table names (their
  // elements only: no user, no control connection known).
  nlohmann::json adopted_json() const;
  std::string metrics_text() const;

  DaemonOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::chrono::steady_clock::time_point started_;
  std::shared_ptr<const policy::Policy> policy_;
  nft::Backend backend_ = nft::Backend::Nft;
  std::unique_ptr<nft::NetlinkQueue> queue_;
  bool rules_installed_ = false;
  ConntrackResolver resolver_;
  std::unique_ptr<nft::GreOffload> fast_path_;       // the loop's netlink sockets
  std::unique_ptr<nft::GreOffload> counter_reader_;  // the worker's
  bool netdev_table_made_ = false;
  std::uint64_t netdev_worker_errors_ = 0;  // the worker's writer's failures (the loop's counts its own)
  // Deletes the conntrack entry of an offloaded call's first (queued) client GRE.
  // Offloaded calls whose first (queued) client GRE's entry was deleted, or had none.
  std::uint64_t conntrack_cleanup_deleted_ = 0, conntrack_cleanup_missed_ = 0;
  // Puts a control connection's entry back in ESTABLISHED after a RST or FIN the tracker
  // ignored (gateway.cpp keep_conntrack); kept or missed (no entry, no answer). Deletes
  // another host's client GRE entry for a server Call ID just given to a call (StaleGre):
  // deleted, or none (no entry: the usual case; or no answer).
  std::unique_ptr<nft::ConntrackLookup> conntrack_writer_;
  std::uint64_t conntrack_kept_ = 0, conntrack_keep_missed_ = 0;
  std::uint64_t stale_gre_deleted_ = 0, stale_gre_none_ = 0;
  // Its log lines, at a bounded rate per client: a peer sending RSTs in the window costs
  // a counter, not a line each.
  gateway::LogLimiter conntrack_keep_log_{spdlog::default_logger()};
  std::unique_ptr<gateway::Gateway> gateway_;

  // Housekeeping state: what runs on the worker, and how often.
  Paced counting_;
  StatusWrites status_writes_{kTickSeconds, kStatusAtMostSeconds};  // 60,000 calls take a while to write
  bool counting_busy_ = false, refresh_busy_ = false, kernel_counters_busy_ = false;
  KernelCounters kernel_counters_;
  std::unique_ptr<nft::NamedCounters> named_counters_;  // the worker's, once it runs (rules_watch.cpp)
  double refresh_cost_ = 0, status_build_cost_ = 0, last_summary_ = 0;
  std::uint64_t refreshed_elsewhere_ = 0;  // calls the worker re-armed (its socket's stats are its own)
  std::vector<nft::FastPathCall> removed_while_refreshing_;
  std::optional<double> watchdog_every_;  // the service manager's watchdog, halved
  double last_watchdog_ = 0;
  std::string status_error_;  // the last failure to write the status file, logged once

  // Declared after everything the worker's jobs use, so that it is joined before they go.
  boost::asio::io_context io_;
  // Started once the privileges are dropped (start()): capabilities belong to each thread, and a
  // thread that exists when the uid changes loses all of them (its netlink reads got EPERM).
  std::optional<boost::asio::thread_pool> worker_;
  std::optional<boost::asio::posix::stream_descriptor> socket_;
  boost::asio::signal_set signals_{io_, SIGINT, SIGTERM, SIGHUP};
  boost::asio::steady_timer tick_{io_};
  std::unique_ptr<ControlListener> control_;
  std::unique_ptr<MetricsListener> metrics_;
  std::uint64_t rules_repaired_ = 0;  // the table put back after the firewall's reload
  control::LatencyHistogram verdict_latency_;  // read to verdict queued (held segments: not counted)
  std::unique_ptr<nft::TableWatch> table_watch_;
  std::vector<std::string_view> watched_chains_;
  std::optional<std::uint64_t> table_handle_;  // of the table as last seen whole
  std::optional<nft::GreSink> gre_sink_;        // no ICMP for the server's GRE while the table is gone
  std::unique_ptr<nft::TableMonitor> table_monitor_;  // nf_tables notifications (rules_watch.cpp)
  std::optional<boost::asio::posix::stream_descriptor> monitor_stream_;
  // --fast-path netdev: route and link news (after io_: its stream is destroyed before it).
  std::unique_ptr<nft::RouteWatch> route_watch_;
  std::optional<boost::asio::posix::stream_descriptor> route_stream_;
  nft::RouteChanges route_changes_;  // route news since the last reroute
  std::uint64_t rules_monitor_overruns_ = 0;  // notifications the kernel dropped (ENOBUFS)
  double last_rules_check_ = 0;
  WindowBudget packet_logs_{kPacketLogsPerSecond};  // --log-level debug: packet lines

  // High availability (ha_daemon.cpp, docs/ha.md): after io_, so that its socket goes first.
  int open_ha();
  void on_ha_request(bool promote, bool force, Reply reply);
  void ha_tick();
  void on_ha_healing();  // a split brain healed: commit, then take the peer's calls over
  // A restarted daemon on the node holding --ha-virtual-address promotes itself (ha_daemon.cpp).
  void ha_promote_at_start();
  void ha_retake_after_commit();  // the peer's snapshot came after our promotion: commit, take
  void ha_check_virtual_address_gone();  // after a demotion, from the tick
  void ha_commit_then(std::function<void()> then, bool for_retake);  // the commit command, then `then`
  // Active already: the peer's calls not carried here, installed; (calls, adopted).
  Result<std::pair<std::size_t, std::size_t>, std::string> ha_retake();
  // Standby: promoted, the peer's calls installed; (calls, adopted). `at` names it in the log.
  Result<std::pair<std::size_t, std::size_t>, std::string> ha_promote(bool force, std::string_view at);
  std::size_t ha_demote();  // the calls handed back to the peer
  ConnectionAlive ha_alive();  // whether a replicated call's control connection is still there
  // ha_let_go, named for the log; `keep_own_calls`: not the connections with calls of ours (a retake).
  LetGo ha_let_go_at(std::string_view at, bool keep_own_calls = false);
  std::size_t ha_install(const std::vector<nat::CallBinding>& calls);  // one batch, adopted
  // Standby: lets go of the control connections the active peer carries now (docs/ha.md).
  void ha_release_stale();
  // Lets go of our live state of those control connections (tracker, elements, the conntrack
  // entry made liberal): at the tick, and at a takeover before it installs (`at`).
  void ha_let_go(const std::vector<ControlEnds>& connections, std::string_view at);
  void ha_status(nlohmann::json& status) const;  // "ha": role, epoch, sync counters
  // `ctl calls`: the tracker's and the adopted calls, with the HA node's (replicated, taken
  // over), copied on the loop (calls_answer formats them on the worker).
  CallsCopy calls_copy() const;
  std::unique_ptr<HaNode> ha_;
  std::optional<wire::Ipv4Address> ha_virtual_address_;  // --ha-virtual-address
  VirtualAddressWatch ha_address_watch_;  // a standby still holding it (local_address.hpp)
  std::unique_ptr<nft::ConntrackLookup> ha_conntrack_;  // makes the entries of connections let go of liberal
};

}  // namespace pptp::daemon
