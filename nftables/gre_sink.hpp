// Keeping the router silent about GRE while its rules are gone (issue 15). The server's GRE
// is addressed to the router's own (masqueraded) address; pptp-alg's table steers it to the
// client. When `nft flush ruleset` removes that table, the kernel delivers the GRE locally
// and, with no GRE handler (no ip_gre, no raw socket), answers ICMP protocol unreachable
// (RFC 792, RFC 1122 3.2.2.1). pptpd and other PPTP servers give the call up on that error,
// so a call did not survive the firewall's reload although the table came back in a second.
// A raw IPPROTO_GRE socket counts as a handler: the kernel then sends no ICMP. The socket
// keeps nothing: a socket filter drops every packet before it is queued.
#pragma once

#include <string>

#include "alg/core/result.hpp"

namespace pptp::nft {

class GreSink {
 public:
  // Opens the socket (needs CAP_NET_RAW, once: the descriptor outlives the capability).
  static Result<GreSink, std::string> open();
  GreSink(GreSink&& other) noexcept;
  GreSink& operator=(GreSink&& other) noexcept;
  GreSink(const GreSink&) = delete;
  GreSink& operator=(const GreSink&) = delete;
  ~GreSink();

 private:
  explicit GreSink(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace pptp::nft
