#include "nftables/route_watch.hpp"

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "nftables/netlink_batch.hpp"

namespace pptp::nft {

namespace {
constexpr std::size_t kDatagramBytes = 1u << 16;
}  // namespace

RouteNews classify_route_news(std::span<const std::uint8_t> datagram) {
  RouteNews news;
  std::size_t at = 0;
  while (datagram.size() - at >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, datagram.data() + at, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > datagram.size() - at) {
      news.malformed = true;
      return news;
    }
    if (h.nlmsg_type == RTM_NEWROUTE || h.nlmsg_type == RTM_DELROUTE || h.nlmsg_type == RTM_NEWLINK ||
        h.nlmsg_type == RTM_DELLINK) {
      ++news.changes;
    }
    at += NLMSG_ALIGN(h.nlmsg_len);
    if (at > datagram.size()) break;
  }
  return news;
}

Result<std::unique_ptr<RouteWatch>, std::string> RouteWatch::open() {
  std::unique_ptr<RouteWatch> w(new RouteWatch());
  w->socket_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (w->socket_ == nullptr || mnl_socket_bind(w->socket_, RTMGRP_IPV4_ROUTE | RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
    return unexpected(errno_text("rtnetlink socket for route changes", errno));
  }
  return w;
}

RouteWatch::~RouteWatch() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

int RouteWatch::fd() const { return mnl_socket_get_fd(socket_); }

Result<bool, std::string> RouteWatch::drain() {
  std::vector<std::uint8_t> buffer(kDatagramBytes);
  bool changed = false;
  for (;;) {
    const ssize_t n = recv(fd(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return changed;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // notifications dropped: a change may be among them
        changed = true;
        continue;
      }
      return unexpected(errno_text("reading route changes", errno));
    }
    const RouteNews news = classify_route_news(std::span(buffer.data(), static_cast<std::size_t>(n)));
    changed = changed || news.changes > 0 || news.malformed;
  }
}

}  // namespace pptp::nft
