// `pptp-alg ctl` in proxy mode: the same protocol as the transparent daemon's control socket
// (alg/control/protocol.hpp). `calls` lists each call with both legs' Call IDs; `kill` ends
// calls with Call-Disconnect-Notify to the client and Call-Clear-Request to the server.
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/fast_relay.hpp"
#include "proxy/gre_relay.hpp"
#include "proxy/proxy_policy.hpp"
#include "proxy/session.hpp"

namespace pptp::proxy {

// One entry per call of the live sessions. The columns `ctl calls` shows (id, client,
// server, user, state, pns_call_id = the client's own, outside_call_id = ours toward the
// server, pac_call_id = the server's) and both legs in full: client_leg {client_call_id,
// proxy_call_id}, server_leg {proxy_call_id, server_call_id}.
nlohmann::json proxy_calls_json(const std::vector<std::weak_ptr<Session>>& sessions, const ProxyPolicy& policy);

// `ctl metrics` in proxy mode: the Prometheus text (alg/control/metrics.hpp) of the proxy's
// counters: pptp_alg_proxy_relay_*, _proxy_gre_*, _policy_*, _proxy_limits_*,
// _proxy_fast_path_*, and gauges for what is live.
struct ProxyMetrics {
  const RelayCounters& relay;
  const GreCounters& gre;
  const ProxyPolicy& policy;
  FastRelayCounts fast;
  std::size_t call_ids_in_use = 0;
  const ListenerCounters& listener;
};
std::string proxy_metrics_text(const ProxyMetrics& m);

// `pptp-alg status` of a proxy's status file: each call with both legs.
std::string render_proxy_status(const nlohmann::json& status);

}  // namespace pptp::proxy
