#include "nftables/rules.hpp"

#include "nftables/fastpath.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace pptp::nft {

namespace {
std::string queue_statement(const RuleOptions& o) {
  return "queue num " + std::to_string(o.queue) + (o.fail_open ? " bypass" : "");
}

std::string hex(std::uint32_t v) {
  char out[16];
  std::snprintf(out, sizeof out, "0x%08x", v);
  return out;
}

// GRE that the fast path did not take.
std::string unmarked(const RuleOptions& o) {
  return o.fast_path ? "meta mark & " + hex(o.fast_path_mark) + " != " + hex(o.fast_path_mark) + " " : std::string();
}

std::vector<std::string> not_marked(const RuleOptions& o) {
  if (!o.fast_path) return {};
  return {"-m", "mark", "!", "--mark", hex(o.fast_path_mark) + "/" + hex(o.fast_path_mark)};
}

std::vector<std::string> jump_gre(const RuleOptions& o, const std::string& chain) {
  std::vector<std::string> r{"-p", "gre"};
  const auto m = not_marked(o);
  r.insert(r.end(), m.begin(), m.end());
  r.insert(r.end(), {"-j", chain});
  return r;
}

std::vector<std::string> nfqueue_target(const RuleOptions& o) {
  std::vector<std::string> t{"-j", "NFQUEUE", "--queue-num", std::to_string(o.queue)};
  if (o.fail_open) t.emplace_back("--queue-bypass");
  return t;
}

Command iptables(std::initializer_list<std::string> head, const std::vector<std::string>& tail = {}) {
  Command c{"iptables", "-w"};
  c.insert(c.end(), head.begin(), head.end());
  c.insert(c.end(), tail.begin(), tail.end());
  return c;
}

std::string shell_line(const Command& c) {
  std::string s;
  for (const auto& a : c) {
    if (!s.empty()) s += ' ';
    const bool plain = a.find_first_of(" !\"'$&;|<>") == std::string::npos;
    s += plain ? a : "'" + a + "'";
  }
  return s;
}
}  // namespace

std::string_view name_of(Backend b) { return b == Backend::Nft ? "nft" : "xtables"; }

bool parse_backend(std::string_view text, Backend& out) {
  if (text == "nft") {
    out = Backend::Nft;
  } else if (text == "xtables" || text == "iptables") {
    out = Backend::Xtables;
  } else {
    return false;
  }
  return true;
}

std::string nft_table(Backend backend, const RuleOptions& o) {
  std::ostringstream s;
  const std::string q = queue_statement(o);
  s << "table ip " << kTableName << " {\n";
  if (o.fast_path) {
    // Enhanced GRE (K bit, version 1): the Key, the receiver's Call ID, is at bytes 6-7.
    // (`ip protocol`, not `meta l4proto`: nft 1.0.6 aborts listing the latter with @th.)
    const std::string gre = "ip protocol gre @th,0,16 & 0x2007 == 0x2001 ";
    const std::string mark = "meta mark set meta mark | " + hex(o.fast_path_mark);
    const std::string key = "ip saddr . ip daddr . @th,48,16";
    s << "  # Fast path: calls that pptp-alg has handed to the kernel (pptp-alg keeps the\n"
      << "  # elements; each expires unless the daemon re-arms it).\n"
      << "  map " << kFastInPlain << " {\n    typeof " << key << " : ip daddr\n    flags timeout\n    counter\n  }\n"
      << "  map " << kFastInAddress << " {\n    typeof " << key << " : ip daddr\n    flags timeout\n    counter\n  }\n"
      << "  map " << kFastInCallId << " {\n    typeof " << key << " : @th,48,16\n    flags timeout\n  }\n"
      << "  set " << kFastOut << " {\n    typeof " << key << "\n    flags timeout\n    counter\n  }\n"
      << "  chain fast_in {\n"
      << "    type filter hook prerouting priority raw - 20; policy accept;\n"
      << "    # a call that kept its Call ID: one lookup, the destination\n"
      << "    " << gre << "ip daddr set " << key << " map @" << kFastInPlain << " notrack " << mark << " accept\n"
      << "    # a translated one: the destination, then (by the new destination) the Key\n"
      << "    " << gre << "ip daddr set " << key << " map @" << kFastInAddress << " @th,48,16 set " << key
      << " map @" << kFastInCallId << " notrack " << mark << " accept\n"
      << "    # the client's GRE: marked here, before routing, so that no forward-hook chain of\n"
      << "    # ours costs the router's other traffic anything (its masquerade translates it)\n"
      << "    " << gre << key << " @" << kFastOut << " " << mark << "\n"
      << "  }\n";
  }
  s << "  # The server's GRE to this router's own address: untracked (conntrack cannot match\n"
    << "  # it to the client) and handed to pptp-alg before routing.\n"
    << "  chain prerouting {\n"
    << "    type filter hook prerouting priority raw - 10; policy accept;\n"
    << "    meta l4proto gre " << unmarked(o) << "fib daddr type local notrack"
    << (backend == Backend::Nft ? " " + q : std::string()) << "\n"
    << "  }\n";
  if (backend == Backend::Nft) {
    s << "  # Control connections (both directions show inside addresses here) and the\n"
      << "  # clients' GRE on its way out (tracked: the masquerade rule translates its source).\n"
      << "  chain forward {\n"
      << "    type filter hook forward priority mangle; policy accept;\n"
      << "    tcp dport 1723 " << q << "\n"
      << "    tcp sport 1723 " << q << "\n"
      << "    meta l4proto gre " << unmarked(o) << "ct state != untracked " << q << "\n"
      << "  }\n";
  }
  s << "}\n";
  return s.str();
}

std::vector<Command> xtables_install(const RuleOptions& o) {
  const std::string pre(kChainPrerouting), fwd(kChainForward);
  const auto target = nfqueue_target(o);
  auto gre_target = not_marked(o);
  gre_target.insert(gre_target.end(), target.begin(), target.end());
  return {
      iptables({"-t", "raw", "-N", pre}),
      iptables({"-t", "raw", "-A", pre, "-p", "gre", "-m", "addrtype", "--dst-type", "LOCAL"}, gre_target),
      iptables({"-t", "raw", "-I", "PREROUTING"}, jump_gre(o, pre)),
      iptables({"-t", "mangle", "-N", fwd}),
      iptables({"-t", "mangle", "-A", fwd, "-p", "tcp", "--dport", "1723"}, target),
      iptables({"-t", "mangle", "-A", fwd, "-p", "tcp", "--sport", "1723"}, target),
      iptables({"-t", "mangle", "-A", fwd, "-p", "gre", "-m", "conntrack", "!", "--ctstate", "UNTRACKED"},
               gre_target),
      // Only TCP and GRE not on the fast path enter our chains: the rest of the router's
      // traffic (and offloaded GRE) pays one match, not our whole chain.
      iptables({"-t", "mangle", "-I", "FORWARD", "-p", "tcp", "-j", fwd}),
      iptables({"-t", "mangle", "-I", "FORWARD"}, jump_gre(o, fwd)),
  };
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

std::string describe_rules(Backend backend, const RuleOptions& o) {
  std::ostringstream s;
  s << "#!/bin/sh\n# pptp-alg rules, backend " << name_of(backend) << ", queue " << o.queue
    << (o.fail_open ? ", fail open" : ", fail closed") << "\n"
    << "# GRE from the server is untracked before conntrack; make sure the forward policy\n"
    << "# accepts it (e.g. nft: meta l4proto gre ct state untracked accept).\n"
    << "nft -f - <<'EOF'\n"
    << nft_table(backend, o) << "EOF\n";
  for (const auto& c : xtables_install(o)) {
    if (backend == Backend::Xtables) s << shell_line(c) << "\n";
  }
  return s.str();
}

int run_command(const Command& argv, std::string_view input, std::string& output) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return -1;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return -1;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return -1;
  }
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  std::size_t written = 0;
  while (written < input.size()) {
    const ssize_t n = write(in[1], input.data() + written, input.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  close(in[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n > 0) {
      output.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Backend detect_backend() {
  const std::string probe =
      "table ip pptp_alg_probe {\n chain c {\n  type filter hook prerouting priority 0;\n"
      "  meta l4proto gre queue num 0 bypass\n }\n}\n";
  std::string output;
  return run_command({"nft", "--check", "-f", "-"}, probe, output) == 0 ? Backend::Nft : Backend::Xtables;
}

Result<bool, std::string> install_rules(Backend backend, const RuleOptions& options, bool* kept) {
  if (kept != nullptr) *kept = false;
  std::string listing, output;
  const bool exists =
      run_command({"nft", "list", "table", "ip", std::string(kTableName)}, {}, listing) == 0 && !listing.empty();
  const bool keep = exists && options.fast_path && listing.find(std::string("map ") + std::string(kFastInPlain)) !=
                                                       std::string::npos;
  for (const auto& c : xtables_remove()) {
    output.clear();
    run_command(c, {}, output);  // absent chains are fine
  }
  int rc = -1;
  if (keep) {
    // One transaction: every chain's rules replaced, the sets (declared the same) untouched.
    std::string script;
    for (const char* chain : {"fast_in", "prerouting", "forward"}) {
      if (listing.find(std::string("chain ") + chain + " {") != std::string::npos) {
        script += "flush chain ip " + std::string(kTableName) + " " + chain + "\n";
      }
    }
    // Earlier versions marked the client's GRE in a chain of its own in the forward hook.
    if (listing.find("chain fast_out {") != std::string::npos) {
      script += "delete chain ip " + std::string(kTableName) + " fast_out\n";
    }
    output.clear();
    rc = run_command({"nft", "-f", "-"}, script + nft_table(backend, options), output);
    if (rc == 0 && kept != nullptr) *kept = true;
  }
  if (rc != 0) {
    if (exists) run_command({"nft", "delete", "table", "ip", std::string(kTableName)}, {}, output);
    output.clear();
    rc = run_command({"nft", "-f", "-"}, nft_table(backend, options), output);
  }
  if (rc != 0) {
    return unexpected("nft could not load table " + std::string(kTableName) + " (exit " +
                      std::to_string(rc) + "): " + output +
                      " -- is nftables installed and are you root (CAP_NET_ADMIN)?");
  }
  for (const auto& c : xtables_install(options)) {
    if (backend != Backend::Xtables) break;
    output.clear();
    if (run_command(c, {}, output) != 0) {
      remove_rules();
      // Appended piece by piece: GCC 12 at -O2 reports a false -Wrestrict on
      // `"literal" + std::string` (GCC bug 105329).
      std::string message = "'";
      message += shell_line(c);
      message += "' failed: ";
      message += output;
      message += " -- install iptables (iptables-nft) or use a kernel with nft queue";
      return unexpected(message);
    }
  }
  return true;
}

void remove_rules(bool keep_fast_path) {
  std::string output;
  if (keep_fast_path) {
    for (const char* chain : {"prerouting", "forward"}) {
      run_command({"nft", "delete", "chain", "ip", std::string(kTableName), chain}, {}, output);
    }
  } else {
    run_command({"nft", "delete", "table", "ip", std::string(kTableName)}, {}, output);
  }
  for (const auto& c : xtables_remove()) {
    output.clear();
    run_command(c, {}, output);  // absent chains are fine
  }
}

}  // namespace pptp::nft
