// Proxy mode's control socket, metrics endpoint and status (proxy_server_impl.hpp): what
// grows with the calls is copied on the loop and made into JSON on the worker thread.
#include <optional>
#include <string>

#include "alg/control/protocol.hpp"
#include "alg/daemon/files.hpp"
#include "alg/daemon/status_worker.hpp"
#include "proxy/proxy_server_impl.hpp"

namespace pptp::proxy {

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
      return daemon::answer_off_loop(*worker_, io_, reply, [rows = call_rows(false)] {
        return control::ok_answer({{"calls", proxy_calls_json(rows, false)}});
      });
    case control::Command::Status:
      return daemon::answer_off_loop(*worker_, io_, reply, [s = status_summary(), rows = call_rows(true)]() mutable {
        s["calls"] = proxy_calls_json(rows, true);
        return control::ok_answer({{"status", std::move(s)}});
      });
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

// The status but for its calls (proxy_calls_json of the rows).
nlohmann::json ProxyServer::status_summary() const {
  const FastRelayCounts fast = fast_.counts();
  nlohmann::json s = proxy_status_json(ProxyMetrics{counters_, gre_, policy_, fast, book_.used(), listener_.counters()},
                                       fast_.status(fast));
  // What the last status write cost (the loop's share: the copy) and how often it runs
  // (docs/daemon.md, as the transparent daemon's).
  s["housekeeping"] = {{"status_seconds", status_writes_.paced().last_cost()},
                       {"status_build_seconds", status_build_cost_},
                       {"status_every_seconds", status_writes_.paced().interval()}};
  return s;
}

void ProxyServer::write_status() {
  std::erase_if(sessions_, [](const std::weak_ptr<Session>& w) { return w.expired(); });
  const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  struct Copy {
    nlohmann::json summary;
    std::vector<ProxyCallRow> rows;
  };
  const std::optional<double> built = daemon::write_status_off_loop(
      status_writes_, now, !options_.status_file.empty(), *worker_, io_,
      [this] { return Copy{status_summary(), call_rows(true)}; },
      [this](Copy& copy) -> std::optional<std::string> {
        copy.summary["calls"] = proxy_calls_json(copy.rows, true);  // both legs (`pptp-alg status`)
        copy.rows = {};
        const std::string text = copy.summary.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        copy.summary = {};
        if (auto r = daemon::write_private_file(options_.status_file, text); !r) return r.error();
        return std::nullopt;
      },
      [](const std::optional<std::string>& error) {
        if (error) spdlog::warn("status_write_failed error={}", *error);
      });
  if (built) status_build_cost_ = *built;
}

}  // namespace pptp::proxy
