// Route and link news (nftables/route_watch.hpp): the datagram classifier, without a kernel,
// and the watch hearing a real change in a namespace of the test's own.
#include "nftables/route_watch.hpp"

#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

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

TEST(RouteWatch, RouteAndLinkMessagesAreChangesOthersAreNot) {
  std::vector<std::uint8_t> d;
  put_message(d, RTM_NEWROUTE, 28);
  put_message(d, RTM_NEWADDR, 40);
  put_message(d, RTM_DELLINK, 32);
  const RouteNews news = classify_route_news(d);
  EXPECT_EQ(news.changes, 2u);
  EXPECT_FALSE(news.malformed);
  std::vector<std::uint8_t> addresses;
  put_message(addresses, RTM_NEWADDR, 40);
  EXPECT_EQ(classify_route_news(addresses).changes, 0u);
}

TEST(RouteWatch, AHeaderRunningPastTheDatagramIsMalformedNeverRead) {
  std::vector<std::uint8_t> d;
  put_message(d, RTM_NEWROUTE, 28);
  std::vector<std::uint8_t> cut(d.begin(), d.begin() + 20);  // the length says 28
  EXPECT_TRUE(classify_route_news(cut).malformed);
  std::vector<std::uint8_t> tiny;
  put_message(tiny, RTM_NEWROUTE, 4);  // shorter than its own header
  EXPECT_TRUE(classify_route_news(tiny).malformed);
  EXPECT_EQ(classify_route_news({}).changes, 0u);
}

TEST(RouteWatch, HearsAnMtuChangeInTheKernel) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  ASSERT_EQ(unshare(CLONE_NEWNET), 0);
  auto w = RouteWatch::open();
  ASSERT_TRUE(w) << w.error();
  auto quiet = (*w)->drain();
  ASSERT_TRUE(quiet);
  EXPECT_FALSE(*quiet);
  ASSERT_EQ(std::system("ip link set lo mtu 1400"), 0);
  pollfd p{(*w)->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  auto heard = (*w)->drain();
  ASSERT_TRUE(heard) << heard.error();
  EXPECT_TRUE(*heard);
}

}  // namespace
}  // namespace pptp::nft
