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

// The rows are copied on the loop and made into JSON on the worker (s31): the JSON is what
// the loop made itself before, and `pptp-alg status` renders it.
TEST(ProxyStatus, ACallsCopyGivesItsColumnsBothLegsAndItsFastPath) {
  ProxyCallRow up;
  up.pac_call_id = 10;
  up.pns_call_id = 11;
  up.client_known = true;
  up.client_call_id = 7;
  up.server_known = true;
  up.server_call_id = 300;
  up.client = wire::Ipv4Address{0xC000020B};  // 192.0.2.11
  up.server = wire::Ipv4Address{0xC6336402};  // 198.51.100.2
  up.judged = true;
  up.user = "alice";
  up.to_server.packets = 40;
  up.to_client.packets = 41;
  up.offloaded = true;
  ProxyCallRow asked = up;  // the server has not answered, the policy knows nothing yet
  asked.pac_call_id = 12;
  asked.server_known = false;
  asked.judged = false;
  asked.user.reset();
  asked.offloaded = false;
  const nlohmann::json calls = proxy_calls_json({up, asked}, true);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0]["state"], "established");
  EXPECT_EQ(calls[0]["client"], "192.0.2.11");
  EXPECT_EQ(calls[0]["pns_call_id"], 7);
  EXPECT_EQ(calls[0]["outside_call_id"], 11);
  EXPECT_EQ(calls[0]["pac_call_id"], 300);
  EXPECT_EQ(calls[0]["user"], "alice");
  EXPECT_EQ(calls[0]["to_client"]["packets"], 41);
  EXPECT_EQ(calls[0]["fast_path"], true);
  EXPECT_EQ(calls[1]["state"], "setting_up");
  EXPECT_TRUE(calls[1]["pac_call_id"].is_null());
  EXPECT_TRUE(calls[1]["server_leg"]["server_call_id"].is_null());
  EXPECT_TRUE(calls[1]["user"].is_null());
  EXPECT_TRUE(calls[1]["to_server"].empty());
  EXPECT_FALSE(proxy_calls_json({up}, false)[0].contains("fast_path"));  // `ctl calls` has none
  ProxyCallRow latin1 = up;  // a name the server accepted that is not UTF-8: the dump threw
  latin1.user = std::string("jos\xe9");
  const nlohmann::json escaped = proxy_calls_json({latin1}, true);
  EXPECT_NO_THROW((void)escaped.dump());
  EXPECT_EQ(escaped[0]["user"], "jos\\xe9");  // as the log writes it
  const std::string text = render_proxy_status(nlohmann::json{{"calls", calls}});
  EXPECT_NE(text.find("client 192.0.2.11 Call ID 7 <-> ours 10 | ours 11 <-> server 198.51.100.2 Call ID 300  "
                      "user alice  GRE to server 40 to client 41  [fast path]"),
            std::string::npos)
      << text;
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
