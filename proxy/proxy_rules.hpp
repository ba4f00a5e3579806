// The kernel rules of proxy mode (docs/proxy.md), in chains of their own:
//
//   nat PREROUTING -> PPTP_ALG_PROXY:   forwarded TCP/1723 (to an address not the router's)
//                                       is REDIRECTed to the proxy's listener; the proxy
//                                       reads the original server back (SO_ORIGINAL_DST).
//   mangle PREROUTING -> PPTP_ALG_PROXY_GRE: forwarded GRE gets the proxy mark; a policy
//                                       route (ip rule fwmark -> table with a `local`
//                                       default route, the TPROXY recipe) delivers it to this
//                                       host, where the proxy's raw GRE socket reads it.
//
// With --proxy-servers both rules are limited to those servers (one rule per prefix), so that
// a transparent daemon on the same router keeps the rest. What comes in through an interface
// of the default route (the outside) is never proxied: each chain starts with `-i IFACE -j
// RETURN` for it. REDIRECT comes before filter FORWARD, so without that a host outside could
// reach an inside host's TCP/1723 through the proxy, from the router's own address, past the
// firewall's forward policy (s29 review). The policy route's mask takes the
// fast-path bit in too: GRE a transparent daemon offloaded carries it (beside its own
// 0x00200000, the value of our mark) and is routed on, not delivered here.
//
// The server's GRE is addressed to the router already. Only iptables (xtables) and iproute2
// are used: REDIRECT and MARK need no queue, so the nft `queue` question does not arise.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alg/core/result.hpp"
#include "nftables/rules.hpp"
#include "policy/policy.hpp"

namespace pptp::proxy {

inline constexpr std::uint16_t kListenPort = 17230;       // where REDIRECT sends TCP/1723
inline constexpr std::uint32_t kGreMark = 0x00200000;     // beside the fast path's 0x00100000
inline constexpr std::uint32_t kRouteTable = 1723;        // the policy route's table
inline constexpr std::string_view kNatChain = "PPTP_ALG_PROXY";
inline constexpr std::string_view kGreChain = "PPTP_ALG_PROXY_GRE";
// filter FORWARD: a client's TCP/1723 that conntrack finds invalid gets no REDIRECT (NAT
// skips it) and no masquerade; routed on, it would reach the server with the client's inside
// address. Dropped here, counted in the rule's counters (docs/proxy.md).
inline constexpr std::string_view kInvalidChain = "PPTP_ALG_PROXY_INVALID";

struct ProxyRuleOptions {
  std::uint16_t listen_port = kListenPort;
  std::uint32_t mark = kGreMark;
  std::uint32_t table = kRouteTable;
  std::uint32_t fast_mark = nft::kFastPathMark;  // packets the fast path relays: left alone
  std::vector<policy::Prefix> servers;            // --proxy-servers; empty: every server
  std::vector<std::string> outside_interfaces;    // never proxied from (default_route_interfaces)
};

// The interfaces of the IPv4 default route(s) (`ip -o -4 route show default`): the outside,
// whose TCP/1723 and GRE the proxy leaves to the forward policy. Empty without one (logged by
// the caller: then every interface is proxied).
std::vector<std::string> default_route_interfaces();
// The `dev NAME` of each route line of `ip -o route` output (pure, for the test).
std::vector<std::string> route_devices(std::string_view ip_output);

// "wan0,ppp0" (--proxy-outside) as interface names: 1 to 15 bytes (IFNAMSIZ), none of '/',
// ':', space or control characters, not "." or ".." (the kernel's dev_valid_name); the error
// names the bad one. Empty: none given (the default route's are used).
Result<std::vector<std::string>, std::string> parse_interfaces(std::string_view text);
// The outside: --proxy-outside's if given, else the default route's.
std::vector<std::string> outside_interfaces(const std::vector<std::string>& given);

// "198.51.100.2,203.0.113.0/24" (--proxy-servers) as prefixes; the error names the bad one.
Result<std::vector<policy::Prefix>, std::string> parse_servers(std::string_view text);

std::vector<nft::Command> proxy_install_commands(const ProxyRuleOptions& o);
std::vector<nft::Command> proxy_remove_commands(const ProxyRuleOptions& o);
// `pptp-alg rules --proxy`: the install commands as a shell script, with the removal in a
// comment, for a firewall kept by hand (then run the proxy without --install-rules).
std::string describe_proxy_rules(const ProxyRuleOptions& o);
// Installs (after removing what an earlier run left); the error names the failed command.
Result<bool, std::string> install_proxy_rules(const ProxyRuleOptions& o);
void remove_proxy_rules(const ProxyRuleOptions& o);

}  // namespace pptp::proxy
