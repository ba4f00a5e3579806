// The kernel rules that send PPTP to pptp-alg's queue, in their own table (and, for the
// xtables fallback, their own chains), so that they never touch the operator's ruleset.
//
//   prerouting, raw - 10:      GRE to one of the router's own addresses (the server's GRE to
//                              the public address) is untracked and queued; the daemon
//                              rewrites its destination and key before routing.
//   forward, mangle priority:  TCP/1723 both ways (control messages, inside addresses on both
//                              directions) and tracked GRE (client to server) are queued.
//   the operator's masquerade: translates TCP/1723 and the client's GRE source as usual
//                              (not an offloaded call's: untracked, below).
//
// With the fast path (fastpath.hpp) the prerouting chain is fast_in, and every enhanced GRE
// packet first jumps to fast_lookup: it rewrites the server's GRE of an offloaded call
// (destination, key) and untracks it, and untracks and marks the client's GRE of an
// offloaded call; either ends there (accept). One base chain for both, because every packet
// the router receives pays each hook (issue 17). Both set the fast-path mark bit, and the
// queue rules in other chains skip marked packets. The client's GRE gets its source (the
// public address) after routing, in chain fast_source (forward, mangle - 10): before
// routing, a source that is one of the router's own addresses is a martian and would be
// dropped. PPP link-control and authentication frames (protocols 0xC0xx, 0xC2xx) of
// offloaded calls return from fast_lookup and reach the queue, so that a re-authentication
// is seen and judged (issue 12).
//
// Before the queue: TCP/1723 and the clients' GRE that conntrack finds invalid (out of the
// TCP window, for one) are dropped, and each source's new TCP/1723 connections and queued
// GRE packets are rate-limited (nft dynamic sets with a limit; xtables hashlimit), so that
// one host cannot fill the queue (issue 13). Both are counted in the kernel.
//
// The native nft `queue` statement is used where the kernel has it (Backend::Nft). Where it
// does not (CONFIG_NFT_QUEUE unset), the same table's queue rules jump to chain to_queue,
// whose head is iptables' NFQUEUE target added through nft_compat (Backend::Compat,
// queue_target.hpp): no iptables base chain is passed. Where that fails too (no nft_compat),
// the queue rules are iptables rules in chains of their own (Backend::Xtables) and only the
// notrack rule stays in the nft table. detect_backend() tells which at start.
//
// With the nft table's queue rules (Nft, Compat), the client's GRE gets its source in the
// first rule of chain forward (one base chain in the forward hook); with Xtables, in chain
// fast_source (forward, mangle - 10), since that backend's table has no forward chain.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alg/core/result.hpp"
#include "nftables/command.hpp"

namespace pptp::nft {

inline constexpr std::string_view kTableName = "pptp_alg";
inline constexpr std::string_view kChainPrerouting = "PPTP_ALG_PREROUTING";  // xtables chains
inline constexpr std::string_view kChainForward = "PPTP_ALG_FORWARD";
// Named counters in the table (`nft list counters table ip pptp_alg`).
inline constexpr std::string_view kCounterInvalid = "invalid_dropped";  // ct state invalid
inline constexpr std::string_view kCounterSynLimited = "syn_limited";   // over the SYN rate
inline constexpr std::string_view kCounterGreLimited = "gre_limited";   // over the queued-GRE rate
// GRE whose source does not route back through the interface it came in on: a host forging
// another's address (a client sending a server's GRE from the inside), every backend.
inline constexpr std::string_view kCounterGreSpoofed = "gre_spoofed";
// The same for TCP/1723: a client forging its server's ACKs from the inside would free the
// bytes the gateway keeps to check retransmissions (docs/packet-path.md, "What was read is
// what leaves"), or a server's messages.
inline constexpr std::string_view kCounterControlSpoofed = "control_spoofed";
// A segment from TCP port 1723 to this router that conntrack knows no connection of (or finds
// invalid) and no socket of the router's owns: the router's own stack would answer it with a
// RST and end the server's side of a connection the client still has (a pair's new master
// before conntrackd's commit, docs/ha.md). Dropped instead, every backend.
inline constexpr std::string_view kCounterControlStray = "control_stray";
// Its help line on the metrics endpoints (the transparent daemon's and the proxy's).
inline constexpr std::string_view kCounterControlStrayHelp =
    "TCP from port 1723 to this router with no connection or socket, dropped, not reset";
// Per-source rate limits before the queue (0 = off). A host opens a few control
// connections a minute and, with the fast path, queues only its calls' first packets
// (until the user is known) and their PPP control frames: the defaults leave that alone and
// stop one host from filling the queue (8,192 packets) by itself.
inline constexpr std::uint32_t kDefaultSynPerSecond = 20;           // new TCP/1723 connections
inline constexpr std::uint32_t kDefaultQueuedGrePerSecond = 4000;   // GRE packets to the queue
inline constexpr std::uint32_t kRateLimitBurstFactor = 2;           // burst = rate x this
inline constexpr std::uint32_t kRateLimitSources = 65536;           // sources remembered at once
inline constexpr std::uint32_t kRateLimitForgetSeconds = 60;        // a quiet source is forgotten

enum class Backend : std::uint8_t { Nft, Compat, Xtables };
// Whether the queue rules, the invalid drops and the rate limits are in our nft table.
inline bool queues_in_table(Backend b) { return b != Backend::Xtables; }
// What --backend and the config's `backend` accept ("iptables" is read as xtables too).
inline constexpr std::array<std::string_view, 4> kBackendChoices{"auto", "nft", "compat", "xtables"};
inline constexpr std::string_view kChainToQueue = "to_queue";  // Backend::Compat's queue rule
std::string_view name_of(Backend b);
bool parse_backend(std::string_view text, Backend& out);

// The packet mark bit the fast-path rules set, so that the queue rules (nft or xtables,
// which run in other chains) leave an offloaded packet alone.
inline constexpr std::uint32_t kFastPathMark = 0x00100000;

// A chain that returns PPP link control and authentication frames (0xC0xx: LCP, PAP;
// 0xC2xx: CHAP, EAP; with FF 03 and without it, RFC 1661 6.6) whose PPP frame starts at bit
// `offset` of the GRE header, and goes to chain `then` with the rest (issue 12): the fast
// paths' test, in the ip table (fast_ppp) and the netdev one (netdev_fastpath.hpp).
std::string ppp_return_chain(std::string_view chain, int offset, std::string_view then);
// The fast paths' dispatch of enhanced GRE by its S and A bits to the chains above (ppp,
// ppp_ack) or, for an acknowledgment alone, straight to `lookup`.
std::string enhanced_gre_jumps(std::string_view ppp, std::string_view ppp_ack, std::string_view lookup);
// The bit the fast path sets beside it on the client's GRE only: the packets whose source
// chain fast_source rewrites (so that the server's GRE costs it no lookup).
inline constexpr std::uint32_t kFastPathOutMark = 0x00200000;

struct RuleOptions {
  std::uint16_t queue = 0;
  bool fail_open = false;  // packets pass unqueued when no daemon listens (queue bypass)
  bool fast_path = true;   // the fast-path sets and chains (fastpath.hpp)
  std::uint32_t fast_path_mark = kFastPathMark;
  std::uint32_t fast_path_out_mark = kFastPathOutMark;
  std::uint32_t syn_per_second = kDefaultSynPerSecond;  // per source, 0 = off
  // Per source, 0 = off. Only with the fast path: without it every GRE packet of every call
  // is queued, and a limit would cap the calls' throughput.
  std::uint32_t queued_gre_per_second = kDefaultQueuedGrePerSecond;
  // The table nft_table() writes (proxy mode loads its fast path into a table of its own,
  // so that it runs beside the transparent mode's: proxy/proxy_fastpath.hpp).
  std::string_view table = kTableName;
};

// The queued-GRE limit in force: none without the fast path (see RuleOptions).
inline std::uint32_t queued_gre_limit(const RuleOptions& o) { return o.fast_path ? o.queued_gre_per_second : 0; }
// A mark or mask as the rules write it (0x00100000).
std::string hex32(std::uint32_t v);

// The nft script for the table (`nft -f`): with the queue rules for Backend::Nft (the queue
// statement) and Backend::Compat (jumps to chain to_queue, whose placeholder verdict
// arm_queue_target() puts the target before), the notrack rule only for Backend::Xtables.
std::string nft_table(Backend backend, const RuleOptions& options);
// iptables commands for Backend::Xtables (empty for Nft).
std::vector<Command> xtables_install(const RuleOptions& options);
// The iptables-restore --noflush input that takes out what `saved` (iptables-save's output)
// shows of ours and, with `install`, puts in xtables_install(*install): per table one
// transaction, and one process instead of one per rule (a repair's time on a loaded router).
std::string xtables_restore_script(std::string_view saved, const RuleOptions* install);
// Runs iptables-save, then iptables-restore with that script (nothing to do: no restore).
// Without iptables: nothing to remove, and an install says what to install.
Result<bool, std::string> apply_xtables(const RuleOptions* install);
// Everything an operator would type, as a shell script.
std::string describe_rules(Backend backend, const RuleOptions& options);

// Asks the kernel which backend works here: the native queue statement (a checked
// transaction, nft --check), else the NFQUEUE target through nft_compat (a probe table,
// queue_target.hpp), else iptables.
Backend detect_backend();
// Installs the rules, replacing any left by an earlier run, but keeping the fast-path sets
// and their elements where they are there and fit (a restart: the calls keep flowing and the
// new daemon adopts them). The table is loaded in-process (run_nft); for Backend::Xtables,
// iptables is found by absolute path (command.hpp) first; for Backend::Compat, the target is
// armed after the table is loaded. The error says what to do. `kept` says whether elements
// were kept.
Result<bool, std::string> install_rules(Backend backend, const RuleOptions& options, bool* kept = nullptr);
// Removes whatever of our rules exist; never touches anything else. With keep_fast_path,
// the fast-path chains and sets stay (their elements expire on their own) and only the
// queue rules go (the forward chain keeps its fast-path rules: the client's source).
void remove_rules(bool keep_fast_path = false);

}  // namespace pptp::nft
