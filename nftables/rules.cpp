#include "nftables/rules.hpp"

#include "nftables/fastpath.hpp"

#include <cstdio>
#include <sstream>

namespace pptp::nft {

namespace {
std::string queue_statement(const RuleOptions& o) {
  return "queue num " + std::to_string(o.queue) + (o.fail_open ? " bypass" : "");
}

// GRE that the fast path did not take.
std::string unmarked(const RuleOptions& o) {
  return o.fast_path ? "meta mark & " + hex32(o.fast_path_mark) + " != " + hex32(o.fast_path_mark) + " " : std::string();
}

// Matches when the source (ip saddr) exceeds `per_second` (burst kRateLimitBurstFactor
// times that), counted in `counter`.
std::string over_rate(std::string_view set, std::uint32_t per_second, std::string_view counter) {
  return "update @" + std::string(set) + " { ip saddr limit rate over " + std::to_string(per_second) +
         "/second burst " + std::to_string(per_second * kRateLimitBurstFactor) + " packets } counter name \"" +
         std::string(counter) + "\" drop";
}

std::string source_set(std::string_view name) {
  return "  set " + std::string(name) + " {\n    type ipv4_addr\n    size " + std::to_string(kRateLimitSources) +
         "\n    flags dynamic,timeout\n    timeout " + std::to_string(kRateLimitForgetSeconds) + "s\n  }\n";
}

constexpr std::string_view kChainDropInvalid = "drop_invalid";  // named in install_rules too
constexpr std::string_view kChainFastIn = "fast_in", kChainFastLookup = "fast_lookup";
constexpr std::string_view kChainFastPpp = "fast_ppp", kChainFastPppAck = "fast_ppp_ack";
constexpr std::string_view kChainPreroutingNft = "prerouting";  // without the fast path
constexpr std::string_view kSynSources = "syn_sources", kGreSources = "gre_sources";
// A TCP segment opening a connection (SYN without ACK) toward port 1723.
constexpr std::string_view kNewControl = "tcp dport 1723 tcp flags & (syn | ack) == syn ";

// PPP link control and authentication (0xC0xx: LCP, PAP; 0xC2xx: CHAP, EAP) go to the
// queue, where a re-authentication is judged (issue 12): per place of the PPP frame (8-byte
// header, + 4 with S, + 4 with A, RFC 2637 4.1) a chain of two tests, with FF 03 and without
// it (ACFC, RFC 1661 6.6), that returns them; the rest go on to the lookups. A data frame
// costs two tests, not the four of every layout.
void fast_ppp_chain(std::ostringstream& s, std::string_view chain, int offset) {
  s << "  chain " << chain << " {\n"
    << "    @th," << offset << ",16 & 0xfd00 == 0xc000 return\n"
    << "    @th," << offset << ",32 & 0xfffffd00 == 0xff03c000 return\n"
    << "    goto " << kChainFastLookup << "\n"
    << "  }\n";
}

// The lookups: what one of them takes ends here (accept); what none takes returns to fast_in.
void fast_lookup_chain(std::ostringstream& s, const RuleOptions& o) {
  const std::string mark = "meta mark set meta mark | " + hex32(o.fast_path_mark);
  const std::string key = "ip saddr . ip daddr . @th,48,16";
  s << "  chain " << kChainFastLookup << " {\n"
    << "    # a call that kept its Call ID: one lookup, the destination\n"
    << "    ip daddr set " << key << " map @" << kFastInPlain << " notrack " << mark << " accept\n"
    << "    # a translated one: the destination, then (by the new destination) the Key\n"
    << "    ip daddr set " << key << " map @" << kFastInAddress << " @th,48,16 set " << key
    << " map @" << kFastInCallId << " notrack " << mark << " accept\n"
    << "    # the client's GRE: untracked (no conntrack, no masquerade); its source is set after\n"
    << "    # routing, in fast_source (here the public address would be a martian source)\n"
    << "    " << key << " @" << kFastOut << " notrack meta mark set meta mark | "
    << hex32(o.fast_path_mark | o.fast_path_out_mark) << " accept\n"
    << "  }\n";
  fast_ppp_chain(s, kChainFastPpp, 96);  // after the chain they go to
  fast_ppp_chain(s, kChainFastPppAck, 128);
}

// The client's GRE of an offloaded call, routed: the source becomes the public address, as
// the masquerade would have made it (nft's payload statement fixes the IPv4 checksum; GRE
// has none over the addresses, RFC 2637 4.1). Its Key is the server's Call ID, never
// translated. Only packets fast_in marked pay the lookup.
void fast_source_chain(std::ostringstream& s, const RuleOptions& o) {
  const std::string key = "ip saddr . ip daddr . @th,48,16";
  s << "  chain fast_source {\n"
    << "    type filter hook forward priority mangle - 10; policy accept;\n"
    << "    meta mark & " << hex32(o.fast_path_out_mark) << " == " << hex32(o.fast_path_out_mark)
    << " ip saddr set " << key << " map @" << kFastOutSource << "\n"
    << "  }\n";
}

void fast_path_maps(std::ostringstream& s) {
  const std::string key = "ip saddr . ip daddr . @th,48,16";
  s << "  # Fast path: calls that pptp-alg has handed to the kernel (pptp-alg keeps the\n"
    << "  # elements; each expires unless the daemon re-arms it).\n"
    << "  map " << kFastInPlain << " {\n    typeof " << key
    << " : ip daddr\n    flags timeout\n    counter\n  }\n"
    << "  map " << kFastInAddress << " {\n    typeof " << key
    << " : ip daddr\n    flags timeout\n    counter\n  }\n"
    << "  map " << kFastInCallId << " {\n    typeof " << key
    << " : @th,48,16\n    flags timeout\n  }\n"
    << "  set " << kFastOut << " {\n    typeof " << key << "\n    flags timeout\n    counter\n  }\n"
    << "  map " << kFastOutSource << " {\n    typeof " << key
    << " : ip saddr\n    flags timeout\n  }\n";
}

// The one base chain of ours in prerouting (with the fast path, fast_in; without it,
// prerouting). Every packet the router receives passes it, so the fast path's lookups and
// the server's GRE to this router share it: one hook, not two (issue 17). At raw - 10:
// before conntrack (-200), and after proxy mode's chain (raw - 15) has marked the proxied
// servers' GRE, which the last rule leaves alone (proxy/proxy_fastpath.hpp).
void prerouting_chain(std::ostringstream& s, Backend backend, const RuleOptions& o, bool local_gre) {
  const bool nft_queue = backend == Backend::Nft;
  s << "  chain " << (o.fast_path ? kChainFastIn : kChainPreroutingNft) << " {\n"
    << "    type filter hook prerouting priority raw - 10; policy accept;\n";
  if (o.fast_path) {
    s << "    # (`ip protocol`, not `meta l4proto`: nft 1.0.6 aborts listing the latter with @th.)\n"
      << "    ip protocol != gre return\n"
      << "    # Enhanced GRE only (K bit, version 1): the Key, the receiver's Call ID, is at bytes\n"
      << "    # 6-7. By the S and A bits (each adds 4 bytes before the PPP frame), one of three:\n"
      << "    @th,0,16 & 0x3087 == 0x3001 jump " << kChainFastPpp << "\n"
      << "    @th,0,16 & 0x3087 == 0x3081 jump " << kChainFastPppAck << "\n"
      << "    # without S, no payload (RFC 2637 4.1): an acknowledgment alone\n"
      << "    @th,0,16 & 0x3007 == 0x2001 jump " << kChainFastLookup << "\n";
  }
  if (local_gre) {
    const std::string server_gre = "meta l4proto gre " + unmarked(o) + "fib daddr type local ";
    s << "    # The server's GRE to this router's own address: untracked (conntrack cannot match\n"
      << "    # it to the client) and handed to pptp-alg before routing.\n";
    if (nft_queue && queued_gre_limit(o) > 0) {
      s << "    " << server_gre << over_rate(kGreSources, queued_gre_limit(o), kCounterGreLimited) << "\n";
    }
    // Streamed piece by piece: GCC 12 -O3 reports a false -Wrestrict on `" " + std::string`
    // (GCC bug 105329), which fails Release builds with warnings as errors.
    s << "    " << server_gre << "notrack";
    if (nft_queue) s << ' ' << queue_statement(o);
    s << "\n";
  }
  s << "  }\n";
}

void forward_chain(std::ostringstream& s, const RuleOptions& o) {
  const std::string q = queue_statement(o);
  const std::string client_gre = "meta l4proto gre " + unmarked(o) + "ct state != untracked ";
  s << "  # Control connections (both directions show inside addresses here) and the\n"
    << "  # clients' GRE on its way out (tracked: the masquerade rule translates its source).\n"
    << "  # What conntrack finds invalid (a segment outside the TCP window) never reaches the\n"
    << "  # queue; nor does a source's traffic over its rate.\n"
    << "  chain " << kChainDropInvalid << " {\n"
    << "    tcp dport 1723 counter name \"" << kCounterInvalid << "\" drop\n"
    << "    tcp sport 1723 counter name \"" << kCounterInvalid << "\" drop\n"
    << "    meta l4proto gre counter name \"" << kCounterInvalid << "\" drop\n"
    << "  }\n"
    << "  chain forward {\n"
    << "    type filter hook forward priority mangle; policy accept;\n";
  // Offloaded GRE (untracked, judged) ends here, at its first rule.
  if (o.fast_path)
    s << "    meta mark & " << hex32(o.fast_path_mark) << " == " << hex32(o.fast_path_mark)
      << " accept\n";
  s << "    ct state invalid jump " << kChainDropInvalid << "\n";
  if (o.syn_per_second > 0) s << "    " << kNewControl << over_rate(kSynSources, o.syn_per_second, kCounterSynLimited) << "\n";
  if (queued_gre_limit(o) > 0) s << "    " << client_gre << over_rate(kGreSources, queued_gre_limit(o), kCounterGreLimited) << "\n";
  s << "    tcp dport 1723 " << q << "\n"
    << "    tcp sport 1723 " << q << "\n"
    << "    " << client_gre << q << "\n"
    << "  }\n";
}
}  // namespace

std::string hex32(std::uint32_t v) {
  char out[16];
  std::snprintf(out, sizeof out, "0x%08x", v);
  return out;
}

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
  s << "table ip " << o.table << " {\n";
  const bool nft_queue = backend == Backend::Nft;  // else the drops and limits are xtables rules
  if (nft_queue) {
    for (const auto name : {kCounterInvalid, kCounterSynLimited, kCounterGreLimited}) {
      s << "  counter " << name << " {\n  }\n";
    }
    s << source_set(kSynSources) << source_set(kGreSources);
  }
  if (o.fast_path) {
    fast_path_maps(s);
    fast_lookup_chain(s, o);
    fast_source_chain(s, o);
  }
  prerouting_chain(s, backend, o, true);
  if (nft_queue) forward_chain(s, o);
  s << "}\n";
  return s.str();
}

std::string describe_rules(Backend backend, const RuleOptions& o) {
  std::ostringstream s;
  s << "#!/bin/sh\n# pptp-alg rules, backend " << name_of(backend) << ", queue " << o.queue
    << (o.fail_open ? ", fail open" : ", fail closed") << "\n"
    << "# GRE from the server is untracked before conntrack; make sure the forward policy\n"
    << "# accepts it (e.g. nft: meta l4proto gre ct state untracked accept).\n"
    << (tool_path(Tool::Nft).empty() ? std::string("nft") : tool_path(Tool::Nft)) << " -f - <<'EOF'\n"
    << nft_table(backend, o) << "EOF\n";
  for (const auto& c : xtables_install(o)) {
    if (backend == Backend::Xtables) s << shell_line(c) << "\n";
  }
  return s.str();
}

Backend detect_backend() {
  const std::string probe =
      "table ip pptp_alg_probe {\n chain c {\n  type filter hook prerouting priority 0;\n"
      "  meta l4proto gre queue num 0 bypass\n }\n}\n";
  return run_nft(probe, NftMode::Check) ? Backend::Nft : Backend::Xtables;
}

Result<bool, std::string> install_rules(Backend backend, const RuleOptions& options, bool* kept) {
  if (kept != nullptr) *kept = false;
  if (backend == Backend::Xtables) {
    if (auto ipt = require_tool(Tool::Iptables); !ipt) return unexpected(ipt.error() + " (or use a kernel with nft queue)");
  }
  const auto listed = run_nft("list table ip " + std::string(kTableName));
  const std::string listing = listed ? *listed : std::string();
  const bool keep = options.fast_path && listing.find(std::string("map ") + std::string(kFastInPlain)) != std::string::npos;
  Result<std::string, std::string> loaded = unexpected(std::string());
  if (keep) {
    // One transaction: every chain's rules replaced, the sets (declared the same) untouched.
    std::string script;
    const auto has = [&](std::string_view chain) {
      return listing.find("chain " + std::string(chain) + " {") != std::string::npos;
    };
    for (std::string_view chain :
         {kChainFastIn, kChainFastPpp, kChainFastPppAck, kChainFastLookup, std::string_view("fast_source"),
          kChainPreroutingNft, std::string_view("forward"), kChainDropInvalid}) {
      if (has(chain)) script += "flush chain ip " + std::string(kTableName) + " " + std::string(chain) + "\n";
    }
    // Earlier versions marked the client's GRE in a chain of its own in the forward hook,
    // and had fast_in at raw - 20 beside chain prerouting (a hook's priority cannot be
    // changed in place: the chain goes and comes back in this transaction).
    for (std::string_view old : {std::string_view("fast_out"), kChainPreroutingNft}) {
      if (!has(old)) continue;
      script += "delete chain ip " + std::string(kTableName) + " " + std::string(old) + "\n";
      if (old == kChainPreroutingNft && has(kChainFastIn)) {
        script += "delete chain ip " + std::string(kTableName) + " " + std::string(kChainFastIn) + "\n";
      }
    }
    loaded = run_nft(script + nft_table(backend, options));
    if (loaded && kept != nullptr) *kept = true;
  }
  if (!loaded) {
    // Replaced whole. Two transactions: nft 1.0.6 cannot resolve the named counters and sets
    // of a table deleted and declared again in one (ENOENT).
    if (!listing.empty()) (void)run_nft("delete table ip " + std::string(kTableName));
    loaded = run_nft(nft_table(backend, options));
  }
  if (!loaded) {
    return unexpected("nft could not load table " + std::string(kTableName) + ": " + loaded.error() +
                      " -- are you root (CAP_NET_ADMIN), and does the kernel have nf_tables?");
  }
  // Our xtables rules replaced (the backend's) or taken out (an earlier run's, with the other
  // backend): one iptables-restore.
  if (auto x = apply_xtables(backend == Backend::Xtables ? &options : nullptr); !x) {
    if (backend != Backend::Xtables) return true;  // leftovers are harmless to the nft backend
    remove_rules();
    // Appended piece by piece: GCC 12 at -O2 reports a false -Wrestrict on
    // `"literal" + std::string` (GCC bug 105329).
    std::string message = x.error();
    message += " -- install iptables (iptables-nft) or use a kernel with nft queue";
    return unexpected(message);
  }
  return true;
}

void remove_rules(bool keep_fast_path) {
  const std::string table = "ip " + std::string(kTableName);
  if (keep_fast_path) {
    // One script per chain: a chain already gone must not keep the others.
    for (std::string_view chain : {kChainPreroutingNft, std::string_view("forward"), kChainDropInvalid}) {
      (void)run_nft("delete chain " + table + " " + std::string(chain));
    }
    // fast_in keeps its lookups and loses the server's GRE rule (untracked and queued).
    std::ostringstream lookups;
    lookups << "flush chain " << table << " " << kChainFastIn << "\ntable " << table << " {\n";
    prerouting_chain(lookups, Backend::Xtables, RuleOptions{}, false);
    lookups << "}\n";
    (void)run_nft(lookups.str());
  } else {
    (void)run_nft("delete table " + table);
  }
  (void)apply_xtables(nullptr);  // nothing of ours there is no error
}

}  // namespace pptp::nft
