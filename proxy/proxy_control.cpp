#include "proxy/proxy_control.hpp"

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

}  // namespace pptp::proxy
