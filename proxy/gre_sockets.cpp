#include "proxy/gre_sockets.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "alg/wire/gre.hpp"
#include "proxy/limits.hpp"

namespace pptp::proxy {

namespace {

inline constexpr std::uint8_t kTtl = 64;

sockaddr_in socket_address(wire::Ipv4Address a) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_addr.s_addr = htonl(a.value);
  return s;
}

}  // namespace

GreSockets::~GreSockets() {
  if (gre_fd_ >= 0) ::close(gre_fd_);
  if (raw_fd_ >= 0) ::close(raw_fd_);
}

Result<bool, std::string> GreSockets::open() {
  gre_fd_ = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_GRE);
  // Non-blocking both: GRE toward clients whose neighbour entry does not resolve queues in
  // the kernel until the send buffer is full, and a blocking send then stopped the proxy's
  // one loop for seconds (s33 review). A send that would block is dropped and counted.
  raw_fd_ = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (gre_fd_ < 0 || raw_fd_ < 0) return unexpected(std::string("cannot open raw GRE sockets: ") + std::strerror(errno));
  const int size = kGreSendBuffer;
  if (::setsockopt(raw_fd_, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
    ::setsockopt(raw_fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);  // best effort: capped by wmem_max
  }
  return true;
}

std::optional<Bytes> GreSockets::receive() {
  const ssize_t n = ::recv(gre_fd_, packet_.data(), packet_.size(), 0);
  if (n <= 0) return std::nullopt;
  return Bytes(packet_.data(), static_cast<std::size_t>(n));
}

void GreSockets::send(const GreForward& f, GreCounters& counters) {
  const sockaddr_in to = socket_address(f.destination);
  ssize_t sent = 0;
  if (f.toward == Leg::Server) {
    sent = ::sendto(gre_fd_, f.gre.data(), f.gre.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    ++counters.to_server;
  } else {
    // IPv4 header by hand (IP_HDRINCL): the kernel fills in length, identification, checksum.
    std::vector<std::uint8_t> packet(20, 0);
    packet[0] = 0x45;
    packet[8] = kTtl;
    packet[9] = wire::kIpProtocolGre;
    store_u32(packet.data() + 12, f.source.value);
    store_u32(packet.data() + 16, f.destination.value);
    packet.insert(packet.end(), f.gre.begin(), f.gre.end());
    sent = ::sendto(raw_fd_, packet.data(), packet.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    ++counters.to_client;
  }
  if (sent < 0) ++counters.send_errors;  // EAGAIN too: GRE is lossy, the loop never waits
}

int GreSockets::client_send_buffer() const {
  int size = 0;
  socklen_t length = sizeof size;
  return ::getsockopt(raw_fd_, SOL_SOCKET, SO_SNDBUF, &size, &length) == 0 ? size : -1;
}

bool GreSockets::non_blocking() const {
  for (const int fd : {gre_fd_, raw_fd_}) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || (flags & O_NONBLOCK) == 0) return false;
  }
  return true;
}

}  // namespace pptp::proxy
