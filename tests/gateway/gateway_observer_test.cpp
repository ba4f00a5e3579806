// The call observer (high availability's sync sender, docs/ha.md) hears each call's
// changes with its mapping, and its end; a node's half of the outside Call IDs holds.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace pptp::gateway
