// The xtables fallback's chains (rules.hpp): PPTP_ALG_PREROUTING in raw, PPTP_ALG_FORWARD in
// mangle, fed by one jump each from the built-in chains.
#include "nftables/rules.hpp"

#include <map>

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

namespace {
// The commands of xtables_install() as iptables-restore lines, by table. `-N CHAIN` becomes
// the declaration `:CHAIN - [0:0]`, which with --noflush creates the chain or empties it.
struct Section {
  std::vector<std::string> declare, remove, add;
};

void add_installed(std::map<std::string, Section>& tables, const RuleOptions& o) {
  for (const Command& c : xtables_install(o)) {
    // {iptables, -w, -t, TABLE, command...}
    Section& section = tables[c[3]];
    if (c[4] == "-N") {
      section.declare.push_back(":" + c[5] + " - [0:0]");
      continue;
    }
    std::string line;
    for (std::size_t i = 4; i < c.size(); ++i) line += (i > 4 ? " " : "") + c[i];
    section.add.push_back(std::move(line));
  }
}

bool ours(std::string_view chain) { return chain == kChainPrerouting || chain == kChainForward; }

// What iptables-save shows of ours: the jumps to our chains (deleted by their saved
// specification, whatever version added them) and, when nothing is installed after, the
// chains themselves.
void add_removed(std::map<std::string, Section>& tables, std::string_view saved, bool installing) {
  std::string table;
  std::vector<std::string> chains;
  while (!saved.empty()) {
    const std::size_t end = saved.find('\n');
    const std::string_view line = saved.substr(0, end);
    saved = end == std::string_view::npos ? std::string_view() : saved.substr(end + 1);
    if (line.rfind('*', 0) == 0) {
      table = std::string(line.substr(1));
    } else if (line.rfind(':', 0) == 0 && ours(line.substr(1, line.find(' ') - 1)) && !installing) {
      chains.push_back(table + " " + std::string(line.substr(1, line.find(' ') - 1)));
    } else if (line.rfind("-A ", 0) == 0 && !ours(line.substr(3, line.find(' ', 3) - 3))) {
      const std::size_t jump = line.rfind(" -j ");
      if (jump != std::string_view::npos && ours(line.substr(jump + 4))) {
        tables[table].remove.push_back("-D" + std::string(line.substr(2)));
      }
    }
  }
  for (const std::string& c : chains) {  // after the jumps: a chain in use cannot go
    Section& section = tables[c.substr(0, c.find(' '))];
    section.remove.push_back("-F " + c.substr(c.find(' ') + 1));
    section.remove.push_back("-X " + c.substr(c.find(' ') + 1));
  }
}
}  // namespace

std::string xtables_restore_script(std::string_view saved, const RuleOptions* install) {
  std::map<std::string, Section> tables;
  if (install != nullptr) add_installed(tables, *install);
  add_removed(tables, saved, install != nullptr);
  std::string script;
  for (const auto& [name, section] : tables) {
    script += "*" + name + "\n";
    for (const auto* lines : {&section.declare, &section.remove, &section.add}) {
      for (const std::string& line : *lines) script += line + "\n";
    }
    script += "COMMIT\n";
  }
  return script;
}

Result<bool, std::string> apply_xtables(const RuleOptions* install) {
  const std::string &save = tool_path(Tool::IptablesSave), &restore = tool_path(Tool::IptablesRestore);
  if (save.empty() || restore.empty()) {
    if (install == nullptr) return true;  // no iptables: none of our rules either
    return unexpected((save.empty() ? require_tool(Tool::IptablesSave) : require_tool(Tool::IptablesRestore)).error());
  }
  std::string saved, output;
  if (run_command({save}, {}, saved) != 0) return unexpected(save + " failed: " + saved);
  const std::string script = xtables_restore_script(saved, install);
  if (script.empty()) return true;
  if (run_command({restore, "-w", "--noflush"}, script, output) != 0) {
    return unexpected(restore + " -w --noflush failed: " + output);
  }
  return true;
}

}  // namespace pptp::nft
