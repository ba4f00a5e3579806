#include "sync/udp_link.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <utility>

#include "sync/message.hpp"

namespace pptp::sync {

namespace {

sockaddr_in to_sockaddr(const wire::Endpoint& e) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(e.address.value);
  a.sin_port = htons(e.port);
  return a;
}

std::string failed(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

UdpLink::UdpLink(UdpLink&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), peer_(other.peer_), foreign_(other.foreign_) {}

UdpLink& UdpLink::operator=(UdpLink&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    peer_ = other.peer_;
    foreign_ = other.foreign_;
  }
  return *this;
}

UdpLink::~UdpLink() {
  if (fd_ >= 0) ::close(fd_);
}

Result<UdpLink, std::string> UdpLink::open(const wire::Endpoint& listen, const wire::Endpoint& peer) {
  UdpLink link;
  link.peer_ = peer;
  link.fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (link.fd_ < 0) return unexpected(failed("socket"));
  const sockaddr_in a = to_sockaddr(listen);
  if (::bind(link.fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return unexpected(failed("bind"));
  return link;
}

wire::Endpoint UdpLink::local() const {
  sockaddr_in a{};
  socklen_t length = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &length) != 0) return {};
  return wire::Endpoint{wire::Ipv4Address{ntohl(a.sin_addr.s_addr)}, ntohs(a.sin_port)};
}

bool UdpLink::send(Bytes datagram) {
  const sockaddr_in to = to_sockaddr(peer_);
  return ::sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
         static_cast<ssize_t>(datagram.size());
}

std::size_t UdpLink::receive(const std::function<void(Bytes)>& take) {
  // One byte more than the largest datagram we send: a longer one shows as truncated.
  std::array<std::uint8_t, kMaxDatagram + 1> buffer{};
  std::size_t taken = 0;
  for (;;) {
    sockaddr_in from{};
    socklen_t length = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &length);
    if (n < 0) return taken;  // EAGAIN, or an ICMP error queued by a peer that is down
    if (ntohl(from.sin_addr.s_addr) != peer_.address.value) {
      ++foreign_;
      continue;
    }
    take(Bytes(buffer.data(), static_cast<std::size_t>(n)));
    ++taken;
  }
}

}  // namespace pptp::sync
