#include "proxy/proxy_control.hpp"

#include <cstdio>
#include <sstream>

#include "alg/control/metrics.hpp"
#include "alg/core/counter_list.hpp"
#include "gateway/describe.hpp"
#include "nftables/rules.hpp"

namespace pptp::proxy {

namespace {
using nlohmann::json;

// A Call ID, or null while not known (built without std::optional: GCC 12 -O2 warns a
// false -Wmaybe-uninitialized on optional<uint16_t> into json).
json id_or_null(bool known, std::uint16_t id) { return known ? json(id) : json(nullptr); }

json flow(const ProxyCallRow& r, const ProxyCallRow::Flow& f) {
  if (!r.judged) return json::object();
  return {{"packets", f.packets}, {"bytes", f.payload_bytes}};
}

json one_call(const ProxyCallRow& r) {
  const json client_id = id_or_null(r.client_known, r.client_call_id);
  const json server_id = id_or_null(r.server_known, r.server_call_id);
  return json{{"id", r.pac_call_id},
              {"client", wire::to_string(r.client)},
              {"server", wire::to_string(r.server)},
              // As the server accepted it, bytes not UTF-8 included: escaped, else the JSON's
              // dump throws (s31 review: a PAP name "jos\xe9" ended the daemon at its next write).
              {"user", r.user ? json(gateway::printable_name(*r.user)) : json(nullptr)},
              {"state", r.server_known && r.client_known ? "established" : "setting_up"},
              {"pns_call_id", client_id},
              {"outside_call_id", r.pns_call_id},
              {"pac_call_id", server_id},
              {"client_leg", {{"client_call_id", client_id}, {"proxy_call_id", r.pac_call_id}}},
              {"server_leg", {{"proxy_call_id", r.pns_call_id}, {"server_call_id", server_id}}},
              {"to_server", flow(r, r.to_server)},
              {"to_client", flow(r, r.to_client)},
              {"path", "proxy"}};
}

ProxyCallRow::Flow flow_of(const track::Call& call, track::Direction d) {
  const track::GreFlowStats& f = call.gre[static_cast<std::size_t>(d)];
  return {f.packets, f.payload_bytes};
}

ProxyCallRow row_of(const Relay& relay, const ProxyCall& c, const track::Call* known, const FastRelay* fast) {
  ProxyCallRow r;
  r.pac_call_id = c.pac_call_id;
  r.pns_call_id = c.pns_call_id;
  r.client_known = c.client_known;
  r.client_call_id = c.client_call_id;
  r.server_known = c.server_call_id.has_value();
  r.server_call_id = c.server_call_id.value_or(0);
  r.client = relay.client();
  r.server = relay.server();
  r.offloaded = fast != nullptr && fast->offloaded(c.pac_call_id);
  if (known == nullptr) return r;
  r.judged = true;
  if (known->user) r.user = known->user->name;
  r.to_server = flow_of(*known, track::Direction::PnsToPac);
  r.to_client = flow_of(*known, track::Direction::PacToPns);
  return r;
}
}  // namespace

std::vector<ProxyCallRow> proxy_call_rows(const std::vector<std::weak_ptr<Session>>& sessions,
                                          const ProxyPolicy& policy, const FastRelay* fast) {
  std::vector<ProxyCallRow> rows;
  for (const auto& weak : sessions) {
    const auto session = weak.lock();
    if (!session) continue;
    for (const ProxyCall& c : session->relay().calls()) {
      rows.push_back(row_of(session->relay(), c, policy.call(c.pac_call_id), fast));
    }
  }
  return rows;
}

json proxy_calls_json(const std::vector<ProxyCallRow>& rows, bool fast_path) {
  json calls = json::array();
  for (const ProxyCallRow& r : rows) {
    calls.push_back(one_call(r));
    if (fast_path) calls.back()["fast_path"] = r.offloaded;
  }
  return calls;
}

std::string proxy_metrics_text(const ProxyMetrics& m) {
  control::MetricsText t;
  t.counters("proxy_relay", m.relay, [](const auto& c, auto&& f) { visit_relay_counters(c, f); });
  t.counters("proxy_gre", m.gre, [](const auto& c, auto&& f) { visit_gre_counters(c, f); });
  t.counters("policy", m.policy.counters(), [](const auto& c, auto&& f) { gateway::visit_policy_counters(c, f); });
  t.counters("proxy_limits", m.policy.limit_counters(), [](const auto& c, auto&& f) { visit_limit_counters(c, f); });
  const FastRelayCounts& f = m.fast;
  t.counter("proxy_fast_path", "offloaded", "calls whose GRE was handed to the kernel", f.offloaded);
  t.counter("proxy_fast_path", "withdrawn", "calls taken back from the kernel (ended, cut)", f.withdrawn);
  t.counter("proxy_fast_path", "add_failed", "calls the kernel refused (they stay in user space)", f.add_failed);
  t.counter("proxy_fast_path", "netlink_errors", "fast-path netlink requests that failed", f.netlink_errors);
  t.counter("proxy_fast_path", "to_server_packets", "GRE packets the kernel relayed client -> server",
            f.to_server_packets);
  t.counter("proxy_fast_path", "to_client_packets", "GRE packets the kernel relayed server -> client",
            f.to_client_packets);
  if (f.control_stray) {
    t.counter("rules", std::string(nft::kCounterControlStray) + "_packets", nft::kCounterControlStrayHelp,
              f.control_stray->packets);
  }
  t.counters("proxy_limits", m.listener, [](const auto& c, auto&& f) { visit_listener_counters(c, f); });
  t.counter("proxy", "calls_idle_ended", "calls ended for want of GRE (--idle-timeout)", m.policy.idle_ended());
  t.gauge("proxy_calls", "calls admitted and not ended", static_cast<double>(m.policy.calls()));
  t.gauge("proxy_fast_path_calls", "calls whose GRE the kernel relays now", static_cast<double>(f.calls));
  t.gauge("proxy_call_ids_in_use", "the proxy's Call IDs in use (two per call)", static_cast<double>(m.call_ids_in_use));
  return t.text();
}

json proxy_status_json(const ProxyMetrics& m, json fast_status) {
  json s;
  s["mode"] = "proxy";
  s["relay"] = counters_json(m.relay, [](const auto& c, auto&& f) { visit_relay_counters(c, f); });
  s["gre"] = counters_json(m.gre, [](const auto& c, auto&& f) { visit_gre_counters(c, f); });
  s["call_ids_in_use"] = m.call_ids_in_use;
  s["policy"] = counters_json(m.policy.counters(), [](const auto& c, auto&& f) { gateway::visit_policy_counters(c, f); });
  s["limits"] = counters_json(m.policy.limit_counters(), [](const auto& c, auto&& f) { visit_limit_counters(c, f); });
  s["limits"].update(counters_json(m.listener, [](const auto& c, auto&& f) { visit_listener_counters(c, f); }));
  const ProxyLimits& limits = m.policy.limits();
  s["connections"] = {{"open", m.policy.connections()},
                      {"limit", limits.connections},
                      {"per_source_limit", limits.connections_per_source}};
  s["call_limits"] = {{"in_all", limits.calls},
                      {"reserve", limits.calls / kReservedShare},
                      {"fair_share", kFairShareCalls},
                      {"per_source", limits.calls_per_source}};
  s["calls_judged"] = m.policy.calls();
  s["calls_idle_ended"] = m.policy.idle_ended();
  s["fast_path"] = std::move(fast_status);
  // As the transparent daemon's status names it (rules.control_stray), from the proxy's own table.
  if (const auto& stray = m.fast.control_stray) {
    s["rules"][std::string(nft::kCounterControlStray)] = {{"packets", stray->packets}, {"bytes", stray->bytes}};
  }
  return s;
}

std::string render_proxy_status(const json& s) {
  const auto text = [](const json& v) { return v.is_null() ? std::string("-") : v.is_string() ? v.get<std::string>() : v.dump(); };
  std::ostringstream out;
  out << "proxy mode: each call has a client leg (the client's Call ID, ours toward it) and a server leg "
         "(ours toward the server, the server's)\n";
  char line[512];
  for (const json& c : s.value("calls", json::array())) {
    std::snprintf(line, sizeof line,
                  "call %-5s %-11s client %s Call ID %s <-> ours %s | ours %s <-> server %s Call ID %s"
                  "  user %s  GRE to server %s to client %s%s\n",
                  text(c["id"]).c_str(), text(c["state"]).c_str(), text(c["client"]).c_str(),
                  text(c["client_leg"]["client_call_id"]).c_str(), text(c["client_leg"]["proxy_call_id"]).c_str(),
                  text(c["server_leg"]["proxy_call_id"]).c_str(), text(c["server"]).c_str(),
                  text(c["server_leg"]["server_call_id"]).c_str(), text(c["user"]).c_str(),
                  text(c["to_server"].value("packets", json())).c_str(),
                  text(c["to_client"].value("packets", json())).c_str(),
                  c.value("fast_path", false) ? "  [fast path]" : "");
    out << line;
  }
  for (const char* group : {"relay", "gre", "fast_path", "rules", "policy", "limits"}) {
    if (s.contains(group)) out << group << ": " << s[group].dump() << "\n";
  }
  out << "call_ids_in_use: " << text(s.value("call_ids_in_use", json())) << "\n";
  return out.str();
}

}  // namespace pptp::proxy
