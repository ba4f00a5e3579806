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

nlohmann::json records_json(const std::vector<sync::CallState>& records) {
  nlohmann::json calls = nlohmann::json::array();
  for (const sync::CallState& s : records) calls.push_back(record_json(s));
  return calls;
}

std::vector<sync::CallState> HaNode::replicated_records() const {
  std::vector<sync::CallState> records;
  records.reserve(channel_.replica().size());
  for (const auto& [key, s] : channel_.replica().calls()) records.push_back(s);
  return records;
}

std::vector<sync::CallState> HaNode::taken_over_records() const {
  std::vector<sync::CallState> records;
  if (role_ != HaRole::Active) return records;  // inert while standby (adopted, not carried)
  for (const auto& [key, s] : taken_over_.calls()) records.push_back(s);
  return records;
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
