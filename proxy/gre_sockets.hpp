// The proxy's two raw sockets for relayed GRE (RFC 2637 4.1), split from proxy_server.cpp:
// IPPROTO_GRE receives both peers' GRE (the server's to the router's address; the client's
// to the server's, delivered here by the policy route) and sends toward servers; IPPROTO_RAW
// (IP_HDRINCL) sends toward clients with the server's address as source, the peer the
// client's PPTP stack expects GRE from.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"
#include "proxy/gre_relay.hpp"

namespace pptp::proxy {

inline constexpr std::size_t kMaxGrePacket = 65535;

class GreSockets {
 public:
  GreSockets() = default;
  GreSockets(const GreSockets&) = delete;
  GreSockets& operator=(const GreSockets&) = delete;
  ~GreSockets();

  Result<bool, std::string> open();
  int receive_fd() const { return gre_fd_; }  // non-blocking: waited on by the event loop
  // The next packet (its IPv4 header first), or nothing when none is waiting.
  std::optional<Bytes> receive();
  // Sends toward the leg `f` names and counts it (to_server, to_client, send_errors).
  void send(const GreForward& f, GreCounters& counters);
  // Whether neither socket can block the loop (both O_NONBLOCK).
  bool non_blocking() const;
  // The kernel's send buffer of the socket toward clients (SO_SNDBUF: twice kGreSendBuffer).
  int client_send_buffer() const;

 private:
  int gre_fd_ = -1;  // IPPROTO_GRE: receives both peers' GRE, sends toward servers
  int raw_fd_ = -1;  // IPPROTO_RAW (IP_HDRINCL): sends toward clients as the server
  std::array<std::uint8_t, kMaxGrePacket> packet_{};
};

}  // namespace pptp::proxy
