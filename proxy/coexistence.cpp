#include "proxy/coexistence.hpp"

#include "nftables/command.hpp"
#include "nftables/rules.hpp"
#include "proxy/proxy_fastpath.hpp"

namespace pptp::proxy {

bool marks_every_server(std::string_view listing) {
  const std::string head = "chain " + std::string(kServerGreChain) + " {";
  std::size_t at = listing.find(head);
  if (at == std::string_view::npos) return false;
  // The chain's rules, a line each, up to the line that closes it (a set's braces are inside
  // a rule's line).
  for (at = listing.find('\n', at); at != std::string_view::npos && at + 1 < listing.size();) {
    const std::size_t next = listing.find('\n', at + 1);
    const std::string_view line = listing.substr(at + 1, next == std::string_view::npos ? next : next - at - 1);
    const std::size_t text = line.find_first_not_of(" \t");
    if (text != std::string_view::npos && line[text] == '}') return false;  // no marking rule: marks nothing
    if (line.find("meta mark set") != std::string_view::npos) return line.find("ip saddr") == std::string_view::npos;
    at = next;
  }
  return false;
}

std::optional<std::string> proxy_conflict(const OtherMode& other, bool servers_given, bool fast_path) {
  if (!other.transparent_table) return std::nullopt;
  // A stopped daemon with keep-fast-path (the packaged default) leaves its table too.
  std::string why = "a transparent pptp-alg's table ip ";
  why += nft::kTableName;
  why += " is loaded on this router (if no transparent daemon runs, it is one's left by keep-fast-path or a "
         "crash: nft delete table ip ";
  why += nft::kTableName;
  why += ", then start the proxy); ";
  if (!servers_given) {
    why += "beside it the proxy needs --proxy-servers PREFIX[,PREFIX...] (the servers it serves), "
           "else it would take every server's GRE from the transparent calls (docs/proxy.md)";
    return why;
  }
  if (!fast_path) {
    why += "beside it the proxy needs its fast path (leave out --no-fast-path): without its chain ";
    why += kServerGreChain;
    why += " the transparent daemon would queue and drop the proxied calls' GRE (docs/proxy.md)";
    return why;
  }
  return std::nullopt;
}

std::optional<std::string> transparent_conflict(const OtherMode& other) {
  if (!other.proxy_table || !other.proxy_marks_every_server) return std::nullopt;
  std::string why = "a pptp-alg proxy for every server (table ip ";
  why += kTableName;
  why += ", no --proxy-servers) runs on this router and takes every server's GRE: restart it with "
         "--proxy-servers PREFIX[,PREFIX...], or stop it (nft delete table ip ";
  why += kTableName;
  why += " if it is a crashed proxy's), then start this daemon (docs/proxy.md)";
  return why;
}

OtherMode read_other_mode() {
  OtherMode m;
  const std::string proxy_table = std::string(kTableName);
  m.transparent_table = nft::run_nft("list table ip " + std::string(nft::kTableName)).has_value();
  m.proxy_table = nft::run_nft("list table ip " + proxy_table).has_value();
  if (m.proxy_table) {
    const auto chain = nft::run_nft("list chain ip " + proxy_table + " " + std::string(kServerGreChain));
    m.proxy_marks_every_server = chain && marks_every_server(*chain);
  }
  return m;
}

}  // namespace pptp::proxy
