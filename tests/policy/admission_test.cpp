// Limits: connections and calls per source and per user, calls per server, and the set-up
// rate per source (a burst from one host does not stop another).
#include "policy/admission.hpp"

#include <gtest/gtest.h>

#include "policy/loader.hpp"
#include "tests/support/packets.hpp"

namespace pptp::policy {
namespace {

using test::addr;

Policy load(const char* yaml) {
  auto p = parse_policy(yaml);
  if (!p) ADD_FAILURE() << to_string(p.error(), "test");
  return p ? std::move(*p) : Policy{};
}

Charge charge(const char* source, std::string user = "", const char* server = "198.51.100.2") {
  return Charge{addr(source), std::move(user), addr(server)};
}

TEST(Admission, CallsPerSourceAreCountedAndGivenBack) {
  const Policy p = load("limits: {per_source: {calls: 2}}");
  Admission a;
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.1"), std::nullopt, 0));
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.1"), std::nullopt, 0));
  const auto refused = a.admit_call(p, charge("192.0.2.1"), std::nullopt, 0);
  ASSERT_TRUE(refused);
  EXPECT_EQ(*refused, "per_source.calls=2");
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.2"), std::nullopt, 0));  // another host is not affected
  a.release_call(charge("192.0.2.1"));
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.1"), std::nullopt, 0));
  EXPECT_EQ(a.source_calls(addr("192.0.2.1")), 2u);
}

TEST(Admission, PerUserLimitsAndOverrides) {
  const Policy p = load("users:\n  a: {addresses: 192.0.2.1, limits: {calls: 1}}\n  b: {addresses: 192.0.2.2}\n"
                        "limits: {per_user: {calls: 3, control_connections: 1}}");
  Admission a;
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.1", "a"), 0, 0));
  EXPECT_EQ(*a.admit_call(p, charge("192.0.2.1", "a"), 0, 0), "per_user.calls=1");
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(a.admit_call(p, charge("192.0.2.2", "b"), 1, 0));
  EXPECT_EQ(*a.admit_call(p, charge("192.0.2.2", "b"), 1, 0), "per_user.calls=3");
  EXPECT_FALSE(a.admit_connection(p, charge("192.0.2.2", "b"), 1));
  EXPECT_EQ(*a.admit_connection(p, charge("192.0.2.2", "b"), 1), "per_user.control_connections=1");
}

TEST(Admission, CallsPerServer) {
  const Policy p = load("limits: {per_server: {calls: 1}}");
  Admission a;
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.1"), std::nullopt, 0));
  EXPECT_EQ(*a.admit_call(p, charge("192.0.2.2"), std::nullopt, 0), "per_server.calls=1");
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.2", "", "198.51.100.3"), std::nullopt, 0));
}

TEST(Admission, SetUpRateIsATokenBucketPerSource) {
  const Policy p = load("limits: {per_source: {setup_rate: 2, setup_burst: 3}}");
  Admission a;
  int admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += a.admit_call(p, charge("192.0.2.1"), std::nullopt, 100.0) ? 0 : 1;
  EXPECT_EQ(admitted, 3);  // the burst
  EXPECT_TRUE(a.admit_call(p, charge("192.0.2.1"), std::nullopt, 100.2));   // 0.4 token: not yet
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.1"), std::nullopt, 100.6));  // 1.2 tokens
  EXPECT_FALSE(a.admit_call(p, charge("192.0.2.9"), std::nullopt, 100.6));  // the flood is one host's
}

TEST(Admission, MovingACallToItsNamedUserRespectsThatUsersLimit) {
  const Policy p = load("users:\n  a: {names: alice, limits: {calls: 1}}\n");
  Admission a;
  Charge first = charge("192.0.2.1"), second = charge("192.0.2.2");
  ASSERT_FALSE(a.admit_call(p, first, std::nullopt, 0));
  ASSERT_FALSE(a.admit_call(p, second, std::nullopt, 0));
  EXPECT_FALSE(a.move_call(p, first, 0));
  EXPECT_EQ(first.user, "a");
  EXPECT_EQ(*a.move_call(p, second, 0), "per_user.calls=1");
  EXPECT_EQ(second.user, "");
  a.release_call(first);
  EXPECT_EQ(a.user_calls("a"), 0u);
  EXPECT_FALSE(a.move_call(p, second, 0));
}

TEST(Admission, ReleasingWhatWasNeverChargedIsHarmless) {
  Admission a;
  a.release_call(charge("192.0.2.1", "x"));
  a.release_connection(charge("192.0.2.1", "x"));
  EXPECT_EQ(a.source_calls(addr("192.0.2.1")), 0u);
}

}  // namespace
}  // namespace pptp::policy
