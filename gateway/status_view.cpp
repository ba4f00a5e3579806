// The status (docs/daemon.md, "Status file"): live connections and calls with their Call IDs
// on both sides, policy standing and fast path; the counters from their declared lists; the
// memory budget and what it counts now (docs/reliability.md). Copied as plain values on the
// packet loop (status_snapshot), formatted as JSON from those values on any thread
// (status_json): a status with many calls costs the loop a copy, not its text. The status
// file streams the connections instead (status_stream.cpp), with the same bytes.
#include "gateway/describe.hpp"
#include "gateway/gateway.hpp"
#include "gateway/status_snapshot.hpp"

namespace pptp::gateway {

namespace {
using nlohmann::json;

json gre_json(const track::GreFlowStats& s) { return {{"packets", s.packets}, {"payload_bytes", s.payload_bytes}}; }

template <class T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

CallSnapshot call_snapshot(const track::ControlConnection& c, const track::Call& call, const CallRecord* r,
                           const nat::CallIdTranslator& translator) {
  const nat::CallMapping* m = call.pns_call_id ? translator.find_inside(c.id, *call.pns_call_id) : nullptr;
  CallSnapshot s{.id = call.id,
                 .origin = call.origin,
                 .state = call.state,
                 .pns_call_id = call.pns_call_id,
                 .outside_call_id = std::nullopt,
                 .pac_call_id = call.pac_call_id,
                 .gre_to_pac = call.gre[0],
                 .gre_to_pns = call.gre[1],
                 .user = std::nullopt,
                 .fast_path = r != nullptr && r->offload.has_value(),
                 .policy = std::nullopt};
  if (m != nullptr) s.outside_call_id = m->outside_call_id;
  if (call.user) s.user = printable_name(call.user->name);
  if (r != nullptr && r->policy) s.policy = CallPolicySnapshot{r->policy->outcome, r->policy->rule, r->policy->charge.user};
  return s;
}

json call_json(const CallSnapshot& call) {
  json j{{"id", call.id},
         {"origin", track::name_of(call.origin)},
         {"state", track::name_of(call.state)},
         {"pns_call_id", optional_json(call.pns_call_id)},
         {"outside_call_id", optional_json(call.outside_call_id)},
         {"pac_call_id", optional_json(call.pac_call_id)},
         {"gre_to_pac", gre_json(call.gre_to_pac)},
         {"gre_to_pns", gre_json(call.gre_to_pns)},
         {"user", optional_json(call.user)}};
  j["fast_path"] = call.fast_path;
  if (const auto& p = call.policy) {
    j["policy"] = {{"verdict", policy::name_of(p->outcome)},
                   {"rule", p->rule},
                   {"user", p->user.empty() ? json(nullptr) : json(p->user)}};
  }
  return j;
}

json connections_json(const std::vector<ConnectionSnapshot>& connections) {
  json out = json::array();
  for (const ConnectionSnapshot& c : connections) {
    json calls = json::array();
    for (const CallSnapshot& call : c.calls) calls.push_back(call_json(call));
    out.push_back(json{{"id", c.id},
                       {"pns", wire::to_string(c.pns)},
                       {"pac", wire::to_string(c.pac)},
                       {"outside", c.outside ? wire::to_string(*c.outside) : std::string()},
                       {"state", track::name_of(c.state)},
                       {"calls", std::move(calls)}});
  }
  return out;
}
}  // namespace

StatusSnapshot Gateway::status_snapshot() const {
  StatusSnapshot s;
  tracker_.for_each_connection([&](const track::ControlConnection& c) {
    if (c.state == track::ConnectionState::Closed) return;
    ConnectionSnapshot& cs = s.connections.emplace_back();
    cs.id = c.id;
    cs.pns = c.pns;
    cs.pac = c.pac;
    cs.state = c.state;
    if (const ConnectionRecord* r = connection_record(c.id)) cs.outside = r->outside;
    cs.calls.reserve(c.calls.size());
    for (const auto& call : c.calls) cs.calls.push_back(call_snapshot(c, *call, call_record(call->id), translator_));
  });
  s.calls = tracker_.call_count();
  for (const auto& info : track::kAnomalyTable) {
    const std::uint64_t v = tracker_.counters()[static_cast<std::size_t>(info.anomaly)];
    if (v != 0) s.anomalies.emplace_back(info.name, v);
  }
  s.counters = counters_;
  s.nat = translator_.counters();
  s.nat_mapped = translator_.size();
  s.nat_held = translator_.held();
  s.nat_parked = translator_.parked();
  s.fast_path_enabled = offloader_.enabled();
  s.fast_path_calls = offloader_.offloaded();
  s.fast_path_adopted = offloader_.adopted();
  if (const policy::Policy* p = gate_.policy()) s.policy = PolicySnapshot{p->origin, p->rules.size(), p->users.size()};
  s.memory_budget_bytes = budgets_.limits().memory_bytes;
  s.memory_used_bytes = memory_bytes();
  s.memory_sources = budgets_.sources();
  return s;
}

nlohmann::json Gateway::status() const { return status_json(status_snapshot()); }

nlohmann::json status_json(const StatusSnapshot& s) {
  json out = status_summary_json(s);
  out["connections"] = connections_json(s.connections);
  return out;
}

nlohmann::json status_summary_json(const StatusSnapshot& s) {
  json anomalies = json::object();
  for (const auto& [name, value] : s.anomalies) anomalies[std::string(name)] = value;
  const auto visit_packets = [](const GatewayCounters& c, auto&& f) { visit_packet_counters(c, f); };
  const auto visit_policy = [](const GatewayCounters& c, auto&& f) { visit_policy_counters(c, f); };
  const auto visit_fast_path = [](const GatewayCounters& c, auto&& f) { visit_fast_path_counters(c, f); };
  json fast_path = counters_json(s.counters, visit_fast_path);
  fast_path["enabled"] = s.fast_path_enabled;
  fast_path["calls"] = s.fast_path_calls;
  fast_path["adopted"] = s.fast_path_adopted;
  json policy = nullptr;
  if (s.policy) {
    policy = counters_json(s.counters, visit_policy);
    policy["file"] = s.policy->file;
    policy["rules"] = s.policy->rules;
    policy["users"] = s.policy->users;
  }
  json nat = counters_json(s.nat, [](const auto& c, auto&& f) { nat::visit_nat_counters(c, f); });
  nat["mapped"] = s.nat_mapped;
  nat["held"] = s.nat_held;
  nat["parked"] = s.nat_parked;
  return json{{"calls", s.calls},
              {"nat", nat},
              {"packets", counters_json(s.counters, visit_packets)},
              {"fast_path", std::move(fast_path)},
              {"policy", std::move(policy)},
              {"anomalies", std::move(anomalies)},
              {"memory", {{"budget_bytes", s.memory_budget_bytes},
                          {"used_bytes", s.memory_used_bytes},
                          {"sources", s.memory_sources}}}};
}

}  // namespace pptp::gateway
