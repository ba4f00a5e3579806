#include "nftables/gre_sink.hpp"

#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace pptp::nft {

Result<GreSink, std::string> GreSink::open() {
  const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_GRE);
  if (fd < 0) return unexpected(std::string("raw GRE socket: ") + std::strerror(errno));
  GreSink sink(fd);
  // One instruction, "accept 0 bytes": the packet counts as delivered, nothing is queued.
  sock_filter drop_all{static_cast<__u16>(BPF_RET | BPF_K), 0, 0, 0};
  const sock_fprog program{1, &drop_all};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) {
    return unexpected(std::string("socket filter on the raw GRE socket: ") + std::strerror(errno));
  }
  return sink;
}

GreSink::GreSink(GreSink&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

GreSink& GreSink::operator=(GreSink&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

GreSink::~GreSink() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace pptp::nft
