#include "proxy/proxy_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <utility>  // before Asio (std::exchange)

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "alg/control/protocol.hpp"
#include "alg/daemon/control_server.hpp"
#include "alg/daemon/daemon.hpp"
#include "alg/daemon/files.hpp"
#include "alg/daemon/pacing.hpp"
#include "alg/daemon/privileges.hpp"
#include "alg/service/systemd.hpp"
#include "alg/wire/gre.hpp"
#include "gateway/log_limiter.hpp"
#include "policy/loader.hpp"
#include "proxy/coexistence.hpp"
#include "nftables/rules.hpp"
#include "proxy/fast_relay.hpp"
#include "proxy/gre_relay.hpp"
#include "proxy/gre_sockets.hpp"
#include "proxy/listener.hpp"
#include "proxy/proxy_control.hpp"
#include "proxy/proxy_policy.hpp"
#include "proxy/session.hpp"

namespace pptp::proxy {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline constexpr std::size_t kMaxGrePerWake = 256;  // then other work gets the loop

wire::Endpoint endpoint_of(const tcp::endpoint& e) {
  return wire::Endpoint{wire::Ipv4Address{e.address().to_v4().to_uint()}, e.port()};
}

void log_outside(const std::vector<std::string>& outside, bool given) {
  if (outside.empty()) {
    spdlog::warn("proxy_outside_unknown note=\"no IPv4 default route: TCP/1723 and GRE from every interface are "
                 "proxied, the outside's too (docs/proxy.md)\"");
    return;
  }
  std::string names;
  for (const std::string& i : outside) names += (names.empty() ? "" : ",") + i;
  spdlog::info("proxy_outside interfaces={} from={} note=\"their TCP/1723 and GRE are not proxied\"", names,
               given ? "proxy-outside" : "default_route");
}

class ProxyServer {
 public:
  explicit ProxyServer(const ProxyOptions& o) : options_(o) {}
  ~ProxyServer() {
    book_.on_release(nullptr);  // the sessions release their Call IDs after the table is gone
    fast_.close();
    if (rules_installed_) remove_proxy_rules(rule_options());
  }
  Result<bool, std::string> load_policy();
  Result<bool, std::string> open();
  Result<std::string, std::string> drop_privileges();
  void run();

 private:
  ProxyRuleOptions rule_options() const {
    return ProxyRuleOptions{options_.listen_port, kGreMark, kRouteTable, nft::kFastPathMark, options_.servers, {}};
  }
  void on_accept(tcp::socket socket);
  void wait_gre();
  void read_gre();
  void tick();
  nlohmann::json status_json() const;
  void write_status();
  void wait_hangup();
  Result<std::string, std::string> reload();
  void open_control();
  Result<bool, std::string> open_metrics();
  std::string metrics_text() const {
    return proxy_metrics_text(
        ProxyMetrics{counters_, gre_, policy_, fast_.counts(), book_.used(), listener_.counters()});
  }
  void on_control(std::string_view line, const daemon::Reply& reply);

  ProxyOptions options_;
  FastRelay fast_;
  CallBook book_{CallIdOrder::Random};  // before io_: sessions (destroyed with io_'s handlers) release Call IDs here
  RelayCounters counters_;
  GreCounters gre_;
  // before io_: sessions' judges report to it
  ProxyPolicy policy_{spdlog::default_logger(), options_.limits};
  gateway::LogLimiter refusals_{spdlog::default_logger()};  // a refused connection's line, per source
  asio::io_context io_;
  ProxyListener listener_{io_};
  asio::signal_set signals_{io_, SIGINT, SIGTERM};
  asio::signal_set hangup_{io_, SIGHUP};
  asio::steady_timer tick_{io_};
  GreSockets gre_sockets_;
  std::optional<asio::posix::stream_descriptor> gre_in_;  // waits on gre_sockets_'s receiving socket
  std::vector<std::weak_ptr<Session>> sessions_;  // for `ctl calls`; the gone ones pruned each tick
  std::unique_ptr<daemon::ControlListener> control_;
  std::unique_ptr<daemon::MetricsListener> metrics_;  // --metrics-listen
  std::optional<daemon::Account> account_;  // --user
  // Every second at most, less often when a write costs more than 2 % of a core (every call's
  // two legs: most of the proxy's CPU at 1,000 idle calls), as the transparent daemon does.
  daemon::Paced status_writes_{1.0, daemon::kStatusAtMostSeconds};
  daemon::HeapTrim heap_trim_;  // without a status file
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool rules_installed_ = false;
};

Result<bool, std::string> ProxyServer::open() {
  if (auto r = listener_.open(options_.listen_port); !r) return r;
  policy_.limit_connections(connections_that_fit(options_.limits.connections));
  if (auto r = gre_sockets_.open(); !r) return r;
  gre_in_.emplace(io_, gre_sockets_.receive_fd());
  if (!options_.user.empty()) {
    auto found = daemon::find_account(options_.user);
    if (!found) return unexpected("--user " + options_.user + ": " + found.error());
    account_ = *found;
  }
  if (options_.install_rules) {
    ProxyRuleOptions o = rule_options();
    o.outside_interfaces = outside_interfaces(options_.outside);
    log_outside(o.outside_interfaces, !options_.outside.empty());
    auto r = install_proxy_rules(o);
    if (!r) return unexpected(r.error());
    rules_installed_ = true;
  }
  if (options_.fast_path) {
    fast_.open(options_.install_rules, options_.servers, options_.keep_fast_path);
    // Without its table (chain proxy_server_gre) a transparent daemon beside it would queue
    // and drop the proxied servers' GRE (proxy/coexistence.hpp): not a state to run in.
    if (!fast_.enabled() && read_other_mode().transparent_table) {
      return unexpected(std::string("the fast path could not be set up (log: fast_path_unavailable) and a transparent "
                                    "pptp-alg runs on this router: its queue would drop the proxied calls' GRE"));
    }
    book_.on_release([this](std::uint16_t id) { fast_.released(id); });
  }
  open_control();
  return open_metrics();
}

void ProxyServer::run() {
  listener_.start([this](tcp::socket socket) { on_accept(std::move(socket)); });
  wait_gre();
  tick();
  signals_.async_wait([this](const boost::system::error_code&, int signal) {
    spdlog::info("stopping signal={}", signal);
    io_.stop();
  });
  wait_hangup();
  spdlog::info("ready mode=proxy listen_port={} rules={} policy={}", options_.listen_port, options_.install_rules,
               options_.policy_file.empty() ? "-" : options_.policy_file);
  service::notify_ready("proxy mode");
  io_.run();
  service::notify_stopping();
}

// Every socket is open and the rules are in: what is left needs CAP_NET_ADMIN only (the
// iptables and ip run at exit to remove the rules), as the transparent daemon keeps; with
// --user the proxy becomes that user (alg/daemon/privileges.hpp).
Result<std::string, std::string> ProxyServer::drop_privileges() {
  return daemon::drop_privileges(account_ ? &*account_ : nullptr);
}

// The policy as the proxy reads it: `on_deny: refuse` is allowed here (docs/proxy.md).
Result<bool, std::string> ProxyServer::load_policy() {
  if (options_.policy_file.empty()) return true;
  auto loaded = policy::load_policy_file(options_.policy_file, policy::PolicyMode::Proxy);
  if (!loaded) return unexpected(loaded.error());
  auto p = std::make_shared<const policy::Policy>(std::move(*loaded));
  spdlog::info("policy_loaded file={} users={} rules={} default={} on_deny={}", options_.policy_file, p->users.size(),
               p->rules.size(), policy::name_of(p->default_action), policy::name_of(p->on_deny));
  policy_.set(std::move(p));
  return true;
}

// The policy file again; an invalid one leaves the old running.
Result<std::string, std::string> ProxyServer::reload() {
  if (options_.policy_file.empty()) {
    spdlog::info("reload_skipped reason=\"no --policy file\"");
    return std::string("reload skipped: no policy file");
  }
  service::notify_reloading();
  auto r = load_policy();
  service::notify_ready("proxy mode");
  if (!r) {
    spdlog::error("policy_reload_rejected error=\"{}\" note=\"the old policy keeps running\"", r.error());
    return unexpected("reload rejected, the old policy keeps running: " + r.error());
  }
  spdlog::info("policy_reloaded file={}", options_.policy_file);
  return "policy reloaded: " + options_.policy_file;
}

// SIGHUP (`pptp-alg reload`).
void ProxyServer::wait_hangup() {
  hangup_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    (void)reload();  // logged there
    wait_hangup();
  });
}

// The operator's socket matters less than the calls: the proxy runs on without it.
void ProxyServer::open_control() {
  if (options_.control_socket.empty()) return;
  auto opened = daemon::open_control_socket(io_, options_.control_socket, account_ ? &*account_ : nullptr,
                                            [this](std::string_view line, daemon::Reply reply) { on_control(line, reply); });
  if (!opened) {
    spdlog::warn("control_socket_unavailable error=\"{}\"", opened.error());
    return;
  }
  control_ = std::move(*opened);
  control_->start();
  spdlog::info("control_socket_listening path={}", options_.control_socket);
}

// --metrics-listen: GET /metrics answers what `ctl metrics` does; a port that cannot be had
// stops the start, as in the transparent mode.
Result<bool, std::string> ProxyServer::open_metrics() {
  if (options_.metrics_listen.empty()) return true;
  auto at = daemon::parse_listen_address(options_.metrics_listen);
  auto opened = at ? daemon::open_metrics_listener(io_, *at, [this] { return metrics_text(); })
                   : Result<std::unique_ptr<daemon::MetricsListener>, std::string>(unexpected(at.error()));
  if (!opened) return unexpected("--metrics-listen " + options_.metrics_listen + ": " + opened.error());
  metrics_ = std::move(*opened);
  metrics_->start();
  spdlog::info("metrics_listening address={} path=/metrics", options_.metrics_listen);
  return true;
}

void ProxyServer::on_control(std::string_view line, const daemon::Reply& reply) {
  auto request = control::parse_request(line.substr(0, line.find('\n')));
  if (!request) return reply(control::error_answer(request.error()) + "\n", false);
  switch (request->command) {
    case control::Command::Calls:
      return reply(control::ok_answer({{"calls", proxy_calls_json(sessions_, policy_)}}) + "\n", false);
    case control::Command::Status:
      return reply(control::ok_answer({{"status", status_json()}}) + "\n", false);
    case control::Command::Metrics:
      return reply(control::ok_answer({{"metrics", metrics_text()}}) + "\n", false);
    case control::Command::Promote:
    case control::Command::Demote:
      return reply(control::error_answer("high availability is not available in proxy mode (docs/ha.md)") + "\n",
                   false);
    case control::Command::Kill: {
      const control::KillSelector& k = request->kill;
      const std::size_t n = policy_.kill(ProxyPolicy::KillMatch{k.call, k.user, k.client});
      spdlog::warn("ctl_kill calls={} request={}", n, control::request_line(*request));
      return reply(control::ok_answer({{"calls", n}, {"connections", 0}}) + "\n", false);
    }
    case control::Command::Reload: {
      const auto r = reload();
      return reply((r ? control::ok_answer({{"message", *r}}) : control::error_answer(r.error())) + "\n", false);
    }
  }
}

// Only REDIRECTed connections to TCP/1723 of another host are proxied: one straight to the
// listener would make the router connect to itself.
void ProxyServer::on_accept(tcp::socket socket) {
  boost::system::error_code ec;
  const auto local = socket.local_endpoint(ec);
  const auto target = ProxyListener::original_destination(socket);
  const wire::Endpoint client = endpoint_of(socket.remote_endpoint(ec));
  const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (ec || !target || *target == local || target->port() != wire::kPptpPort) {
    // One made straight to the listener: logged under the per-source budget (a host that
    // keeps connecting must not fill the log).
    refusals_.warn_source("proxy_connection_not_redirected", client.address, now, [] { return std::string(); });
    ProxyListener::reset(socket);
    return;
  }
  auto judge = policy_.judge_for(client, endpoint_of(*target));
  if (!judge) {  // over the proxy's limits (counted there): reset before anything is read
    refusals_.warn_source("proxy_connection_refused", client.address, now, [&] {
      return "server=" + target->address().to_string() + " open=" + std::to_string(policy_.connections()) +
             " note=\"over the connections per client address or in all; reset\"";
    });
    ProxyListener::reset(socket);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  spdlog::info("proxy_connection client={} server={}", wire::to_string(client.address), target->address().to_string());
  SessionJudge& j = *judge;
  auto session = std::make_shared<Session>(std::move(socket), *target, book_, counters_, std::move(judge));
  j.on_cut([weak = std::weak_ptr<Session>(session)](std::uint16_t id, std::uint8_t code, const std::string& why) {
    if (auto s = weak.lock()) s->cut(id, code, why);
  });
  session->start();
  sessions_.push_back(session);
}

void ProxyServer::wait_gre() {
  gre_in_->async_wait(asio::posix::descriptor_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return;
    read_gre();
    wait_gre();
  });
}

void ProxyServer::read_gre() {
  for (std::size_t i = 0; i < kMaxGrePerWake; ++i) {
    const std::optional<Bytes> packet = gre_sockets_.receive();
    if (!packet) return;
    auto f = relay_gre(book_, *packet);
    if (f && !policy_.on_gre(f->call, f->toward, Bytes(f->gre).subspan(f->payload_offset))) {
      ++gre_.policy_dropped;
      continue;
    }
    if (f) {
      gre_sockets_.send(*f, gre_);
      fast_.after_packet(book_, policy_, f->call);
      continue;
    }
    switch (f.error()) {
      case GreDrop::Malformed: ++gre_.malformed; break;
      case GreDrop::UnknownCall: ++gre_.unknown_call; break;
      case GreDrop::WrongSource: ++gre_.wrong_source; break;
    }
  }
}

void ProxyServer::tick() {
  fast_.tick(policy_);
  policy_.end_idle(options_.call_idle);
  write_status();
  tick_.expires_after(std::chrono::seconds(1));
  tick_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

nlohmann::json ProxyServer::status_json() const {
  nlohmann::json s;
  s["mode"] = "proxy";
  s["relay"] = counters_json(counters_, [](const auto& c, auto&& f) { visit_relay_counters(c, f); });
  s["gre"] = counters_json(gre_, [](const auto& c, auto&& f) { visit_gre_counters(c, f); });
  s["call_ids_in_use"] = book_.used();
  s["policy"] = counters_json(policy_.counters(), [](const auto& c, auto&& f) { gateway::visit_policy_counters(c, f); });
  s["limits"] = counters_json(policy_.limit_counters(), [](const auto& c, auto&& f) { visit_limit_counters(c, f); });
  s["limits"].update(counters_json(listener_.counters(), [](const auto& c, auto&& f) { visit_listener_counters(c, f); }));
  s["connections"] = {{"open", policy_.connections()},
                      {"limit", policy_.limits().connections},
                      {"per_source_limit", policy_.limits().connections_per_source}};
  s["call_limits"] = {{"in_all", policy_.limits().calls},
                      {"reserve", policy_.limits().calls / kReservedShare},
                      {"fair_share", kFairShareCalls},
                      {"per_source", policy_.limits().calls_per_source}};
  s["calls_judged"] = policy_.calls();
  s["calls_idle_ended"] = policy_.idle_ended();
  const FastRelayCounts fast = fast_.counts();
  s["fast_path"] = fast_.status(fast);
  // As the transparent daemon's status names it (rules.control_stray), from the proxy's own table.
  if (const auto& stray = fast.control_stray) {
    s["rules"][std::string(nft::kCounterControlStray)] = {{"packets", stray->packets}, {"bytes", stray->bytes}};
  }
  s["calls"] = proxy_calls_json(sessions_, policy_);  // both legs (`pptp-alg status`)
  for (auto& c : s["calls"]) c["fast_path"] = fast_.offloaded(c["id"].get<std::uint16_t>());
  // What the last status write cost and how often it runs (docs/daemon.md, as the transparent daemon's).
  s["housekeeping"] = {{"status_seconds", status_writes_.last_cost()},
                       {"status_every_seconds", status_writes_.interval()}};
  return s;
}

void ProxyServer::write_status() {
  std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
  const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (options_.status_file.empty()) {
    heap_trim_.run_if_due(now);  // no write to follow
    return;
  }
  if (!status_writes_.due(now)) return;
  const double cpu = daemon::thread_cpu_seconds();
  const nlohmann::json s = status_json();
  if (auto r = daemon::write_private_file(options_.status_file, s.dump(1) + "\n"); !r) {
    spdlog::warn("status_write_failed error={}", r.error());
  }
  // As the transparent daemon (housekeeping.cpp): freed heap back to the kernel, its cost
  // part of the write's. A flood's calls left ~100 MB resident after they ended (s30 review).
  daemon::trim_freed_heap();
  status_writes_.ran(now, daemon::thread_cpu_seconds() - cpu);
}

}  // namespace

int run_proxy(const ProxyOptions& options) {
  ProxyServer server(options);
  if (auto r = server.load_policy(); !r) {
    spdlog::error("policy_invalid error=\"{}\" note=\"fix the file; 'pptp-alg check FILE' shows what it means\"",
                  r.error());
    return 2;
  }
  if (auto r = server.open(); !r) {
    spdlog::error("proxy_start_failed error={}", r.error());
    return 1;
  }
  if (!options.pid_file.empty()) {
    if (auto r = daemon::write_private_file(options.pid_file, std::to_string(::getpid()) + "\n"); !r) {
      spdlog::warn("pid_file_failed error={}", r.error());
    }
  }
  auto dropped = server.drop_privileges();
  if (!dropped) {
    spdlog::error("privileges_drop_failed error=\"{}\"", dropped.error());
    return 1;
  }
  spdlog::info("privileges_dropped user={} {}", options.user.empty() ? "-" : options.user, *dropped);
  server.run();
  return 0;
}

}  // namespace pptp::proxy
