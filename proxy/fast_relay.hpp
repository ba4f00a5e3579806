// The proxy's use of the kernel fast path (proxy_fastpath.hpp): when a call goes to the kernel
// (both legs routed, the policy ready: ProxyPolicy::ready_for_kernel), when it leaves (its
// Call IDs released: cut, cleared, leg lost), the counters read back into the policy's view
// of the call (so a busy call is not idle), the elements re-armed, and the table loaded at
// start and removed at exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "nftables/named_counter.hpp"
#include "proxy/proxy_fastpath.hpp"
#include "proxy/proxy_policy.hpp"

namespace pptp::proxy {

// What the fast path did (the status file's `fast_path`, the metrics').
struct FastRelayCounts {
  std::uint64_t calls = 0;  // in the kernel now
  std::uint64_t offloaded = 0, withdrawn = 0, add_failed = 0, netlink_errors = 0;
  std::uint64_t to_server_packets = 0, to_client_packets = 0;  // relayed by the kernel
  // The table's chain input (nftables/input_rules.hpp): a server's stray TCP/1723 to this
  // router dropped, not reset. Unknown until read, and without the table.
  std::optional<nft::NamedCount> control_stray;
};

class FastRelay {
 public:
  FastRelay() = default;
  ~FastRelay() { close(); }
  FastRelay(const FastRelay&) = delete;
  FastRelay& operator=(const FastRelay&) = delete;

  // install: load the table first (--install-rules); else it must be there (loaded by hand).
  // A failure leaves every packet in user space, as with --no-fast-path (logged).
  // servers: --proxy-servers (proxy_fastpath.hpp, chain proxy_server_gre).
  // keep: --keep-fast-path, which proxy mode does not apply (logged why).
  void open(bool install, const std::vector<policy::Prefix>& servers = {}, bool keep = false);
  bool enabled() const { return path_ != nullptr; }
  // After one of the call's packets was relayed here: the call goes to the kernel once ready.
  void after_packet(const CallBook& book, const ProxyPolicy& policy, std::uint16_t pac_call_id);
  // One of our Call IDs was released (CallBook::on_release): its call's elements go.
  void released(std::uint16_t call_id);
  // Every second: the counters every kCountSeconds, the timeouts every kRefreshSeconds.
  void tick(ProxyPolicy& policy);
  bool offloaded(std::uint16_t pac_call_id) const { return path_ && path_->has(pac_call_id); }
  FastRelayCounts counts() const;
  nlohmann::json status(const FastRelayCounts& c) const;  // of counts()
  // Removes the elements and, if loaded here, the table.
  void close();

 private:
  wire::Ipv4Address router_toward(wire::Ipv4Address server);

  std::unique_ptr<ProxyFastPath> path_;
  std::unique_ptr<nft::NamedCounters> named_counters_;  // control_stray's, read every kCountSeconds
  std::optional<nft::NamedCount> control_stray_;
  bool installed_ = false;
  bool stopped_ = false;  // the kernel refused a call: no more are offered (the rest stay)
  std::unordered_map<std::uint32_t, wire::Ipv4Address> routers_;  // by server
  std::chrono::steady_clock::time_point last_count_{}, last_refresh_{};
  std::uint64_t offloaded_ = 0, withdrawn_ = 0, failed_ = 0;
};

}  // namespace pptp::proxy
