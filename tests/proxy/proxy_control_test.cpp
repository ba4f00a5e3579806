// What the operator reads in proxy mode (proxy/proxy_control.hpp): `pptp-alg status` with both
// legs of each call, and `ctl metrics` in the Prometheus text format.
#include "proxy/proxy_control.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

namespace pptp::proxy {
namespace {

TEST(ProxyStatus, EachCallIsShownWithBothLegsAndWhetherTheKernelRelaysIt) {
  const auto status = nlohmann::json::parse(R"({
    "mode": "proxy", "call_ids_in_use": 2, "relay": {"calls_connected": 1},
    "calls": [{"id": 10, "state": "established", "client": "192.0.2.11", "server": "198.51.100.2",
               "user": "alice", "client_leg": {"client_call_id": 7, "proxy_call_id": 10},
               "server_leg": {"proxy_call_id": 11, "server_call_id": 300},
               "to_server": {"packets": 40}, "to_client": {"packets": 41}, "fast_path": true}]})");
  const std::string text = render_proxy_status(status);
  EXPECT_NE(text.find("client 192.0.2.11 Call ID 7 <-> ours 10 | ours 11 <-> server 198.51.100.2 Call ID 300  "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("user alice"), std::string::npos) << text;
  EXPECT_NE(text.find("GRE to server 40 to client 41  [fast path]"), std::string::npos) << text;
  EXPECT_NE(text.find("relay: {\"calls_connected\":1}"), std::string::npos) << text;
}

TEST(ProxyMetrics, TheProxysCountersAndGaugesAreServedAsPrometheusText) {
  RelayCounters relay;
  relay.calls_connected = 3;
  GreCounters gre;
  gre.to_server = 64;
  ProxyPolicy policy{std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>())};
  FastRelayCounts fast;
  fast.calls = 1;
  fast.to_client_packets = 5000;
  ListenerCounters listener;
  listener.accept_failures = 7;
  const std::string text = proxy_metrics_text(ProxyMetrics{relay, gre, policy, fast, 2, listener});
  for (const char* want :
       {"pptp_alg_proxy_relay_calls_connected_total 3\n", "pptp_alg_proxy_gre_to_server_total 64\n",
        "pptp_alg_proxy_fast_path_to_client_packets_total 5000\n", "pptp_alg_proxy_fast_path_calls 1\n",
        "pptp_alg_proxy_call_ids_in_use 2\n", "pptp_alg_policy_calls_cut_total 0\n",
        "pptp_alg_proxy_limits_source_calls_refused_total 0\n", "pptp_alg_proxy_limits_calls_refused_total 0\n",
        "pptp_alg_proxy_limits_accept_failures_total 7\n", "# TYPE pptp_alg_proxy_calls gauge\n"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
}

TEST(ProxyMetrics, TheStraySegmentsDroppedAreServedUnderTheTransparentDaemonsNameOnceRead) {
  RelayCounters relay;
  GreCounters gre;
  ProxyPolicy policy{std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>())};
  FastRelayCounts fast;
  const ListenerCounters listener;
  const std::string unread = proxy_metrics_text(ProxyMetrics{relay, gre, policy, fast, 0, listener});
  EXPECT_EQ(unread.find("control_stray"), std::string::npos) << unread;  // no table, or not read yet
  fast.control_stray = nft::NamedCount{4, 208};
  const std::string text = proxy_metrics_text(ProxyMetrics{relay, gre, policy, fast, 0, listener});
  EXPECT_NE(text.find("pptp_alg_rules_control_stray_packets_total 4\n"), std::string::npos) << text;
  const std::string status = render_proxy_status(nlohmann::json::parse(
      R"({"mode": "proxy", "rules": {"control_stray": {"packets": 4, "bytes": 208}}})"));
  EXPECT_NE(status.find("rules: {\"control_stray\":{\"bytes\":208,\"packets\":4}}"), std::string::npos) << status;
}

}  // namespace
}  // namespace pptp::proxy
