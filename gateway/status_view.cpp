// The status JSON (docs/daemon.md, "Status"): live connections and calls with their Call IDs
// on both sides, policy standing and fast path; the counters from their declared lists; the
// memory budget and what it counts now (docs/reliability.md).
#include "gateway/describe.hpp"
#include "gateway/gateway.hpp"

namespace pptp::gateway {

namespace {
using nlohmann::json;

json gre_json(const track::GreFlowStats& s) { return {{"packets", s.packets}, {"payload_bytes", s.payload_bytes}}; }

template <class T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json call_json(const track::ControlConnection& c, const track::Call& call, const CallRecord* r,
               const nat::CallIdTranslator& translator) {
  const nat::CallMapping* m = call.pns_call_id ? translator.find_inside(c.id, *call.pns_call_id) : nullptr;
  json j{{"id", call.id},
         {"origin", track::name_of(call.origin)},
         {"state", track::name_of(call.state)},
         {"pns_call_id", optional_json(call.pns_call_id)},
         {"outside_call_id", m != nullptr ? json(m->outside_call_id) : json(nullptr)},
         {"pac_call_id", optional_json(call.pac_call_id)},
         {"gre_to_pac", gre_json(call.gre[0])},
         {"gre_to_pns", gre_json(call.gre[1])},
         {"user", call.user ? json(printable_name(call.user->name)) : json(nullptr)}};
  j["fast_path"] = r != nullptr && r->offload.has_value();
  if (r != nullptr && r->policy) {
    const CallPolicy& p = *r->policy;
    j["policy"] = {{"verdict", policy::name_of(p.outcome)},
                   {"rule", p.rule},
                   {"user", p.charge.user.empty() ? json(nullptr) : json(p.charge.user)}};
  }
  return j;
}
}  // namespace

nlohmann::json Gateway::status() const {
  json connections = json::array();
  tracker_.for_each_connection([&](const track::ControlConnection& c) {
    if (c.state == track::ConnectionState::Closed) return;
    json calls = json::array();
    for (const auto& call : c.calls) calls.push_back(call_json(c, *call, call_record(call->id), translator_));
    const ConnectionRecord* r = connection_record(c.id);
    connections.push_back(json{{"id", c.id},
                               {"pns", wire::to_string(c.pns)},
                               {"pac", wire::to_string(c.pac)},
                               {"outside", r != nullptr ? wire::to_string(r->outside) : std::string()},
                               {"state", track::name_of(c.state)},
                               {"calls", std::move(calls)}});
  });
  json anomalies = json::object();
  for (const auto& info : track::kAnomalyTable) {
    const std::uint64_t v = tracker_.counters()[static_cast<std::size_t>(info.anomaly)];
    if (v != 0) anomalies[std::string(info.name)] = v;
  }
  const auto visit_packets = [](const GatewayCounters& c, auto&& f) { visit_packet_counters(c, f); };
  const auto visit_policy = [](const GatewayCounters& c, auto&& f) { visit_policy_counters(c, f); };
  const auto visit_fast_path = [](const GatewayCounters& c, auto&& f) { visit_fast_path_counters(c, f); };
  json fast_path = counters_json(counters_, visit_fast_path);
  fast_path["enabled"] = offloader_.enabled();
  fast_path["calls"] = offloader_.offloaded();
  fast_path["adopted"] = offloader_.adopted();
  json policy = nullptr;
  if (const policy::Policy* p = gate_.policy()) {
    policy = counters_json(counters_, visit_policy);
    policy["file"] = p->origin;
    policy["rules"] = p->rules.size();
    policy["users"] = p->users.size();
  }
  const nat::NatCounters& t = translator_.counters();
  return json{{"connections", std::move(connections)},
              {"calls", tracker_.call_count()},
              {"nat", {{"mapped", translator_.size()},
                       {"calls_mapped", t.calls_mapped},
                       {"calls_translated", t.calls_translated},
                       {"exhausted", t.exhausted}}},
              {"packets", counters_json(counters_, visit_packets)},
              {"fast_path", std::move(fast_path)},
              {"policy", std::move(policy)},
              {"anomalies", std::move(anomalies)},
              {"memory", {{"budget_bytes", budgets_.limits().memory_bytes},
                          {"used_bytes", memory_bytes()},
                          {"sources", budgets_.sources()}}}};
}

}  // namespace pptp::gateway
