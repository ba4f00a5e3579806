// The netdev fast path's per-call choice (nftables/netdev_routes.hpp) and the counts the
// daemon's idle test reads (nftables/gre_offload.hpp), without a kernel; the chains two
// writers share, in a namespace of the test's own.
#include "nftables/gre_offload.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <map>
#include <set>
#include <tuple>

#include "nftables/command.hpp"
#include "tests/support/packets.hpp"

namespace pptp::nft {
namespace {

using test::addr;

const FastPathCall kCall{addr("198.51.100.3"), addr("198.51.100.1"), addr("192.0.2.11"), 0x1234, 7, 256};

// Routes by destination; a missing one is the kernel's "no route"; `asked` counts lookups.
struct FakeRoutes {
  std::map<std::uint32_t, Result<NetdevRoute, RouteError>> by_destination;
  std::map<std::uint32_t, int> asked;
  NetdevRoutes::Lookup lookup() {
    return [this](wire::Ipv4Address d) -> Result<NetdevRoute, RouteError> {
      ++asked[d.value];
      auto it = by_destination.find(d.value);
      if (it == by_destination.end()) return unexpected(RouteError::KernelError);
      return it->second;
    };
  }
};

NetdevRoute route(int ifindex, const char* device, std::uint32_t mtu, const char* gateway = nullptr) {
  NetdevRoute r{Route{ifindex, std::nullopt, mtu}, device};
  if (gateway != nullptr) r.route.gateway = addr(gateway);
  return r;
}

TEST(NetdevRoutes, ACallsHopsAreItsTwoRoutesEachAskedOnce) {
  FakeRoutes fake;
  fake.by_destination.insert_or_assign(addr("192.0.2.11").value, route(3, "inside", 1500));
  fake.by_destination.insert_or_assign(addr("198.51.100.3").value, route(2, "outside", 1500, "198.51.100.254"));
  NetdevRoutes routes(fake.lookup());
  auto hops = routes.hops_of(kCall, 0);
  ASSERT_TRUE(hops);
  EXPECT_EQ(hops->first, (NetdevHop{3, "inside", std::nullopt}));
  EXPECT_EQ(hops->second, (NetdevHop{2, "outside", addr("198.51.100.254")}));
  // The loop's writer and the worker's ask later: the same answer, not a new lookup.
  fake.by_destination.insert_or_assign(addr("198.51.100.3").value, route(4, "other", 1500));
  auto again = routes.hops_of(kCall, 1000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->second.ifindex, 2);
  EXPECT_EQ(fake.asked[addr("198.51.100.3").value], 1);
  EXPECT_EQ(routes.destinations(), 2u);
}

TEST(NetdevRoutes, ARefusalIsAskedAgainOnlyAfterTheRetryTime) {
  FakeRoutes fake;
  fake.by_destination.insert_or_assign(addr("192.0.2.11").value, route(3, "inside", 1500));
  NetdevRoutes routes(fake.lookup());
  auto none = routes.hops_of(kCall, 100);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error(), NetdevFallback::NoRoute);
  fake.by_destination.insert_or_assign(addr("198.51.100.3").value, route(2, "outside", 1500));
  EXPECT_FALSE(routes.hops_of(kCall, 100 + kNetdevRetrySeconds - 1));
  EXPECT_EQ(fake.asked[addr("198.51.100.3").value], 1);
  EXPECT_TRUE(routes.hops_of(kCall, 100 + kNetdevRetrySeconds));
  EXPECT_EQ(fake.asked[addr("198.51.100.3").value], 2);
}

TEST(NetdevRoutes, EachRefusalHasItsOwnCounter) {
  const std::vector<std::pair<Result<NetdevRoute, RouteError>, NetdevFallback>> cases{
      {unexpected(RouteError::NotUnicast), NetdevFallback::NotUnicast},
      {unexpected(RouteError::NotMainTable), NetdevFallback::NotMainTable},
      {unexpected(RouteError::Multipath), NetdevFallback::Multipath},
      {unexpected(RouteError::Truncated), NetdevFallback::LookupFailed},
      {route(2, "outside", 1400), NetdevFallback::MtuDiffers},
      {route(2, "out\"side", 1500), NetdevFallback::DeviceName}};
  NetdevFallbackCounters counters;
  for (const auto& [answer, expected] : cases) {
    FakeRoutes fake;
    fake.by_destination.insert_or_assign(addr("192.0.2.11").value, route(3, "inside", 1500));
    fake.by_destination.insert_or_assign(addr("198.51.100.3").value, answer);
    NetdevRoutes routes(fake.lookup());
    auto hops = routes.hops_of(kCall, 0);
    ASSERT_FALSE(hops);
    EXPECT_EQ(hops.error(), expected);
    counters.count(hops.error());
  }
  counters.count(NetdevFallback::ChainFailed);
  const nlohmann::json j = counters_json(counters, [](const auto& c, auto&& f) { visit_netdev_fallback_counters(c, f); });
  EXPECT_EQ(j, (nlohmann::json{{"no_route", 0}, {"not_unicast", 1}, {"not_main_table", 1}, {"multipath", 1},
                               {"mtu_differs", 1}, {"device_name", 1}, {"lookup_failed", 1}, {"chain_failed", 1}}));
}

// A route change alters an answer when its prefix holds the destination or the answer's
// gateway, or its device is the answer's; other changes leave the answer alone.
TEST(NetdevRoutes, AChangeAffectsTheAnswersOfItsPrefixItsGatewayAndItsDevice) {
  const std::uint32_t client = addr("192.0.2.11").value, server = addr("198.51.100.3").value;
  const Result<NetdevRoute, RouteError> direct = route(3, "inside", 1500);
  const Result<NetdevRoute, RouteError> via = route(2, "outside", 1500, "203.0.113.254");
  const Result<NetdevRoute, RouteError> none = unexpected(RouteError::KernelError);
  const auto prefix = [](const char* a, std::uint8_t l) {
    RouteChanges c;
    c.prefixes.push_back({addr(a).value, l});
    return c;
  };
  RouteChanges link2;
  link2.links.push_back(2);
  RouteChanges all;
  all.everything = true;
  EXPECT_TRUE(answer_affected(prefix("192.0.2.0", 24), client, direct));
  EXPECT_FALSE(answer_affected(prefix("192.0.2.0", 24), server, via));
  EXPECT_TRUE(answer_affected(prefix("203.0.113.0", 24), server, via));  // the gateway's own route
  EXPECT_TRUE(answer_affected(prefix("0.0.0.0", 0), server, via));       // a new default route
  EXPECT_TRUE(answer_affected(link2, server, via));
  EXPECT_FALSE(answer_affected(link2, client, direct));
  EXPECT_TRUE(answer_affected(prefix("198.51.100.0", 24), server, none));  // a route that may now exist
  EXPECT_FALSE(answer_affected(link2, server, none));
  EXPECT_TRUE(answer_affected(all, client, direct));
  EXPECT_FALSE(answer_affected(RouteChanges{}, client, direct));
}

// After route news only the answers it may alter are asked again; the others are kept.
TEST(NetdevRoutes, OnlyTheAffectedDestinationsAreAskedAgain) {
  FakeRoutes fake;
  const FastPathCall other{addr("198.51.100.3"), addr("198.51.100.1"), addr("192.0.2.77"), 9, 9, 300};
  fake.by_destination.insert_or_assign(addr("192.0.2.11").value, route(3, "inside", 1500));
  fake.by_destination.insert_or_assign(addr("192.0.2.77").value, route(3, "inside", 1500));
  fake.by_destination.insert_or_assign(addr("198.51.100.3").value, route(2, "outside", 1500, "203.0.113.254"));
  NetdevRoutes routes(fake.lookup());
  ASSERT_TRUE(routes.hops_of(kCall, 0));
  ASSERT_TRUE(routes.hops_of(other, 0));
  RouteChanges news;
  news.prefixes.push_back({addr("192.0.2.11").value, 32});
  const std::set<std::uint32_t> gone = routes.affected(news);
  EXPECT_EQ(gone, (std::set<std::uint32_t>{addr("192.0.2.11").value}));
  fake.by_destination.insert_or_assign(addr("192.0.2.11").value, route(5, "inside2", 1500));
  routes.forget(gone);
  auto moved = routes.hops_of(kCall, 1);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->first.device, "inside2");
  ASSERT_TRUE(routes.hops_of(other, 1));
  EXPECT_EQ(fake.asked[addr("192.0.2.11").value], 2);
  EXPECT_EQ(fake.asked[addr("192.0.2.77").value], 1);
  EXPECT_EQ(fake.asked[addr("198.51.100.3").value], 1);
  EXPECT_EQ(routes.lookups(), 4u);
}

// The answers' lock is not held while the kernel is asked (a change forgets answers
// meanwhile: here from inside the question), and an answer asked before a forget is not
// kept: it may be the old route.
TEST(NetdevRoutes, AnAnswerAskedBeforeAForgetIsNotKept) {
  FakeRoutes fake;
  fake.by_destination.insert_or_assign(addr("192.0.2.11").value, route(3, "inside", 1500));
  fake.by_destination.insert_or_assign(addr("198.51.100.3").value, route(2, "outside", 1500));
  NetdevRoutes* self = nullptr;
  bool forget_once = true;
  NetdevRoutes routes([&](wire::Ipv4Address d) {
    if (forget_once && self != nullptr) {
      forget_once = false;
      self->forget();  // would deadlock if the question held the answers' lock
    }
    return fake.lookup()(d);
  });
  self = &routes;
  ASSERT_TRUE(routes.hops_of(kCall, 0));
  EXPECT_EQ(routes.destinations(), 1u);  // the first answer, asked across the forget, dropped
  ASSERT_TRUE(routes.hops_of(kCall, 0));
  EXPECT_EQ(routes.destinations(), 2u);
  EXPECT_EQ(fake.asked[addr("192.0.2.11").value], 2);
}

TEST(GreOffload, NetdevPacketsAreAddedToTheSameCallsIpCountsPerDirection) {
  const FastPathCall other{addr("198.51.100.3"), addr("198.51.100.1"), addr("192.0.2.12"), 0x0200, 0x0200, 257};
  std::vector<FastPathCount> counts(2);
  counts[0].to_client = true;
  counts[0].key.server = kCall.server;
  counts[0].key.outside = kCall.outside;
  counts[0].key.outside_call_id = kCall.outside_call_id;
  counts[0].packets = 5;  // taken by the ip path before the netdev elements were there
  counts[1].to_client = false;
  counts[1].key.inside = other.inside;
  counts[1].key.server = other.server;
  counts[1].key.server_call_id = other.server_call_id;
  counts[1].packets = 1;
  const NetdevHop hop{2, "outside", std::nullopt};
  merge_netdev_counts({{kCall, hop, hop}, {other, hop, hop}}, {{100, 40}, {0, 9}}, counts);
  ASSERT_EQ(counts.size(), 3u);  // kCall's to-server count had no ip element left: appended
  EXPECT_EQ(counts[0].packets, 105u);
  EXPECT_EQ(counts[1].packets, 10u);
  EXPECT_FALSE(counts[2].to_client);
  EXPECT_EQ(counts[2].key, kCall);
  EXPECT_EQ(counts[2].packets, 40u);
  // The other call's to-client direction forwarded nothing: no count made for it.
}

// A route change: the call whose client moved to another device is moved (old keys out,
// new in, the moved destination's egress verdict removed first), the call that lost its
// netdev way falls back, the one that found one joins, the unchanged one is left alone.
TEST(GreOffload, ARouteChangeMovesOnlyTheCallsWhoseWaysChanged) {
  const NetdevHop inside{3, "inside", std::nullopt}, inside2{5, "inside2", std::nullopt},
      outside{2, "outside", addr("198.51.100.254")};
  const FastPathCall moved{addr("198.51.100.3"), addr("198.51.100.1"), addr("192.0.2.11"), 7, 7, 256};
  const FastPathCall kept{addr("198.51.100.3"), addr("198.51.100.1"), addr("192.0.2.12"), 8, 8, 257};
  const FastPathCall left{addr("198.51.100.4"), addr("198.51.100.1"), addr("192.0.2.13"), 9, 9, 258};
  const FastPathCall joined{addr("198.51.100.4"), addr("198.51.100.1"), addr("192.0.2.14"), 10, 10, 259};
  const ReroutePlan plan = plan_reroute({{moved, inside, outside}, {kept, inside, outside}, {left, inside, outside}},
                                        {{moved, inside2, outside}, {kept, inside, outside}, {joined, inside, outside}});
  ASSERT_EQ(plan.stale.size(), 2u);  // moved's old elements, left's
  EXPECT_EQ(plan.stale[0].call, moved);
  EXPECT_EQ(plan.stale[0].to_client, inside);
  EXPECT_EQ(plan.stale[1].call, left);
  ASSERT_EQ(plan.fresh.size(), 2u);
  EXPECT_EQ(plan.fresh[0].call, moved);
  EXPECT_EQ(plan.fresh[0].to_client, inside2);
  EXPECT_EQ(plan.fresh[1].call, joined);
  EXPECT_EQ(plan.moved, (std::vector<wire::Ipv4Address>{addr("192.0.2.11")}));  // the server's hop stayed
  EXPECT_EQ((std::tuple{plan.moved_calls, plan.fell_back, plan.joined}), (std::tuple{1u, 1u, 1u}));
  const ReroutePlan none = plan_reroute({{kept, inside, outside}}, {{kept, inside, outside}});
  EXPECT_TRUE(none.stale.empty() && none.fresh.empty() && none.moved.empty());
}

// Two writers (the daemon's loop and worker) share their chains: each hop's chain is made
// once, whichever writer needs it first.
TEST(NetdevChains, TwoWritersMakeEachHopsChainOnce) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and nftables)";
  ASSERT_EQ(unshare(CLONE_NEWNET), 0);
  ASSERT_TRUE(run_nft(netdev_table_script({})));
  auto chains = std::make_shared<NetdevChains>();
  auto loop = NetdevElements::open(60, chains);
  auto worker = NetdevElements::open(60, chains);
  ASSERT_TRUE(loop && worker);
  const NetdevHop lo{1, "lo", std::nullopt};
  const NetdevCall call{kCall, lo, lo};
  ASSERT_TRUE((*loop)->add({call}));
  ASSERT_TRUE((*worker)->refresh({call}));
  auto listing = run_nft("list table netdev " + std::string(kNetdevTable));
  ASSERT_TRUE(listing);
  const std::string& l = *listing;
  const auto first = l.find("fwd ip to ip daddr device \"lo\"");
  ASSERT_NE(first, std::string::npos) << l;
  EXPECT_EQ(l.find("fwd ip to ip daddr device \"lo\"", first + 1), std::string::npos) << l;
  // lo is both hops here: its ingress chain has both roles' lookups, once each.
  const auto ingress = l.find("chain in_lo");
  ASSERT_NE(ingress, std::string::npos) << l;
  for (const char* jump : {"jump lookup_from_server", "jump lookup_from_client"}) {
    const auto at = l.find(jump, ingress);
    EXPECT_NE(at, std::string::npos) << jump << "\n" << l;
    EXPECT_EQ(l.find(jump, at + 1), std::string::npos) << jump << " twice\n" << l;
  }
  // The table made anew: forgotten chains are made again by the next write.
  ASSERT_TRUE(run_nft("delete table netdev " + std::string(kNetdevTable) + "\n" + netdev_table_script({})));
  chains->forget();
  ASSERT_TRUE((*worker)->refresh({call}));
  listing = run_nft("list table netdev " + std::string(kNetdevTable));
  ASSERT_TRUE(listing);
  EXPECT_NE(listing->find("fwd ip to ip daddr device \"lo\""), std::string::npos) << *listing;
}

}  // namespace
}  // namespace pptp::nft
