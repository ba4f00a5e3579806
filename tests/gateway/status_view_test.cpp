// The status (gateway/status_view.cpp, docs/daemon.md "Status file"): what an operator reads
// about live calls, and that the snapshot the packet loop copies holds its own values, so
// that the worker thread can format it while the loop goes on.
#include <gtest/gtest.h>

#include "gateway/status_stream.hpp"
#include "policy/loader.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

class Status : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = policy::parse_policy("users: {alice: {addresses: 192.0.2.11}}\ndefault: allow\n");
    ASSERT_TRUE(p);
    h.gw.set_policy(std::make_shared<const policy::Policy>(std::move(*p)));
    h.start(a);
    h.start(b);
    call(a, 7, 100);
    call(b, 7, 200);  // collides with a's Call ID 7: translated
    server_gre(7);
    server_gre(outside_call_id_of_b());
    server_gre(999);  // no call: dropped and counted
  }
  void call(Client& c, std::uint16_t id, std::uint16_t server_id) {
    Packet request = c.to_pac(test::bytes_of(ocrq(id)));  // rewritten where it collides
    ASSERT_EQ(h.run(request).action, Action::Accept);
    Packet reply = c.to_pns(test::bytes_of(ocrp(server_id, id)));
    h.run(reply);
  }
  void server_gre(std::uint16_t key) {
    Packet p = checksummed(test::gre(kServer, kPublic, key, seq_++, test::lcp_echo()));
    h.run(p);
  }
  std::uint16_t outside_call_id_of_b() {
    return h.gw.status()["connections"][1]["calls"][0]["outside_call_id"].get<std::uint16_t>();
  }

  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
  std::uint32_t seq_ = 1;
};

TEST_F(Status, ShowsEachCallWithItsCallIdsOnBothSidesItsGreAndItsVerdict) {
  const nlohmann::json s = h.gw.status();
  ASSERT_EQ(s["connections"].size(), 2u);
  EXPECT_EQ(s["calls"], 2);
  const nlohmann::json first = s["connections"][0]["calls"][0];
  const nlohmann::json second = s["connections"][1]["calls"][0];
  EXPECT_EQ(s["connections"][0]["pns"], "192.0.2.11:40001");
  EXPECT_EQ(s["connections"][0]["outside"], "198.51.100.1");
  EXPECT_EQ(first["pns_call_id"], 7);
  EXPECT_EQ(first["outside_call_id"], 7);
  EXPECT_EQ(first["pac_call_id"], 100);
  EXPECT_EQ(second["pns_call_id"], 7);
  EXPECT_NE(second["outside_call_id"], 7);  // what the server sees of b's call
  EXPECT_EQ(second["pac_call_id"], 200);
  EXPECT_EQ(first["gre_to_pns"]["packets"], 1);
  EXPECT_EQ(second["gre_to_pns"]["packets"], 1);
  EXPECT_EQ(first["policy"]["verdict"], "allow");
  EXPECT_EQ(first["policy"]["user"], "alice");
  EXPECT_EQ(second["policy"]["user"], nullptr);  // b is in no user's addresses
  EXPECT_EQ(s["nat"]["calls_translated"], 1);
  EXPECT_EQ(s["packets"]["gre_unknown_dropped"], 1);
  EXPECT_EQ(s["anomalies"]["gre_unknown_call"], 1);
  EXPECT_EQ(s["policy"]["users"], 1);
  EXPECT_GT(s["memory"]["used_bytes"].get<std::size_t>(), 0u);
  EXPECT_EQ(s["memory"]["sources"], 2);
}

TEST_F(Status, ASnapshotKeepsWhatItCopiedWhileTheGatewayGoesOn) {
  const StatusSnapshot snapshot = h.gw.status_snapshot();
  const nlohmann::json before = status_json(snapshot);
  EXPECT_EQ(before, h.gw.status());  // the same content either way
  // The loop goes on: a connection ends (with its call), GRE flows.
  server_gre(7);
  server_gre(999);
  h.pass(a.to_pac({}, flags::kRst));
  const nlohmann::json now = h.gw.status();
  ASSERT_EQ(now["connections"].size(), 1u);
  EXPECT_EQ(now["packets"]["gre_unknown_dropped"], 2);
  // The snapshot formats as it was when copied.
  const nlohmann::json later = status_json(snapshot);
  EXPECT_EQ(later, before);
  EXPECT_EQ(later["connections"].size(), 2u);
  EXPECT_EQ(later["connections"][0]["calls"][0]["gre_to_pns"]["packets"], 1);
  EXPECT_EQ(later["packets"]["gre_unknown_dropped"], 1);
  EXPECT_EQ(later["policy"]["file"], before["policy"]["file"]);
}

// The status file is streamed (status_stream.cpp); its bytes are the tree's dump, with the
// daemon's keys around "connections" (before and after it in the sorted order).
class StreamedStatus : public Status {
 protected:
  void SetUp() override {
    Status::SetUp();
    snapshot = h.gw.status_snapshot();
    summary = status_summary_json(snapshot);
    EXPECT_FALSE(summary.contains("connections"));
    summary["daemon"] = {{"version", "x\\\"y"}, {"uptime_seconds", 1.25}};
    summary["fast_path"]["elements"] = {{"added", 3}};
    summary["ha"] = nullptr;
    summary["queue"] = {{"packets", 12}, {"last_errno", 0}};
    tree = status_json(snapshot);
    for (const auto& [key, value] : summary.items()) tree[key] = value;
  }
  std::string streamed(bool compact) {
    std::string text;
    StatusOut out(
        [&](std::string_view piece) {
          text.append(piece);
          return true;
        },
        compact);
    stream_status(summary, snapshot.connections, out);
    EXPECT_TRUE(out.finish());
    return text;
  }
  StatusSnapshot snapshot;
  nlohmann::json summary;
  nlohmann::json tree;
};

TEST_F(StreamedStatus, TheStreamedFileIsTheTreeDumpedByteForByte) {
  const std::string text = streamed(false);
  EXPECT_EQ(text, tree.dump(1) + "\n");
  // What the file says of the calls, read back.
  const nlohmann::json read = nlohmann::json::parse(text);
  EXPECT_EQ(read["connections"][1]["calls"][0]["pac_call_id"], 200);
  EXPECT_EQ(read["connections"][0]["calls"][0]["policy"]["user"], "alice");
}

// `ctl status` is answered from the same stream on one line (the control socket's answers are
// lines), off the packet loop: the tree of 65,536 calls built on the loop held packets up to
// 0.6 s and the RSS 120 MB higher (s33 review).
TEST_F(StreamedStatus, TheControlSocketsStatusIsTheTreeDumpedOnOneLine) {
  const std::string text = streamed(true);
  EXPECT_EQ(text, tree.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(text)["connections"][1]["calls"][0]["pac_call_id"], 200);
}

}  // namespace
}  // namespace pptp::gateway
