#include "nftables/route_watch.hpp"

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "alg/core/bytes.hpp"

#include "nftables/netlink_batch.hpp"
#include "nftables/netlink_walk.hpp"

namespace pptp::nft {

namespace {
constexpr std::size_t kDatagramBytes = 1u << 16;
}  // namespace

bool RoutePrefix::contains(std::uint32_t destination) const {
  if (length == 0) return true;
  const std::uint32_t mask = length >= 32 ? ~std::uint32_t{0} : ~((std::uint32_t{1} << (32 - length)) - 1);
  return (destination & mask) == (address & mask);
}

void RouteChanges::add(const RouteChanges& more) {
  messages += more.messages;
  everything = everything || more.everything;
  for (const RoutePrefix& p : more.prefixes) {
    if (std::find(prefixes.begin(), prefixes.end(), p) == prefixes.end()) prefixes.push_back(p);
  }
  for (int l : more.links) {
    if (std::find(links.begin(), links.end(), l) == links.end()) links.push_back(l);
  }
  if (prefixes.size() > kRouteChangesListed || links.size() > kRouteChangesListed) everything = true;
  if (everything) {
    prefixes.clear();
    links.clear();
  }
}

namespace {

// The prefix of one route message's payload (rtmsg, then RTA_DST when not the default);
// nullopt when it is not IPv4 (the group is IPv4's: not expected) or runs past its end.
std::optional<RoutePrefix> prefix_of(Bytes payload, bool& malformed) {
  if (payload.size() < NLMSG_ALIGN(sizeof(rtmsg))) {
    malformed = true;
    return std::nullopt;
  }
  const auto r = native_at<rtmsg>(payload, 0);
  if (r.rtm_family != AF_INET) return std::nullopt;
  RoutePrefix p{0, static_cast<std::uint8_t>(r.rtm_dst_len > 32 ? 32 : r.rtm_dst_len)};
  const bool whole = for_each_attribute(payload.subspan(NLMSG_ALIGN(sizeof(rtmsg))), [&](std::uint16_t type, Bytes v) {
    if (type == RTA_DST && v.size() >= 4) p.address = load_u32(v.data());
  });
  if (!whole) {
    malformed = true;
    return std::nullopt;
  }
  return p;
}

std::optional<int> link_of(Bytes payload, bool& malformed) {
  if (payload.size() < sizeof(ifinfomsg)) {
    malformed = true;
    return std::nullopt;
  }
  return native_at<ifinfomsg>(payload, 0).ifi_index;
}

}  // namespace

RouteChanges classify_route_news(std::span<const std::uint8_t> datagram) {
  RouteChanges news;
  std::size_t at = 0;
  bool malformed = false;
  while (!malformed && datagram.size() - at >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, datagram.data() + at, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > datagram.size() - at) {
      malformed = true;
      break;
    }
    const auto payload = datagram.subspan(at + sizeof(nlmsghdr), h.nlmsg_len - sizeof(nlmsghdr));
    RouteChanges one;
    if (h.nlmsg_type == RTM_NEWROUTE || h.nlmsg_type == RTM_DELROUTE) {
      ++one.messages;
      if (auto p = prefix_of(payload, malformed)) one.prefixes.push_back(*p);
    } else if (h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_DELLINK) {
      ++one.messages;
      if (auto l = link_of(payload, malformed)) one.links.push_back(*l);
    }
    news.add(one);
    at += NLMSG_ALIGN(h.nlmsg_len);
    if (at > datagram.size()) break;
  }
  if (malformed) {
    RouteChanges lost;
    lost.everything = true;
    news.add(lost);
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

Result<RouteChanges, std::string> RouteWatch::drain() {
  std::vector<std::uint8_t> buffer(kDatagramBytes);
  RouteChanges changed;
  for (;;) {
    const ssize_t n = recv(fd(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return changed;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // notifications dropped: any change may be among them
        RouteChanges lost;
        lost.everything = true;
        changed.add(lost);
        continue;
      }
      return unexpected(errno_text("reading route changes", errno));
    }
    changed.add(classify_route_news(std::span(buffer.data(), static_cast<std::size_t>(n))));
  }
}

}  // namespace pptp::nft
