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
// The server's GRE is addressed to the router already. Only iptables (xtables) and iproute2
// are used: REDIRECT and MARK need no queue, so the nft `queue` question does not arise.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alg/core/result.hpp"
#include "nftables/rules.hpp"

namespace pptp::proxy {

inline constexpr std::uint16_t kListenPort = 17230;       // where REDIRECT sends TCP/1723
inline constexpr std::uint32_t kGreMark = 0x00200000;     // beside the fast path's 0x00100000
inline constexpr std::uint32_t kRouteTable = 1723;        // the policy route's table
inline constexpr std::string_view kNatChain = "PPTP_ALG_PROXY";
inline constexpr std::string_view kGreChain = "PPTP_ALG_PROXY_GRE";

struct ProxyRuleOptions {
  std::uint16_t listen_port = kListenPort;
  std::uint32_t mark = kGreMark;
  std::uint32_t table = kRouteTable;
  std::uint32_t fast_mark = nft::kFastPathMark;  // packets the fast path relays: left alone
};

std::vector<nft::Command> proxy_install_commands(const ProxyRuleOptions& o);
std::vector<nft::Command> proxy_remove_commands(const ProxyRuleOptions& o);
// `pptp-alg rules --proxy`: the install commands as a shell script, with the removal in a
// comment, for a firewall kept by hand (then run the proxy without --install-rules).
std::string describe_proxy_rules(const ProxyRuleOptions& o);
// Installs (after removing what an earlier run left); the error names the failed command.
Result<bool, std::string> install_proxy_rules(const ProxyRuleOptions& o);
void remove_proxy_rules(const ProxyRuleOptions& o);

}  // namespace pptp::proxy
