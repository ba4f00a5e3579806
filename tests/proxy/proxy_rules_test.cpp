// Proxy mode's rules (proxy/proxy_rules.hpp): what is installed, and that removal undoes it.
#include "proxy/proxy_rules.hpp"

#include "proxy/proxy_fastpath.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace pptp::proxy {
namespace {

std::string joined(const nft::Command& c) {
  std::string s;
  for (const auto& a : c) s += (s.empty() ? "" : " ") + a;
  return s;
}

TEST(ProxyRules, ForwardedPptpIsRedirectedToTheListenerAndForwardedGreRoutedHere) {
  std::vector<std::string> lines;
  for (const auto& c : proxy_install_commands(ProxyRuleOptions{})) lines.push_back(joined(c));
  auto has = [&](const std::string& text) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l == text; });
  };
  EXPECT_TRUE(has("iptables -w -t nat -A PPTP_ALG_PROXY -p tcp --dport 1723 -m addrtype ! --dst-type LOCAL "
                  "-j REDIRECT --to-ports 17230"));
  EXPECT_TRUE(has("iptables -w -t mangle -A PPTP_ALG_PROXY_GRE -p gre -m mark ! --mark 0x100000/0x100000 "
                  "-m addrtype ! --dst-type LOCAL "
                  "-j MARK --set-xmark 0x200000/0x200000"));
  // What conntrack finds invalid gets no REDIRECT: dropped before it is routed on, with the
  // client's inside address, to the server.
  EXPECT_TRUE(has("iptables -w -t filter -A PPTP_ALG_PROXY_INVALID -p tcp --dport 1723 -m conntrack --ctstate INVALID "
                  "-j DROP"));
  EXPECT_TRUE(has("iptables -w -t filter -I FORWARD -j PPTP_ALG_PROXY_INVALID"));
  // The fast-path bit in the mask: GRE a transparent daemon offloaded (0x300000) is routed on.
  EXPECT_TRUE(has("ip rule add fwmark 0x200000/0x300000 lookup 1723"));
  EXPECT_TRUE(has("ip route add local 0.0.0.0/0 dev lo table 1723"));
}

// --proxy-servers: the REDIRECT, the GRE mark and the invalid drop only toward those servers,
// so that a transparent daemon on the router keeps the control connections and GRE of the others.
TEST(ProxyRules, ProxiedServersLimitTheRedirectAndTheGreMark) {
  ProxyRuleOptions o;
  auto servers = parse_servers("198.51.100.3,203.0.113.0/24");
  ASSERT_TRUE(servers) << servers.error();
  o.servers = *servers;
  std::vector<std::string> redirects, marks, invalid;
  for (const auto& c : proxy_install_commands(o)) {
    const std::string line = joined(c);
    if (line.find("REDIRECT") != std::string::npos) redirects.push_back(line);
    if (line.find("--set-xmark") != std::string::npos) marks.push_back(line);
    if (line.find("--ctstate INVALID") != std::string::npos) invalid.push_back(line);
  }
  for (const auto* rules : {&redirects, &marks, &invalid}) {
    ASSERT_EQ(rules->size(), 2u);
    EXPECT_NE((*rules)[0].find(" -A PPTP_ALG_PROXY"), std::string::npos) << (*rules)[0];
    EXPECT_NE((*rules)[0].find(" -d 198.51.100.3 -p "), std::string::npos) << (*rules)[0];
    EXPECT_NE((*rules)[1].find(" -d 203.0.113.0/24 -p "), std::string::npos) << (*rules)[1];
  }
  EXPECT_NE(describe_proxy_rules(o).find("ip saddr { 198.51.100.3, 203.0.113.0/24 }"), std::string::npos);
  EXPECT_FALSE(parse_servers("198.51.100.3,nowhere"));
  EXPECT_FALSE(parse_servers("198.51.100.3/24")) << "host bits set";
  EXPECT_TRUE(parse_servers("")->empty()) << "every server";
}

// The outside (the default route's interfaces) is never proxied: each chain returns its
// packets first, so a host outside cannot reach an inside host's TCP/1723 through the proxy
// past the forward policy, and GRE through the router is routed as before (s29 review).
TEST(ProxyRules, WhatComesInFromTheOutsideLeavesEveryChainFirst) {
  ProxyRuleOptions o;
  o.outside_interfaces = {"wan0", "wan1"};
  std::vector<std::string> lines;
  for (const auto& c : proxy_install_commands(o)) lines.push_back(joined(c));
  const auto at = [&](const std::string& text) {
    return std::find(lines.begin(), lines.end(), text) - lines.begin();
  };
  const auto count = static_cast<std::ptrdiff_t>(lines.size());
  for (const char* table_chain : {"nat -A PPTP_ALG_PROXY", "mangle -A PPTP_ALG_PROXY_GRE",
                                  "filter -A PPTP_ALG_PROXY_INVALID"}) {
    const std::string prefix = std::string("iptables -w -t ") + table_chain;
    const auto first_rule = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
                              return l.rfind(prefix + " ", 0) == 0;
                            }) - lines.begin();
    ASSERT_LT(first_rule, count) << table_chain;
    EXPECT_EQ(at(prefix + " -i wan0 -j RETURN"), first_rule) << table_chain;
    EXPECT_EQ(at(prefix + " -i wan1 -j RETURN"), first_rule + 1) << table_chain;
  }
}

// --proxy-outside: an outside that is not the default route's (s29 review).
TEST(ProxyRules, OutsideInterfacesAreNamesTheKernelWouldTakeAndGivenOnesReplaceTheDefaultRoutes) {
  const auto names = parse_interfaces("wan0,ppp0,eth1.100,a-b_c@d");
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"wan0", "ppp0", "eth1.100", "a-b_c@d"}));
  EXPECT_TRUE(parse_interfaces("")->empty()) << "none given: the default route's";
  for (const char* bad : {"wan0,", ",wan0", "a/b", "eth0:1", "a b", "0123456789abcdef", ".", "..", "x\ty"}) {
    EXPECT_FALSE(parse_interfaces(bad)) << bad;
  }
  EXPECT_NE(parse_interfaces("wan0,a/b").error().find("'a/b'"), std::string::npos) << "the error names the bad one";
  EXPECT_EQ(outside_interfaces({"wan9"}), std::vector<std::string>{"wan9"});
}

TEST(ProxyRules, TheDefaultRoutesDevicesAreReadFromIpsOutput) {
  EXPECT_EQ(route_devices("default via 198.51.100.254 dev outside proto static \n"),
            (std::vector<std::string>{"outside"}));
  // Two default routes, and one with next hops (ECMP): each device once.
  EXPECT_EQ(route_devices("default via 203.0.113.1 dev wan0 metric 10\ndefault via 203.0.113.9 dev wan1 metric 20\n"
                          "default proto static metric 30 \\\tnexthop via 203.0.113.1 dev wan0 weight 1"),
            (std::vector<std::string>{"wan0", "wan1"}));
  EXPECT_TRUE(route_devices("").empty());
}

TEST(ProxyRules, EveryJumpChainAndRouteInstalledHasItsRemoval) {
  std::vector<std::string> removals;
  for (const auto& c : proxy_remove_commands(ProxyRuleOptions{})) removals.push_back(joined(c));
  for (const auto& c : proxy_install_commands(ProxyRuleOptions{})) {
    std::string undo = joined(c);
    if (undo.find(" -A ") != std::string::npos) continue;  // rules go with their chain's flush
    for (auto [from, to] : {std::pair{" -N ", " -X "}, {" -I ", " -D "}, {"rule add", "rule del"}}) {
      if (auto at = undo.find(from); at != std::string::npos) undo.replace(at, std::string(from).size(), to);
    }
    if (undo.rfind("ip route add", 0) == 0) undo = "ip route flush table 1723";
    EXPECT_NE(std::find(removals.begin(), removals.end(), undo), removals.end()) << "nothing removes: " << joined(c);
  }
}

// `pptp-alg rules --proxy` prints exactly what --install-rules installs, in order.
TEST(ProxyRules, ThePrintedScriptIsWhatIsInstalled) {
  const std::string script = describe_proxy_rules(ProxyRuleOptions{});
  std::size_t at = 0;
  for (const auto& c : proxy_install_commands(ProxyRuleOptions{})) {
    std::string want = "\n";  // appended, not `"\n" + ...`: GCC 12's false -Wrestrict
    want += joined(c);
    want += '\n';
    const std::size_t found = script.find(want, at);
    ASSERT_NE(found, std::string::npos) << want << "\nin\n" << script;
    at = found + 1;
  }
  std::string removal = "#   ";
  removal += joined(proxy_remove_commands(ProxyRuleOptions{}).front());
  EXPECT_NE(script.find(removal), std::string::npos);
  EXPECT_NE(script.find(fast_path_script()), std::string::npos) << "the fast path's table";
  EXPECT_NE(script.find("#   nft delete table ip pptp_alg_proxy\n"), std::string::npos);
}

}  // namespace
}  // namespace pptp::proxy
