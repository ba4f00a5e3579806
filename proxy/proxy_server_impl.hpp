// Proxy mode's server (proxy_server.hpp) inside: one class whose pieces live in
// proxy_server.cpp (start, the accept and GRE loops) and proxy_server_control.cpp (the
// control socket, metrics and status). Internal to the proxy library.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // before Asio (std::exchange)
#include <vector>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "alg/daemon/control_server.hpp"
#include "alg/daemon/daemon.hpp"
#include "alg/daemon/pacing.hpp"
#include "alg/daemon/privileges.hpp"
#include "gateway/log_limiter.hpp"
#include "nftables/rules.hpp"
#include "proxy/call_book.hpp"
#include "proxy/fast_relay.hpp"
#include "proxy/gre_relay.hpp"
#include "proxy/gre_sockets.hpp"
#include "proxy/listener.hpp"
#include "proxy/proxy_control.hpp"
#include "proxy/proxy_policy.hpp"
#include "proxy/proxy_server.hpp"
#include "proxy/session.hpp"

namespace pptp::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class ProxyServer {
 public:
  explicit ProxyServer(const ProxyOptions& o) : options_(o) {}
  ~ProxyServer() {
    // Its running job ends first (it posts to io_); the queued ones, answers to a stopped
    // loop, are dropped unrun: each is a JSON of every call (s31 review: 9 s to stop).
    if (worker_) {
      worker_->stop();
      worker_->join();
    }
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
  nlohmann::json status_summary() const;
  // with_fast_path: the status's column (proxy_call_rows).
  std::vector<ProxyCallRow> call_rows(bool with_fast_path) const {
    return proxy_call_rows(sessions_, policy_, with_fast_path ? &fast_ : nullptr);
  }
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
  daemon::StatusWrites status_writes_{1.0, daemon::kStatusAtMostSeconds};
  double status_build_cost_ = 0;  // the loop's share of the last status write (the copy)
  // The status file's and `ctl calls|status`'s JSON, made from a copy (ProxyCallRow); started
  // in run(), after the privileges are dropped, as the transparent daemon's.
  std::optional<asio::thread_pool> worker_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool rules_installed_ = false;
};

}  // namespace pptp::proxy
