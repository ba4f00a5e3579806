// An HA node letting go of a control connection its peer carries now (docs/ha.md, "Letting
// go of what the peer carries"): its calls end as at any end (Call IDs freed, elements
// removed, the observer told), nothing is sent, and the tracker forgets the connection so
// that its next segment picks it up afresh (at a later promotion, as a taken-over one).
#include <gtest/gtest.h>

#include <vector>

#include "gateway/gateway.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

struct EndsHeard final : CallObserver {
  std::vector<std::uint16_t> ended;  // the client's Call IDs
  void call_changed(const track::ControlConnection&, const track::Call&, const CallRecord&,
                    const nat::CallMapping*) override {}
  void call_ended(const track::ControlConnection&, const track::Call& call) override {
    ended.push_back(call.pns_call_id.value_or(0xFFFF));
  }
};

GatewayOptions fast_path_on() {
  GatewayOptions o;
  o.fast_path = true;
  return o;
}

TEST(ReleaseConnection, EndsItsCallsFreesTheirCallIdsAndForgetsTheConnection) {
  Harness h{fast_path_on()};
  EndsHeard heard;
  h.gw.set_call_observer(&heard);
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
  h.start(a);
  h.start(b);
  std::uint32_t sequence = 1;
  for (const std::uint16_t id : {7, 9}) {
    h.pass(a.to_pac(test::bytes_of(ocrq(id))));
    h.pass(a.to_pns(test::bytes_of(ocrp(static_cast<std::uint16_t>(100 + id), id))));
    // Its first packets read (no policy: no name to wait for), it goes to the kernel.
    for (std::size_t i = 0; i < track::kAuthScanPackets; ++i) {
      Packet g = checksummed(test::gre(kServer, kPublic, id, sequence++, test::ppp(0x0021, {1})));
      ASSERT_EQ(h.run(g).action, Action::Accept);
    }
  }
  ASSERT_EQ(h.gw.take_offload_changes().size(), 2u);  // both calls on the fast path
  const std::uint64_t old_id = h.gw.tracker().find_connection(a.pns, a.pac)->id;

  EXPECT_FALSE(h.gw.release_connection(a.pns, {addr("198.51.100.9"), 1723}, h.now));  // none there
  const auto calls = h.gw.release_connection(a.pns, a.pac, h.now);
  ASSERT_TRUE(calls);
  EXPECT_EQ(*calls, 2u);
  EXPECT_EQ(heard.ended.size(), 2u);
  const auto changes = h.gw.take_offload_changes();
  ASSERT_EQ(changes.size(), 2u);
  for (const OffloadChange& c : changes) EXPECT_FALSE(c.add);
  EXPECT_EQ(h.gw.tracker().find_connection(a.pns, a.pac), nullptr);
  EXPECT_NE(h.gw.tracker().find_connection(b.pns, b.pac), nullptr);  // no other connection goes
  // Their outside Call IDs are free: a takeover adopts them without a conflict.
  const OffloadedCall again{kServer, kPublic, a.pns.address, 7, 7, 107};
  EXPECT_EQ(h.gw.adopt_offloaded({OffloadCount{true, again, 0, 0, again}}, h.now), 1u);
  // Its next segment opens it afresh (mid-stream), not a closed entry that swallows it.
  h.pass(a.to_pac(test::bytes_of(wire::EchoRequest{})));
  const track::ControlConnection* fresh = h.gw.tracker().find_connection(a.pns, a.pac);
  ASSERT_NE(fresh, nullptr);
  EXPECT_NE(fresh->id, old_id);
  EXPECT_NE(fresh->state, track::ConnectionState::Closed);
}

// An HA demotion: the calls it took over leave the adopted ones (their outside Call IDs
// free, no removal queued: the daemon removes their elements), so that the next promotion
// adopts the same calls again without a conflict (issue 18: fast_path_adopt_conflict).
TEST(ForgetAdopted, ADemotionsTakenOverCallsAreAdoptedAgainAtTheNextPromotion) {
  Harness h{fast_path_on()};
  const OffloadedCall call{kServer, kPublic, addr("192.0.2.11"), 7, 1, 107};
  const OffloadedCall other{kServer, kPublic, addr("192.0.2.12"), 9, 3, 109};
  ASSERT_EQ(h.gw.adopt_offloaded({OffloadCount{true, call, 0, 0, call}, OffloadCount{true, other, 0, 0, other}}, h.now),
            2u);
  EXPECT_EQ(h.gw.forget_adopted({call}, "demoted"), 1u);
  EXPECT_TRUE(h.gw.take_offload_changes().empty());
  const auto offloaded = h.gw.offloaded_calls();
  ASSERT_EQ(offloaded.size(), 1u);
  EXPECT_EQ(offloaded[0], other);  // the other stays
  // Not re-armed: a standby would put the removed elements back (they expire in 90 s).
  const auto due = h.gw.calls_due_for_rearm(h.now + 31, 30);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0], other);
  EXPECT_EQ(h.gw.adopt_offloaded({OffloadCount{true, call, 0, 0, call}}, h.now + 31), 1u);
  EXPECT_EQ(h.gw.forget_adopted({call, call}, "demoted"), 1u);  // once
}

}  // namespace
}  // namespace pptp::gateway
