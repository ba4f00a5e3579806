// The daemon's operations (daemon_loop.hpp): the control socket's requests, the metrics,
// and the policy reload that both SIGHUP and `pptp-alg ctl reload` start. Requests are
// answered from what the gateway holds, copied on the loop; the status's and the calls' text is
// built on the worker (a large table's JSON held queued packets up to 0.6 s, s33 review), as
// the reload's file is read and parsed there and only the new policy installed on the loop.
#include "alg/control/metrics.hpp"
#include "alg/control/protocol.hpp"
#include "alg/daemon/control_server.hpp"
#include "alg/daemon/daemon_loop.hpp"
#include "alg/daemon/status_worker.hpp"
#include "alg/version.hpp"
#include "gateway/describe.hpp"
#include "policy/loader.hpp"

#include <array>

namespace pptp::daemon {

namespace {
using nlohmann::json;

json flow(const track::GreFlowStats& s) { return {{"packets", s.packets}, {"bytes", s.payload_bytes}}; }

template <class T>
json maybe(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
}  // namespace

int Daemon::open_listeners() {
  std::optional<Account> owner;
  if (!options_.user.empty()) {
    if (auto found = find_account(options_.user); found) owner = *found;
  }
  if (!options_.control_socket.empty()) {
    auto opened = open_control_socket(io_, options_.control_socket, owner ? &*owner : nullptr,
                                      [this](std::string_view line, Reply reply) { on_control(line, std::move(reply)); });
    // The packets matter more than the operator's socket: the daemon runs on without it.
    if (!opened) {
      log_->warn("control_socket_unavailable error=\"{}\" note=\"pptp-alg ctl will not reach this daemon; create "
                 "the runtime directory or set control-socket\"", opened.error());
    } else {
      control_ = std::move(*opened);
      control_->start();
      log_->info("control_socket_listening path={}", options_.control_socket);
    }
  }
  if (!options_.metrics_listen.empty()) {
    auto at = parse_listen_address(options_.metrics_listen);
    auto opened = at ? open_metrics_listener(io_, *at, [this] { return metrics_text(); })
                     : Result<std::unique_ptr<MetricsListener>, std::string>(unexpected(at.error()));
    if (!opened) {
      log_->error("metrics_listen_failed error=\"{}\"", opened.error());
      return 1;
    }
    metrics_ = std::move(*opened);
    metrics_->start();
    log_->info("metrics_listening address={} path=/metrics", options_.metrics_listen);
  }
  return 0;
}

void Daemon::on_control(std::string_view line, Reply reply) {
  auto request = control::parse_request(line.substr(0, line.find('\n')));
  if (!request) {
    reply(control::error_answer(request.error()) + "\n", false);
    return;
  }
  switch (request->command) {
    case control::Command::Calls:
      answer_calls(std::move(reply));
      return;
    case control::Command::Promote:
    case control::Command::Demote:
      on_ha_request(request->command == control::Command::Promote, request->force, std::move(reply));
      return;
    case control::Command::Status:
      answer_status(std::move(reply));
      return;
    case control::Command::Metrics:
      reply(control::ok_answer({{"metrics", metrics_text()}}) + "\n", false);
      return;
    case control::Command::Kill: {
      const control::KillSelector& k = request->kill;
      const gateway::KillResult r = gateway_->kill_calls(gateway::KillRequest{k.call, k.user, k.client}, now());
      apply_offload();  // their elements go now, not at the next packet
      log_->warn("ctl_kill calls={} connections={} request={}", r.calls, r.connections, control::request_line(*request));
      reply(control::ok_answer({{"calls", r.calls}, {"connections", r.connections}}) + "\n", false);
      return;
    }
    case control::Command::Reload:
      reload_policy([reply = std::move(reply)](bool ok, const std::string& text) {
        reply((ok ? control::ok_answer({{"message", text}}) : control::error_answer(text)) + "\n", false);
      });
      return;
  }
}

std::vector<CallRow> Daemon::call_rows() const {
  std::vector<CallRow> rows;
  rows.reserve(gateway_->tracker().call_count());
  const double t = now();
  gateway_->tracker().for_each_connection([&](const track::ControlConnection& c) {
    if (c.state == track::ConnectionState::Closed) return;
    for (const auto& call : c.calls) {
      const nat::CallMapping* m =
          call->pns_call_id ? gateway_->translator().find_inside(c.id, *call->pns_call_id) : nullptr;
      const gateway::CallRecord* r = gateway_->call_record(call->id);
      rows.push_back(CallRow{.id = call->id,
                             .connection = c.id,
                             .client = c.pns,
                             .server = c.pac,
                             .user = call->user ? std::optional(gateway::printable_name(call->user->name)) : std::nullopt,
                             .state = call->state,
                             .pns_call_id = call->pns_call_id,
                             .outside_call_id = m != nullptr ? std::optional(m->outside_call_id) : std::nullopt,
                             .pac_call_id = call->pac_call_id,
                             .age_seconds = t - call->opened_at,
                             .to_server = call->gre[0],
                             .to_client = call->gre[1],
                             .fast_path = r != nullptr && r->offload,
                             .killed = gateway_->killed(c.id)});
    }
  });
  return rows;
}

nlohmann::json calls_json(const std::vector<CallRow>& rows) {
  json calls = json::array();
  for (const CallRow& row : rows) {
    calls.push_back(json{{"id", row.id},
                         {"connection", row.connection},
                         {"client", wire::to_string(row.client)},
                         {"server", wire::to_string(row.server)},
                         {"user", maybe(row.user)},
                         {"state", track::name_of(row.state)},
                         {"pns_call_id", maybe(row.pns_call_id)},
                         {"outside_call_id", maybe(row.outside_call_id)},
                         {"pac_call_id", maybe(row.pac_call_id)},
                         {"age_seconds", row.age_seconds},
                         {"to_server", flow(row.to_server)},
                         {"to_client", flow(row.to_client)},
                         {"path", row.fast_path ? "fast" : "queue"},
                         {"killed", row.killed}});
  }
  return calls;
}

void Daemon::answer_calls(Reply reply) {
  // The calls and the HA node's records copied as plain values on the loop, their JSON built
  // on the worker, as the status's is (answer_status).
  answer_off_loop(*worker_, io_, std::move(reply), [copy = calls_copy()] { return control::ok_answer(calls_answer(copy)); });
}

nlohmann::json Daemon::adopted_json() const {
  json calls = json::array();
  // Those taken over at an HA promotion are adopted entries too: listed with their records.
  const std::optional<OffloadedKeys> taken =
      ha_ ? std::optional<OffloadedKeys>(ha_->carried_bindings()) : std::nullopt;
  for (const nat::CallBinding& b : gateway_->offloader().adopted_calls()) {
    if (taken && taken->contains(b)) continue;
    calls.push_back(json{{"client", wire::to_string(b.inside)},
                         {"server", wire::to_string(b.server)},
                         {"outside", wire::to_string(b.outside)},
                         {"pns_call_id", b.inside_call_id},
                         {"outside_call_id", b.outside_call_id},
                         {"pac_call_id", b.server_call_id}});
  }
  return calls;
}

std::string Daemon::metrics_text() const {
  control::MetricsText m;
  const gateway::GatewayCounters& g = gateway_->counters();
  m.counters("packets", g, [](const auto& c, auto&& f) { gateway::visit_packet_counters(c, f); });
  m.counters("policy", g, [](const auto& c, auto&& f) { gateway::visit_policy_counters(c, f); });
  m.counters("fast_path", g, [](const auto& c, auto&& f) { gateway::visit_fast_path_counters(c, f); });
  m.counters("queue", queue_->stats(), [](const auto& c, auto&& f) { nft::visit_queue_counters(c, f); });
  for (const auto& info : track::kAnomalyTable) {
    m.counter("anomaly", info.name, info.meaning, gateway_->tracker().counters()[static_cast<std::size_t>(info.anomaly)]);
  }
  m.counters("nat", gateway_->translator().counters(), [](const auto& c, auto&& f) { nat::visit_nat_counters(c, f); });
  if (fast_path_) {
    const auto& f = fast_path_->stats();
    m.counter("fast_path_elements", "added", "fast-path elements added", f.added);
    m.counter("fast_path_elements", "removed", "fast-path elements removed", f.removed);
    m.counter("fast_path_elements", "errors", "fast-path netlink errors", f.errors);
    netdev_metrics(m);
  }
  nft_counters_metrics(m);
  if (ha_) m.counters("ha", *ha_, [](const HaNode& h, auto&& f) { h.visit_counters(f); });
  m.counter("daemon", "rules_repaired", "times the daemon put back its vanished nftables table", rules_repaired_);
  m.counter("daemon", "rules_monitor_overruns", "nf_tables notifications the kernel dropped before the daemon read them",
            rules_monitor_overruns_);
  m.gauge("connections", "live control connections", static_cast<double>(gateway_->tracker().connection_count()));
  m.histogram("verdict_latency_seconds", "from reading a queued packet to its verdict queued (held segments not counted)",
              verdict_latency_);
  m.gauge("calls", "live calls", static_cast<double>(gateway_->tracker().call_count()));
  m.gauge("nat_held_call_ids", "outside Call IDs held after a Call ID reused while clearing",
          static_cast<double>(gateway_->translator().held()));
  m.gauge("nat_parked_call_ids", "outside Call IDs kept for calls that idled out while their control connection lives",
          static_cast<double>(gateway_->translator().parked()));
  std::array<double, static_cast<std::size_t>(track::CallState::Closed) + 1> by_state{};
  gateway_->tracker().for_each_connection([&](const track::ControlConnection& c) {
    for (const auto& call : c.calls) ++by_state[static_cast<std::size_t>(call->state)];
  });
  std::vector<std::pair<std::string_view, double>> states;
  for (std::size_t s = 0; s < by_state.size(); ++s) {
    states.emplace_back(track::name_of(static_cast<track::CallState>(s)), by_state[s]);
  }
  m.gauges("calls_by_state", "live calls by state (RFC 2637 3.1: set-up, established, clearing)", "state", states);
  m.gauge("offloaded_calls", "calls whose GRE the kernel forwards", static_cast<double>(gateway_->offloader().offloaded()));
  m.gauge("uptime_seconds", "seconds since the daemon started", now());
  const pptp::gateway::Budgets& b = gateway_->budgets();
  m.gauge("memory_budget_bytes", "the memory budget (--memory-budget)", static_cast<double>(b.limits().memory_bytes));
  m.gauge("memory_used_bytes", "tracked state the memory budget counts now", static_cast<double>(gateway_->memory_bytes()));
  m.gauge("budget_sources", "hosts holding a share of the per-source budgets", static_cast<double>(b.sources()));
  return m.text();
}

void Daemon::reload_policy(std::function<void(bool ok, const std::string& text)> done) {
  if (options_.policy_file.empty()) {
    log_->info("reload_skipped reason=\"no --policy file\"");
    done(true, "reload skipped: no policy file");
    return;
  }
  // Read and parse on the worker: a large file never stalls the packet loop.
  boost::asio::post(*worker_, [this, done = std::move(done)]() mutable {
    auto loaded = policy::load_policy_file(options_.policy_file);
    boost::asio::post(io_, [this, loaded = std::move(loaded), done = std::move(done)]() mutable {
      if (!loaded) {
        log_->error("policy_reload_rejected error=\"{}\" note=\"the old policy keeps running\"", loaded.error());
        done(false, "reload rejected, the old policy keeps running: " + loaded.error());
        return;
      }
      auto next = std::make_shared<const policy::Policy>(std::move(*loaded));
      log_->info("policy_reloaded file={} users={} rules={} on_reload={}", options_.policy_file, next->users.size(),
                 next->rules.size(), policy::name_of(next->on_reload));
      gateway_->set_policy(std::move(next));
      issue_released();
      apply_offload();
      done(true, "policy reloaded: " + options_.policy_file);
    });
  });
}

}  // namespace pptp::daemon
