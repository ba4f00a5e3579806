// Route and link news (nftables/route_watch.hpp): the datagram classifier, without a kernel,
// and the watch hearing a real change in a namespace of the test's own.
#include "nftables/route_watch.hpp"

#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "alg/core/bytes.hpp"
#include "tests/support/packets.hpp"

namespace pptp::nft {
namespace {

void put_message(std::vector<std::uint8_t>& d, std::uint16_t type, std::uint32_t length) {
  nlmsghdr h{};
  h.nlmsg_len = length;
  h.nlmsg_type = type;
  const std::size_t at = d.size();
  d.resize(at + NLMSG_ALIGN(length < sizeof h ? sizeof h : length));
  std::memcpy(d.data() + at, &h, sizeof h);
}

// A route message as the kernel sends it: rtmsg, then RTA_DST unless the default route.
void put_route(std::vector<std::uint8_t>& d, std::uint16_t type, const char* destination, std::uint8_t length,
               unsigned char family = AF_INET) {
  const bool with_dst = length != 0;
  const std::uint32_t total = sizeof(nlmsghdr) + NLMSG_ALIGN(sizeof(rtmsg)) + (with_dst ? RTA_LENGTH(4) : 0);
  const std::size_t at = d.size();
  put_message(d, type, total);
  rtmsg r{};
  r.rtm_family = family;
  r.rtm_dst_len = length;
  std::memcpy(d.data() + at + sizeof(nlmsghdr), &r, sizeof r);
  if (!with_dst) return;
  rtattr a{static_cast<unsigned short>(RTA_LENGTH(4)), RTA_DST};
  const std::size_t attr = at + sizeof(nlmsghdr) + NLMSG_ALIGN(sizeof(rtmsg));
  std::memcpy(d.data() + attr, &a, sizeof a);
  store_u32(d.data() + attr + sizeof a, test::addr(destination).value);
}

void put_link(std::vector<std::uint8_t>& d, std::uint16_t type, int ifindex) {
  const std::size_t at = d.size();
  put_message(d, type, sizeof(nlmsghdr) + sizeof(ifinfomsg));
  ifinfomsg i{};
  i.ifi_index = ifindex;
  std::memcpy(d.data() + at + sizeof(nlmsghdr), &i, sizeof i);
}

TEST(RouteWatch, RouteAndLinkMessagesNameTheirPrefixesAndDevicesOthersAreNotChanges) {
  std::vector<std::uint8_t> d;
  put_route(d, RTM_NEWROUTE, "192.0.2.0", 24);
  put_message(d, RTM_NEWADDR, 40);
  put_link(d, RTM_DELLINK, 7);
  put_route(d, RTM_DELROUTE, "198.51.100.7", 32);
  const RouteChanges news = classify_route_news(d);
  EXPECT_EQ(news.messages, 3u);
  EXPECT_FALSE(news.everything);
  EXPECT_EQ(news.prefixes, (std::vector<RoutePrefix>{{test::addr("192.0.2.0").value, 24},
                                                     {test::addr("198.51.100.7").value, 32}}));
  EXPECT_EQ(news.links, (std::vector<int>{7}));
  std::vector<std::uint8_t> addresses;
  put_message(addresses, RTM_NEWADDR, 40);
  EXPECT_FALSE(classify_route_news(addresses).any());
}

TEST(RouteWatch, APrefixHoldsTheAddressesUnderItsMaskAndTheDefaultRouteHoldsAll) {
  const RoutePrefix net{test::addr("192.0.2.0").value, 24}, host{test::addr("192.0.2.9").value, 32}, all{0, 0};
  EXPECT_TRUE(net.contains(test::addr("192.0.2.200").value));
  EXPECT_FALSE(net.contains(test::addr("192.0.3.1").value));
  EXPECT_TRUE(host.contains(test::addr("192.0.2.9").value));
  EXPECT_FALSE(host.contains(test::addr("192.0.2.8").value));
  EXPECT_TRUE(all.contains(test::addr("203.0.113.1").value));
  std::vector<std::uint8_t> d;
  put_route(d, RTM_NEWROUTE, "0.0.0.0", 0);  // the default route: no RTA_DST
  EXPECT_EQ(classify_route_news(d).prefixes, (std::vector<RoutePrefix>{{0, 0}}));
}

TEST(RouteWatch, TooManyChangesToListAreEverything) {
  RouteChanges burst;
  for (std::uint32_t i = 0; i <= kRouteChangesListed; ++i) {
    RouteChanges one;
    one.prefixes.push_back({i << 8, 24});
    burst.add(one);
  }
  EXPECT_TRUE(burst.everything);
  EXPECT_TRUE(burst.prefixes.empty());
  RouteChanges repeated;
  for (int i = 0; i < 1000; ++i) {
    RouteChanges one;
    one.links.push_back(3);
    repeated.add(one);
  }
  EXPECT_FALSE(repeated.everything);  // the same device, listed once
  EXPECT_EQ(repeated.links.size(), 1u);
}

TEST(RouteWatch, AHeaderRunningPastTheDatagramIsEverythingNeverRead) {
  std::vector<std::uint8_t> d;
  put_route(d, RTM_NEWROUTE, "192.0.2.0", 24);
  std::vector<std::uint8_t> cut(d.begin(), d.begin() + 20);  // the length says more
  EXPECT_TRUE(classify_route_news(cut).everything);
  std::vector<std::uint8_t> tiny;
  put_message(tiny, RTM_NEWROUTE, 4);  // shorter than its own header
  EXPECT_TRUE(classify_route_news(tiny).everything);
  std::vector<std::uint8_t> no_rtmsg;
  put_message(no_rtmsg, RTM_NEWROUTE, sizeof(nlmsghdr) + 4);  // a route message without its rtmsg
  EXPECT_TRUE(classify_route_news(no_rtmsg).everything);
  std::vector<std::uint8_t> bad_attribute;
  put_route(bad_attribute, RTM_NEWROUTE, "192.0.2.0", 24);
  const std::uint16_t too_long = 200;  // RTA_DST's length past the message
  std::memcpy(bad_attribute.data() + sizeof(nlmsghdr) + NLMSG_ALIGN(sizeof(rtmsg)), &too_long, 2);
  EXPECT_TRUE(classify_route_news(bad_attribute).everything);
  EXPECT_FALSE(classify_route_news({}).any());
}

TEST(RouteWatch, HearsAnMtuChangeInTheKernel) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  ASSERT_EQ(unshare(CLONE_NEWNET), 0);
  auto w = RouteWatch::open();
  ASSERT_TRUE(w) << w.error();
  auto quiet = (*w)->drain();
  ASSERT_TRUE(quiet);
  EXPECT_FALSE(quiet->any());
  ASSERT_EQ(std::system("ip link set lo mtu 1400"), 0);
  pollfd p{(*w)->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  auto heard = (*w)->drain();
  ASSERT_TRUE(heard) << heard.error();
  EXPECT_EQ(heard->links, (std::vector<int>{1}));  // lo
  EXPECT_FALSE(heard->everything);
}

}  // namespace
}  // namespace pptp::nft
