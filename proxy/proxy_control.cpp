#include "proxy/proxy_control.hpp"

#include <cstdio>
#include <sstream>

#include "alg/control/metrics.hpp"
#include "nftables/rules.hpp"

namespace pptp::proxy {

namespace {
using nlohmann::json;

// A Call ID, or null while not known (built without std::optional: GCC 12 -O2 warns a
// false -Wmaybe-uninitialized on optional<uint16_t> into json).
json id_or_null(bool known, std::uint16_t id) { return known ? json(id) : json(nullptr); }

json flow(const track::Call* call, track::Direction d) {
  if (call == nullptr) return json::object();
  const track::GreFlowStats& f = call->gre[static_cast<std::size_t>(d)];
  return {{"packets", f.packets}, {"bytes", f.payload_bytes}};
}

json one_call(const Relay& relay, const ProxyCall& c, const track::Call* known) {
  const json client_id = id_or_null(c.client_known, c.client_call_id);
  const json server_id = id_or_null(c.server_call_id.has_value(), c.server_call_id.value_or(0));
  return json{{"id", c.pac_call_id},
              {"client", wire::to_string(relay.client())},
              {"server", wire::to_string(relay.server())},
              {"user", known != nullptr && known->user ? json(known->user->name) : json(nullptr)},
              {"state", c.server_call_id && c.client_known ? "established" : "setting_up"},
              {"pns_call_id", client_id},
              {"outside_call_id", c.pns_call_id},
              {"pac_call_id", server_id},
              {"client_leg", {{"client_call_id", client_id}, {"proxy_call_id", c.pac_call_id}}},
              {"server_leg", {{"proxy_call_id", c.pns_call_id}, {"server_call_id", server_id}}},
              {"to_server", flow(known, track::Direction::PnsToPac)},
              {"to_client", flow(known, track::Direction::PacToPns)},
              {"path", "proxy"}};
}
}  // namespace

json proxy_calls_json(const std::vector<std::weak_ptr<Session>>& sessions, const ProxyPolicy& policy) {
  json calls = json::array();
  for (const auto& weak : sessions) {
    const auto session = weak.lock();
    if (!session) continue;
    for (const ProxyCall& c : session->relay().calls()) {
      calls.push_back(one_call(session->relay(), c, policy.call(c.pac_call_id)));
    }
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
