// `ctl status` and `ctl calls` are answered off the packet loop (alg/daemon/housekeeping.cpp,
// control_requests.cpp): the status streamed from its snapshot on one line, the same bytes as
// the tree the daemon built on the loop before (s33 review: at 65,536 calls that tree held
// queued packets up to 0.6 s); the calls from rows of plain values.
#include <gtest/gtest.h>

#include "alg/control/protocol.hpp"
#include "alg/daemon/daemon_loop.hpp"
#include "gateway/status_stream.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::daemon {
namespace {

using namespace gateway::harness;  // NOLINT: the harness is this file's vocabulary

TEST(StatusAnswer, IsTheControlSocketsAnswerOfTheWholeTreeOnOneLine) {
  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
  h.start(a);
  h.start(b);
  for (Client* c : {&a, &b}) {  // both with Call ID 7: b's is translated
    Packet request = c->to_pac(test::bytes_of(ocrq(7)));
    ASSERT_EQ(h.run(request).action, gateway::Action::Accept);
    Packet reply = c->to_pns(test::bytes_of(ocrp(c == &a ? 100 : 200, 7)));
    h.run(reply);
  }
  const nlohmann::json daemon = {{"daemon", {{"version", "0.1"}, {"uptime_seconds", 2.5}}},
                                 {"fast_path", {{"elements", {{"added", 3}}}}},
                                 {"queue", {{"packets", 12}}}};
  const gateway::StatusSnapshot snapshot = h.gw.status_snapshot();
  nlohmann::json tree = h.gw.status();
  tree["daemon"] = daemon["daemon"];
  tree["fast_path"].update(daemon["fast_path"]);
  tree["queue"] = daemon["queue"];

  const std::string answer = status_answer(snapshot, daemon);
  EXPECT_EQ(answer, control::ok_answer({{"status", tree}}));
  EXPECT_EQ(answer.find('\n'), std::string::npos) << "one line";
  const nlohmann::json read = nlohmann::json::parse(answer);
  EXPECT_EQ(read["status"]["connections"].size(), 2u);
  EXPECT_EQ(read["status"]["connections"][1]["calls"][0]["pac_call_id"], 200);
  EXPECT_EQ(read["status"]["fast_path"]["elements"]["added"], 3);
}

// `ctl calls` lists its rows (copied on the loop) formatted on the worker: every field a user
// reads, absent Call IDs and users as null.
TEST(CallsJson, ListsEachCallAsCtlCallsShowsIt) {
  CallRow full;
  full.id = 5;
  full.connection = 2;
  full.client = {addr("192.0.2.12"), 40002};
  full.server = {kServer, 1723};
  full.user = "bob";
  full.state = track::CallState::Established;
  full.pns_call_id = 7;
  full.outside_call_id = 1;
  full.pac_call_id = 200;
  full.age_seconds = 1.5;
  full.to_server.packets = 3;
  full.to_server.payload_bytes = 90;
  full.to_client.packets = 4;
  full.to_client.payload_bytes = 120;
  full.fast_path = true;
  CallRow asked;
  asked.id = 6;
  asked.connection = 3;
  asked.client = {addr("192.0.2.13"), 40003};
  asked.server = {kServer, 1723};
  const nlohmann::json calls = calls_json({full, asked});
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], nlohmann::json::parse(R"({"id":5,"connection":2,"client":"192.0.2.12:40002",
      "server":"198.51.100.2:1723","user":"bob","state":"established","pns_call_id":7,"outside_call_id":1,
      "pac_call_id":200,"age_seconds":1.5,"to_server":{"packets":3,"bytes":90},
      "to_client":{"packets":4,"bytes":120},"path":"fast","killed":false})"));
  EXPECT_TRUE(calls[1]["user"].is_null());
  EXPECT_TRUE(calls[1]["outside_call_id"].is_null());
  EXPECT_EQ(calls[1]["path"], "queue");
}

}  // namespace
}  // namespace pptp::daemon
