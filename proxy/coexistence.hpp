// A proxy and a transparent daemon on one router (docs/proxy.md, "Beside the transparent
// mode"). The proxy's chain proxy_server_gre marks the GRE of the servers it serves so the
// transparent daemon's queue leaves it alone; a proxy for every server (no --proxy-servers)
// or without its fast path (no such chain) cannot share a router with a transparent daemon:
// the first would take the transparent calls' GRE, the second would let the transparent
// queue drop the proxied calls'. Each daemon refuses to start into that: the checks below
// read the other's state from nftables, the decisions are pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pptp::proxy {

// What this router has loaded of the other mode.
struct OtherMode {
  bool transparent_table = false;       // table ip pptp_alg
  bool proxy_table = false;             // table ip pptp_alg_proxy
  bool proxy_marks_every_server = false;  // its proxy_server_gre chain has no source match
};

// Whether chain proxy_server_gre in `listing` (`nft list chain`, or a whole table) names no
// server: its rule marks GRE from every source.
bool marks_every_server(std::string_view listing);

// Why a proxy with these settings must not start beside `other`; nothing when it may.
std::optional<std::string> proxy_conflict(const OtherMode& other, bool servers_given, bool fast_path);
// Why a transparent daemon must not start beside `other`; nothing when it may.
std::optional<std::string> transparent_conflict(const OtherMode& other);

// Reads the tables and the chain through nft (nothing found when nft is missing).
OtherMode read_other_mode();

}  // namespace pptp::proxy
