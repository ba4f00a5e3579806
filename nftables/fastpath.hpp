// The kernel fast path for GRE (docs/packet-path.md, "Fast path"): per established,
// authorised call, elements in three nftables sets of table ip pptp_alg, written through
// netlink with libnftnl (one batch per change):
//
//   fast_in_plain    (server . public address . Key) : inside address   the server's GRE of a
//                                                                       call whose Call ID
//                                                                       was kept: destination
//   fast_in_address  (server . public address . Key) : inside address   of a call whose Call
//   fast_in_call_id  (server . inside address . Key) : inside Call ID     ID was translated:
//                                                                       destination and Key
//   fast_out         (inside address . server . Key)                      the client's GRE:
//                                                                       untracked before
//   fast_out_source  (inside address . server . Key) : public address     conntrack, its
//                                                                       source set after routing
//
// Most calls keep their Call ID, so the server's GRE costs one lookup; the client's costs
// two (one before routing, one after) and no conntrack.
//
// A GRE packet that matches is forwarded by nftables rules (rules.cpp) without reaching the
// queue; one that matches nothing is queued as before. Every element carries a timeout, so
// that nothing outlives a daemon that died; the daemon re-arms live ones (refresh()). The
// per-element counters tell the daemon that an offloaded call is still busy.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"
#include "nat/binding.hpp"
#include "nftables/rules.hpp"

struct mnl_socket;

namespace pptp::nft {

inline constexpr std::string_view kFastInPlain = "fast_in_plain";
inline constexpr std::string_view kFastInAddress = "fast_in_address";
inline constexpr std::string_view kFastInCallId = "fast_in_call_id";
inline constexpr std::string_view kFastOut = "fast_out";
inline constexpr std::string_view kFastOutSource = "fast_out_source";
inline constexpr std::uint32_t kFastPathTimeoutSeconds = 90;  // an element not re-armed expires

// One call's GRE binding, both ways, and the packets the kernel forwarded for one of its
// elements: the same types the gateway uses (nat/binding.hpp). read_counters() fills a
// count's key fields (to_client: server, outside, outside_call_id; else inside, server,
// server_call_id) and its binding, stored with each element (its userdata) by the daemon
// that added it: what a restarted daemon adopts.
using FastPathCall = nat::CallBinding;
using FastPathCount = nat::BindingCount;

struct FastPathStats {
  std::uint64_t added = 0, removed = 0, refreshed = 0, errors = 0;
  int last_errno = 0;
};

class FastPath {
 public:
  // Opens the netlink socket and checks that the sets exist (the rules were installed).
  // table: the sets' table (proxy mode has its own, proxy/proxy_fastpath.hpp).
  static Result<std::unique_ptr<FastPath>, std::string> open(std::uint32_t timeout_seconds = kFastPathTimeoutSeconds,
                                                             std::string_view table = kTableName);
  ~FastPath();
  FastPath(const FastPath&) = delete;
  FastPath& operator=(const FastPath&) = delete;

  Result<bool, std::string> add(const std::vector<FastPathCall>& calls);
  // Re-arms the timeout of live elements (Linux 6.10+ updates it in place; counters stay).
  Result<bool, std::string> refresh(const std::vector<FastPathCall>& calls);
  // Elements already gone (expired) are not an error.
  Result<bool, std::string> remove(const std::vector<FastPathCall>& calls);
  // Counters of every element: to_client from fast_in_plain and fast_in_address (server, outside,
  // outside_call_id filled), to_server from fast_out (inside, server, server_call_id).
  // A dump of every set: what a restarted daemon adopts. Its cost grows with the square of
  // the number of elements (the kernel restarts its walk for each part), so the running
  // daemon reads its own calls' elements by key instead:
  Result<std::vector<FastPathCount>, std::string> read_counters();
  // Counters of these calls' elements (an element that expired is left out).
  Result<std::vector<FastPathCount>, std::string> read_counters(const std::vector<FastPathCall>& calls);

  const FastPathStats& stats() const { return stats_; }

 private:
  FastPath(std::uint32_t timeout_seconds, std::string_view table) : timeout_seconds_(timeout_seconds), table_(table) {}
  enum class Op : std::uint8_t { Add, Refresh, Remove };
  Result<bool, std::string> change(Op op, const std::vector<FastPathCall>& calls);
  Result<bool, std::string> remove_one(std::string_view set, const FastPathCall& call);
  Result<bool, std::string> send_and_ack(const void* buffer, std::size_t length, std::uint32_t first_seq,
                                         std::uint32_t last_seq);

  mnl_socket* socket_ = nullptr;
  std::uint32_t port_id_ = 0;
  std::uint32_t sequence_ = 1;
  std::uint32_t timeout_seconds_;
  std::string table_;
  FastPathStats stats_;
};

}  // namespace pptp::nft
