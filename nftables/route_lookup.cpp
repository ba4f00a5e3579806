#include "nftables/route_lookup.hpp"

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "nftables/netlink_walk.hpp"

namespace pptp::nft {

namespace {

constexpr std::size_t kNetlinkHeaderLength = sizeof(nlmsghdr);  // 16
constexpr std::size_t kAnswerBufferBytes = 8192;                // one route or link answer
constexpr std::size_t kRequestBytes = 256;                      // a header, rtmsg and RTA_DST

// The message's payload after its nlmsghdr, or the error its header already tells.
Result<Bytes, RouteError> payload_of(Bytes message, std::uint16_t expected_type) {
  if (message.size() < kNetlinkHeaderLength) return unexpected(RouteError::Truncated);
  const auto length = native_at<std::uint32_t>(message, 0);
  const auto type = native_at<std::uint16_t>(message, 4);
  if (length < kNetlinkHeaderLength || length > message.size()) return unexpected(RouteError::Truncated);
  const Bytes payload = message.subspan(kNetlinkHeaderLength, length - kNetlinkHeaderLength);
  if (type == NLMSG_ERROR) {
    if (payload.size() < sizeof(std::int32_t)) return unexpected(RouteError::Truncated);
    return unexpected(RouteError::KernelError);
  }
  if (type != expected_type) return unexpected(RouteError::NotRouteMessage);
  return payload;
}

}  // namespace

std::string_view name_of(RouteError e) {
  static constexpr std::array<std::string_view, kRouteErrorCount> kNames{
      "truncated", "not_route_message", "kernel_error", "not_ipv4",
      "not_unicast", "not_main_table", "multipath", "no_output_interface"};
  return kNames[static_cast<std::size_t>(e)];
}

Result<Route, RouteError> parse_route_reply(Bytes message) {
  auto payload = payload_of(message, RTM_NEWROUTE);
  if (!payload) return unexpected(payload.error());
  if (payload->size() < sizeof(rtmsg)) return unexpected(RouteError::Truncated);
  const auto header = native_at<rtmsg>(*payload, 0);
  if (header.rtm_family != AF_INET) return unexpected(RouteError::NotIpv4);
  if (header.rtm_type != RTN_UNICAST) return unexpected(RouteError::NotUnicast);
  Route route;
  std::uint32_t table = header.rtm_table;
  bool multipath = false;
  bool truncated = false;
  const bool whole = for_each_attribute(payload->subspan(NLMSG_ALIGN(sizeof(rtmsg))), [&](std::uint16_t type, Bytes value) {
    if (type == RTA_MULTIPATH) multipath = true;
    if (type == RTA_OIF || type == RTA_TABLE || type == RTA_GATEWAY) {
      if (value.size() < 4) {
        truncated = true;
        return;
      }
    }
    if (type == RTA_OIF) route.output_ifindex = native_at<int>(value, 0);
    if (type == RTA_TABLE) table = native_at<std::uint32_t>(value, 0);
    if (type == RTA_GATEWAY) route.gateway = wire::Ipv4Address{load_u32(value.data())};
    if (type == RTA_METRICS) {
      truncated |= !for_each_attribute(value, [&](std::uint16_t metric, Bytes v) {
        if (metric == RTAX_MTU && v.size() >= 4) route.mtu = native_at<std::uint32_t>(v, 0);
      });
    }
  });
  if (!whole || truncated) return unexpected(RouteError::Truncated);
  if (multipath) return unexpected(RouteError::Multipath);
  if (table != RT_TABLE_MAIN) return unexpected(RouteError::NotMainTable);
  if (route.output_ifindex <= 0) return unexpected(RouteError::NoOutputInterface);
  return route;
}

Result<std::uint32_t, RouteError> parse_link_mtu_reply(Bytes message) {
  auto payload = payload_of(message, RTM_NEWLINK);
  if (!payload) return unexpected(payload.error());
  if (payload->size() < sizeof(ifinfomsg)) return unexpected(RouteError::Truncated);
  std::uint32_t mtu = 0;
  const bool whole = for_each_attribute(payload->subspan(NLMSG_ALIGN(sizeof(ifinfomsg))), [&](std::uint16_t type, Bytes v) {
    if (type == IFLA_MTU && v.size() >= 4) mtu = native_at<std::uint32_t>(v, 0);
  });
  if (!whole) return unexpected(RouteError::Truncated);
  if (mtu == 0) return unexpected(RouteError::Truncated);
  return mtu;
}

namespace {

// A question not answered within this long (the kernel answers route questions at once)
// fails rather than stalling its thread.
constexpr int kAnswerWaitSeconds = 1;

// Sends one request and returns the answer with its sequence number (earlier answers,
// left by a question that failed, are skipped).
Result<std::vector<std::uint8_t>, RouteLookupError> ask(mnl_socket* socket, nlmsghdr* request) {
  if (mnl_socket_sendto(socket, request, request->nlmsg_len) < 0) {
    return unexpected(RouteLookupError{RouteError::KernelError, errno});
  }
  std::vector<std::uint8_t> answer(kAnswerBufferBytes);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(socket, answer.data(), answer.size());
    if (n < 0) return unexpected(RouteLookupError{RouteError::KernelError, errno});
    if (static_cast<std::size_t>(n) < kNetlinkHeaderLength) return unexpected(RouteLookupError{RouteError::Truncated, 0});
    if (native_at<std::uint32_t>(Bytes(answer), 8) != request->nlmsg_seq) continue;
    answer.resize(static_cast<std::size_t>(n));
    return answer;
  }
}

int kernel_errno_of(Bytes answer) {
  if (answer.size() < kNetlinkHeaderLength + 4 || native_at<std::uint16_t>(answer, 4) != NLMSG_ERROR) return 0;
  return -native_at<std::int32_t>(answer, kNetlinkHeaderLength);
}

mnl_socket* open_route_socket() {
  mnl_socket* s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (s == nullptr) return nullptr;
  const timeval wait{kAnswerWaitSeconds, 0};
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0 ||
      setsockopt(mnl_socket_get_fd(s), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait) < 0) {
    const int e = errno;
    mnl_socket_close(s);
    errno = e;
    return nullptr;
  }
  return s;
}

}  // namespace

RouteAsker::RouteAsker() = default;

RouteAsker::~RouteAsker() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Result<Route, RouteLookupError> RouteAsker::lookup(wire::Ipv4Address destination) {
  if (socket_ == nullptr) {
    socket_ = open_route_socket();
    if (socket_ == nullptr) return unexpected(RouteLookupError{RouteError::KernelError, errno});
    ++sockets_opened_;
  }
  alignas(nlmsghdr) std::array<char, kRequestBytes> request{};
  nlmsghdr* nlh = mnl_nlmsg_put_header(request.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  nlh->nlmsg_seq = ++sequence_;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = 32;
  rtm->rtm_flags = RTM_F_LOOKUP_TABLE;  // the answer's table is the one the lookup chose
  std::array<std::uint8_t, 4> dst{};
  store_u32(dst.data(), destination.value);
  mnl_attr_put(nlh, RTA_DST, dst.size(), dst.data());
  // A socket that failed (a timeout, an overrun) may hold a late answer: a new one.
  const auto failed = [this](RouteLookupError e) -> Result<Route, RouteLookupError> {
    mnl_socket_close(socket_);
    socket_ = nullptr;
    return unexpected(e);
  };
  auto answer = ask(socket_, nlh);
  if (!answer) return failed(answer.error());
  auto route = parse_route_reply(Bytes(*answer));
  if (!route) return unexpected(RouteLookupError{route.error(), kernel_errno_of(Bytes(*answer))});
  if (route->mtu != 0) return *route;
  // No MTU on the route: the egress device's (what routing checks a packet against).
  nlh = mnl_nlmsg_put_header(request.data());
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  nlh->nlmsg_seq = ++sequence_;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = route->output_ifindex;
  auto link = ask(socket_, nlh);
  if (!link) return failed(link.error());
  auto mtu = parse_link_mtu_reply(Bytes(*link));
  if (!mtu) return unexpected(RouteLookupError{mtu.error(), kernel_errno_of(Bytes(*link))});
  route->mtu = *mtu;
  return *route;
}

Result<Route, RouteLookupError> lookup_route(wire::Ipv4Address destination) {
  RouteAsker asker;
  return asker.lookup(destination);
}

}  // namespace pptp::nft
