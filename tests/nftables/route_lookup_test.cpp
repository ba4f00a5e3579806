// The route answers the netdev fast path accepts and the ones it refuses
// (nftables/route_lookup.hpp), as bytes built here the way the kernel lays them out.
#include "nftables/route_lookup.hpp"

#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tests/support/packets.hpp"

namespace pptp::nft {
namespace {

using test::addr;

class Message {
 public:
  explicit Message(std::uint16_t type) { append_value(nlmsghdr{0, type, 0, 1, 0}); }
  template <typename T>
  Message& append_value(const T& v) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + sizeof v);
    std::memcpy(bytes_.data() + at, &v, sizeof v);
    pad();
    return *this;
  }
  Message& attribute(std::uint16_t type, std::vector<std::uint8_t> value) {
    append_value(rtattr{static_cast<unsigned short>(4 + value.size()), type});
    const std::size_t at = bytes_.size();
    bytes_.resize(at + value.size());
    if (!value.empty()) std::memcpy(bytes_.data() + at, value.data(), value.size());
    pad();
    return *this;
  }
  Message& u32(std::uint16_t type, std::uint32_t v) {
    std::vector<std::uint8_t> value(4);
    std::memcpy(value.data(), &v, 4);
    return attribute(type, value);
  }
  std::vector<std::uint8_t> done() {
    auto out = bytes_;
    const auto length = static_cast<std::uint32_t>(out.size());
    std::memcpy(out.data(), &length, 4);
    return out;
  }

 private:
  void pad() { bytes_.resize((bytes_.size() + 3) & ~std::size_t{3}); }
  std::vector<std::uint8_t> bytes_;
};

Message route(std::uint8_t type = RTN_UNICAST, std::uint8_t table = RT_TABLE_MAIN) {
  Message m(RTM_NEWROUTE);
  rtmsg r{};
  r.rtm_family = AF_INET;
  r.rtm_dst_len = 32;
  r.rtm_table = table;
  r.rtm_type = type;
  m.append_value(r);
  return m;
}

std::vector<std::uint8_t> metrics_mtu(std::uint32_t mtu) {
  std::vector<std::uint8_t> v(8);
  const rtattr a{8, RTAX_MTU};
  std::memcpy(v.data(), &a, 4);
  std::memcpy(v.data() + 4, &mtu, 4);
  return v;
}

TEST(RouteLookup, ConnectedRouteGivesTheDeviceAndNoGateway) {
  const auto bytes = route().u32(RTA_TABLE, RT_TABLE_MAIN).attribute(RTA_DST, {192, 0, 2, 11}).u32(RTA_OIF, 3).done();
  auto r = parse_route_reply(Bytes(bytes));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->output_ifindex, 3);
  EXPECT_FALSE(r->gateway.has_value());
  EXPECT_EQ(r->mtu, 0u);
}

TEST(RouteLookup, GatewayAndMtuAreRead) {
  const auto bytes =
      route().u32(RTA_OIF, 7).attribute(RTA_GATEWAY, {198, 51, 100, 254}).attribute(RTA_METRICS, metrics_mtu(1400)).done();
  auto r = parse_route_reply(Bytes(bytes));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->output_ifindex, 7);
  ASSERT_TRUE(r->gateway.has_value());
  EXPECT_EQ(*r->gateway, addr("198.51.100.254"));
  EXPECT_EQ(r->mtu, 1400u);
}

TEST(RouteLookup, EveryRouteThatIsNotPlainUnicastIsRefusedByName) {
  EXPECT_EQ(parse_route_reply(Bytes(route(RTN_LOCAL).u32(RTA_OIF, 1).done())).error(), RouteError::NotUnicast);
  EXPECT_EQ(parse_route_reply(Bytes(route(RTN_BLACKHOLE).done())).error(), RouteError::NotUnicast);
  // A policy rule's table, told by RTA_TABLE (ids above 255 do not fit rtm_table).
  EXPECT_EQ(parse_route_reply(Bytes(route().u32(RTA_OIF, 2).u32(RTA_TABLE, 1000).done())).error(),
            RouteError::NotMainTable);
  EXPECT_EQ(parse_route_reply(Bytes(route(RTN_UNICAST, 100).u32(RTA_OIF, 2).done())).error(), RouteError::NotMainTable);
  EXPECT_EQ(parse_route_reply(Bytes(route().u32(RTA_OIF, 2).attribute(RTA_MULTIPATH, {}).done())).error(),
            RouteError::Multipath);
  EXPECT_EQ(parse_route_reply(Bytes(route().done())).error(), RouteError::NoOutputInterface);
  EXPECT_EQ(name_of(RouteError::NotMainTable), "not_main_table");
}

TEST(RouteLookup, MalformedAnswersAreTruncatedNeverReadPast) {
  const auto good = route().u32(RTA_OIF, 3).done();
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(parse_route_reply(Bytes(good.data(), n))) << n;
  }
  auto bad = good;
  bad[bad.size() - 8] = 200;  // the attribute's length runs past the message
  EXPECT_EQ(parse_route_reply(Bytes(bad)).error(), RouteError::Truncated);
  EXPECT_EQ(parse_route_reply(Bytes(route().attribute(RTA_OIF, {1, 0}).done())).error(), RouteError::Truncated);
  Message not_ipv4(RTM_NEWROUTE);
  rtmsg r{};
  r.rtm_family = AF_INET6;
  r.rtm_type = RTN_UNICAST;
  EXPECT_EQ(parse_route_reply(Bytes(not_ipv4.append_value(r).done())).error(), RouteError::NotIpv4);
  EXPECT_EQ(parse_route_reply(Bytes(Message(RTM_NEWLINK).append_value(r).done())).error(),
            RouteError::NotRouteMessage);
  EXPECT_EQ(parse_route_reply(Bytes(Message(NLMSG_ERROR).append_value(-ENETUNREACH).done())).error(),
            RouteError::KernelError);
}

TEST(RouteLookup, LinkMtu) {
  Message m(RTM_NEWLINK);
  m.append_value(ifinfomsg{}).u32(IFLA_MTU, 1500);
  EXPECT_EQ(*parse_link_mtu_reply(Bytes(m.done())), 1500u);
  Message none(RTM_NEWLINK);
  EXPECT_FALSE(parse_link_mtu_reply(Bytes(none.append_value(ifinfomsg{}).done())));
}

// The kernel itself: the loopback address is a local route, never offloaded.
TEST(RouteLookup, KernelAnswersForLoopbackAreNotUnicast) {
  auto r = lookup_route(addr("127.0.0.1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, RouteError::NotUnicast);
}

// One socket serves every question (a route change asks again for many destinations), and
// the answers follow the kernel's routes: in a namespace of the test's own.
TEST(RouteLookup, OneSocketAnswersManyQuestionsAndFollowsTheRoutes) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  ASSERT_EQ(unshare(CLONE_NEWNET), 0);
  ASSERT_EQ(std::system("ip link add pa0 type veth peer name pb0 && ip link add pa1 type veth peer name pb1 && "
                        "ip link set pa1 mtu 1400 && for d in pa0 pb0 pa1 pb1; do ip link set $d up; done && "
                        "ip addr add 192.0.2.1/24 dev pa0 && ip addr add 198.51.100.1/24 dev pa1"), 0);
  RouteAsker asker;
  for (int i = 0; i < 100; ++i) {
    auto r = asker.lookup(addr("192.0.2.77"));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->gateway);
    EXPECT_EQ(r->mtu, 1500u);  // the device's, asked on the same socket
  }
  EXPECT_FALSE(asker.lookup(addr("203.0.113.9")));  // no route yet
  ASSERT_EQ(std::system("ip route add 203.0.113.0/24 via 198.51.100.254"), 0);
  auto via = asker.lookup(addr("203.0.113.9"));
  ASSERT_TRUE(via);
  EXPECT_EQ(via->gateway, addr("198.51.100.254"));
  EXPECT_EQ(via->mtu, 1400u);
  EXPECT_EQ(asker.sockets_opened(), 1u);
}

}  // namespace
}  // namespace pptp::nft
