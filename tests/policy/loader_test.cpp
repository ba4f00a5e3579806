// rules.yaml errors: each names its line and column and what to write instead; a typo never
// loads.
#include "policy/loader.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace pptp::policy {
namespace {

struct Bad {
  const char* name;
  const char* yaml;
  int line;
  int column;
  const char* says;
};

class LoaderErrors : public ::testing::TestWithParam<Bad> {};

TEST_P(LoaderErrors, NameTheLineAndTheReason) {
  const Bad& b = GetParam();
  const auto p = parse_policy(b.yaml);
  ASSERT_FALSE(p) << b.yaml;
  EXPECT_EQ(p.error().line, b.line) << p.error().message;
  EXPECT_EQ(p.error().column, b.column) << p.error().message;
  EXPECT_NE(p.error().message.find(b.says), std::string::npos) << p.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Policy, LoaderErrors,
    ::testing::Values(
        Bad{"UnknownUserKey", "users:\n  a:\n    adresses: [192.0.2.1]\n", 3, 5, "unknown key 'adresses'"},
        Bad{"UnknownTopLevelKey", "defualt: deny\n", 1, 1, "unknown key 'defualt' in the top level"},
        Bad{"HostBitsSet", "users:\n  a: {addresses: [192.0.2.1/24]}\n", 2, 19, "did you mean 192.0.2.0/24"},
        Bad{"BadAddress", "users:\n  a: {addresses: [192.0.2.300]}\n", 2, 19, "not an IPv4 address"},
        Bad{"BadPrefixLength", "users:\n  a: {addresses: [192.0.2.0/40]}\n", 2, 19, "prefix length"},
        Bad{"UserWithoutIdentity", "users:\n  a: {}\n", 2, 3, "needs addresses: or names:"},
        Bad{"UserTwice", "users:\n  a: {names: x}\n  a: {names: y}\n", 3, 3, "defined twice"},
        Bad{"BadAction", "rules:\n  - from: any\n    action: alow\n", 3, 13, "allow or deny"},
        Bad{"RuleWithoutFrom", "rules:\n  - action: allow\n", 2, 5, "needs from:"},
        Bad{"RuleWithoutAction", "rules:\n  - from: any\n", 2, 5, "needs action:"},
        Bad{"UnknownUser", "rules:\n  - {from: {user: zed}, action: allow}\n", 2, 19, "no user 'zed'"},
        Bad{"UnknownGroupMember", "groups:\n  g: [nobody]\n", 2, 7, "no user 'nobody'"},
        Bad{"UnknownServer", "rules:\n  - {from: any, to: [nowhere], action: allow}\n", 2, 22, "neither a server set"},
        Bad{"BadDay", "rules:\n  - {from: any, action: allow, when: {days: [funday]}}\n", 2, 46, "not a day"},
        Bad{"BadHours", "rules:\n  - {from: any, action: allow, when: {hours: 8-18}}\n", 2, 46, "08:00-18:00"},
        Bad{"RulesNotAList", "rules:\n  from: any\n", 2, 3, "must be a list"},
        Bad{"NegativeLimit", "limits:\n  per_source: {calls: -3}\n", 2, 23, "whole number"},
        Bad{"WordLimit", "limits:\n  per_source: {calls: many}\n", 2, 23, "whole number"},
        Bad{"BurstWithoutRate", "limits:\n  per_source: {setup_burst: 4}\n", 2, 29, "needs setup_rate"},
        Bad{"UnknownLimitKey", "limits:\n  per_user: {sessions: 4}\n", 2, 14, "unknown key 'sessions'"},
        Bad{"TooManyAuthPackets", "authentication: {max_packets: 500}\n", 1, 31, "from 1 to 64"},
        Bad{"BadBoolean", "authentication: {required: maybe}\n", 1, 28, "true or false"},
        Bad{"RefuseNeedsProxy", "on_deny: refuse\n", 1, 10, "proxy mode"},
        Bad{"BadOnReload", "on_reload: sometimes\n", 1, 12, "new_calls or rejudge"},
        Bad{"BadVersion", "version: 2\n", 1, 10, "from 1 to 1"},
        Bad{"BrokenYaml", "rules: [\n", 2, 1, "not valid YAML"},
        Bad{"TopLevelList", "- just\n- a list\n", 1, 1, "must be a mapping"}),
    [](const ::testing::TestParamInfo<Bad>& info) { return std::string(info.param.name); });

TEST(Loader, TheDocumentedExampleLoads) {
  auto p = load_policy_file(PPTP_SOURCE_DIR "/docs/examples/rules.yaml");
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->users.size(), 4u);
  EXPECT_EQ(p->groups.size(), 1u);
  EXPECT_EQ(p->rules.size(), 4u);
  EXPECT_EQ(p->default_action, Action::Deny);
  ASSERT_TRUE(p->setup_rate);
  EXPECT_EQ(p->setup_rate->burst, 5u);
  EXPECT_EQ(p->limits_of(1).calls, 1u);               // bob's own limit
  EXPECT_EQ(p->limits_of(1).control_connections, 4u);  // the per_user default
  EXPECT_EQ(p->users[1].auth_names[0], "CORP\\bob");
}

TEST(Loader, AFileThatCannotBeReadSaysSo) {
  auto p = load_policy_file("/nonexistent/rules.yaml");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().find("cannot read"), std::string::npos);
}

TEST(Loader, ErrorsFromAFileCarryItsName) {
  const std::string path = ::testing::TempDir() + "/bad-rules.yaml";
  std::ofstream(path) << "default: maybe\n";
  auto p = load_policy_file(path);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().rfind(path + ":1:10: ", 0), 0u) << p.error();
}

TEST(Loader, ScalarsAndListsAreBothAccepted) {
  auto p = parse_policy("users:\n  a: {addresses: 192.0.2.1, names: alice}\nrules:\n  - {from: {users: [a]}, to: 198.51.100.0/24, action: allow}\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->users[0].addresses.size(), 1u);
  EXPECT_EQ(p->users[0].auth_names.size(), 1u);
  EXPECT_EQ(p->rules[0].servers.size(), 1u);
  EXPECT_EQ(p->rules[0].name, "rule-1");
}

// on_deny: refuse is the proxy's (it answers with RFC 2637 result codes, docs/proxy.md); the
// transparent gateway rejects it (above), `check` accepts it whatever the mode.
TEST(Loader, RefuseIsTheProxysAndCheckAcceptsIt) {
  for (PolicyMode mode : {PolicyMode::Proxy, PolicyMode::Any}) {
    const auto p = parse_policy("on_deny: refuse\n", "rules.yaml", mode);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->on_deny, OnDeny::Refuse);
  }
  const auto dropped = parse_policy("on_deny: drop\n", "rules.yaml", PolicyMode::Proxy);
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->on_deny, OnDeny::Drop);
  const auto bad = parse_policy("on_deny: ignore\n", "rules.yaml", PolicyMode::Proxy);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("drop or refuse"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace pptp::policy
