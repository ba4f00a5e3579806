// The netdev fast path's table (nftables/netdev_fastpath.hpp): its script, and the kernel
// taking it in a namespace of the test's own.
#include "nftables/netdev_fastpath.hpp"
#include "nftables/netdev_elements.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "nftables/command.hpp"
#include "tests/support/packets.hpp"

namespace pptp::nft {
namespace {

using test::addr;

TEST(NetdevFastPath, EveryIngressChainHasItsGuardsBeforeTheLookups) {
  const std::string s = netdev_table_script({"outside", "inside"});
  for (const std::string device : {"outside", "inside"}) {
    const auto chain = s.find("chain in_" + device + " {\n    type filter hook ingress device \"" + device + "\"");
    ASSERT_NE(chain, std::string::npos) << device;
    const auto lookup = s.find("jump lookup_from_server", chain);
    ASSERT_NE(lookup, std::string::npos);
    EXPECT_NE(s.find("jump lookup_from_client", chain), std::string::npos);
    for (const char* guard : {"meta protocol != ip return", "ip protocol != gre return",
                              "ip frag-off & 0x3fff != 0 return", "ip ttl <= 1 return"}) {
      const auto at = s.find(guard, chain);
      EXPECT_TRUE(at != std::string::npos && at < lookup) << device << ": " << guard;
    }
  }
  // LCP and authentication return before the lookups, with and without FF 03.
  for (const char* role : {"server", "client"}) {
    EXPECT_NE(s.find(std::string("chain ppp_from_") + role + " {\n    @th,96,16 & 0xfd00 == 0xc000 return\n    "
                     "@th,96,32 & 0xfffffd00 == 0xff03c000 return\n    goto lookup_from_" + role),
              std::string::npos) << role;
  }
  EXPECT_NE(s.find("@th,128,16 & 0xfd00 == 0xc000 return"), std::string::npos);
  // A rewritten packet with no way out is dropped and counted, never sent on half-rewritten.
  EXPECT_NE(s.find("ip daddr vmap @egress\n    counter name \"no_egress\" drop"), std::string::npos);
}

// A device's lookups are only its roles': the client's GRE pays out_source alone, the
// server's in_plain and in_address alone.
TEST(NetdevFastPath, EachRoleJumpsToItsOwnLookupsOnly) {
  const std::string client = netdev_role_script("inside", NetdevRole::FromClient);
  EXPECT_NE(client.find("chain in_inside {"), std::string::npos) << client;
  for (const char* jump : {"jump ppp_from_client\n", "jump ppp_ack_from_client\n", "jump lookup_from_client\n"}) {
    EXPECT_NE(client.find(jump), std::string::npos) << jump;
  }
  EXPECT_EQ(client.find("server"), std::string::npos) << client;
  const std::string server = netdev_role_script("outside", NetdevRole::FromServer);
  EXPECT_NE(server.find("jump lookup_from_server\n"), std::string::npos) << server;
  EXPECT_EQ(server.find("client"), std::string::npos) << server;
  const std::string table = netdev_table_script({});
  const auto from_client = table.find("chain lookup_from_client {");
  ASSERT_NE(from_client, std::string::npos);
  const auto end = table.find("}", from_client);
  EXPECT_EQ(table.substr(from_client, end - from_client).find("in_plain"), std::string::npos);
  EXPECT_NE(table.substr(from_client, end - from_client).find("@out_source"), std::string::npos);
}

TEST(NetdevFastPath, HopChainsForwardToTheNextHopOrTheDestination) {
  const NetdevHop via{4, "outside", addr("198.51.100.254")};
  EXPECT_EQ(hop_chain_name(via), "hop_4_198_51_100_254");
  EXPECT_NE(netdev_hop_script(via).find("fwd ip to 198.51.100.254 device \"outside\""), std::string::npos);
  const NetdevHop connected{3, "inside", std::nullopt};
  EXPECT_EQ(hop_chain_name(connected), "hop_3_connected");
  EXPECT_NE(netdev_hop_script(connected).find("fwd ip to ip daddr device \"inside\""), std::string::npos);
}

TEST(NetdevFastPath, DeviceNamesThatCouldEndTheQuoteAreRefused) {
  EXPECT_TRUE(valid_device_name("eth0.100"));
  EXPECT_TRUE(valid_device_name("wan-1_a"));
  EXPECT_FALSE(valid_device_name(""));
  EXPECT_FALSE(valid_device_name("sixteen-chars-xx"));
  EXPECT_FALSE(valid_device_name("a\" drop"));
  EXPECT_FALSE(valid_device_name("a b"));
}

TEST(NetdevFastPath, KeyIsTheIfindexInHostOrderThenTheIpTablesKey) {
  const NetdevKey k = netdev_key_of(0x01020304, addr("198.51.100.3"), addr("198.51.100.1"), 0x03e8);
  const std::uint32_t index = 0x01020304;
  EXPECT_EQ(std::memcmp(k.data(), &index, 4), 0);
  const NetdevKey rest{0, 0, 0, 0, 198, 51, 100, 3, 198, 51, 100, 1, 0x03, 0xe8, 0, 0};
  EXPECT_TRUE(std::equal(k.begin() + 4, k.end(), rest.begin() + 4));
}

TEST(NetdevFastPath, ACallTakesTheNetdevPathOnlyWithEqualMtusAndUsableNames) {
  const NetdevRoute client{Route{3, std::nullopt, 1500}, "inside"};
  const NetdevRoute server{Route{4, addr("198.51.100.254"), 1500}, "outside"};
  auto hops = netdev_hops(client, server);
  ASSERT_TRUE(hops);
  EXPECT_EQ(hops->first, (NetdevHop{3, "inside", std::nullopt}));
  EXPECT_EQ(hops->second, (NetdevHop{4, "outside", addr("198.51.100.254")}));
  NetdevRoute small = server;
  small.route.mtu = 1400;  // a 1500-byte packet from the client would not fit
  EXPECT_EQ(netdev_hops(client, small).error(), NetdevRefusal::MtuDiffers);
  EXPECT_EQ(netdev_hops(small, server).error(), NetdevRefusal::MtuDiffers);
  EXPECT_EQ(netdev_hops(NetdevRoute{client.route, "a\"b"}, server).error(), NetdevRefusal::DeviceName);
  EXPECT_EQ(name_of(NetdevRefusal::MtuDiffers), "mtu_differs");
}

TEST(NetdevFastPath, KernelTakesTheTableAndAHop) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and nftables)";
  ASSERT_EQ(unshare(CLONE_NEWNET), 0);
  auto table = run_nft(netdev_table_script({"lo"}));
  ASSERT_TRUE(table) << table.error();
  auto hop = run_nft(netdev_hop_script({1, "lo", std::nullopt}));
  ASSERT_TRUE(hop) << hop.error();
  auto listing = run_nft("list table netdev " + std::string(kNetdevTable));
  ASSERT_TRUE(listing) << listing.error();
  EXPECT_NE(listing->find("ip ttl <= 1 return"), std::string::npos) << *listing;
  EXPECT_NE(listing->find("fwd ip to ip daddr device \"lo\""), std::string::npos) << *listing;
}

}  // namespace
}  // namespace pptp::nft

namespace pptp::nft {
namespace {

// A namespace of the test's own with the netdev table on lo, and a writer of its elements.
Result<std::unique_ptr<NetdevElements>, std::string> elements_in_own_namespace() {
  if (unshare(CLONE_NEWNET) != 0) return unexpected(std::string("unshare failed"));
  if (auto r = run_nft(netdev_table_script({"lo"})); !r) return unexpected(r.error());
  return NetdevElements::open(60);
}

// The elements through libnftnl (netdev_elements.hpp), in a namespace of the test's own,
// both hops on lo (ifindex 1).
TEST(NetdevElements, AddedRefreshedAndRemovedInTheKernel) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and nftables)";
  auto elements = elements_in_own_namespace();
  ASSERT_TRUE(elements) << elements.error();
  const NetdevHop lo{1, "lo", std::nullopt};
  const NetdevHop via{1, "lo", addr("127.0.0.2")};
  // Translated (outside Call ID 0x1234, inside 7) and plain (both 0x0200).
  const NetdevCall translated{{addr("198.51.100.3"), addr("198.51.100.1"), addr("192.0.2.11"), 0x1234, 7, 256}, lo, via};
  const NetdevCall plain{{addr("198.51.100.3"), addr("198.51.100.1"), addr("192.0.2.12"), 0x0200, 0x0200, 257}, lo, via};
  auto added = (*elements)->add({translated, plain});
  ASSERT_TRUE(added) << added.error();
  auto listing = run_nft("list table netdev " + std::string(kNetdevTable));
  ASSERT_TRUE(listing) << listing.error();
  const std::string& l = *listing;
  EXPECT_NE(l.find("\"lo\" . 198.51.100.3 . 198.51.100.1 . 0x1234 counter packets 0 bytes 0 timeout 1m"), std::string::npos) << l;
  EXPECT_NE(l.find(": 192.0.2.11"), std::string::npos) << l;
  EXPECT_NE(l.find("\"lo\" . 198.51.100.3 . 192.0.2.11 . 0x1234 timeout 1m"), std::string::npos) << l;
  EXPECT_NE(l.find("\"lo\" . 198.51.100.3 . 198.51.100.1 . 0x200 counter"), std::string::npos) << l;
  EXPECT_NE(l.find("\"lo\" . 192.0.2.11 . 198.51.100.3 . 0x100 counter"), std::string::npos) << l;
  EXPECT_NE(l.find("192.0.2.11 timeout 1m expires"), std::string::npos) << l;
  EXPECT_NE(l.find(": goto hop_1_connected"), std::string::npos) << l;
  EXPECT_NE(l.find("198.51.100.3 timeout 1m expires"), std::string::npos) << l;
  EXPECT_NE(l.find(": goto hop_1_127_0_0_2"), std::string::npos) << l;
  EXPECT_NE(l.find("fwd ip to 127.0.0.2 device \"lo\""), std::string::npos) << l;
  ASSERT_TRUE((*elements)->refresh({translated, plain}));
  auto none_yet = (*elements)->read_packets({translated, plain});
  ASSERT_TRUE(none_yet) << none_yet.error();
  EXPECT_EQ(*none_yet, (std::vector<NetdevPackets>{{0, 0}, {0, 0}}));
  // Removed: the keyed elements go (one of them twice: gone is not an error); the egress
  // verdicts stay to their timeout.
  ASSERT_TRUE((*elements)->remove({translated}));
  auto removed = (*elements)->remove({translated, plain});
  ASSERT_TRUE(removed) << removed.error();
  listing = run_nft("list table netdev " + std::string(kNetdevTable));
  ASSERT_TRUE(listing);
  EXPECT_EQ(listing->find("\"lo\" ."), std::string::npos) << *listing;
  EXPECT_NE(listing->find(": goto hop_1_connected"), std::string::npos) << *listing;
  auto gone = (*elements)->read_packets({translated});  // gone counts 0, not an error
  ASSERT_TRUE(gone) << gone.error();
  EXPECT_EQ(gone->front(), (NetdevPackets{0, 0}));
}

// Many calls' removal (a connection's calls ending together, a demotion) is one
// transaction per batch, not one per element; a batch with an element gone already (it
// expired) falls back to one at a time for that batch only, and removes the others.
TEST(NetdevElements, ManyCallsGoInFewTransactionsAndAGoneOneDoesNotKeepTheOthers) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and nftables)";
  auto elements = elements_in_own_namespace();
  ASSERT_TRUE(elements) << elements.error();
  const NetdevHop lo{1, "lo", std::nullopt};
  std::vector<NetdevCall> calls;
  for (std::uint16_t i = 0; i < 200; ++i) {
    wire::Ipv4Address client = addr("192.0.2.0");
    client.value += 1 + i % 200;
    calls.push_back({{addr("198.51.100.3"), addr("198.51.100.1"), client, static_cast<std::uint16_t>(0x100 + i),
                      static_cast<std::uint16_t>(0x100 + i), static_cast<std::uint16_t>(0x800 + i)},
                     lo, lo});
  }
  ASSERT_TRUE((*elements)->add(calls));
  const auto count_keyed = [] {
    auto l = run_nft("list table netdev " + std::string(kNetdevTable));
    std::size_t n = 0;
    for (std::size_t at = l ? l->find("\"lo\" .") : std::string::npos; at != std::string::npos;
         at = l->find("\"lo\" .", at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_EQ(count_keyed(), 400u);  // in_plain and out_source per call
  const std::uint64_t before = (*elements)->transactions();
  ASSERT_TRUE((*elements)->remove(std::vector<NetdevCall>(calls.begin(), calls.begin() + 100)));
  EXPECT_LE((*elements)->transactions() - before, 2u);  // 100 calls: one batch (was 200 removals)
  EXPECT_EQ(count_keyed(), 200u);
  // calls[0] is gone already: its batch is done again one element at a time.
  std::vector<NetdevCall> rest(calls.begin() + 100, calls.end());
  rest.insert(rest.begin(), calls[0]);
  ASSERT_TRUE((*elements)->remove(rest));
  EXPECT_EQ(count_keyed(), 0u);
}

}  // namespace
}  // namespace pptp::nft
