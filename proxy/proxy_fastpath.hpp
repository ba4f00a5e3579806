// The kernel fast path for proxied calls' GRE (docs/proxy.md, "Fast path"). Once both legs
// of a call are up and the policy has decided, the relay of its GRE runs in nftables, not
// through the proxy's raw sockets. The transparent mode's sets and chains (nftables/
// fastpath.hpp), in a table of the proxy's own (ip pptp_alg_proxy, so that a transparent
// daemon's ip pptp_alg can run beside it), do most of it with the router as the "public
// address":
//
//   server -> client  server . router . B  : client   fast_in_plain / fast_in_address, then
//                     server . client . B  : C        fast_in_call_id (when B != C);
//                                                     the source stays the server's
//   client -> server  client . server . A             fast_out: untracked, marked
//                     client . server . A  : router   fast_out_source (forward, mangle - 10)
//                     router . server . A  : S        proxy_out_key (forward, mangle - 5)
//
// (A, B: our Call IDs toward the client and the server; C, S: the client's and the server's.)
// Only the last map is the proxy's own: the transparent mode never rewrites the Key of the
// client's GRE, the proxy always does (A is ours, S the server's). Sequence and
// acknowledgement numbers are left alone (RFC 2637 4.1); nft fixes the IPv4 checksum as it
// writes an address, and GRE has no checksum over the Key. PPP link control and
// authentication frames skip the fast path (fast_in), so the policy still sees a
// re-authentication in user space.
//
// Beside a transparent daemon (docs/proxy.md, "Beside the transparent mode"): the proxied
// servers' GRE to the router is the proxy's (its raw socket reads it), so chain
// proxy_server_gre (prerouting, raw - 15, before the transparent mode's fast_in at raw - 10,
// whose last rule queues the servers' GRE) sets the fast-path bit on it, which the
// transparent queue rules skip.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "alg/core/result.hpp"
#include "nat/binding.hpp"
#include "nftables/fastpath.hpp"
#include "policy/policy.hpp"
#include "proxy/call_book.hpp"

namespace pptp::proxy {

inline constexpr std::string_view kTableName = "pptp_alg_proxy";  // not the transparent mode's
inline constexpr std::string_view kOutKeyMap = "proxy_out_key";
inline constexpr std::string_view kServerGreChain = "proxy_server_gre";
// The transparent mode's "client's GRE" bit moved off the proxy's own GRE mark (kGreMark).
inline constexpr std::uint32_t kFastOutMark = 0x00400000;
inline constexpr double kCountSeconds = 5;     // the kernel's counters read back this often
inline constexpr double kRefreshSeconds = 30;  // elements re-armed (they expire after 90 s)

// One call's GRE, both legs.
struct ProxyFastCall {
  wire::Ipv4Address client, server, router;  // router: our address toward the server
  std::uint16_t client_call_id = 0;          // C
  std::uint16_t pac_call_id = 0;             // A
  std::uint16_t pns_call_id = 0;             // B
  std::uint16_t server_call_id = 0;          // S
  bool operator==(const ProxyFastCall&) const = default;
};

// The call as the transparent mode's sets hold it (see above).
nat::CallBinding binding_of(const ProxyFastCall& c);
// The call from the CallBook's two routes of `pac_call_id`, or nothing when it is not routed
// both ways. router: our address toward the server.
std::optional<ProxyFastCall> fast_call_of(const CallBook& book, std::uint16_t pac_call_id, wire::Ipv4Address router);

// The nft script of the fast path's table (`nft -f`): the transparent mode's fast-path sets
// and chains, the proxy's Key map and chain, and chain proxy_server_gre for the GRE of
// `servers` (--proxy-servers; empty: every server).
std::string fast_path_script(const std::vector<policy::Prefix>& servers = {});

// Packets the kernel relayed for one call since the last read.
struct KernelGre {
  std::uint16_t pac_call_id = 0;
  std::uint64_t to_server = 0, to_client = 0;
};

// Which calls are in the kernel, and what their counters said last (no netlink here).
class OffloadBook {
 public:
  bool add(const ProxyFastCall& c);  // false: already there
  // The call that has `our_call_id` (A or B) on either leg, taken out; nothing if none.
  std::optional<ProxyFastCall> take(std::uint16_t our_call_id);
  bool has(std::uint16_t pac_call_id) const { return by_pac_.contains(pac_call_id); }
  std::size_t size() const { return by_pac_.size(); }
  std::vector<ProxyFastCall> calls() const;
  // The kernel's counts (FastPath::read_counters) as packets since the last read, per call.
  std::vector<KernelGre> deltas(const std::vector<nat::BindingCount>& counts);
  std::uint64_t to_server() const { return to_server_; }
  std::uint64_t to_client() const { return to_client_; }

 private:
  struct Entry {
    ProxyFastCall call;
    std::uint64_t to_server = 0, to_client = 0;  // as last read
  };
  std::unordered_map<std::uint16_t, Entry> by_pac_;
  std::unordered_map<std::uint16_t, std::uint16_t> pac_of_pns_;
  std::uint64_t to_server_ = 0, to_client_ = 0;  // every call's, since the start
};

class KeyMap;

// The netlink side: the transparent mode's FastPath for its sets, KeyMap for ours.
class ProxyFastPath {
 public:
  static Result<std::unique_ptr<ProxyFastPath>, std::string> open();
  ~ProxyFastPath();
  Result<bool, std::string> offer(const ProxyFastCall& c);
  // The call's elements go (our_call_id: A or B); nothing when it is not offloaded.
  void withdraw(std::uint16_t our_call_id);
  std::vector<KernelGre> read_counts();
  void refresh();
  bool has(std::uint16_t pac_call_id) const { return book_.has(pac_call_id); }
  const OffloadBook& book() const { return book_; }
  const nft::FastPathStats& stats() const { return fast_->stats(); }
  std::uint64_t key_errors() const { return key_errors_; }

 private:
  ProxyFastPath(std::unique_ptr<nft::FastPath> fast, std::unique_ptr<KeyMap> keys);
  std::unique_ptr<nft::FastPath> fast_;
  std::unique_ptr<KeyMap> keys_;
  OffloadBook book_;
  std::uint64_t key_errors_ = 0;
};

// Loads the table (replacing an earlier run's); the error names what failed.
Result<bool, std::string> install_fast_path_table(const std::vector<policy::Prefix>& servers = {});
void remove_fast_path_table();
// Calls an earlier proxy left in the kernel (its Key map's elements; 0 without the table).
std::size_t leftover_calls();

}  // namespace pptp::proxy
