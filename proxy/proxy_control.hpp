// `pptp-alg ctl` in proxy mode: the same protocol as the transparent daemon's control socket
// (alg/control/protocol.hpp). `calls` lists each call with both legs' Call IDs; `kill` ends
// calls with Call-Disconnect-Notify to the client and Call-Clear-Request to the server.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "proxy/fast_relay.hpp"
#include "proxy/gre_relay.hpp"
#include "proxy/proxy_policy.hpp"
#include "proxy/session.hpp"

namespace pptp::proxy {

// One call of the live sessions as plain values, copied on the loop. Its JSON is made from
// the copy on the worker thread: at 30,000 calls the JSON took the loop 1.3-1.8 s per status
// write or `ctl calls` (s29 review, finding 10), the copy takes it milliseconds.
struct ProxyCallRow {
  std::uint16_t pac_call_id = 0;  // ours toward the client ("id")
  std::uint16_t pns_call_id = 0;  // ours toward the server ("outside_call_id")
  bool client_known = false;
  std::uint16_t client_call_id = 0;
  bool server_known = false;
  std::uint16_t server_call_id = 0;
  wire::Ipv4Address client;
  wire::Ipv4Address server;
  bool judged = false;  // the policy knows the call: user and flows below
  std::optional<std::string> user;
  struct Flow {  // what the JSON shows of a direction's GreFlowStats
    std::uint64_t packets = 0;
    std::uint64_t payload_bytes = 0;
  };
  Flow to_server;
  Flow to_client;
  bool offloaded = false;  // looked up only when `fast` is given
};
// `fast`: whether each call's GRE is relayed by the kernel (the status's column; not looked
// up for `ctl calls`, which does not show it).
std::vector<ProxyCallRow> proxy_call_rows(const std::vector<std::weak_ptr<Session>>& sessions,
                                          const ProxyPolicy& policy, const FastRelay* fast);

// One entry per row. The columns `ctl calls` shows (id, client, server, user, state,
// pns_call_id = the client's own, outside_call_id = ours toward the server, pac_call_id = the
// server's) and both legs in full: client_leg {client_call_id, proxy_call_id}, server_leg
// {proxy_call_id, server_call_id}; with `fast_path`, whether the kernel relays its GRE (the
// status file's).
nlohmann::json proxy_calls_json(const std::vector<ProxyCallRow>& rows, bool fast_path);

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

// The status (file and `ctl status`) but for its calls and housekeeping: counters, limits,
// the fast path (`fast_status`, FastRelay::status).
nlohmann::json proxy_status_json(const ProxyMetrics& m, nlohmann::json fast_status);

// `pptp-alg status` of a proxy's status file: each call with both legs.
std::string render_proxy_status(const nlohmann::json& status);

}  // namespace pptp::proxy
