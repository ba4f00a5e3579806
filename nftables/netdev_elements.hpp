// The elements of table netdev pptp_alg_fast (netdev_fastpath.hpp), written through netlink
// with libnftnl in one transaction per change, as FastPath writes the ip table's
// (fastpath.hpp). Per call: its key elements (in_plain, or in_address and in_call_id; and
// out_source), each bound to the ingress interface its route points to, and the egress
// verdicts of both of its destinations (a goto to the hop's chain, created here on first
// use, as is each device's ingress chain: the table may start with none). Egress elements may be shared by calls to one destination: remove() leaves them to
// their timeout (they are only reached after a key matched) and refresh() re-arms them.
//
// Not done yet: the daemon does not call this (no --fast-path netdev).
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "alg/core/result.hpp"
#include "nftables/fastpath.hpp"
#include "nftables/netdev_fastpath.hpp"

struct mnl_socket;
struct nftnl_set;

namespace pptp::nft {

struct NetdevCall {
  FastPathCall call;
  NetdevHop to_client;  // the route to the client: its ifindex is the client's ingress too
  NetdevHop to_server;
};

class NetdevElements {
 public:
  static Result<std::unique_ptr<NetdevElements>, std::string> open(
      std::uint32_t timeout_seconds = kFastPathTimeoutSeconds);
  ~NetdevElements();
  NetdevElements(const NetdevElements&) = delete;
  NetdevElements& operator=(const NetdevElements&) = delete;

  Result<bool, std::string> add(const std::vector<NetdevCall>& calls);
  Result<bool, std::string> refresh(const std::vector<NetdevCall>& calls);
  Result<bool, std::string> remove(const std::vector<NetdevCall>& calls);
  // Per call, the packets its counted elements (in_plain or in_address, and out_source) have
  // taken; an element that expired counts 0. One read per element (a dump's cost grows with
  // the square of the elements, fastpath.hpp).
  Result<std::vector<std::uint64_t>, std::string> read_packets(const std::vector<NetdevCall>& calls);

 private:
  explicit NetdevElements(std::uint32_t timeout_seconds) : timeout_seconds_(timeout_seconds) {}
  enum class Op : std::uint8_t { Add, Refresh, Remove };
  Result<bool, std::string> change(Op op, const std::vector<NetdevCall>& calls);
  Result<bool, std::string> ensure_hop(const NetdevHop& hop);
  Result<std::uint64_t, std::string> read_one(std::string_view set, const NetdevKey& key);
  Result<bool, std::string> send_batch(const std::vector<nftnl_set*>& sets, std::uint16_t type,
                                       std::vector<char>& buffer);

  mnl_socket* socket_ = nullptr;
  std::uint32_t sequence_ = 1;
  std::uint32_t timeout_seconds_;
  std::set<NetdevHop> hops_;            // hop chains made
  std::set<std::string> ingress_;       // ingress chains made
  int last_errno_ = 0;
};

}  // namespace pptp::nft
