// Asks conntrack (ctnetlink, through libmnl) for the NAT binding of one connection: the
// reply tuple's destination of a masqueraded control connection is the public address the
// server sees. Used once per control connection, where the kernel cannot attach conntrack
// data to queued packets (CONFIG_NETFILTER_NETLINK_GLUE_CT unset).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

struct mnl_socket;

namespace pptp::nft {

class ConntrackLookup {
 public:
  static Result<std::unique_ptr<ConntrackLookup>, std::string> open();
  ~ConntrackLookup();
  ConntrackLookup(const ConntrackLookup&) = delete;
  ConntrackLookup& operator=(const ConntrackLookup&) = delete;

  // The original-direction TCP tuple -> the reply tuple's destination address.
  std::optional<wire::Ipv4Address> reply_destination(const wire::Endpoint& source, const wire::Endpoint& destination);
  std::uint64_t lookups() const { return lookups_; }
  std::uint64_t failures() const { return failures_; }

 private:
  ConntrackLookup() = default;
  mnl_socket* socket_ = nullptr;
  std::uint32_t port_id_ = 0;
  std::uint32_t sequence_ = 0;
  std::uint64_t lookups_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace pptp::nft
