// `pptp-alg ctl kill`: the operator ends calls by call id, user or client address. The
// selected calls lose their GRE (fast-path elements withdrawn, queued GRE dropped), their
// control connection's data stops, its TCP close still passes, and no other call notices.
#include <gtest/gtest.h>

#include "policy/loader.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

class Kill : public ::testing::Test {
 protected:
  void SetUp() override {
    GatewayOptions o;
    o.fast_path = true;
    o.wall_clock = [] { return policy::WallTime{1, 600}; };
    h = std::make_unique<Harness>(o);
    h->start(a);
    h->start(b);
    call(a, 7, 100, "alice");
    call(b, 8, 101, "bob");
    ASSERT_EQ(h->gw.take_offload_changes().size(), 2u);  // both on the fast path
  }
  // An outgoing call, authenticated by PAP as `user` (which puts it on the fast path).
  void call(Client& c, std::uint16_t id, std::uint16_t server_id, const std::string& user) {
    Packet p = c.to_pac(test::bytes_of(ocrq(id)));
    ASSERT_EQ(h->run(p).action, Action::Accept);
    Packet reply = c.to_pns(test::bytes_of(ocrp(server_id, id)));
    ASSERT_EQ(h->run(reply).action, Action::Accept);
    ASSERT_EQ(client_gre(c, server_id, test::ppp(0xc023, test::pap_request(user, "pw"))), Action::Accept);
    ASSERT_EQ(server_gre(id, test::pap_ack()), Action::Accept);
  }
  Action server_gre(std::uint16_t key, const Packet& ppp = test::ppp(0x0021, {1})) {
    Packet g = checksummed(test::gre(kServer, kPublic, key, seq_++, ppp));
    return h->run(g).action;
  }
  Action client_gre(const Client& c, std::uint16_t server_id, const Packet& ppp = test::ppp(0x0021, {1})) {
    Packet g = checksummed(test::gre(c.pns.address, kServer, server_id, seq_++, ppp));
    return h->run(g).action;
  }
  std::uint64_t call_id_of(const Client& c) const {
    return h->gw.tracker().find_connection(c.pns, c.pac)->calls.at(0)->id;
  }

  std::unique_ptr<Harness> h;
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
  std::uint32_t seq_ = 1;
};

TEST_F(Kill, ByUserEndsThatUsersCallAndNoOther) {
  const KillResult r = h->gw.kill_calls(KillRequest{std::nullopt, "alice", std::nullopt}, h->now);
  EXPECT_EQ(r.calls, 1u);
  EXPECT_EQ(r.connections, 1u);
  // Alice's elements go; her GRE that still reaches the queue is dropped, both ways.
  const auto changes = h->gw.take_offload_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].add);
  EXPECT_EQ(changes[0].call.inside, a.pns.address);
  EXPECT_EQ(server_gre(7), Action::Drop);
  EXPECT_EQ(client_gre(a, 100), Action::Drop);
  // Her control data stops; the TCP close passes.
  Packet echo = a.to_pac(test::bytes_of(wire::EchoRequest{}));
  EXPECT_EQ(h->run(echo).action, Action::Drop);
  h->pass(a.to_pac({}, flags::kAck | flags::kFin));
  // Bob keeps everything.
  EXPECT_EQ(server_gre(8), Action::Accept);
  EXPECT_EQ(client_gre(b, 101), Action::Accept);
  h->pass(b.to_pac(test::bytes_of(wire::EchoRequest{})));
  EXPECT_EQ(h->gw.counters().killed_dropped, 3u);
  EXPECT_TRUE(h->gw.killed(h->gw.tracker().find_connection(a.pns, a.pac)->id));
}

TEST_F(Kill, ByCallIdAndByClientAddress) {
  EXPECT_EQ(h->gw.kill_calls(KillRequest{call_id_of(b), std::nullopt, std::nullopt}, h->now).calls, 1u);
  EXPECT_EQ(server_gre(8), Action::Drop);
  EXPECT_EQ(server_gre(7), Action::Accept);
  EXPECT_EQ(h->gw.kill_calls(KillRequest{std::nullopt, std::nullopt, a.pns.address}, h->now).calls, 1u);
  EXPECT_EQ(server_gre(7), Action::Drop);
}

TEST_F(Kill, WhatMatchesNothingEndsNothing) {
  EXPECT_EQ(h->gw.kill_calls(KillRequest{std::nullopt, "mallory", std::nullopt}, h->now).calls, 0u);
  EXPECT_EQ(h->gw.kill_calls(KillRequest{999, std::nullopt, std::nullopt}, h->now).calls, 0u);
  EXPECT_EQ(h->gw.kill_calls(KillRequest{}, h->now).calls, 0u);
  EXPECT_TRUE(h->gw.take_offload_changes().empty());
  EXPECT_EQ(server_gre(7), Action::Accept);
  EXPECT_EQ(server_gre(8), Action::Accept);
}

TEST_F(Kill, AKilledCallIsNotCountedTwice) {
  EXPECT_EQ(h->gw.kill_calls(KillRequest{std::nullopt, "alice", std::nullopt}, h->now).calls, 1u);
  EXPECT_EQ(h->gw.kill_calls(KillRequest{std::nullopt, "alice", std::nullopt}, h->now).calls, 0u);
}

}  // namespace
}  // namespace pptp::gateway
