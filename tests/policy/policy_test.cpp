// The rule matcher: first match wins, users by address and by PPP name, groups, server sets,
// time windows, defaults, and the Pending answer while a name is still to come.
#include "policy/policy.hpp"

#include <gtest/gtest.h>

#include "policy/loader.hpp"
#include "tests/support/packets.hpp"

namespace pptp::policy {
namespace {

using test::addr;

Policy load(const char* yaml) {
  auto p = parse_policy(yaml);
  if (!p) ADD_FAILURE() << to_string(p.error(), "test") << "\n" << yaml;
  return p ? std::move(*p) : Policy{};
}

constexpr WallTime kTuesdayNoon{1, 12 * 60};
constexpr WallTime kSundayNoon{6, 12 * 60};

Subject who(const char* source, const char* server, std::optional<std::string> name = std::nullopt,
            bool final_name = false) {
  return Subject{addr(source), addr(server), std::move(name), final_name};
}

const char* const kOffice = R"(
default: deny
users:
  alice: {addresses: [192.0.2.10], names: [alice]}
  bob: {addresses: 192.0.2.11}
  carol: {names: [carol, 'CORP\carol']}
  lab: {addresses: 192.0.2.128/25}
groups:
  staff: [alice, bob, carol]
servers:
  corporate: [203.0.113.10, 203.0.113.11]
rules:
  - name: quarantine
    from: {addresses: 192.0.2.200/29}
    action: deny
  - name: staff-corporate
    from: {group: staff}
    to: corporate
    action: allow
  - name: lab-anywhere-weekdays
    from: {user: lab}
    action: allow
    when: {days: [mon, tue, wed, thu, fri], hours: "08:00-18:00"}
)";

TEST(Decide, FirstMatchWinsOverlappingRules) {
  const Policy p = load(kOffice);
  // 192.0.2.201 is in the lab's /25 too, but the quarantine rule comes first.
  const Decision d = decide(p, who("192.0.2.201", "203.0.113.10"), kTuesdayNoon);
  EXPECT_EQ(d.outcome, Outcome::Deny);
  EXPECT_EQ(rule_name(p, d.rule), "quarantine");
  EXPECT_EQ(decide(p, who("192.0.2.130", "203.0.113.10"), kTuesdayNoon).outcome, Outcome::Allow);
}

TEST(Decide, AddressOnlyUserIsAllowedToItsServersOnly) {
  const Policy p = load(kOffice);
  const Decision d = decide(p, who("192.0.2.11", "203.0.113.11"), kTuesdayNoon);
  EXPECT_EQ(d.outcome, Outcome::Allow);
  EXPECT_EQ(rule_name(p, d.rule), "staff-corporate");
  ASSERT_TRUE(d.user);
  EXPECT_EQ(p.users[*d.user].name, "bob");
  const Decision other = decide(p, who("192.0.2.11", "198.51.100.2"), kTuesdayNoon);
  EXPECT_EQ(other.outcome, Outcome::Deny);
  EXPECT_EQ(other.rule, kDefaultRule);
  EXPECT_NE(other.reason.find("default deny"), std::string::npos);
}

TEST(Decide, NameUserIsPendingUntilTheNameShows) {
  const Policy p = load(kOffice);
  // Anyone could be carol until the PPP name says otherwise.
  const Decision pending = decide(p, who("192.0.2.50", "203.0.113.10"), kTuesdayNoon);
  EXPECT_EQ(pending.outcome, Outcome::Pending);
  EXPECT_EQ(rule_name(p, pending.rule), "staff-corporate");
  const Decision carol = decide(p, who("192.0.2.50", "203.0.113.10", "CORP\\carol"), kTuesdayNoon);
  EXPECT_EQ(carol.outcome, Outcome::Allow);
  EXPECT_EQ(p.users[*carol.user].name, "carol");
  EXPECT_EQ(decide(p, who("192.0.2.50", "203.0.113.10", "mallory"), kTuesdayNoon).outcome, Outcome::Deny);
  // The search window is over and no name came: only address users can match.
  EXPECT_EQ(decide(p, who("192.0.2.50", "203.0.113.10", std::nullopt, true), kTuesdayNoon).outcome, Outcome::Deny);
}

TEST(Decide, AddressAndNameMustBothMatch) {
  const Policy p = load(kOffice);
  // alice's address, someone else's name: not alice; no other rule allows.
  EXPECT_EQ(decide(p, who("192.0.2.10", "203.0.113.10", "bob"), kTuesdayNoon).outcome, Outcome::Deny);
  EXPECT_EQ(decide(p, who("192.0.2.10", "203.0.113.10", "alice"), kTuesdayNoon).outcome, Outcome::Allow);
  // alice's name from bob's address: bob is allowed anyway (address user, any name).
  EXPECT_EQ(decide(p, who("192.0.2.11", "203.0.113.10", "alice"), kTuesdayNoon).outcome, Outcome::Allow);
}

TEST(Decide, SameAnswerEitherWayIsNotPending) {
  // Every way the name could go leads to allow: no need to wait.
  const Policy p = load(R"(
users:
  dave: {names: [dave]}
rules:
  - {from: {user: dave}, action: allow}
  - {from: any, action: allow}
)");
  EXPECT_EQ(decide(p, who("192.0.2.1", "198.51.100.2"), kTuesdayNoon).outcome, Outcome::Allow);
}

TEST(Decide, NameDeniedBeforeAnAddressAllow) {
  const Policy p = load(R"(
users:
  eve: {names: [eve]}
rules:
  - {name: no-eve, from: {user: eve}, action: deny}
  - {name: lan, from: {addresses: 192.0.2.0/24}, action: allow}
)");
  EXPECT_EQ(decide(p, who("192.0.2.5", "198.51.100.2"), kTuesdayNoon).outcome, Outcome::Pending);
  const Decision eve = decide(p, who("192.0.2.5", "198.51.100.2", "eve"), kTuesdayNoon);
  EXPECT_EQ(eve.outcome, Outcome::Deny);
  EXPECT_EQ(rule_name(p, eve.rule), "no-eve");
  EXPECT_EQ(decide(p, who("192.0.2.5", "198.51.100.2", "frank"), kTuesdayNoon).outcome, Outcome::Allow);
}

TEST(Decide, TimeWindows) {
  const Policy p = load(kOffice);
  EXPECT_EQ(decide(p, who("192.0.2.130", "198.51.100.2"), kTuesdayNoon).outcome, Outcome::Allow);
  EXPECT_EQ(decide(p, who("192.0.2.130", "198.51.100.2"), kSundayNoon).outcome, Outcome::Deny);
  EXPECT_EQ(decide(p, who("192.0.2.130", "198.51.100.2"), WallTime{1, 18 * 60}).outcome, Outcome::Deny);
  EXPECT_EQ(decide(p, who("192.0.2.130", "198.51.100.2"), WallTime{1, 8 * 60}).outcome, Outcome::Allow);
}

TEST(Decide, WindowsThatWrapPastMidnightBelongToTheirFirstDay) {
  const TimeWindow night{0x01 /* mon */, 22 * 60, 6 * 60};
  EXPECT_TRUE(in_window(night, WallTime{0, 23 * 60}));   // Monday 23:00
  EXPECT_TRUE(in_window(night, WallTime{1, 5 * 60}));    // Tuesday 05:00
  EXPECT_FALSE(in_window(night, WallTime{0, 5 * 60}));   // Monday 05:00 is Sunday's night
  EXPECT_FALSE(in_window(night, WallTime{1, 23 * 60}));  // Tuesday night
  const TimeWindow sunday_night{0x40, 22 * 60, 6 * 60};
  EXPECT_TRUE(in_window(sunday_night, WallTime{0, 60}));  // Monday 01:00 wraps from Sunday
}

TEST(Decide, DefaultAllowAndEmptyPolicy) {
  EXPECT_EQ(decide(load("default: allow"), who("192.0.2.1", "198.51.100.2"), kTuesdayNoon).outcome, Outcome::Allow);
  const Policy empty = load("");
  EXPECT_EQ(decide(empty, who("192.0.2.1", "198.51.100.2"), kTuesdayNoon).outcome, Outcome::Deny);
}

TEST(Decide, RequiredAuthenticationWaitsThenDenies) {
  const Policy p = load(R"(
default: allow
authentication: {required: true, max_packets: 10}
)");
  EXPECT_EQ(p.authentication_packets, 10u);
  EXPECT_EQ(decide(p, who("192.0.2.1", "198.51.100.2"), kTuesdayNoon).outcome, Outcome::Pending);
  EXPECT_EQ(decide(p, who("192.0.2.1", "198.51.100.2", "x"), kTuesdayNoon).outcome, Outcome::Allow);
  const Decision none = decide(p, who("192.0.2.1", "198.51.100.2", std::nullopt, true), kTuesdayNoon);
  EXPECT_EQ(none.outcome, Outcome::Deny);
  EXPECT_NE(none.reason.find("authentication.required"), std::string::npos);
}

TEST(Prefixes, ParseAndContain) {
  Prefix p;
  std::string why;
  ASSERT_TRUE(parse_prefix("192.0.2.0/24", p, why));
  EXPECT_TRUE(p.contains(addr("192.0.2.255")));
  EXPECT_FALSE(p.contains(addr("192.0.3.0")));
  ASSERT_TRUE(parse_prefix("0.0.0.0/0", p, why));
  EXPECT_TRUE(p.contains(addr("203.0.113.9")));
  ASSERT_TRUE(parse_prefix("203.0.113.9", p, why));
  EXPECT_EQ(p.length, 32);
  EXPECT_FALSE(parse_prefix("192.0.2.1/24", p, why));
  EXPECT_NE(why.find("192.0.2.0/24"), std::string::npos);
  EXPECT_FALSE(parse_prefix("192.0.2.0/33", p, why));
  EXPECT_FALSE(parse_prefix("192.0.2/24", p, why));
  EXPECT_FALSE(parse_prefix("", p, why));
}

TEST(Describe, SaysWhatThePolicyMeans) {
  const std::string text = describe(load(kOffice));
  EXPECT_NE(text.find("1. quarantine (line 13): deny clients in 192.0.2.200/29 to any server"), std::string::npos)
      << text;
  EXPECT_NE(text.find("allow group staff to 203.0.113.10, 203.0.113.11"), std::string::npos) << text;
  EXPECT_NE(text.find("on mon tue wed thu fri 08:00-18:00"), std::string::npos) << text;
  EXPECT_NE(text.find("otherwise: deny"), std::string::npos) << text;
}

}  // namespace
}  // namespace pptp::policy
