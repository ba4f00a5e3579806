// The policy in proxy mode (proxy_policy.cpp): who is refused with which answer, the
// per-source call and connection limits and the connections in all, and live calls cut by
// the PPP name the server accepted or on reload.
#include "proxy/proxy_policy.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <sstream>

#include "policy/loader.hpp"
#include "tests/support/packets.hpp"

namespace pptp::proxy {
namespace {

using test::addr;

const wire::Endpoint kAlice{addr("192.0.2.10"), 40000};
const wire::Endpoint kMallory{addr("192.0.2.66"), 40001};
const wire::Endpoint kServer{addr("198.51.100.2"), 1723};

std::shared_ptr<const policy::Policy> load(const char* yaml) {
  auto p = policy::parse_policy(yaml, "test", policy::PolicyMode::Proxy);
  if (!p) ADD_FAILURE() << policy::to_string(p.error(), "test");
  return std::make_shared<const policy::Policy>(p ? std::move(*p) : policy::Policy{});
}

const char* const kByAddress = R"(
on_deny: refuse
default: deny
rules:
  - {from: {addresses: 192.0.2.10}, action: allow}
)";

const char* const kByName = R"(
default: deny
on_reload: rejudge
users:
  alice: {names: [alice]}
rules:
  - {from: {user: alice}, action: allow}
)";

struct Cut {
  std::uint16_t call;
  std::uint8_t code;
  std::string why;
};

struct ProxyPolicyTest : ::testing::Test {
  ProxyPolicy policy{std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()),
                     ProxyLimits{2, 3, 5}};
  std::vector<Cut> cuts;

  std::unique_ptr<SessionJudge> judge(const wire::Endpoint& client) {
    auto j = policy.judge_for(client, kServer);
    j->on_cut([this](std::uint16_t id, std::uint8_t code, const std::string& why) { cuts.push_back({id, code, why}); });
    return j;
  }
  static ProxyCall outgoing(std::uint16_t ours) { return ProxyCall{7, ours, static_cast<std::uint16_t>(ours + 1), 128}; }
};

TEST_F(ProxyPolicyTest, WithoutAPolicyOneHostHoldsAtMostItsConnectionsAndAllAtMostTheTotal) {
  // ProxyLimits{2 calls, 3 connections per source, 5 in all}.
  std::vector<std::unique_ptr<SessionJudge>> alice, others;
  for (int i = 0; i < 3; ++i) alice.push_back(policy.judge_for(kAlice, kServer));
  for (const auto& j : alice) ASSERT_NE(j, nullptr);
  EXPECT_EQ(policy.judge_for(kAlice, kServer), nullptr) << "a fourth from one host";
  EXPECT_EQ(policy.limit_counters().source_connections_refused, 1u);
  others.push_back(policy.judge_for(kMallory, kServer));
  others.push_back(policy.judge_for(wire::Endpoint{addr("192.0.2.67"), 40002}, kServer));
  for (const auto& j : others) ASSERT_NE(j, nullptr) << "another host is not held back by alice's";
  EXPECT_EQ(policy.connections(), 5u);
  EXPECT_EQ(policy.judge_for(wire::Endpoint{addr("192.0.2.68"), 40003}, kServer), nullptr) << "the sixth in all";
  EXPECT_EQ(policy.limit_counters().connections_refused, 1u);
  // A connection that ends gives its place back, to its host and to all.
  alice.pop_back();
  EXPECT_EQ(policy.connections(), 4u);
  auto again = policy.judge_for(kAlice, kServer);
  EXPECT_NE(again, nullptr);
  // Its calls count apart from its connections (one hold per host).
  EXPECT_FALSE(again->admit_call(outgoing(10)));
  again->call_ended(outgoing(10));
  again.reset();
  alice.clear();
  EXPECT_EQ(policy.connections(), 2u);
  policy.limit_connections(2);
  EXPECT_EQ(policy.judge_for(kAlice, kServer), nullptr) << "the total lowered to the descriptors there are";
}

TEST_F(ProxyPolicyTest, ADeniedHostIsRefusedWithNotAuthorizedAnAllowedOneIsNot) {
  policy.set(load(kByAddress));
  auto refused = judge(kMallory)->admit_connection();
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->answer) << "on_deny: refuse";
  EXPECT_EQ(refused->result_code, 4);
  EXPECT_FALSE(judge(kAlice)->admit_connection());
  EXPECT_EQ(policy.counters().connections_denied, 1u);
}

TEST_F(ProxyPolicyTest, OnDenyDropRefusesWithoutAnAnswer) {
  policy.set(load("default: deny\non_deny: drop\n"));
  auto refused = judge(kAlice)->admit_connection();
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->answer);
}

TEST_F(ProxyPolicyTest, ACallOverThePolicyLimitGetsDoNotAccept) {
  policy.set(load("default: allow\non_deny: refuse\nlimits:\n  per_source: {calls: 1}\n"));
  auto j = judge(kAlice);
  ASSERT_FALSE(j->admit_connection());
  EXPECT_FALSE(j->admit_call(outgoing(10)));
  auto refused = j->admit_call(outgoing(20));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->result_code, 7) << "RFC 2637 2.8: do not accept";
  EXPECT_EQ(policy.counters().calls_denied, 1u);
  j->call_ended(outgoing(10));
  EXPECT_FALSE(j->admit_call(outgoing(20))) << "the ended call gave its place back";
}

TEST_F(ProxyPolicyTest, WithoutAPolicyTheSourceLimitAnswersBusy) {
  auto a = judge(kAlice);
  auto b = judge(kAlice);  // a second connection from the same host shares the limit (2 here)
  EXPECT_FALSE(a->admit_connection());
  EXPECT_FALSE(a->admit_call(outgoing(10)));
  EXPECT_FALSE(b->admit_call(outgoing(20)));
  auto refused = b->admit_call(outgoing(30));
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->answer);
  EXPECT_EQ(refused->result_code, 4) << "RFC 2637 2.8: busy";
  EXPECT_EQ(policy.limit_counters().source_calls_refused, 1u);
  EXPECT_FALSE(judge(kMallory)->admit_call(outgoing(40))) << "another host is not affected";
}

// s29 review, finding 2: one host with many addresses took the whole Call-ID pool. The last
// eighth of the calls in all is kept for hosts holding fewer than kFairShareCalls.
TEST(ProxyCallLimits, OneHostTakesAtMostAllButTheReserveAndANewHostStillCalls) {
  ProxyPolicy policy{std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()),
                     ProxyLimits{kMaxCallsPerSource, kMaxConnectionsPerSource, kMaxConnections, 16}};
  static_assert(16 / kReservedShare == 2 && kFairShareCalls == 4);
  const wire::Endpoint mallory_b{addr("192.0.2.67"), 40002};
  auto mallory = policy.judge_for(kMallory, kServer);
  std::uint16_t id = 100;
  std::vector<std::uint16_t> held;
  while (!mallory->admit_call(ProxyPolicyTest::outgoing(id)) && held.size() < 100) held.push_back(id++);
  EXPECT_EQ(held.size(), 14u) << "16 in all less the reserve of 2";
  EXPECT_EQ(policy.limit_counters().calls_refused, 1u);
  auto alice = policy.judge_for(kAlice, kServer);
  EXPECT_FALSE(alice->admit_call(ProxyPolicyTest::outgoing(500))) << "a host holding none takes from the reserve";
  auto second = policy.judge_for(mallory_b, kServer);
  EXPECT_FALSE(second->admit_call(ProxyPolicyTest::outgoing(600))) << "the reserve's last call";
  const auto refused = second->admit_call(ProxyPolicyTest::outgoing(601));
  ASSERT_TRUE(refused) << "16 in all: nobody gets more";
  EXPECT_TRUE(refused->answer);
  EXPECT_EQ(refused->result_code, 4) << "RFC 2637 2.8: busy";
  alice->call_ended(ProxyPolicyTest::outgoing(500));
  EXPECT_TRUE(mallory->admit_call(ProxyPolicyTest::outgoing(id))) << "a host over its fair share gets nothing of the reserve";
  EXPECT_FALSE(second->admit_call(ProxyPolicyTest::outgoing(601))) << "one under it does";
  EXPECT_EQ(policy.limit_counters().calls_refused, 3u);
  EXPECT_EQ(policy.limit_counters().source_calls_refused, 0u);
  for (std::uint16_t h : held) mallory->call_ended(ProxyPolicyTest::outgoing(h));
  EXPECT_EQ(policy.calls(), 2u);
}

TEST_F(ProxyPolicyTest, TheNameTheServerAcceptsDecidesAndADeniedOneIsCut) {
  policy.set(load(kByName));
  auto j = judge(kMallory);
  ASSERT_FALSE(j->admit_connection()) << "the name is not known yet: pending, admitted";
  ASSERT_FALSE(j->admit_call(outgoing(10)));
  const auto request = test::ppp(0xc023, test::pap_request("mallory", "pw"));
  EXPECT_TRUE(policy.on_gre(10, Leg::Server, request));
  EXPECT_FALSE(policy.on_gre(10, Leg::Client, test::ppp(0x0021, {0x45})))
      << "network traffic waits for the user (RFC 1661 3.5)";
  EXPECT_EQ(policy.counters().gre_before_user, 1u);
  EXPECT_FALSE(policy.on_gre(10, Leg::Client, test::pap_ack()));
  ASSERT_EQ(cuts.size(), 1u);
  EXPECT_EQ(cuts[0].call, 10);
  EXPECT_EQ(cuts[0].code, 3) << "RFC 2637 2.13: administrative shutdown";
  EXPECT_NE(cuts[0].why.find("not authorized"), std::string::npos);
  EXPECT_EQ(policy.counters().calls_cut, 1u);
}

TEST_F(ProxyPolicyTest, AnAcceptedNameThePolicyAllowsKeepsTheCall) {
  policy.set(load(kByName));
  auto j = judge(kAlice);
  ASSERT_FALSE(j->admit_call(outgoing(10)));
  EXPECT_TRUE(policy.on_gre(10, Leg::Server, test::ppp(0xc023, test::pap_request("alice", "pw"))));
  EXPECT_TRUE(policy.on_gre(10, Leg::Client, test::pap_ack()));
  EXPECT_TRUE(policy.on_gre(10, Leg::Client, test::ppp(0x0021, {0x45})));
  EXPECT_TRUE(cuts.empty());

  // A reload that no longer allows alice cuts her live call (on_reload: rejudge).
  policy.set(load("default: deny\non_reload: rejudge\n"));
  ASSERT_EQ(cuts.size(), 1u);
  EXPECT_EQ(cuts[0].call, 10);
}

TEST_F(ProxyPolicyTest, ACallWithoutGreForTheIdleTimeIsEndedAsLostCarrier) {
  auto j = judge(kAlice);
  ASSERT_FALSE(j->admit_call(outgoing(10)));
  EXPECT_TRUE(policy.on_gre(10, Leg::Server, test::lcp_echo()));
  EXPECT_EQ(policy.end_idle(3600), 0u) << "it just spoke";
  EXPECT_TRUE(cuts.empty());
  EXPECT_EQ(policy.end_idle(0), 1u);
  ASSERT_EQ(cuts.size(), 1u);
  EXPECT_EQ(cuts[0].code, 1) << "RFC 2637 2.13: lost carrier";
  EXPECT_NE(cuts[0].why.find("no GRE"), std::string::npos);
}

TEST_F(ProxyPolicyTest, KillEndsTheCallsOfTheClientNamedAndNoOther) {
  auto a = judge(kAlice);
  auto m = judge(kMallory);
  ASSERT_FALSE(a->admit_call(outgoing(10)));
  ASSERT_FALSE(m->admit_call(outgoing(20)));
  EXPECT_EQ(policy.kill(ProxyPolicy::KillMatch{std::nullopt, std::nullopt, kMallory.address}), 1u);
  ASSERT_EQ(cuts.size(), 1u);
  EXPECT_EQ(cuts[0].call, 20);
  EXPECT_EQ(cuts[0].code, 3);
  EXPECT_NE(cuts[0].why.find("operator"), std::string::npos);
  EXPECT_EQ(policy.kill(ProxyPolicy::KillMatch{10, std::nullopt, std::nullopt}), 1u);
  EXPECT_EQ(policy.kill(ProxyPolicy::KillMatch{std::nullopt, std::string("nobody"), std::nullopt}), 0u);
}

// A server that places incoming calls a client leaves unanswered (relay_incoming.cpp) is
// named in the log, not only counted; past the budget per source its lines stop (s32: before,
// no line at all).
TEST(ProxyIncomingRefusals, TheServerIsNamedInALineUnderItsBudget) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_pattern("%v");
  ProxyPolicy policy{std::make_shared<spdlog::logger>("test", sink), ProxyLimits{}};
  auto j = policy.judge_for(kAlice, kServer);
  for (std::uint16_t id = 500; id < 520; ++id) j->server_refused(ServerRefusal::IncomingUnanswered, id);
  j->server_refused(ServerRefusal::CallIdTaken, 128);
  const std::string log = out.str();
  EXPECT_NE(log.find("anomaly kind=proxy_incoming_refused source=198.51.100.2 client=192.0.2.10 server_call_id=500 "
                     "answer=\"Incoming-Call-Reply result 3 (do not accept)\" unanswered=8"),
            std::string::npos)
      << log;
  // A Call ID another proxied call holds: a kind and a budget of its own (s36 review R3).
  EXPECT_NE(log.find("anomaly kind=proxy_server_call_id_taken source=198.51.100.2 client=192.0.2.10 "
                     "server_call_id=128 reason=\"another proxied call to this server has it\""),
            std::string::npos)
      << log;
  const auto lines = static_cast<std::size_t>(std::count(log.begin(), log.end(), '\n'));
  EXPECT_EQ(lines, gateway::kSourceLogBurst + 1) << log;
}

}  // namespace
}  // namespace pptp::proxy
