#include "proxy/proxy_rules.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "proxy/proxy_fastpath.hpp"

namespace pptp::proxy {

namespace {
std::string hex(std::uint32_t v) {
  char out[16];
  std::snprintf(out, sizeof out, "0x%x", v);
  return out;
}

nft::Command iptables(std::string_view table, std::initializer_list<std::string> rest) {
  nft::Command c{"iptables", "-w", "-t", std::string(table)};
  c.insert(c.end(), rest.begin(), rest.end());
  return c;
}

std::string mark_match(const ProxyRuleOptions& o) { return hex(o.mark) + "/" + hex(o.mark); }
// Our mark without the fast-path bit: GRE offloaded by either mode is routed on.
std::string route_match(const ProxyRuleOptions& o) { return hex(o.mark) + "/" + hex(o.mark | o.fast_mark); }

// `rule` (iptables -w -t TABLE -A CHAIN ...) once per proxied server prefix, `-d PREFIX` put
// right after the chain, or once for every server.
void append_per_server(std::vector<nft::Command>& out, const ProxyRuleOptions& o, std::string_view table,
                       std::initializer_list<std::string> rule) {
  constexpr std::size_t kAfterChain = 6;  // iptables -w -t TABLE -A CHAIN | the match
  if (o.servers.empty()) {
    out.push_back(iptables(table, rule));
    return;
  }
  for (const policy::Prefix& p : o.servers) {
    nft::Command c = iptables(table, rule);
    const std::string prefix = policy::to_string(p);
    c.insert(c.begin() + static_cast<std::ptrdiff_t>(kAfterChain), {"-d", prefix});
    out.push_back(std::move(c));
  }
}

// The command with its program by absolute path (nftables/command.hpp: never through PATH).
Result<nft::Command, std::string> resolved(nft::Command c) {
  auto path = nft::require_tool(c.front() == "ip" ? nft::Tool::Ip : nft::Tool::Iptables);
  if (!path) return unexpected(path.error());
  c.front() = *path;
  return c;
}

// The outside's packets leave the chain at once (proxy_rules.hpp).
void append_outside_returns(std::vector<nft::Command>& out, const ProxyRuleOptions& o, std::string_view table,
                            const std::string& chain) {
  for (const std::string& i : o.outside_interfaces) out.push_back(iptables(table, {"-A", chain, "-i", i, "-j", "RETURN"}));
}
}  // namespace

std::vector<std::string> route_devices(std::string_view ip_output) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while ((at = ip_output.find(" dev ", at)) != std::string_view::npos) {
    at += 5;
    const std::size_t end = ip_output.find_first_of(" \n", at);
    std::string name(ip_output.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
    if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

std::vector<std::string> default_route_interfaces() {
  const auto ip = nft::require_tool(nft::Tool::Ip);
  if (!ip) return {};
  std::string output;
  if (nft::run_command({*ip, "-o", "-4", "route", "show", "default"}, "", output) != 0) return {};
  return route_devices(output);
}

Result<std::vector<std::string>, std::string> parse_interfaces(std::string_view text) {
  constexpr std::size_t kMaxName = 15;  // IFNAMSIZ less the NUL
  std::vector<std::string> out;
  if (text.empty()) return out;
  for (;;) {  // every piece between commas is a name: "wan0," has an empty one
    const std::size_t comma = text.find(',');
    const std::string_view name = text.substr(0, comma);
    const bool bad_byte = std::any_of(name.begin(), name.end(), [](char c) {
      return c == '/' || c == ':' || c == ',' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
    });
    if (name.empty() || name.size() > kMaxName || bad_byte || name == "." || name == "..") {
      std::string why(1, '\'');  // appended, not "'" + ...: GCC 12's -Wrestrict misfires on that
      why.append(name).append("' is not an interface name (1 to 15 characters, no '/', ':' or spaces; give "
                              "NAME[,NAME...])");
      return unexpected(why);
    }
    out.emplace_back(name);
    if (comma == std::string_view::npos) return out;
    text = text.substr(comma + 1);
  }
}

std::vector<std::string> outside_interfaces(const std::vector<std::string>& given) {
  return given.empty() ? default_route_interfaces() : given;
}

std::vector<nft::Command> proxy_install_commands(const ProxyRuleOptions& o) {
  const std::string nat(kNatChain), gre(kGreChain), table = std::to_string(o.table);
  std::vector<nft::Command> out{iptables("nat", {"-N", nat})};
  append_outside_returns(out, o, "nat", nat);
  append_per_server(out, o, "nat",
                    {"-A", nat, "-p", "tcp", "--dport", "1723", "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j",
                     "REDIRECT", "--to-ports", std::to_string(o.listen_port)});
  out.push_back(iptables("nat", {"-I", "PREROUTING", "-j", nat}));
  out.push_back(iptables("mangle", {"-N", gre}));
  append_outside_returns(out, o, "mangle", gre);
  // GRE the kernel fast path took (proxy_fastpath.hpp: marked, already rewritten) is forwarded.
  append_per_server(out, o, "mangle",
                    {"-A", gre, "-p", "gre", "-m", "mark", "!", "--mark", hex(o.fast_mark) + "/" + hex(o.fast_mark),
                     "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "MARK", "--set-xmark", mark_match(o)});
  out.push_back(iptables("mangle", {"-I", "PREROUTING", "-j", gre}));
  const std::string invalid(kInvalidChain);
  out.push_back(iptables("filter", {"-N", invalid}));
  append_outside_returns(out, o, "filter", invalid);
  append_per_server(out, o, "filter",
                    {"-A", invalid, "-p", "tcp", "--dport", "1723", "-m", "conntrack", "--ctstate", "INVALID", "-j",
                     "DROP"});
  out.push_back(iptables("filter", {"-I", "FORWARD", "-j", invalid}));
  out.push_back({"ip", "rule", "add", "fwmark", route_match(o), "lookup", table});
  out.push_back({"ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", table});
  return out;
}

Result<std::vector<policy::Prefix>, std::string> parse_servers(std::string_view text) {
  std::vector<policy::Prefix> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    policy::Prefix p;
    std::string why;
    if (!policy::parse_prefix(item, p, why)) {
      // Appended, not "'" + std::string: GCC 12 at -O3 warns falsely (-Wrestrict) on the latter.
      std::string error = "'";
      error.append(item).append("': ").append(why);
      return unexpected(std::move(error));
    }
    out.push_back(p);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return out;
}

std::vector<nft::Command> proxy_remove_commands(const ProxyRuleOptions& o) {
  const std::string nat(kNatChain), gre(kGreChain), invalid(kInvalidChain), table = std::to_string(o.table);
  return {
      iptables("nat", {"-D", "PREROUTING", "-j", nat}),   iptables("nat", {"-F", nat}),
      iptables("nat", {"-X", nat}),                       iptables("mangle", {"-D", "PREROUTING", "-j", gre}),
      iptables("mangle", {"-F", gre}),                    iptables("mangle", {"-X", gre}),
      iptables("filter", {"-D", "FORWARD", "-j", invalid}), iptables("filter", {"-F", invalid}),
      iptables("filter", {"-X", invalid}),
      {"ip", "rule", "del", "fwmark", route_match(o), "lookup", table},
      {"ip", "route", "flush", "table", table},
  };
}

std::string describe_proxy_rules(const ProxyRuleOptions& o) {
  const auto line = [](const nft::Command& c) {
    std::string s;
    for (const std::string& a : c) {
      if (!s.empty()) s += ' ';
      s += a;
    }
    return s + "\n";
  };
  std::string out = "#!/bin/sh\n# pptp-alg --proxy rules (docs/proxy.md): forwarded TCP/1723 to the listener on port " +
                    std::to_string(o.listen_port) + ", forwarded GRE delivered here.\nset -e\n";
  for (const nft::Command& c : proxy_install_commands(o)) out += line(c);
  out += "# The kernel fast path of established calls' GRE (proxy_fastpath.hpp; leave out for --no-fast-path):\n";
  out += "nft -f - <<'EOF'\n" + fast_path_script(o.servers) + "EOF\n";
  out += "# To remove them:\n";
  for (const nft::Command& c : proxy_remove_commands(o)) out += "#   " + line(c);
  out += "#   nft delete table ip " + std::string(kTableName) + "\n";
  return out;
}

Result<bool, std::string> install_proxy_rules(const ProxyRuleOptions& o) {
  remove_proxy_rules(o);
  for (const nft::Command& c : proxy_install_commands(o)) {
    const auto runnable = resolved(c);
    if (!runnable) return unexpected(runnable.error());
    std::string output;
    if (nft::run_command(*runnable, "", output) != 0) {
      std::string line;
      for (const auto& a : c) line += (line.empty() ? "" : " ") + a;
      remove_proxy_rules(o);
      return unexpected("'" + line + "' failed: " + output);
    }
  }
  return true;
}

// Each command may fail (nothing of it there): all are tried.
void remove_proxy_rules(const ProxyRuleOptions& o) {
  for (const nft::Command& c : proxy_remove_commands(o)) {
    std::string output;
    if (const auto runnable = resolved(c)) nft::run_command(*runnable, "", output);
  }
}

}  // namespace pptp::proxy
