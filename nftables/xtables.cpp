// The xtables fallback's chains (rules.hpp): PPTP_ALG_PREROUTING in raw, PPTP_ALG_FORWARD in
// mangle, fed by one jump each from the built-in chains.
#include "nftables/rules.hpp"

namespace pptp::nft {

namespace {
using Args = std::vector<std::string>;

Args not_marked(const RuleOptions& o) {
  if (!o.fast_path) return {};
  return {"-m", "mark", "!", "--mark", hex32(o.fast_path_mark) + "/" + hex32(o.fast_path_mark)};
}

Args joined(Args a, const Args& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Args jump_gre(const RuleOptions& o, const std::string& chain) {
  return joined(joined({"-p", "gre"}, not_marked(o)), {"-j", chain});
}

Args nfqueue_target(const RuleOptions& o) {
  Args t{"-j", "NFQUEUE", "--queue-num", std::to_string(o.queue)};
  if (o.fail_open) t.emplace_back("--queue-bypass");
  return t;
}

// Drops what a source sends over `per_second` (burst kRateLimitBurstFactor times that).
Args over_rate(std::string_view name, std::uint32_t per_second) {
  return {"-m",
          "hashlimit",
          "--hashlimit-above",
          std::to_string(per_second) + "/sec",
          "--hashlimit-burst",
          std::to_string(per_second * kRateLimitBurstFactor),
          "--hashlimit-mode",
          "srcip",
          "--hashlimit-htable-size",
          std::to_string(kRateLimitSources),
          "--hashlimit-htable-expire",
          std::to_string(kRateLimitForgetSeconds * 1000),
          "--hashlimit-name",
          std::string(name),
          "-j",
          "DROP"};
}

const Args kInvalid{"-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"};

Command iptables(std::initializer_list<std::string> head, const Args& tail = {}) {
  Command c{tool_path(Tool::Iptables), "-w"};
  c.insert(c.end(), head.begin(), head.end());
  c.insert(c.end(), tail.begin(), tail.end());
  return c;
}

std::vector<Command> forward_rules(const RuleOptions& o) {
  const std::string fwd(kChainForward);
  const auto target = nfqueue_target(o);
  const Args tracked_gre{"-p", "gre", "-m", "conntrack", "!", "--ctstate", "UNTRACKED"};
  std::vector<Command> r{
      iptables({"-t", "mangle", "-N", fwd}),
      // Invalid to conntrack (outside the TCP window, for one): never queued.
      iptables({"-t", "mangle", "-A", fwd, "-p", "tcp", "--dport", "1723"}, kInvalid),
      iptables({"-t", "mangle", "-A", fwd, "-p", "tcp", "--sport", "1723"}, kInvalid),
      iptables({"-t", "mangle", "-A", fwd, "-p", "gre"}, kInvalid),
  };
  if (o.syn_per_second > 0) {
    r.push_back(iptables({"-t", "mangle", "-A", fwd, "-p", "tcp", "--dport", "1723", "--syn"},
                         over_rate("pptp_alg_syn", o.syn_per_second)));
  }
  if (queued_gre_limit(o) > 0) {
    r.push_back(iptables({"-t", "mangle", "-A", fwd},
                         joined(tracked_gre, over_rate("pptp_alg_gre_out", queued_gre_limit(o)))));
  }
  r.push_back(iptables({"-t", "mangle", "-A", fwd, "-p", "tcp", "--dport", "1723"}, target));
  r.push_back(iptables({"-t", "mangle", "-A", fwd, "-p", "tcp", "--sport", "1723"}, target));
  r.push_back(
      iptables({"-t", "mangle", "-A", fwd}, joined(joined(tracked_gre, not_marked(o)), target)));
  return r;
}
}  // namespace

std::vector<Command> xtables_install(const RuleOptions& o) {
  const std::string pre(kChainPrerouting), fwd(kChainForward);
  const Args local_gre{"-p", "gre", "-m", "addrtype", "--dst-type", "LOCAL"};
  std::vector<Command> r{iptables({"-t", "raw", "-N", pre})};
  if (queued_gre_limit(o) > 0) {
    r.push_back(iptables({"-t", "raw", "-A", pre},
                         joined(local_gre, over_rate("pptp_alg_gre_in", queued_gre_limit(o)))));
  }
  r.push_back(iptables({"-t", "raw", "-A", pre},
                       joined(joined(local_gre, not_marked(o)), nfqueue_target(o))));
  r.push_back(iptables({"-t", "raw", "-I", "PREROUTING"}, jump_gre(o, pre)));
  for (auto& c : forward_rules(o)) r.push_back(std::move(c));
  // Only TCP and GRE not on the fast path enter our chains: the rest of the router's
  // traffic (and offloaded GRE) pays one match, not our whole chain.
  r.push_back(iptables({"-t", "mangle", "-I", "FORWARD", "-p", "tcp", "-j", fwd}));
  r.push_back(iptables({"-t", "mangle", "-I", "FORWARD"}, jump_gre(o, fwd)));
  return r;
}

std::vector<Command> xtables_remove() {
  // Every form of jump an install may have left (with or without the fast path, and the
  // unconditional ones of earlier versions); a missing one is no error.
  const std::string pre(kChainPrerouting), fwd(kChainForward);
  RuleOptions fast, slow;
  slow.fast_path = false;
  return {
      iptables({"-t", "raw", "-D", "PREROUTING"}, jump_gre(fast, pre)),
      iptables({"-t", "raw", "-D", "PREROUTING"}, jump_gre(slow, pre)),
      iptables({"-t", "raw", "-D", "PREROUTING", "-j", pre}),
      iptables({"-t", "raw", "-F", pre}),
      iptables({"-t", "raw", "-X", pre}),
      iptables({"-t", "mangle", "-D", "FORWARD", "-p", "tcp", "-j", fwd}),
      iptables({"-t", "mangle", "-D", "FORWARD"}, jump_gre(fast, fwd)),
      iptables({"-t", "mangle", "-D", "FORWARD"}, jump_gre(slow, fwd)),
      iptables({"-t", "mangle", "-D", "FORWARD", "-j", fwd}),
      iptables({"-t", "mangle", "-F", fwd}),
      iptables({"-t", "mangle", "-X", fwd}),
  };
}

}  // namespace pptp::nft
