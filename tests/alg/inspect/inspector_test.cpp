#include "alg/inspect/inspector.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "alg/inspect/capture_file.hpp"

namespace pptp::inspect {
namespace {

using nlohmann::json;

json inspect(const std::string& path) {
  Inspector inspector;
  auto r = read_capture(path, inspector);
  EXPECT_TRUE(r) << (r ? "" : r.error());
  return inspector.to_json();
}

std::string data(const char* name) { return std::string(PPTP_TEST_DATA) + "/pcaps/" + name; }
std::string shared(const char* name) { return std::string(PPTP_SHARED_PCAPS) + "/" + name; }

std::vector<json> all_calls(const json& j) {
  std::vector<json> calls;
  for (const json& c : j["control_connections"]) {
    for (const json& call : c["calls"]) calls.push_back(call);
  }
  return calls;
}

TEST(Inspect, FourClientsOfPoptopWithCollidingPnsCallIds) {
  const json j = inspect(data("pptp-linux-poptop-4-calls.pcap"));
  ASSERT_EQ(j["control_connections"].size(), 4u);
  std::set<int> pac_ids;
  int sevens = 0;
  for (const json& call : all_calls(j)) {
    pac_ids.insert(call["pac_call_id"].get<int>());
    sevens += call["pns_call_id"] == 7;
    // Every call's GRE was matched in both directions.
    EXPECT_GT(call["gre"]["pns_to_pac"]["packets"].get<int>(), 0);
    EXPECT_GT(call["gre"]["pac_to_pns"]["packets"].get<int>(), 0);
  }
  EXPECT_EQ(pac_ids, (std::set<int>{0, 128, 256, 384}));  // Call ID 0 is a real ID
  EXPECT_EQ(sevens, 2);
  EXPECT_TRUE(j["unmatched_gre"].empty());
  EXPECT_TRUE(j["anomalies"].empty());
}

TEST(Inspect, CraftedLifecycleFollowsThreeCallsOnOneConnection) {
  const json j = inspect(data("crafted-lifecycle.pcap"));
  ASSERT_EQ(j["control_connections"].size(), 1u);
  const json& c = j["control_connections"][0];
  EXPECT_EQ(c["close_reason"], "stop_control_connection");
  const auto calls = all_calls(j);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0]["user"]["name"], "alice");
  EXPECT_EQ(calls[0]["user"]["method"], "pap");
  EXPECT_EQ(calls[0]["disconnect_result_code"], 3);
  // The crafted MS-CHAPv2 Response of bob's call answers no Challenge: a claim, never the user.
  EXPECT_EQ(calls[1]["user"], nullptr);
  EXPECT_EQ(calls[1]["authentication"]["first_claim"]["name"], "bob");
  EXPECT_EQ(calls[1]["authentication"]["first_claim"]["method"], "ms-chap-v2");
  EXPECT_EQ(j["anomaly_counters"]["auth_unsolicited_response"], 1);
  EXPECT_EQ(calls[2]["origin"], "incoming");
  EXPECT_EQ(calls[2]["pac_call_id"], 256);
  EXPECT_EQ(calls[0]["wan_errors_reported"], 1);
  // GRE after the call was cleared no longer belongs to it.
  ASSERT_EQ(j["unmatched_gre"].size(), 1u);
  EXPECT_EQ(j["unmatched_gre"][0]["call_id"], 0);
  EXPECT_EQ(j["messages"].size(), 18u);
}

TEST(Inspect, HostileCaptureIsReportedWithPacketNumbers) {
  const json j = inspect(data("crafted-hostile.pcap"));
  std::map<std::string, std::vector<int>> seen;
  for (const json& a : j["anomalies"]) seen[a["anomaly"]].push_back(a["packet"]);
  EXPECT_EQ(seen["stream_framing_error"], (std::vector<int>{16, 22, 26}));
  EXPECT_EQ(seen["tcp_retransmission"], (std::vector<int>{5}));
  EXPECT_EQ(seen["unknown_call"], (std::vector<int>{15}));
  EXPECT_EQ(j["anomaly_counters"]["gre_malformed"], 1);
  EXPECT_EQ(j["anomaly_counters"]["gre_not_pptp"], 1);
  // The good call before the garbage is still there, its GRE still matched.
  const auto calls = all_calls(j);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["state"], "established");
  EXPECT_EQ(calls[0]["gre"]["pns_to_pac"]["packets"], 1);
}

TEST(Inspect, GreWithoutControlConnectionAndNonPptpGre) {
  json j = inspect(data("flowcontainer-pptp-gre.pcap"));
  EXPECT_TRUE(j["control_connections"].empty());
  EXPECT_EQ(j["anomaly_counters"]["gre_unknown_call"], 402);
  j = inspect(data("suricata-verify-grev0-ppp-frag-synthetic.pcap"));
  EXPECT_EQ(j["anomaly_counters"]["gre_not_pptp"], 1024);  // 0x880B alone is not PPTP
  j = inspect(data("pcapplusplus-gre-mixed.pcap"));         // pcapng, several interfaces
  EXPECT_EQ(j["packets"]["gre"], 7);
}

TEST(Inspect, DuplicatedServerFramesAreRetransmissionsNotErrors) {
  const json j = inspect(data("tcpdump-pptp.pcap"));
  const auto calls = all_calls(j);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["pns_call_id"], 0);
  EXPECT_EQ(calls[0]["pac_call_id"], 0);
  EXPECT_EQ(j["messages"].size(), 5u);
  EXPECT_EQ(j["anomaly_counters"].size(), 1u);
  EXPECT_TRUE(j["anomaly_counters"].contains("tcp_retransmission"));
}

TEST(Inspect, SharedGplCapturesUserNameAndWindowsQuirks) {
  if (!std::filesystem::exists(shared("ndpi-pptp.pcap"))) {
    GTEST_SKIP() << "../shared/pcaps is not beside the repository";
  }
  json j = inspect(shared("chapcrack-pptp-session.pcap"));
  auto calls = all_calls(j);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["user"]["name"], "moxie");
  EXPECT_EQ(calls[0]["user"]["method"], "ms-chap-v2");
  EXPECT_EQ(calls[0]["authentication"]["succeeded"], true);
  j = inspect(shared("ndpi-pptp.pcap"));
  EXPECT_EQ(j["anomaly_counters"]["set_link_info_from_pac"], 2);
  EXPECT_EQ(j["anomaly_counters"]["disconnect_names_pns_call_id"], 1);
  calls = all_calls(j);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["state"], "closed");
}

// The MS-CHAPv2 exchanges of two real sessions (RFC 2759): Challenge, Response and Success
// share one Identifier, and the name in the Response is the one the server accepted.
TEST(Inspect, MsChapV2NameIsTheOneTheServerAccepted) {
  if (!std::filesystem::exists(shared("chapcrack-pptp-session.pcap"))) {
    GTEST_SKIP() << "../shared/pcaps is not beside the repository";
  }
  const struct {
    const char* file;
    const char* user;
    int identifier;
  } cases[] = {{"chapcrack-pptp-session.pcap", "moxie", 6}, {"pptp-vpn-sniffer-connect.pcapng", "jm", 146}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const auto calls = all_calls(inspect(shared(c.file)));
    ASSERT_EQ(calls.size(), 1u);
    const json& user = calls[0]["user"];
    EXPECT_EQ(user["name"], c.user);
    EXPECT_EQ(user["method"], "ms-chap-v2");
    EXPECT_EQ(user["identifier"], c.identifier);
    EXPECT_EQ(user["sent"], "pns_to_pac");
    EXPECT_EQ(user["established"], "accepted_by_pac");
    EXPECT_EQ(calls[0]["authentication"]["accepted_exchanges"], 1);
    EXPECT_EQ(calls[0]["authentication"]["first_claim"]["name"], c.user);
    EXPECT_EQ(calls[0]["authentication"]["rejected"], nullptr);
  }
}

TEST(CaptureFile, DamagedFilesAreErrorsThatSayWhere) {
  auto file = load_file(data("tcpdump-pptp.pcap"));
  ASSERT_TRUE(file);
  std::vector<std::uint8_t> cut(file->begin(), file->begin() + 300);
  CaptureParser p(cut);
  std::string error;
  int records = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = p.next();
    if (!r) {
      error = r.error();
      break;
    }
    ++records;
  }
  EXPECT_GE(records, 1);  // the records before the cut are read
  EXPECT_NE(error.find("past the file"), std::string::npos) << error;
  EXPECT_FALSE(CaptureParser(std::vector<std::uint8_t>{1, 2, 3, 4, 5}).next());
  Inspector inspector;
  auto r = read_capture("/nonexistent/x.pcap", inspector);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace pptp::inspect
