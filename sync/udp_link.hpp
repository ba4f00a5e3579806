// The sync link's socket: UDP from the listen address to the peer's (docs/ha.md). Carries
// the datagrams of a ChannelEnd; authentication is the channel's (every message's tag), so
// the link only refuses what does not come from the peer's address.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

namespace pptp::sync {

class UdpLink {
 public:
  UdpLink() = default;
  UdpLink(const UdpLink&) = delete;
  UdpLink& operator=(const UdpLink&) = delete;
  UdpLink(UdpLink&& other) noexcept;
  UdpLink& operator=(UdpLink&& other) noexcept;
  ~UdpLink();

  // A non-blocking socket bound to `listen` (port 0: any), sending to `peer`. The error is
  // the failing call and errno's text.
  static Result<UdpLink, std::string> open(const wire::Endpoint& listen, const wire::Endpoint& peer);
  int fd() const { return fd_; }
  wire::Endpoint local() const;  // the bound address (its port once the kernel chose it)
  // False when the kernel would not take it (the channel sends it again).
  bool send(Bytes datagram);
  // Every datagram waiting, from the peer's address; returns how many were handed over.
  std::size_t receive(const std::function<void(Bytes)>& take);
  std::uint64_t foreign() const { return foreign_; }  // datagrams from another address

 private:
  int fd_ = -1;
  wire::Endpoint peer_;
  std::uint64_t foreign_ = 0;
};

}  // namespace pptp::sync
