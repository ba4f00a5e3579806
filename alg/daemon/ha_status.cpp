// What the HA node shows an operator (docs/ha.md): its part of `ctl status` and the call
// records `ctl calls` lists. Split from ha_node.cpp for size.
#include "alg/daemon/ha_node.hpp"

#include "gateway/describe.hpp"

namespace pptp::daemon {

namespace {
// One call record as `ctl calls` lists it (replicated or taken over).
nlohmann::json record_json(const sync::CallState& s) {
  return {{"client", wire::to_string(s.key.pns)},
          {"server", wire::to_string(s.key.pac)},
          {"pns_call_id", s.key.pns_call_id},
          {"pac_call_id", s.pac_call_id},
          {"outside", wire::to_string(s.outside)},
          {"outside_call_id", s.outside_call_id},
          {"verdict", sync::name_of(s.verdict)},
          {"user", gateway::printable_name(s.user)},
          {"started_ms", s.started_ms},
          {"updated_ms", s.updated_ms}};
}
}  // namespace

nlohmann::json HaNode::replicated_json() const {
  nlohmann::json calls = nlohmann::json::array();
  for (const auto& [key, s] : channel_.replica().calls()) calls.push_back(record_json(s));
  return calls;
}

nlohmann::json HaNode::taken_over_json() const {
  nlohmann::json calls = nlohmann::json::array();
  if (role_ != HaRole::Active) return calls;  // inert while standby (adopted, not carried)
  for (const auto& [key, s] : taken_over_.calls()) calls.push_back(record_json(s));
  return calls;
}

nlohmann::json HaNode::status_json() const {
  nlohmann::json status = {{"role", role_ == HaRole::Active ? "active" : "standby"},
          {"node", channel_.node()},
          {"epoch", channel_.epoch()},
          {"peer_epoch", channel_.peer_epoch()},
          {"peer_alive", channel_.peer_alive(clock_())},
          {"synced", channel_.synced()},
          {"replicated_calls", channel_.replica().size()},
          {"published_calls", channel_.published().size()},
          {"unacked", channel_.unacked()}};
  visit_counters([&](std::string_view key, std::uint64_t value, std::string_view) { status[std::string(key)] = value; });
  return status;
}

}  // namespace pptp::daemon
