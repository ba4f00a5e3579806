// The elements of table netdev pptp_alg_fast (netdev_fastpath.hpp), written through netlink
// with libnftnl in one transaction per change, as FastPath writes the ip table's
// (fastpath.hpp). Per call: its key elements (in_plain, or in_address and in_call_id; and
// out_source), each bound to the ingress interface its route points to, and the egress
// verdicts of both of its destinations (a goto to the hop's chain, created on first use, as
// is each device's ingress chain: the table may start with none). Egress elements may be
// shared by calls to one destination: remove() leaves them to their timeout (they are only
// reached after a key matched) and refresh() re-arms them.
//
// The daemon writes through two of these (its loop's and its worker's, gre_offload.hpp):
// the chains made are recorded in one NetdevChains both share, so that neither makes a
// chain twice (a second `fwd` rule) nor refers to one that is not there.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
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

// The hop and ingress chains made in table netdev pptp_alg_fast (thread-safe).
class NetdevChains {
 public:
  // Makes the hop's chain, its device's ingress chain if it has none, and the jumps to the
  // lookups of `role` there (a hop's device is where the other direction's GRE arrives:
  // the hop toward the client receives the client's GRE), each unless made before.
  Result<bool, std::string> ensure(const NetdevHop& hop, NetdevRole role);
  // The table was made again (empty): every chain is to be made again.
  void forget();

 private:
  std::mutex mutex_;
  std::set<NetdevHop> hops_;                               // hop chains made
  std::set<std::string> ingress_;                          // ingress chains made
  std::set<std::pair<std::string, NetdevRole>> roles_;     // lookups jumped to, per device
};

// Both hops' chains of a call, each with the role its device has for the call.
Result<bool, std::string> ensure_call_chains(NetdevChains& chains, const NetdevCall& call);

// Packets the kernel forwarded for one call on the netdev path, per direction.
struct NetdevPackets {
  std::uint64_t to_client = 0, to_server = 0;
  bool operator==(const NetdevPackets&) const = default;
};

class NetdevElements {
 public:
  static Result<std::unique_ptr<NetdevElements>, std::string> open(
      std::uint32_t timeout_seconds = kFastPathTimeoutSeconds,
      std::shared_ptr<NetdevChains> chains = std::make_shared<NetdevChains>());
  ~NetdevElements();
  NetdevElements(const NetdevElements&) = delete;
  NetdevElements& operator=(const NetdevElements&) = delete;

  Result<bool, std::string> add(const std::vector<NetdevCall>& calls);
  // Re-arms the elements (and puts back those that are gone: a restarted daemon's adopted
  // calls), their chains made first where missing.
  Result<bool, std::string> refresh(const std::vector<NetdevCall>& calls);
  Result<bool, std::string> remove(const std::vector<NetdevCall>& calls);
  // The egress verdicts of these destinations (their hop changed: an element is only
  // replaced by a removal first; one that is gone is not an error).
  Result<bool, std::string> remove_egress(const std::vector<wire::Ipv4Address>& destinations);
  // Per call, the packets its counted elements have taken: in_plain or in_address (to the
  // client), out_source (to the server); an element that expired counts 0. Read by key,
  // many in flight (netlink_batch.hpp read_set_elements).
  Result<std::vector<NetdevPackets>, std::string> read_packets(const std::vector<NetdevCall>& calls);
  // Netlink transactions sent for element changes (a removal of many calls is a few, not
  // one per element: unless one of them was gone already).
  std::uint64_t transactions() const { return transactions_; }

 private:
  NetdevElements(std::uint32_t timeout_seconds, std::shared_ptr<NetdevChains> chains)
      : timeout_seconds_(timeout_seconds), chains_(std::move(chains)) {}
  enum class Op : std::uint8_t { Add, Refresh, Remove };
  Result<bool, std::string> change(Op op, const std::vector<NetdevCall>& calls);
  Result<bool, std::string> ensure_hops(const std::vector<NetdevCall>& calls);
  Result<bool, std::string> send_batch(const std::vector<nftnl_set*>& sets, std::uint16_t type,
                                       std::vector<char>& buffer);

  mnl_socket* socket_ = nullptr;
  std::uint32_t sequence_ = 1;
  std::uint32_t timeout_seconds_;
  std::shared_ptr<NetdevChains> chains_;
  int last_errno_ = 0;
  std::uint64_t transactions_ = 0;
};

}  // namespace pptp::nft
