// The call observer (high availability's sync sender, docs/ha.md) hears each call's
// changes with its mapping, and its end; a node's half of the outside Call IDs holds.
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "gateway/gateway.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

struct Heard {
  std::uint16_t pns_call_id = 0;
  std::optional<std::uint16_t> pac_call_id, outside_call_id;
  track::CallState state{};
};

struct RecordingObserver final : CallObserver {
  std::vector<Heard> changed;
  std::vector<std::uint16_t> ended;
  void call_changed(const track::ControlConnection&, const track::Call& call, const CallRecord&,
                    const nat::CallMapping* m) override {
    changed.push_back(Heard{*call.pns_call_id, call.pac_call_id,
                            m != nullptr ? std::optional(m->outside_call_id) : std::nullopt, call.state});
  }
  void call_ended(const track::ControlConnection&, const track::Call& call) override {
    ended.push_back(call.pns_call_id.value_or(0));
  }
};

TEST(GatewayObserver, HearsAnEstablishedCallWithItsMappingAndItsEnd) {
  Harness h;
  RecordingObserver seen;
  h.gw.set_call_observer(&seen);
  Client a{{addr("192.0.2.11"), 40001}};
  h.start(a);
  h.pass(a.to_pac(test::bytes_of(ocrq(7))));
  h.pass(a.to_pns(test::bytes_of(ocrp(100, 7))));
  ASSERT_FALSE(seen.changed.empty());
  const Heard& last = seen.changed.back();
  EXPECT_EQ(last.pns_call_id, 7);
  EXPECT_EQ(last.pac_call_id, 100);
  EXPECT_EQ(last.outside_call_id, 7);
  EXPECT_EQ(last.state, track::CallState::Established);
  EXPECT_TRUE(seen.ended.empty());

  h.pass(a.to_pac(test::bytes_of(wire::CallClearRequest{7, 0})));
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 100;
  cdn.result_code = 3;
  h.pass(a.to_pns(test::bytes_of(cdn)));
  ASSERT_EQ(seen.ended.size(), 1u);
  EXPECT_EQ(seen.ended[0], 7);
}

TEST(GatewayObserver, ANodesHalfTranslatesACallIdOfTheOtherHalf) {
  Harness h;
  h.gw.set_node_half(1);
  Client a{{addr("192.0.2.11"), 40001}};
  h.start(a);
  Packet p = a.to_pac(test::bytes_of(ocrq(8)));
  const Verdict v = h.run(p);
  ASSERT_EQ(v.action, Action::Accept);
  EXPECT_TRUE(v.modified);
  EXPECT_EQ(tcp_u16(p, 12) % 2, 1);
}

// A node promoted after a failover picks the control connection up mid-stream (no SYN, no
// call of its own): the client's Call-Clear-Request names its own Call ID, and the server
// must get the outside one it knows the call by (docs/ha.md).
struct TakenOver final : CallObserver {
  wire::Endpoint pns;
  void call_changed(const track::ControlConnection&, const track::Call&, const CallRecord&,
                    const nat::CallMapping*) override {}
  void call_ended(const track::ControlConnection&, const track::Call&) override {}
  std::optional<TakenOverIds> taken_over_call(const track::ControlConnection& c, CallIdSide by,
                                              std::uint16_t id) const override {
    if (c.pns == pns && by == CallIdSide::Pns && id == 7) return TakenOverIds{7, 500, 40};
    return std::nullopt;
  }
};

TEST(GatewayObserver, ACallClearOnAConnectionTakenOverMidStreamNamesTheOutsideCallId) {
  Harness h;
  TakenOver taken;
  taken.pns = {addr("192.0.2.11"), 40001};
  h.gw.set_call_observer(&taken);
  Client a{taken.pns};
  Packet echo = a.to_pac(test::bytes_of(wire::EchoRequest{1}));
  const Verdict e = h.run(echo);  // picked up mid-stream on a message boundary
  EXPECT_EQ(e.action, Action::Accept);
  Packet clear = a.to_pac(test::bytes_of(wire::CallClearRequest{7, 0}));
  const Verdict v = h.run(clear);
  ASSERT_EQ(v.action, Action::Accept);
  EXPECT_TRUE(v.modified);
  EXPECT_EQ(tcp_u16(clear, 12), 40);
  // Another client's connection, or another Call ID, is not touched.
  Client b{{addr("192.0.2.12"), 40002}};
  h.pass(b.to_pac(test::bytes_of(wire::CallClearRequest{7, 0})));
  h.pass(a.to_pac(test::bytes_of(wire::CallClearRequest{9, 0})));
}

}  // namespace
}  // namespace pptp::gateway
