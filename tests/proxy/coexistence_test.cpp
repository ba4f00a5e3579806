// A proxy and a transparent daemon on one router (proxy/coexistence.hpp): which
// combinations each daemon refuses to start into. The kernel side: tests/e2e/
// test_proxy_e2e.py, BesideTransparent.
#include "proxy/coexistence.hpp"

#include <gtest/gtest.h>

#include "proxy/proxy_fastpath.hpp"
#include "tests/proxy/relay_harness.hpp"

namespace pptp::proxy {
namespace {

// The chain as `nft list chain` prints it.
std::string listed(std::string_view rule) {
  return "table ip pptp_alg_proxy {\n\tchain proxy_server_gre {\n\t\ttype filter hook prerouting priority raw - 15; "
         "policy accept;\n\t\t" +
         std::string(rule) + "\n\t}\n}\n";
}

TEST(Coexistence, AChainWithoutASourceMatchMarksEveryServersGre) {
  EXPECT_TRUE(marks_every_server(listed("ip protocol gre fib daddr type local meta mark set meta mark | 0x00100000")));
  EXPECT_FALSE(marks_every_server(
      listed("ip protocol gre fib daddr type local ip saddr 198.51.100.2 meta mark set meta mark | 0x00100000")));
  EXPECT_FALSE(marks_every_server(listed(
      "ip protocol gre fib daddr type local ip saddr { 192.0.2.0/24, 198.51.100.2 } meta mark set meta mark | 0x00100000")));
  EXPECT_FALSE(marks_every_server(listed("")));  // no marking rule: marks nothing
  // The chain ends at its own closing line: another chain's rule is not its rule.
  EXPECT_FALSE(marks_every_server(listed("") + "\tchain other {\n\t\tmeta mark set 0x1\n\t}\n"));
  // What the proxy loads says the same of itself.
  EXPECT_TRUE(marks_every_server(fast_path_script()));
  EXPECT_FALSE(marks_every_server(fast_path_script({policy::Prefix{relay_test::kServer, 32}})));
  EXPECT_FALSE(marks_every_server(
      fast_path_script({policy::Prefix{relay_test::kServer, 32}, policy::Prefix{test::addr("192.0.2.0"), 24}})));
}

TEST(Coexistence, AProxyBesideATransparentDaemonNeedsItsServersAndItsFastPath) {
  const OtherMode transparent{.transparent_table = true};
  EXPECT_EQ(proxy_conflict(OtherMode{}, false, false), std::nullopt) << "alone, any proxy starts";
  EXPECT_EQ(proxy_conflict(transparent, true, true), std::nullopt);
  const auto every_server = proxy_conflict(transparent, false, true);
  ASSERT_TRUE(every_server);
  EXPECT_NE(every_server->find("--proxy-servers"), std::string::npos) << *every_server;
  const auto no_fast_path = proxy_conflict(transparent, true, false);
  ASSERT_TRUE(no_fast_path);
  EXPECT_NE(no_fast_path->find("--no-fast-path"), std::string::npos) << *no_fast_path;
}

TEST(Coexistence, ATransparentDaemonStartsBesideAProxyOnlyWhenTheProxyNamesItsServers) {
  EXPECT_EQ(transparent_conflict(OtherMode{}), std::nullopt);
  EXPECT_EQ(transparent_conflict(OtherMode{.proxy_table = true}), std::nullopt);
  const auto why = transparent_conflict(OtherMode{.proxy_table = true, .proxy_marks_every_server = true});
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("nft delete table ip pptp_alg_proxy"), std::string::npos) << *why;
}

}  // namespace
}  // namespace pptp::proxy
