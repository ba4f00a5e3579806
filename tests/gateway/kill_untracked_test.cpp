// `pptp-alg ctl kill` on the calls the tracker does not hold: those taken over at an HA
// promotion (the HA node's, selected by user or client) and those adopted at a restart
// (selected by client only). Before s26 neither could be ended: a user carried on by the
// new node of a pair kept tunnelling whatever the operator asked.
#include <gtest/gtest.h>

#include "tests/gateway/taken_over_support.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

const KillRequest kByAlice{std::nullopt, "alice", std::nullopt};

Action server_gre(Harness& h, std::uint16_t key) {
  Packet g = checksummed(test::gre(kServer, kPublic, key, 1, test::ppp(0x0021, {1})));
  return h.run(g).action;
}
Action client_gre(Harness& h, wire::Ipv4Address client, std::uint16_t key) {
  Packet g = checksummed(test::gre(client, kServer, key, 1, test::ppp(0x0021, {1})));
  return h.run(g).action;
}

TEST(KillTakenOver, ByUserEndsTheCallAndCutsItsControlConnection) {
  Promoted p;
  const KillResult r = p.h.gw.kill_calls(kByAlice, p.h.now);
  EXPECT_EQ(r.calls, 1u);
  EXPECT_EQ(r.connections, 1u);
  EXPECT_TRUE(p.removed());  // its elements go
  // Its GRE that still reaches the queue matches nothing and is dropped, both ways.
  EXPECT_EQ(server_gre(p.h, p.taken.call.outside_call_id), Action::Drop);
  EXPECT_EQ(client_gre(p.h, p.a.pns.address, p.taken.call.server_call_id), Action::Drop);
  // Its control data stops, as a tracker call's does.
  Packet echo = p.to_pac(test::bytes_of(wire::EchoRequest{2}));
  EXPECT_EQ(p.h.run(echo).action, Action::Drop);
  EXPECT_TRUE(p.outside_call_id_free());
  EXPECT_EQ(p.h.gw.kill_calls(kByAlice, p.h.now).calls, 0u);  // once
}

// Killed before anything of its connection reached the new node: the call ends; there is
// no connection of the tracker's to cut yet.
TEST(KillTakenOver, BeforeItsConnectionIsPickedUpEndsTheCall) {
  Promoted p(false);
  const KillResult r =
      p.h.gw.kill_calls(KillRequest{std::nullopt, std::nullopt, p.a.pns.address}, p.h.now);
  EXPECT_EQ(r.calls, 1u);
  EXPECT_EQ(r.connections, 0u);
  EXPECT_TRUE(p.removed());
}

TEST(KillTakenOver, AnotherUserOrACallIdSelectsNone) {
  Promoted p;
  EXPECT_EQ(p.h.gw.kill_calls(KillRequest{std::nullopt, "bob", std::nullopt}, p.h.now).calls, 0u);
  EXPECT_EQ(p.h.gw.kill_calls(KillRequest{1, std::nullopt, std::nullopt}, p.h.now).calls, 0u);
  EXPECT_EQ(
      p.h.gw.kill_calls(KillRequest{std::nullopt, std::nullopt, addr("192.0.2.99")}, p.h.now).calls,
      0u);
  EXPECT_TRUE(p.untouched());
}

// Adopted at a restart (--keep-fast-path), with no HA node: neither a tracker id nor a user
// is known here, so only the client selects it.
TEST(KillAdopted, ByClientEndsACallAdoptedAtARestart) {
  Harness h{fast_path_on()};
  const wire::Ipv4Address client = addr("192.0.2.11"), other = addr("192.0.2.12");
  const OffloadedCall mine{kServer, kPublic, client, 8, 7, 500},
      theirs{kServer, kPublic, other, 9, 9, 501};
  h.gw.adopt_offloaded(
      {OffloadCount{true, mine, 0, 0, mine}, OffloadCount{true, theirs, 0, 0, theirs}}, h.now);
  (void)h.gw.take_offload_changes();
  EXPECT_EQ(h.gw.kill_calls(kByAlice, h.now).calls, 0u);
  EXPECT_EQ(h.gw.offloader().adopted_calls().size(), 2u);  // what `ctl calls` lists
  const KillResult r = h.gw.kill_calls(KillRequest{std::nullopt, std::nullopt, client}, h.now);
  EXPECT_EQ(r.calls, 1u);
  EXPECT_EQ(r.connections, 0u);
  const auto changes = h.gw.take_offload_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].add);
  EXPECT_EQ(changes[0].call, mine);
  // The other client's call stays on the fast path (re-armed, counted as before).
  const auto left = h.gw.offloaded_calls();
  EXPECT_EQ(left, std::vector<OffloadedCall>{theirs});
  EXPECT_EQ(h.gw.offloader().adopted_calls(), std::vector<OffloadedCall>{theirs});
}

}  // namespace
}  // namespace pptp::gateway
