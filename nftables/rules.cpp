#include "nftables/rules.hpp"

#include "nftables/fastpath.hpp"
#include "nftables/input_rules.hpp"
#include "nftables/queue_target.hpp"

#include <array>
#include <cstdio>
#include <sstream>

namespace pptp::nft {

namespace {
// The end of a rule that hands the packet to the queue.
std::string queue_verdict(Backend backend, const RuleOptions& o) {
  std::string v;
  if (backend == Backend::Compat) {
    v = "goto ";
    v += kChainToQueue;
  } else {
    v = "queue num " + std::to_string(o.queue);
    if (o.fail_open) v += " bypass";
  }
  return v;
}

// Backend::Compat's queue rule: the script writes the placeholder, what the queue does with
// no daemon listening (drop, or accept when fail-open); arm_queue_target() puts the NFQUEUE
// target before it (queue_target.hpp).
void to_queue_chain(std::ostringstream& s, const RuleOptions& o) {
  s << "  chain " << kChainToQueue << " {\n"
    << "    # pptp-alg puts iptables' NFQUEUE target (nft_compat) at the head: nft cannot write\n"
    << "    # it on a kernel without nft queue. Until then, what the queue does unheard:\n"
    << "    " << (o.fail_open ? "accept" : "drop") << "\n"
    << "  }\n";
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
  s << ppp_return_chain(chain, offset, kChainFastLookup);
}

}  // namespace

std::string ppp_return_chain(std::string_view chain, int offset, std::string_view then) {
  std::ostringstream s;
  s << "  chain " << chain << " {\n"
    << "    @th," << offset << ",16 & 0xfd00 == 0xc000 return\n"
    << "    @th," << offset << ",32 & 0xfffffd00 == 0xff03c000 return\n"
    << "    goto " << then << "\n"
    << "  }\n";
  return s.str();
}

std::string enhanced_gre_jumps(std::string_view ppp, std::string_view ppp_ack, std::string_view lookup) {
  std::ostringstream s;
  s << "    # Enhanced GRE only (RFC 2637 4.1: C, R, s, Recur and Flags 0, K 1, version 1): the\n"
    << "    # Key, the receiver's Call ID, is at bytes 6-7 (a C or R bit would put fields before\n"
    << "    # it). By the S and A bits (each adds 4 bytes before the PPP frame), one of three:\n"
    << "    @th,0,16 & 0xffff == 0x3001 jump " << ppp << "\n"
    << "    @th,0,16 & 0xffff == 0x3081 jump " << ppp_ack << "\n"
    << "    # without S, no payload (RFC 2637 4.1): an acknowledgment alone\n"
    << "    @th,0,16 & 0xff7f == 0x2001 jump " << lookup << "\n";
  return s.str();
}

namespace {

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
    << "    # routing, in the forward hook (here the public address would be a martian source)\n"
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
void client_source_rule(std::ostringstream& s, const RuleOptions& o) {
  s << "    meta mark & " << hex32(o.fast_path_out_mark) << " == " << hex32(o.fast_path_out_mark)
    << " ip saddr set ip saddr . ip daddr . @th,48,16 map @" << kFastOutSource;
}

// Backend::Xtables (and proxy mode's table): the client's source in a chain of its own,
// since that table has no forward chain.
void fast_source_chain(std::ostringstream& s, const RuleOptions& o) {
  s << "  chain fast_source {\n"
    << "    type filter hook forward priority mangle - 10; policy accept;\n";
  client_source_rule(s, o);
  s << "\n  }\n";
}

// The forward chain's head with the fast path: offloaded GRE (untracked, judged) ends here,
// the client's at the first rule (its source set), the server's at the second.
void forward_fast_rules(std::ostringstream& s, const RuleOptions& o) {
  s << "    # offloaded GRE ends here: the client's with the public address as its source\n";
  client_source_rule(s, o);
  s << " accept\n"
    << "    meta mark & " << hex32(o.fast_path_mark) << " == " << hex32(o.fast_path_mark) << " accept\n";
}

constexpr std::string_view kForwardHook = "    type filter hook forward priority mangle; policy accept;\n";

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
  const bool nft_queue = queues_in_table(backend);
  s << "  chain " << (o.fast_path ? kChainFastIn : kChainPreroutingNft) << " {\n"
    << "    type filter hook prerouting priority raw - 10; policy accept;\n"
    << "    # A GRE source is a claim, its interface is not: GRE only from where its source routes\n"
    << "    # (strict reverse path, RFC 3704 2.2), else a client could forge its server's GRE from\n"
    << "    # the inside and have it rewritten to another client (the Key is all it must guess).\n"
    << "    ip protocol gre fib saddr . iif oif missing counter name \"" << kCounterGreSpoofed << "\" drop\n"
    << "    # The same for control connections: the ACKs the gateway trusts come from their host.\n"
    << "    tcp sport 1723 fib saddr . iif oif missing counter name \"" << kCounterControlSpoofed << "\" drop\n"
    << "    tcp dport 1723 fib saddr . iif oif missing counter name \"" << kCounterControlSpoofed << "\" drop\n";
  if (o.fast_path) {
    s << "    # (`ip protocol`, not `meta l4proto`: nft 1.0.6 aborts listing the latter with @th.)\n"
      << "    ip protocol != gre return\n"
      << enhanced_gre_jumps(kChainFastPpp, kChainFastPppAck, kChainFastLookup);
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
    if (nft_queue) s << ' ' << queue_verdict(backend, o);
    s << "\n";
  }
  s << "  }\n";
}

void forward_chain(std::ostringstream& s, Backend backend, const RuleOptions& o) {
  const std::string q = queue_verdict(backend, o);
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
    << kForwardHook;
  if (o.fast_path) forward_fast_rules(s, o);
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

std::string_view name_of(Backend b) {
  switch (b) {
    case Backend::Nft:
      return "nft";
    case Backend::Compat:
      return "compat";
    case Backend::Xtables:
      break;
  }
  return "xtables";
}

bool parse_backend(std::string_view text, Backend& out) {
  if (text == "nft") {
    out = Backend::Nft;
  } else if (text == "compat") {
    out = Backend::Compat;
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
  const bool nft_queue = queues_in_table(backend);  // else the drops and limits are xtables rules
  if (nft_queue) {
    for (const auto name : {kCounterInvalid, kCounterSynLimited, kCounterGreLimited}) {
      s << "  counter " << name << " {\n  }\n";
    }
    s << source_set(kSynSources) << source_set(kGreSources);
  }
  for (const auto name : {kCounterGreSpoofed, kCounterControlSpoofed, kCounterControlStray}) {  // every backend's
    s << "  counter " << name << " {\n  }\n";
  }
  if (backend == Backend::Compat) to_queue_chain(s, o);  // before the chains that go to it
  if (o.fast_path) {
    fast_path_maps(s);
    fast_lookup_chain(s, o);
    if (!nft_queue) fast_source_chain(s, o);
  }
  prerouting_chain(s, backend, o, true);
  input_chain(s);
  if (nft_queue) forward_chain(s, backend, o);
  s << "}\n";
  return s.str();
}

std::string describe_rules(Backend backend, const RuleOptions& o) {
  std::ostringstream s;
  s << "#!/bin/sh\n# pptp-alg rules, backend " << name_of(backend) << ", queue " << o.queue
    << (o.fail_open ? ", fail open" : ", fail closed") << "\n"
    << "# GRE from the server is untracked before conntrack; make sure the forward policy\n"
    << "# accepts it (e.g. nft: meta l4proto gre ct state untracked accept).\n";
  if (backend == Backend::Compat) {
    s << "# Chain to_queue's first rule, iptables' NFQUEUE target through nft_compat, is added by\n"
      << "# the pptp-alg daemon at start (nft cannot write it on a kernel without nft queue);\n"
      << "# until then the chain's placeholder " << (o.fail_open ? "accepts" : "drops") << " what would be queued.\n";
  }
  s << (tool_path(Tool::Nft).empty() ? std::string("nft") : tool_path(Tool::Nft)) << " -f - <<'EOF'\n"
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
  if (run_nft(probe, NftMode::Check)) return Backend::Nft;
  return queue_target_works() ? Backend::Compat : Backend::Xtables;
}

namespace {
// Every chain any version of ours had in the table (fast_out and a prerouting beside
// fast_in: earlier layouts).
constexpr std::array<std::string_view, 12> kOurChains{
    kChainFastIn,        kChainFastPpp, kChainFastPppAck,  kChainFastLookup, "fast_source", kChainPreroutingNft,
    "forward",           kChainDropInvalid, kChainToQueue, "fast_out",       kChainInput,   kChainControlStray};

bool has_chain(std::string_view text, std::string_view chain) {
  return text.find("chain " + std::string(chain) + " {") != std::string_view::npos;
}

// A restart's reload in one transaction: every chain of ours flushed, those the new layout
// does not declare deleted (a backend or layout change), the table declared again; the
// sets (declared the same) keep their elements.
std::string keep_script(std::string_view listing, const std::string& table) {
  const std::string prefix = " chain ip " + std::string(kTableName) + " ";
  std::string flush, remove;
  for (std::string_view chain : kOurChains) {
    if (!has_chain(listing, chain)) continue;
    flush += "flush" + prefix + std::string(chain) + "\n";
    // A hook's priority cannot change in place: fast_in of the layout with chain prerouting
    // beside it (raw - 20) goes and comes back.
    const bool moved = chain == kChainFastIn && has_chain(listing, kChainPreroutingNft);
    if (!has_chain(table, chain) || moved) remove += "delete" + prefix + std::string(chain) + "\n";
  }
  return flush + remove + table;
}
}  // namespace

Result<bool, std::string> install_rules(Backend backend, const RuleOptions& options, bool* kept) {
  if (kept != nullptr) *kept = false;
  if (backend == Backend::Xtables) {
    if (auto ipt = require_tool(Tool::Iptables); !ipt) return unexpected(ipt.error() + " (or use a kernel with nft queue)");
  }
  const auto listed = run_nft("list table ip " + std::string(kTableName));
  const std::string listing = listed ? *listed : std::string();
  const bool keep = options.fast_path && listing.find(std::string("map ") + std::string(kFastInPlain)) != std::string::npos;
  const std::string table = nft_table(backend, options);
  Result<std::string, std::string> loaded = unexpected(std::string());
  if (keep) {
    loaded = run_nft(keep_script(listing, table));
    if (loaded && kept != nullptr) *kept = true;
  }
  if (!loaded) {
    // Replaced whole. Two transactions: nft 1.0.6 cannot resolve the named counters and sets
    // of a table deleted and declared again in one (ENOENT).
    if (!listing.empty()) (void)run_nft("delete table ip " + std::string(kTableName));
    loaded = run_nft(table);
  }
  if (!loaded) {
    return unexpected("nft could not load table " + std::string(kTableName) + ": " + loaded.error() +
                      " -- are you root (CAP_NET_ADMIN), does the kernel have nf_tables" +
                      (backend == Backend::Nft ? ", and its queue statement (else --backend compat or auto)?" : "?"));
  }
  if (backend == Backend::Compat) {
    if (auto armed = arm_queue_target(kTableName, options); !armed) return unexpected(armed.error());
  }
  // Our xtables rules replaced (the backend's) or taken out (an earlier run's, with the other
  // backend): one iptables-restore.
  if (auto x = apply_xtables(backend == Backend::Xtables ? &options : nullptr); !x) {
    if (backend != Backend::Xtables) return true;  // leftovers are harmless to the nft table's backends
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
    // fast_in keeps its lookups and loses the server's GRE rule (untracked and queued);
    // forward (the nft table's backends) keeps its fast-path rules. Then the chains only
    // the queue rules used go. One script each: a chain already gone must not keep the others.
    const RuleOptions defaults;
    std::ostringstream lookups, forward;
    lookups << "flush chain " << table << " " << kChainFastIn << "\ntable " << table << " {\n";
    prerouting_chain(lookups, Backend::Xtables, defaults, false);
    lookups << "}\n";
    forward << "flush chain " << table << " forward\ntable " << table << " {\n  chain forward {\n" << kForwardHook;
    forward_fast_rules(forward, defaults);
    forward << "  }\n}\n";
    (void)run_nft(lookups.str());
    (void)run_nft(forward.str());
    for (std::string_view chain : {kChainPreroutingNft, kChainDropInvalid, kChainToQueue}) {
      (void)run_nft("delete chain " + table + " " + std::string(chain));
    }
  } else {
    (void)run_nft("delete table " + table);
  }
  (void)apply_xtables(nullptr);  // nothing of ours there is no error
}

}  // namespace pptp::nft
