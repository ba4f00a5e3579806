#include "alg/control/protocol.hpp"

#include <gtest/gtest.h>

#include "alg/control/calls_table.hpp"
#include "alg/core/counter_list.hpp"
#include "alg/control/metrics.hpp"

namespace pptp::control {
namespace {

TEST(Protocol, EveryCommandGoesThereAndBack) {
  for (Command c : {Command::Calls, Command::Reload, Command::Status, Command::Metrics}) {
    auto r = parse_request(request_line(Request{c, {}}));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->command, c);
  }
  Request kill{Command::Kill, {}};
  wire::Ipv4Address client;
  ASSERT_TRUE(wire::parse_ipv4_address("192.0.2.10", client));
  kill.kill.client = client;
  auto r = parse_request(request_line(kill));
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->command, Command::Kill);
  ASSERT_TRUE(r->kill.client);
  EXPECT_EQ(wire::to_string(*r->kill.client), "192.0.2.10");
}

TEST(Protocol, KillNeedsExactlyOneSelector) {
  EXPECT_FALSE(parse_request(R"({"command":"kill"})"));
  EXPECT_FALSE(parse_request(R"({"command":"kill","call":3,"user":"alice"})"));
  EXPECT_FALSE(parse_request(R"({"command":"kill","call":-3})"));
  EXPECT_FALSE(parse_request(R"({"command":"kill","client":"192.0.2.300"})"));
  auto by_user = parse_request(R"({"command":"kill","user":"alice"})");
  ASSERT_TRUE(by_user);
  EXPECT_EQ(by_user->kill.user, "alice");
  auto by_call = parse_request(R"({"command":"kill","call":12})");
  ASSERT_TRUE(by_call);
  EXPECT_EQ(by_call->kill.call, 12u);
}

TEST(Protocol, WhatIsNotARequestSaysWhy) {
  EXPECT_EQ(parse_request("hello").error(), "a request is one JSON object per line");
  EXPECT_EQ(parse_request(R"({"cmd":"calls"})").error(), "the request names no 'command'");
  EXPECT_NE(parse_request(R"({"command":"shutdown"})").error().find("unknown command 'shutdown'"), std::string::npos);
  EXPECT_EQ(parse_request(std::string(kMaxRequestBytes + 1, ' ')).error(), "request too long");
}

TEST(Protocol, AnswersAreOneLineAndSurviveAnyBytes) {
  const std::string e = error_answer("bad name \xff\n");
  EXPECT_EQ(e.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(e);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_TRUE(nlohmann::json::parse(ok_answer({{"calls", 2}}))["ok"].get<bool>());
}

TEST(Metrics, CountersComeFromTheirListWithHelpAndType) {
#define TEST_COUNTERS(X) X(a_b, "a_b", "first one") X(odd, "odd-key", "second\none")
  struct Counters {
    TEST_COUNTERS(PPTP_COUNTER_FIELD)
  } c;
  c.a_b = 3;
  c.odd = 5;
  MetricsText m;
  m.counters("grp", c, [](const Counters& c, auto&& f) { TEST_COUNTERS(PPTP_COUNTER_VISIT) });
#undef TEST_COUNTERS
  m.gauge("calls", "live calls", 2);
  EXPECT_EQ(m.text(),
            "# HELP pptp_alg_grp_a_b_total first one\n"
            "# TYPE pptp_alg_grp_a_b_total counter\n"
            "pptp_alg_grp_a_b_total 3\n"
            "# HELP pptp_alg_grp_odd_key_total second\\none\n"
            "# TYPE pptp_alg_grp_odd_key_total counter\n"
            "pptp_alg_grp_odd_key_total 5\n"
            "# HELP pptp_alg_calls live calls\n"
            "# TYPE pptp_alg_calls gauge\n"
            "pptp_alg_calls 2\n");
}

TEST(CallsTable, ShowsBothCallIdsUserPathAndKilled) {
  const auto calls = nlohmann::json::parse(R"([{"id":4,"client":"192.0.2.11:40001","server":"198.51.100.2:1723",
    "user":"alice","state":"established","pns_call_id":7,"outside_call_id":9,"pac_call_id":100,"age_seconds":3725.2,
    "to_server":{"packets":10,"bytes":1000},"to_client":{"packets":12,"bytes":1200},"path":"fast","killed":true}])");
  const std::string t = render_calls(calls);
  EXPECT_NE(t.find("alice"), std::string::npos);
  EXPECT_NE(t.find("1:02:05"), std::string::npos);
  EXPECT_NE(t.find("10/1000"), std::string::npos);
  EXPECT_NE(t.find("fast killed"), std::string::npos);
  EXPECT_NE(render_calls(nlohmann::json::array()).find("(no calls)"), std::string::npos);
}

// High availability (docs/ha.md): keepalived's notify scripts promote and demote.
TEST(ControlProtocol, PromoteWithOrWithoutForceAndDemoteRoundTrip) {
  auto p = parse_request(R"({"command":"promote","force":true})");
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->command, Command::Promote);
  EXPECT_TRUE(p->force);
  auto again = parse_request(request_line(*p));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->force);
  auto plain = parse_request(R"({"command":"promote"})");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->force);
  auto d = parse_request(R"({"command":"demote"})");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->command, Command::Demote);
  EXPECT_FALSE(parse_request(R"({"command":"promote","force":"yes"})"));
}

TEST(ControlProtocol, ReplicatedCallsAreListedOnlyWhenThereAreSome) {
  EXPECT_EQ(render_replicated(nlohmann::json::array()), "");
  const nlohmann::json one = nlohmann::json::array(
      {{{"client", "192.0.2.11:40001"}, {"outside_call_id", 8}, {"verdict", "allow"}}});
  const std::string text = render_replicated(one);
  EXPECT_NE(text.find("replicated from the peer"), std::string::npos);
  EXPECT_NE(text.find("192.0.2.11:40001"), std::string::npos);
  EXPECT_NE(text.find("allow"), std::string::npos);
  // An active node's taken-over calls, under their own title.
  EXPECT_NE(render_replicated(one, "taken over from the peer").find("\ntaken over from the peer:\n"), std::string::npos);
}

}  // namespace
}  // namespace pptp::control
