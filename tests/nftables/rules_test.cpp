// The generated rules (no kernel needed): which GRE skips the fast path, what is dropped and
// rate-limited before the queue, and that nft and iptables are run by absolute path.
#include "nftables/rules.hpp"
#include "nftables/table_watch.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <regex>
#include <sstream>
#include <vector>

namespace pptp::nft {
namespace {

using Bytes = std::vector<std::uint8_t>;

// An enhanced GRE packet (RFC 2637 4.1) with the S and A bits as asked and this PPP frame.
Bytes gre(bool seq, bool ack, const Bytes& ppp) {
  const std::uint16_t flags = 0x2001 | (seq ? 0x1000 : 0) | (ack ? 0x0080 : 0);
  Bytes b{static_cast<std::uint8_t>(flags >> 8),
          static_cast<std::uint8_t>(flags & 0xff),
          0x88,
          0x0b,
          static_cast<std::uint8_t>(ppp.size() >> 8),
          static_cast<std::uint8_t>(ppp.size() & 0xff),
          0x12,
          0x34};
  if (seq) b.insert(b.end(), {0, 0, 0, 9});
  if (ack)
    b.insert(b.end(), {0xc0, 0x21, 0xff, 0x03});  // an Ack number that looks like a PPP header
  b.insert(b.end(), ppp.begin(), ppp.end());
  return b;
}

std::uint64_t field(const Bytes& packet, unsigned bit_offset, unsigned bits, bool& present) {
  const unsigned first = bit_offset / 8, count = bits / 8;
  present = first + count <= packet.size();
  std::uint64_t v = 0;
  for (unsigned i = 0; present && i < count; ++i) v = (v << 8) | packet[first + i];
  return v;
}

// The rules of one chain of the table, comments left out.
std::vector<std::string> chain_rules(const std::string& table, const std::string& name) {
  const std::size_t at = table.find("chain " + name + " {\n");
  std::vector<std::string> rules;
  if (at == std::string::npos) return rules;
  std::istringstream lines(table.substr(at, table.find("\n  }\n", at) - at));
  std::string line;
  std::getline(lines, line);  // the chain's name
  while (std::getline(lines, line)) {
    const auto text = line.find_first_not_of(' ');
    if (text != std::string::npos && line[text] != '#' && line.find("type filter hook") == std::string::npos)
      rules.push_back(line.substr(text));
  }
  return rules;
}

enum class Outcome : std::uint8_t { Lookup, Returned };

// Runs `packet` (GRE) through chain `name` as the kernel would, term by term
// (`@th,OFF,LEN & MASK == VALUE`; a rule of none, such as `ip protocol != gre`, does not
// match): Lookup when it reaches the fast path's maps, Returned when the chain ends or
// returns. `jump` comes back to the next rule, `goto` does not.
Outcome run_chain(const std::string& table, const std::string& name, const Bytes& packet, int depth = 0) {
  const std::regex term(R"(@th,(\d+),(\d+) & (0x[0-9a-f]+) == (0x[0-9a-f]+))");
  if (depth > 8) return Outcome::Returned;
  for (const std::string& rule : chain_rules(table, name)) {
    if (rule.find("map @fast_in_plain") != std::string::npos) return Outcome::Lookup;
    bool all = true;
    int terms = 0;
    for (std::sregex_iterator it(rule.begin(), rule.end(), term), end; it != end; ++it, ++terms) {
      bool present = false;
      const auto v = field(packet, std::stoul((*it)[1]), std::stoul((*it)[2]), present);
      all = all && present && (v & std::stoull((*it)[3], nullptr, 16)) == std::stoull((*it)[4], nullptr, 16);
    }
    const bool bare_goto = rule.rfind("goto ", 0) == 0;
    if (!bare_goto && (terms == 0 || !all)) continue;
    if (rule.find(" return") != std::string::npos) return Outcome::Returned;
    for (const char* verb : {"jump ", "goto "}) {
      const auto at = rule.find(verb);
      if (at == std::string::npos) continue;
      const Outcome o = run_chain(table, rule.substr(at + 5), packet, depth + 1);
      if (o == Outcome::Lookup || verb[0] == 'g') return o;
    }
  }
  return Outcome::Returned;
}

// True when the packet skips the fast path and goes to the queue.
bool skips_fast_path(const std::string& table, const Bytes& packet) {
  return run_chain(table, "fast_in", packet) != Outcome::Lookup;
}

const Bytes kLcp{0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4};
const Bytes kPapCompressed{0xc0, 0x23, 1, 1, 0, 4};  // ACFC: no FF 03 (RFC 1661 6.6)
const Bytes kChap{0xff, 0x03, 0xc2, 0x23, 1, 1, 0, 4};
const Bytes kEapCompressed{0xc2, 0x27, 1, 1, 0, 4};
const Bytes kIp{0xff, 0x03, 0x00, 0x21, 0x45, 0};
const Bytes kIpcp{0xff, 0x03, 0x80, 0x21, 1, 1, 0, 4};
const Bytes kCompressed{0x00, 0xfd, 0xc0, 0x21};  // CCP data (0x00FD) whose bytes look like LCP

TEST(FastPathRules, LinkControlAndAuthenticationFramesGoToTheQueueWhateverTheHeader) {
  const std::string t = nft_table(Backend::Nft, RuleOptions{});
  for (const Bytes& ppp : {kLcp, kPapCompressed, kChap, kEapCompressed}) {
    EXPECT_TRUE(skips_fast_path(t, gre(true, false, ppp)));
    EXPECT_TRUE(skips_fast_path(t, gre(true, true, ppp)));
  }
}

TEST(FastPathRules, DataStaysOnTheFastPath) {
  const std::string t = nft_table(Backend::Xtables, RuleOptions{});
  for (const Bytes& ppp : {kIp, kIpcp, kCompressed}) {
    EXPECT_FALSE(skips_fast_path(t, gre(true, false, ppp)));
    EXPECT_FALSE(skips_fast_path(t, gre(true, true, ppp)));  // the Ack number is not read as PPP
  }
  EXPECT_FALSE(skips_fast_path(t, gre(false, true, {})));  // an acknowledgment alone
}

TEST(FastPathRules, OnlyEnhancedGreIsLookedUp) {
  const std::string t = nft_table(Backend::Nft, RuleOptions{});
  Bytes original = gre(true, false, kIp);
  original[1] = 0x00;  // version 0 (RFC 1701), no Key
  EXPECT_TRUE(skips_fast_path(t, original));
  Bytes keyless = gre(true, false, kIp);
  keyless[0] &= 0xdf;  // K bit clear
  EXPECT_TRUE(skips_fast_path(t, keyless));
  // A checksum or routing bit (RFC 1701) puts 4 bytes before the Key: bytes 6-7 are not it.
  for (const std::uint8_t bit : {0x80, 0x40, 0x08}) {  // C, R, strict source route
    for (const bool seq : {false, true}) {
      Bytes odd = gre(seq, !seq, seq ? kIp : Bytes{});
      odd[0] |= bit;
      EXPECT_TRUE(skips_fast_path(t, odd)) << int(bit) << " " << seq;
    }
  }
  Bytes flagged = gre(false, true, {});
  flagged[1] |= 0x08;  // a Flags bit (RFC 2637: must be 0)
  EXPECT_TRUE(skips_fast_path(t, flagged));
  EXPECT_FALSE(skips_fast_path(t, gre(false, true, {})));
  // First the forged sources go (strict reverse path), then whatever is not GRE leaves.
  const auto rules = chain_rules(t, "fast_in");
  ASSERT_GE(rules.size(), 4u);
  EXPECT_EQ(rules[0], "ip protocol gre fib saddr . iif oif missing counter name \"gre_spoofed\" drop");
  EXPECT_EQ(rules[3], "ip protocol != gre return");
}

// Every backend, with the fast path or without: GRE from a source that does not route back
// through its interface is dropped before anything else of ours sees it.
TEST(FastPathRules, ForgedGreSourcesAreDroppedFirstInEveryBackend) {
  for (const Backend backend : {Backend::Nft, Backend::Compat, Backend::Xtables}) {
    for (const bool fast_path : {true, false}) {
      RuleOptions o;
      o.fast_path = fast_path;
      const std::string t = nft_table(backend, o);
      const auto rules = chain_rules(t, fast_path ? "fast_in" : "prerouting");
      ASSERT_FALSE(rules.empty()) << t;
      ASSERT_GE(rules.size(), 3u) << t;
      EXPECT_EQ(rules[0], "ip protocol gre fib saddr . iif oif missing counter name \"gre_spoofed\" drop") << t;
      // And TCP/1723 either way: the ACKs the gateway trusts come from their own host.
      EXPECT_EQ(rules[1], "tcp sport 1723 fib saddr . iif oif missing counter name \"control_spoofed\" drop") << t;
      EXPECT_EQ(rules[2], "tcp dport 1723 fib saddr . iif oif missing counter name \"control_spoofed\" drop") << t;
      EXPECT_NE(t.find("  counter gre_spoofed {"), std::string::npos) << t;
      EXPECT_NE(t.find("  counter control_spoofed {"), std::string::npos) << t;
    }
  }
}

// A segment from port 1723 to the router itself with no conntrack entry (a server's
// retransmission at a pair's new master before conntrackd's commit, docs/ha.md): dropped and
// counted, never left to the router's stack, which would reset the server's end. SYNs, RSTs
// and segments a socket of the router owns pass; the table watch misses the chain if it goes.
TEST(InputRules, AServersSegmentWithNoConnectionIsDroppedNotResetInEveryBackend) {
  for (const Backend backend : {Backend::Nft, Backend::Compat, Backend::Xtables}) {
    for (const bool fast_path : {true, false}) {
      RuleOptions o;
      o.fast_path = fast_path;
      const std::string t = nft_table(backend, o);
      // Before an admin's filter chains, whose `reject with tcp reset` would answer first.
      EXPECT_NE(t.find("chain input {\n    type filter hook input priority filter - 10; policy accept;"),
                std::string::npos) << t;
      EXPECT_EQ(chain_rules(t, "input"), std::vector<std::string>{"tcp sport 1723 tcp flags & (syn | rst) == 0 ct state "
                                                                  "new,invalid jump control_stray"}) << t;
      // Any socket of the router's in any state (TIME_WAIT too) keeps it, but a listener on
      // every address, which would reset it.
      const std::vector<std::string> stray{"socket wildcard 1 counter name \"control_stray\" drop",
                                           "socket transparent 0 return", "socket transparent 1 return",
                                           "counter name \"control_stray\" drop"};
      EXPECT_EQ(chain_rules(t, "control_stray"), stray) << t;
      EXPECT_LT(t.find("chain control_stray {"), t.find("chain input {")) << "declared before its jump";
      EXPECT_NE(t.find("  counter control_stray {"), std::string::npos) << t;
      const auto watched = table_chains(backend, o);
      EXPECT_NE(std::find(watched.begin(), watched.end(), "input"), watched.end());
    }
  }
}

// One base chain in prerouting: the lookups and the server's GRE rule share fast_in, whose
// last rule only GRE that no lookup took reaches (every hook costs every packet; issue 17).
TEST(FastPathRules, OneBaseChainBeforeRoutingWithTheServersGreRuleLast) {
  for (const Backend backend : {Backend::Nft, Backend::Compat, Backend::Xtables}) {
    const std::string t = nft_table(backend, RuleOptions{});
    std::size_t hooks = 0;
    for (auto at = t.find("hook prerouting"); at != std::string::npos; at = t.find("hook prerouting", at + 1)) ++hooks;
    EXPECT_EQ(hooks, 1u) << t;
    EXPECT_NE(t.find("chain fast_in {\n    type filter hook prerouting priority raw - 10;"), std::string::npos) << t;
    const auto rules = chain_rules(t, "fast_in");
    ASSERT_FALSE(rules.empty());
    EXPECT_NE(rules.back().find("fib daddr type local notrack"), std::string::npos) << rules.back();
    EXPECT_NE(rules.back().find("meta mark & 0x00100000 != 0x00100000"), std::string::npos) << "proxy mode's mark";
  }
  RuleOptions off;
  off.fast_path = false;
  const std::string t = nft_table(Backend::Xtables, off);
  EXPECT_EQ(t.find("fast_in"), std::string::npos) << t;
  EXPECT_NE(t.find("chain prerouting {\n    type filter hook prerouting priority raw - 10;"), std::string::npos) << t;
}

std::size_t occurrences(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

constexpr std::string_view kSourceRule =
    "meta mark & 0x00200000 == 0x00200000 ip saddr set ip saddr . ip daddr . @th,48,16 map @fast_out_source";

// The client's GRE of an offloaded call, as the kernel sees it: untracked before conntrack
// (raw - 10 runs before conntrack's -200), so no entry and no masquerade; its source set
// to the public address from the map after routing, where a local source is no martian.
TEST(FastPathRules, TheClientsGreIsUntrackedAndGetsItsSourceFromTheMapAfterRouting) {
  for (const Backend backend : {Backend::Nft, Backend::Compat, Backend::Xtables}) {
    const std::string t = nft_table(backend, RuleOptions{});
    const auto fast_in = t.find("chain fast_lookup {");
    const auto out_rule = t.find(
        "ip saddr . ip daddr . @th,48,16 @fast_out notrack meta mark set meta mark | 0x00300000 "
        "accept",
        fast_in);
    EXPECT_NE(out_rule, std::string::npos) << t;
    EXPECT_NE(
        t.find("map fast_out_source {\n    typeof ip saddr . ip daddr . @th,48,16 : ip saddr\n"),
        std::string::npos)
        << t;
    // One base chain of ours in the forward hook whatever the backend: with the queue rules
    // in the table, its first rule; with xtables, chain fast_source's only one.
    EXPECT_EQ(occurrences(t, "hook forward"), 1u) << t;
    EXPECT_EQ(occurrences(t, kSourceRule), 1u) << t;
    const std::string chain = queues_in_table(backend) ? "forward" : "fast_source";
    ASSERT_FALSE(chain_rules(t, chain).empty()) << t;
    EXPECT_EQ(chain_rules(t, chain).front().find(kSourceRule), 0u) << chain << "\n" << t;
    EXPECT_EQ(t.find("fast_source") == std::string::npos, queues_in_table(backend)) << t;
    // The server's GRE is marked with the fast-path bit only: it costs no source lookup.
    const auto in_rule =
        t.find("map @fast_in_plain notrack meta mark set meta mark | 0x00100000 accept", fast_in);
    EXPECT_NE(in_rule, std::string::npos) << t;
  }
  RuleOptions off;
  off.fast_path = false;
  EXPECT_EQ(nft_table(Backend::Nft, off).find("fast_out_source"), std::string::npos);
}

TEST(QueueRules, OffloadedGreLeavesTheForwardChainAtItsFirstRules) {
  for (const Backend backend : {Backend::Nft, Backend::Compat}) {
    const auto rules = chain_rules(nft_table(backend, RuleOptions{}), "forward");
    ASSERT_GE(rules.size(), 3u);
    EXPECT_EQ(rules[0], std::string(kSourceRule) + " accept");  // the client's GRE
    EXPECT_EQ(rules[1], "meta mark & 0x00100000 == 0x00100000 accept");  // the server's
  }
}

// Without nft's queue statement in the kernel: every rule that would queue goes to chain
// to_queue, declared before them, whose placeholder is the queue's own verdict with no
// daemon listening (the target is put before it by arm_queue_target()).
TEST(QueueRules, CompatQueuesThroughOneChainWhosePlaceholderFollowsTheFailMode) {
  for (const bool fail_open : {false, true}) {
    RuleOptions o;
    o.fail_open = fail_open;
    const std::string t = nft_table(Backend::Compat, o);
    EXPECT_EQ(t.find("queue num"), std::string::npos) << t;
    EXPECT_EQ(occurrences(t, "goto to_queue"), occurrences(nft_table(Backend::Nft, o), "queue num")) << t;
    EXPECT_EQ(occurrences(t, "goto to_queue"), 4u) << t;  // the server's GRE, TCP both ways, the client's GRE
    const auto declared = t.find("chain to_queue {");
    ASSERT_NE(declared, std::string::npos) << t;
    EXPECT_LT(declared, t.find("goto to_queue")) << t;
    EXPECT_EQ(chain_rules(t, "to_queue"), std::vector<std::string>{fail_open ? "accept" : "drop"}) << t;
  }
  EXPECT_EQ(nft_table(Backend::Nft, RuleOptions{}).find("to_queue"), std::string::npos);
  Backend parsed = Backend::Nft;
  ASSERT_TRUE(parse_backend("compat", parsed));
  EXPECT_EQ(parsed, Backend::Compat);
  EXPECT_EQ(name_of(Backend::Compat), "compat");
}

TEST(QueueRules, InvalidConnectionTrackingStateIsDroppedBeforeTheQueue) {
  const std::string t = nft_table(Backend::Nft, RuleOptions{});
  const auto forward = t.find("chain forward {");
  ASSERT_NE(forward, std::string::npos);
  const auto jump = t.find("ct state invalid jump drop_invalid", forward);
  ASSERT_NE(jump, std::string::npos) << t;
  EXPECT_LT(jump, t.find("queue num", forward));
  for (const char* what : {"tcp dport 1723 counter name \"invalid_dropped\" drop",
                           "tcp sport 1723 counter name \"invalid_dropped\" drop",
                           "meta l4proto gre counter name \"invalid_dropped\" drop"}) {
    EXPECT_NE(t.find(what), std::string::npos) << what;
  }
}

std::vector<std::string> xtables_lines(const RuleOptions& o) {
  std::vector<std::string> out;
  for (const auto& c : xtables_install(o)) {
    EXPECT_FALSE(c[0].empty() || c[0][0] != '/') << "not by absolute path: " << shell_line(c);
    out.push_back(shell_line(c));
  }
  return out;
}

std::size_t index_of(const std::vector<std::string>& lines, const std::string& a,
                     const std::string& b = {}) {
  const auto it = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(a) != std::string::npos && l.find(b) != std::string::npos;
  });
  return static_cast<std::size_t>(it - lines.begin());
}

TEST(QueueRules, XtablesDropsInvalidAndLimitsBeforeItsQueueRules) {
  const auto lines = xtables_lines(RuleOptions{});
  const auto first_queue = index_of(lines, "PPTP_ALG_FORWARD", "NFQUEUE");
  ASSERT_LT(first_queue, lines.size());
  for (const char* what :
       {"--dport 1723 -m conntrack --ctstate INVALID -j DROP",
        "--sport 1723 -m conntrack --ctstate INVALID -j DROP",
        "-p gre -m conntrack --ctstate INVALID -j DROP",
        "--syn -m hashlimit --hashlimit-above 20/sec --hashlimit-burst 40",
        "--hashlimit-above 4000/sec --hashlimit-burst 8000 --hashlimit-mode srcip"}) {
    EXPECT_LT(index_of(lines, what), first_queue) << what;
  }
  const auto server_limit = index_of(lines, "pptp_alg_gre_in");
  EXPECT_LT(server_limit, index_of(lines, "PPTP_ALG_PREROUTING", "NFQUEUE"));
}

TEST(QueueRules, RateLimitsFollowTheOptionsAndZeroTurnsThemOff) {
  RuleOptions o;
  o.syn_per_second = 5;
  o.queued_gre_per_second = 300;
  const std::string t = nft_table(Backend::Nft, o);
  EXPECT_NE(t.find("tcp dport 1723 tcp flags & (syn | ack) == syn update @syn_sources { ip saddr "
                   "limit rate over "
                   "5/second burst 10 packets } counter name \"syn_limited\" drop"),
            std::string::npos)
      << t;
  EXPECT_NE(
      t.find("limit rate over 300/second burst 600 packets } counter name \"gre_limited\" drop\n"
             "    meta l4proto gre meta mark & 0x00100000 != 0x00100000 fib daddr type local "
             "notrack queue"),
      std::string::npos)
      << t;
  o.syn_per_second = 0;
  o.queued_gre_per_second = 0;
  EXPECT_EQ(nft_table(Backend::Nft, o).find("limit rate"), std::string::npos);
  for (const auto& l : xtables_lines(o)) EXPECT_EQ(l.find("hashlimit"), std::string::npos) << l;
}

TEST(QueueRules, WithoutTheFastPathQueuedGreIsNotLimited) {
  RuleOptions o;
  o.fast_path = false;  // every GRE packet is queued: a limit would cap the calls
  const std::string t = nft_table(Backend::Nft, o);
  EXPECT_EQ(t.find("gre_limited\" drop"), std::string::npos) << t;
  EXPECT_NE(t.find("syn_limited\" drop"), std::string::npos) << t;
  for (const auto& l : xtables_lines(o)) EXPECT_EQ(l.find("pptp_alg_gre"), std::string::npos) << l;
}

// iptables-save's output with our chains and jumps (one of an earlier version's
// unconditional form) beside the operator's own rules.
constexpr std::string_view kSaved =
    "# Generated by iptables-nft-save v1.8.9\n*raw\n:PREROUTING ACCEPT [0:0]\n:PPTP_ALG_PREROUTING - [0:0]\n"
    "-A PREROUTING -p gre -m mark ! --mark 0x100000/0x100000 -j PPTP_ALG_PREROUTING\n"
    "-A PREROUTING -j PPTP_ALG_PREROUTING\n"
    "-A PPTP_ALG_PREROUTING -p gre -j NFQUEUE --queue-num 0\nCOMMIT\n"
    "*filter\n:FORWARD ACCEPT [0:0]\n:OPERATOR - [0:0]\n-A FORWARD -j OPERATOR\n-A FORWARD -p tcp -j ACCEPT\nCOMMIT\n"
    "*mangle\n:FORWARD ACCEPT [0:0]\n:PPTP_ALG_FORWARD - [0:0]\n-A FORWARD -p tcp -j PPTP_ALG_FORWARD\n"
    "-A PPTP_ALG_FORWARD -p tcp --dport 1723 -j NFQUEUE --queue-num 0\nCOMMIT\n";

std::vector<std::string> lines_of(const std::string& script) {
  std::vector<std::string> out;
  std::istringstream in(script);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(XtablesRestore, RemovingTakesOutOurJumpsThenOurChainsAndNothingElse) {
  const auto lines = lines_of(xtables_restore_script(kSaved, nullptr));
  const std::vector<std::string> expected{"*mangle",
                                          "-D FORWARD -p tcp -j PPTP_ALG_FORWARD",
                                          "-F PPTP_ALG_FORWARD",
                                          "-X PPTP_ALG_FORWARD",
                                          "COMMIT",
                                          "*raw",
                                          "-D PREROUTING -p gre -m mark ! --mark 0x100000/0x100000 -j PPTP_ALG_PREROUTING",
                                          "-D PREROUTING -j PPTP_ALG_PREROUTING",
                                          "-F PPTP_ALG_PREROUTING",
                                          "-X PPTP_ALG_PREROUTING",
                                          "COMMIT"};
  EXPECT_EQ(lines, expected);
  EXPECT_EQ(xtables_restore_script("*filter\n:OPERATOR - [0:0]\n-A FORWARD -j OPERATOR\nCOMMIT\n", nullptr), "");
}

TEST(XtablesRestore, InstallingReplacesOldJumpsAndHasEveryRuleOnce) {
  const RuleOptions o;
  const auto lines = lines_of(xtables_restore_script(kSaved, &o));
  // Every command xtables_install() would run, as a restore line, in its table's section.
  std::size_t rules = 0;
  for (const auto& c : xtables_install(o)) {
    if (c[4] == "-N") {
      EXPECT_EQ(std::count(lines.begin(), lines.end(), ":" + c[5] + " - [0:0]"), 1) << c[5];
      continue;
    }
    std::string line;
    for (std::size_t i = 4; i < c.size(); ++i) line += (i > 4 ? " " : "") + c[i];
    const auto at = std::find(lines.begin(), lines.end(), line);
    ASSERT_NE(at, lines.end()) << line;
    EXPECT_EQ(*std::find_if(std::make_reverse_iterator(at), lines.rend(),
                            [](const std::string& l) { return l[0] == '*'; }),
              "*" + c[3])
        << line;
    ++rules;
  }
  EXPECT_GT(rules, 10u);
  // The old jumps go before the new ones come; the chains are declared (emptied), not deleted.
  const auto old_jump = std::find(lines.begin(), lines.end(), "-D PREROUTING -j PPTP_ALG_PREROUTING");
  ASSERT_NE(old_jump, lines.end());
  EXPECT_LT(old_jump - lines.begin(), std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
              return l.rfind("-I PREROUTING", 0) == 0;
            }) - lines.begin());
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(), [](const std::string& l) { return l[0] == '-' && l[1] == 'X'; }),
            0);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "COMMIT"), 2);  // raw and mangle, not filter
}

TEST(Tools, FoundByAbsolutePathOrNamedForInstallation) {
  for (const Tool tool : {Tool::Nft, Tool::Iptables}) {
    const auto found = require_tool(tool);
    if (found) {
      EXPECT_EQ(found->front(), '/');
      EXPECT_TRUE(std::any_of(
          kToolDirectories.begin(), kToolDirectories.end(),
          [&](std::string_view dir) { return found->rfind(std::string(dir) + "/", 0) == 0; }));
    } else {
      EXPECT_NE(found.error().find("install the"), std::string::npos) << found.error();
    }
  }
}

TEST(Tools, ARelativeProgramIsNeverRun) {
  std::string out;
  EXPECT_EQ(run_command({"true"}, {}, out), -1);  // would be found through PATH
  EXPECT_EQ(run_command({}, {}, out), -1);
}

}  // namespace
}  // namespace pptp::nft
