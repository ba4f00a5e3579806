// Asks conntrack (ctnetlink, through libmnl) for the NAT binding of one connection: the
// reply tuple's destination of a masqueraded control connection is the public address the
// server sees. Used once per control connection, where the kernel cannot attach conntrack
// data to queued packets (CONFIG_NETFILTER_NETLINK_GLUE_CT unset). Also deletes the entry
// conntrack made for an offloaded call's first (queued) client GRE: from the offload on,
// that GRE is untracked, and the entry would only wait for its timeout.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace pptp::nft {

class ConntrackLookup {
 public:
  static Result<std::unique_ptr<ConntrackLookup>, std::string> open();
  ~ConntrackLookup();
  ConntrackLookup(const ConntrackLookup&) = delete;
  ConntrackLookup& operator=(const ConntrackLookup&) = delete;

  // The original-direction TCP tuple -> the reply tuple's destination address.
  std::optional<wire::Ipv4Address> reply_destination(const wire::Endpoint& source, const wire::Endpoint& destination);
  // Deletes the entry of whichever inside host's GRE toward `server` carries `key` (the PAC's
  // Call ID, RFC 2637 section 4.1), found by its reply tuple: conntrack's GRE tuple is the
  // addresses and, for PPTP's enhanced GRE, the Key as destination "port" with a source key
  // of 0 (no helper keymap); reversed and masqueraded: server -> `outside` (the public
  // address), source Key `key`, destination Key 0. True when an entry went; false when there
  // was none (or no answer).
  bool delete_gre_by_reply(wire::Ipv4Address server, wire::Ipv4Address outside, std::uint16_t key);
  // Marks the entry of the TCP connection whose original tuple is source -> destination
  // liberal both ways (IP_CT_TCP_FLAG_BE_LIBERAL: conntrack no longer judges its segments by
  // the TCP window it last saw). An HA node's entry of a control connection its peer carries
  // now (docs/ha.md): the window is stale by the time the connection comes back, and
  // conntrackd's commit does not replace an entry that exists. True when the entry was there.
  bool make_tcp_liberal(const wire::Endpoint& source, const wire::Endpoint& destination);
  // Puts the entry of that TCP connection back in ESTABLISHED with `timeout_s` to live. The
  // tracker found a RST or FIN of it in the window but not where the receiver would take it
  // (RFC 5961 3.2, RFC 9293 3.10.7.4): conntrack, before the queue, may have taken it (its
  // "RST train": a RST at the end of the sender's last data, data forged ahead of a gap that
  // the gateway then dropped) and left the entry to die in 10 s (docs/packet-path.md,
  // "Conntrack after a RST the tracker ignored"). True when the entry was there.
  bool keep_tcp_established(const wire::Endpoint& source, const wire::Endpoint& destination, std::uint32_t timeout_s);
  std::uint64_t lookups() const { return lookups_; }
  std::uint64_t deleted() const { return deleted_; }
  std::uint64_t failures() const { return failures_; }

 private:
  ConntrackLookup() = default;
  // Sends one request for the original tuple and reads its answers (bounded).
  // What a CT_NEW update changes of an existing TCP entry (nothing for other messages).
  struct TcpChange {
    bool liberal = false;                     // IP_CT_TCP_FLAG_BE_LIBERAL both ways
    std::optional<std::uint32_t> established;  // state ESTABLISHED, with this timeout (s)
  };
  // Which tuple of the entry the request names (ctnetlink takes either to find it).
  enum class Tuple : std::uint8_t { Original, Reply };
  int exchange(std::uint16_t type, std::uint8_t protocol, const wire::Endpoint& source,
               const wire::Endpoint& destination, std::optional<wire::Ipv4Address>* reply_destination,
               TcpChange change, Tuple tuple = Tuple::Original);
  static void put_tcp_change(nlmsghdr* nlh, const TcpChange& change);
  mnl_socket* socket_ = nullptr;
  std::vector<char> buffer_;  // one request or answer (MNL_SOCKET_BUFFER_SIZE), allocated once
  std::uint32_t port_id_ = 0;
  std::uint32_t sequence_ = 0;
  std::uint64_t lookups_ = 0;
  std::uint64_t failures_ = 0;
  std::uint64_t deleted_ = 0;
};

}  // namespace pptp::nft
