// Handing calls to the kernel: when a call's elements are added (established, its first
// packets seen, authorised), what they say (collisions included), when they go, and how the
// kernel's counters keep an offloaded call alive.
#include <gtest/gtest.h>

#include "policy/loader.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

GatewayOptions with_fast_path(double call_idle = 300) {
  GatewayOptions o;
  o.fast_path = true;
  o.timeouts.call_idle = call_idle;
  o.wall_clock = [] { return policy::WallTime{1, 600}; };
  return o;
}

class FastPath : public ::testing::Test {
 protected:
  void call(Client& c, std::uint16_t id, std::uint16_t server_id) {
    Packet p = c.to_pac(test::bytes_of(ocrq(id)));
    ASSERT_EQ(h.run(p).action, Action::Accept);
    outside_id = load_u16(&p[40 + 12]);
    Packet reply = c.to_pns(test::bytes_of(ocrp(server_id, outside_id)));
    ASSERT_EQ(h.run(reply).action, Action::Accept);
  }
  Action server_gre(std::uint16_t key, const Packet& ppp = test::ppp(0x0021, {1})) {
    Packet g = checksummed(test::gre(kServer, kPublic, key, seq_++, ppp));
    return h.run(g).action;
  }
  Action client_gre(const Client& c, std::uint16_t server_id, const Packet& ppp) {
    Packet g = checksummed(test::gre(c.pns.address, kServer, server_id, seq_++, ppp));
    return h.run(g).action;
  }

  Harness h{with_fast_path()};
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
  std::uint16_t outside_id = 0;
  std::uint32_t seq_ = 1;
};

TEST_F(FastPath, ACallGoesToTheKernelAfterItsFirstPacketsWithItsTranslation) {
  h.start(a);
  h.start(b);
  call(a, 7, 100);
  call(b, 7, 101);  // collides: translated
  const std::uint16_t b_outside = outside_id;
  ASSERT_NE(b_outside, 7);
  for (std::size_t i = 0; i + 1 < track::kAuthScanPackets; ++i) ASSERT_EQ(server_gre(b_outside), Action::Accept);
  EXPECT_TRUE(h.gw.take_offload_changes().empty());  // still reading the first packets
  ASSERT_EQ(server_gre(b_outside), Action::Accept);
  const auto changes = h.gw.take_offload_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].add);
  const OffloadedCall expected{kServer, kPublic, addr("192.0.2.12"), b_outside, 7, 101};
  EXPECT_EQ(changes[0].call, expected);
  EXPECT_EQ(h.gw.offloaded_calls(), std::vector<OffloadedCall>{expected});
  EXPECT_EQ(h.gw.status()["connections"][1]["calls"][0]["fast_path"], true);

  // The server clears it: the elements go.
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 101;
  h.pass(b.to_pns(test::bytes_of(cdn)));
  const auto gone = h.gw.take_offload_changes();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_FALSE(gone[0].add);
  EXPECT_EQ(gone[0].call, expected);
  EXPECT_TRUE(h.gw.offloaded_calls().empty());
}

TEST_F(FastPath, TheNameShownEndsTheWaitAtOnce) {
  h.start(a);
  call(a, 7, 100);
  ASSERT_EQ(client_gre(a, 100, test::ppp(0xc023, test::pap_request("alice", "pw"))), Action::Accept);
  ASSERT_EQ(server_gre(7, test::pap_ack()), Action::Accept);  // the name the server accepted
  EXPECT_EQ(h.gw.take_offload_changes().size(), 1u);
}

// Issue 17 (memory per call): an offloaded call keeps no PPP authentication state (its frames
// go through the kernel), and a connection between messages holds no stream buffer and, with
// no Call ID translated, no patches.
TEST_F(FastPath, AnOffloadedCallAndAQuietConnectionHoldNoBuffers) {
  h.start(a);
  call(a, 7, 100);
  ASSERT_EQ(client_gre(a, 100, test::ppp(0xc023, test::pap_request("alice", "pw"))), Action::Accept);
  const track::ControlConnection* c = h.gw.tracker().find_connection(a.pns, a.pac);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->calls.size(), 1u);
  EXPECT_TRUE(c->calls[0]->auth.following());  // a PAP request is open
  ASSERT_EQ(server_gre(7, test::pap_ack()), Action::Accept);
  ASSERT_EQ(h.gw.take_offload_changes().size(), 1u);
  ASSERT_TRUE(c->calls[0]->user);
  EXPECT_FALSE(c->calls[0]->auth.following());
  for (const auto& s : c->streams) EXPECT_EQ(s.allocated_bytes(), 0u);
  const ConnectionRecord* r = h.gw.connection_record(c->id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->patches[0].size() + r->patches[1].size(), 0u);
}

TEST_F(FastPath, TheKernelsCountersKeepAnOffloadedCallAlive) {
  Harness idle{with_fast_path(5)};
  idle.start(a);
  Packet p = a.to_pac(test::bytes_of(ocrq(7)));
  idle.run(p);
  Packet reply = a.to_pns(test::bytes_of(ocrp(100, 7)));
  idle.run(reply);
  Packet pap = checksummed(test::gre(a.pns.address, kServer, 100, 1, test::ppp(0xc023, test::pap_request("x", "y"))));
  idle.run(pap);
  Packet ack = checksummed(test::gre(kServer, kPublic, 7, 1, test::pap_ack()));
  idle.run(ack);
  ASSERT_EQ(idle.gw.take_offload_changes().size(), 1u);
  // The kernel forwards the call's GRE: the daemon reads the counters every few seconds.
  double t = idle.now;
  for (std::uint64_t n = 1; n <= 5; ++n) {
    t += 3;
    idle.gw.note_offload_counts({OffloadCount{true, OffloadedCall{kServer, kPublic, {}, 7, 0, 0}, n * 10, n * 500, std::nullopt},
                                 OffloadCount{false, OffloadedCall{kServer, {}, a.pns.address, 0, 0, 100}, n * 9, 0, std::nullopt}},
                                t);
    idle.gw.expire(t);
    ASSERT_EQ(idle.gw.tracker().call_count(), 1u) << "an offloaded call with traffic was ended at " << t;
  }
  EXPECT_EQ(idle.gw.counters().gre_offloaded_to_pns, 50u);
  EXPECT_EQ(idle.gw.counters().gre_offloaded_to_pac, 45u);
  // Then the counters stop moving: the call is idle, ends, and its elements go.
  idle.gw.note_offload_counts({OffloadCount{true, OffloadedCall{kServer, kPublic, {}, 7, 0, 0}, 50, 2500, std::nullopt}}, t + 3);
  idle.gw.expire(t + 6);
  EXPECT_EQ(idle.gw.tracker().call_count(), 0u);
  const auto gone = idle.gw.take_offload_changes();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_FALSE(gone[0].add);
}

TEST_F(FastPath, UnderAPolicyOnlyAllowedCallsGoAndARevokedOneComesBack) {
  auto allow = policy::parse_policy("users: {alice: {names: alice}}\nrules: [{from: {user: alice}, action: allow}]\n"
                                    "on_reload: rejudge\n");
  ASSERT_TRUE(allow);
  h.gw.set_policy(std::make_shared<const policy::Policy>(std::move(*allow)));
  h.start(a);
  call(a, 7, 100);
  // Pending (anyone could be alice): its packets stay here.
  for (int i = 0; i < 20; ++i) ASSERT_EQ(server_gre(7, test::lcp_echo()), Action::Accept);
  EXPECT_TRUE(h.gw.take_offload_changes().empty());
  ASSERT_EQ(client_gre(a, 100, test::ppp(0xc023, test::pap_request("alice", "pw"))), Action::Accept);
  ASSERT_EQ(server_gre(7, test::pap_ack()), Action::Accept);
  ASSERT_EQ(h.gw.take_offload_changes().size(), 1u);
  const OffloadedCall in_key{kServer, kPublic, {}, 7, 0, 0};
  h.gw.note_offload_counts({OffloadCount{true, in_key, 10, 500, std::nullopt}}, h.now);
  EXPECT_EQ(h.gw.counters().gre_offloaded_to_pns, 10u);
  auto deny = policy::parse_policy("default: deny\non_reload: rejudge\n");
  ASSERT_TRUE(deny);
  h.gw.set_policy(std::make_shared<const policy::Policy>(std::move(*deny)));
  const auto gone = h.gw.take_offload_changes();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_FALSE(gone[0].add);
  EXPECT_EQ(server_gre(7), Action::Drop);  // back in user space, and cut
  // A read of its elements' counters taken before they went is no longer this call's.
  h.gw.note_offload_counts({OffloadCount{true, in_key, 30, 1500, std::nullopt}}, h.now);
  EXPECT_EQ(h.gw.counters().gre_offloaded_to_pns, 10u);
}

TEST_F(FastPath, ARestartAdoptsTheKernelsCallsReservesTheirCallIdsAndLetsThemIdleOut) {
  Harness after{with_fast_path(5)};
  // What the previous run left: client .11 Call ID 7 kept; client .12 Call ID 7 seen as 8.
  const OffloadedCall kept{kServer, kPublic, addr("192.0.2.11"), 7, 7, 100};
  const OffloadedCall moved{kServer, kPublic, addr("192.0.2.12"), 8, 7, 101};
  std::vector<OffloadCount> left;
  for (const auto& c : {kept, moved}) {
    left.push_back({true, c, 40, 0, c});
    left.push_back({false, c, 30, 0, c});
  }
  ASSERT_EQ(after.gw.adopt_offloaded(left, 1.0), 2u);
  EXPECT_EQ(after.gw.offloaded_calls().size(), 2u);
  EXPECT_EQ(after.gw.status()["fast_path"]["adopted"], 2);
  // A new client asking for Call ID 7 (and then 8) gets neither: they are still in use.
  Client c{{addr("192.0.2.13"), 40003}};
  after.start(c);
  Packet p = c.to_pac(test::bytes_of(ocrq(7)));
  ASSERT_TRUE(after.run(p).modified);
  const std::uint16_t given = load_u16(&p[40 + 12]);
  EXPECT_NE(given, 7);
  EXPECT_NE(given, 8);
  // The kernel's counters move for one of them only: the other idles out and its elements go.
  after.gw.note_offload_counts({{true, kept, 90, 0, std::nullopt}}, 4.0);
  after.gw.expire(7.0);
  auto changes = after.gw.take_offload_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].add);
  EXPECT_EQ(changes[0].call, moved);
  EXPECT_EQ(after.gw.offloaded_calls(), std::vector<OffloadedCall>{kept});
  after.gw.expire(10.0);
  changes = after.gw.take_offload_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].call, kept);
  EXPECT_TRUE(after.gw.offloaded_calls().empty());
}

TEST_F(FastPath, ARouteChangeSelectsOnlyTheCallsToOrFromItsAddressesAdoptedOnesToo) {
  // --fast-path netdev: a route change names destinations; only the calls with one as their
  // client's or the server's address are looked at (the loop lists no other call).
  const OffloadedCall left{kServer, kPublic, addr("192.0.2.13"), 9, 9, 102};
  ASSERT_EQ(h.gw.adopt_offloaded({{true, left, 40, 0, left}, {false, left, 30, 0, left}}, 1.0), 1u);
  h.start(a);
  h.start(b);
  for (Client* c : {&a, &b}) {
    call(*c, 7, c == &a ? 100 : 101);
    for (std::size_t i = 0; i < track::kAuthScanPackets; ++i) ASSERT_EQ(server_gre(outside_id), Action::Accept);
  }
  ASSERT_EQ(h.gw.offloaded_calls().size(), 3u);
  const auto to = [&](std::initializer_list<const char*> addresses) {
    std::set<std::uint32_t> s;
    for (const char* x : addresses) s.insert(addr(x).value);
    std::set<std::uint32_t> clients;
    for (const OffloadedCall& c : h.gw.offloaded_calls_to(s)) clients.insert(c.inside.value);
    return clients;
  };
  EXPECT_EQ(to({"192.0.2.12"}), (std::set<std::uint32_t>{addr("192.0.2.12").value}));
  EXPECT_EQ(to({"192.0.2.13", "203.0.113.99"}), (std::set<std::uint32_t>{addr("192.0.2.13").value}));
  EXPECT_EQ(to({"198.51.100.2"}).size(), 3u) << "the server's address: every call";
  EXPECT_TRUE(to({"192.0.2.99"}).empty());
  EXPECT_TRUE(to({}).empty());
}

TEST_F(FastPath, OnlyTheCallsArmedAPeriodAgoAreReArmedAndEachOnce) {
  // Elements carry a timeout (the daemon's kFastPathTimeoutSeconds): each call is re-armed a
  // period after it was last armed, and a tick looks at those calls only.
  constexpr double kEvery = 30;
  const auto offload = [&](Client& c, std::uint16_t id, std::uint16_t server_id) {
    call(c, id, server_id);
    for (std::size_t i = 0; i < track::kAuthScanPackets; ++i) ASSERT_EQ(server_gre(outside_id), Action::Accept);
    ASSERT_EQ(h.gw.take_offload_changes().size(), 1u);
  };
  h.start(a);
  h.start(b);
  h.now = 1;
  offload(a, 7, 100);
  const OffloadedCall first = h.gw.offloaded_calls().at(0);
  h.now = 11;
  offload(b, 8, 101);
  OffloadedCall second{};
  for (const OffloadedCall& c : h.gw.offloaded_calls()) {
    if (!(c == first)) second = c;
  }
  // Each packet moves the harness's clock by 10 ms: the calls were offloaded at about 1.7 s
  // and 11.7 s.
  EXPECT_TRUE(h.gw.calls_due_for_rearm(31.5, kEvery).empty());
  EXPECT_EQ(h.gw.calls_due_for_rearm(32.5, kEvery), std::vector<OffloadedCall>{first});
  EXPECT_TRUE(h.gw.calls_due_for_rearm(33, kEvery).empty());  // re-armed at 32.5
  EXPECT_EQ(h.gw.calls_due_for_rearm(42.5, kEvery), std::vector<OffloadedCall>{second});
  // The second call ends: it is not re-armed again; the first still is, a period apart.
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 101;
  h.pass(b.to_pns(test::bytes_of(cdn)));
  EXPECT_EQ(h.gw.calls_due_for_rearm(72.5, kEvery), std::vector<OffloadedCall>{first});
  EXPECT_TRUE(h.gw.calls_due_for_rearm(102, kEvery).empty());
  EXPECT_EQ(h.gw.calls_due_for_rearm(102.5, kEvery), std::vector<OffloadedCall>{first});
}

TEST_F(FastPath, AdoptedCallsAreReArmedAPeriodAfterTheAdoption) {
  Harness after{with_fast_path()};
  const OffloadedCall kept{kServer, kPublic, addr("192.0.2.11"), 7, 7, 100};
  ASSERT_EQ(after.gw.adopt_offloaded({{true, kept, 40, 0, kept}, {false, kept, 30, 0, kept}}, 1.0), 1u);
  // The daemon re-arms them at the adoption itself (daemon.cpp): the next one is due later.
  EXPECT_TRUE(after.gw.calls_due_for_rearm(30, 30).empty());
  EXPECT_EQ(after.gw.calls_due_for_rearm(31, 30), std::vector<OffloadedCall>{kept});
}

TEST_F(FastPath, DisabledNothingIsOffloaded) {
  Harness off;  // fast_path defaults to false
  off.start(a);
  Packet p = a.to_pac(test::bytes_of(ocrq(7)));
  off.run(p);
  Packet reply = a.to_pns(test::bytes_of(ocrp(100, 7)));
  off.run(reply);
  for (int i = 0; i < 100; ++i) {
    Packet g = checksummed(test::gre(kServer, kPublic, 7, static_cast<std::uint32_t>(i), test::ppp(0x0021, {1})));
    off.run(g);
  }
  EXPECT_TRUE(off.gw.take_offload_changes().empty());
  EXPECT_EQ(off.gw.status()["fast_path"]["enabled"], false);
}

}  // namespace
}  // namespace pptp::gateway
