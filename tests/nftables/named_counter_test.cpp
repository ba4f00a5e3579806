// The kernel's named counters (nftables/named_counter.hpp), read in a namespace of the
// test's own: a counter that packets went through, and one that is not there.
#include "nftables/named_counter.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstdlib>

namespace pptp::nft {
namespace {

TEST(NamedCounters, ReadsWhatPacketsCountedAndRefusesAMissingOne) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and nftables)";
  ASSERT_EQ(unshare(CLONE_NEWNET), 0);
  ASSERT_EQ(std::system("ip link set lo up && nft 'add table ip t; add counter ip t seen; "
                        "add chain ip t out { type filter hook output priority 0; }; "
                        "add rule ip t out ip daddr 127.0.0.2 counter name seen'"), 0);
  auto counters = NamedCounters::open();
  ASSERT_TRUE(counters) << counters.error();
  auto before = (*counters)->read(TableFamily::Ip, "t", "seen");
  ASSERT_TRUE(before) << before.error();
  EXPECT_EQ(before->packets, 0u);
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = htonl(0x7f000002);
  const char payload[10] = {};
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(sendto(fd, payload, sizeof payload, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to), 10);
  }
  close(fd);
  auto after = (*counters)->read(TableFamily::Ip, "t", "seen");
  ASSERT_TRUE(after) << after.error();
  EXPECT_EQ(after->packets, 3u);
  EXPECT_EQ(after->bytes, 3u * 38);  // 20-byte header, 8 of UDP, 10 of data
  EXPECT_FALSE((*counters)->read(TableFamily::Ip, "t", "absent"));
  EXPECT_FALSE((*counters)->read(TableFamily::Netdev, "t", "seen"));  // another family's table
  auto again = (*counters)->read(TableFamily::Ip, "t", "seen");  // the socket still answers after errors
  ASSERT_TRUE(again);
  EXPECT_EQ(again->packets, 3u);
}

}  // namespace
}  // namespace pptp::nft
