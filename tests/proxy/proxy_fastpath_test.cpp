// The kernel fast path of proxied calls (proxy/proxy_fastpath.hpp): which elements a call
// gets (the transparent mode's sets with the router as public address, and the proxy's Key
// map), the nft table, the kernel's counters read back per call, and when a call is ready
// for the kernel. The kernel side runs in tests/e2e/test_proxy_e2e.py (KernelFastPath).
#include "proxy/proxy_fastpath.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <spdlog/sinks/null_sink.h>

#include "proxy/proxy_policy.hpp"
#include "tests/proxy/relay_harness.hpp"

namespace pptp::proxy {
namespace {

using namespace relay_test;
const wire::Ipv4Address kRouter = test::addr("203.0.113.1");

struct FastPathFixture : RelayFixture {
  // A call of kClient (Call ID 7) that the server (Call ID 128) connected: A and B.
  std::pair<std::uint16_t, std::uint16_t> connected(Relay& r) {
    const std::uint16_t b = ask_call(r, 7);
    const auto replies = sent<wire::OutgoingCallReply>(r.on_server(msg(call_reply(128, b))), Leg::Client);
    EXPECT_EQ(replies.size(), 1u);
    return {replies.empty() ? std::uint16_t{0} : replies[0].call_id, b};
  }
};

TEST_F(FastPathFixture, AConnectedCallGetsBothLegsKeysAndTheTransparentSetsSeeTheRouterAsPublicAddress) {
  auto r = started(kClient);
  const auto [a, b] = connected(*r);
  const auto call = fast_call_of(book, a, kRouter);
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(*call, (ProxyFastCall{kClient, kServer, kRouter, 7, a, b, 128}));
  // server -> client: (server . router . B) gives the client and Key 7; client -> server:
  // (client . server . A) is untracked, its source becomes the router.
  const nat::CallBinding bound = binding_of(*call);
  EXPECT_EQ(bound.server, kServer);
  EXPECT_EQ(bound.outside, kRouter);
  EXPECT_EQ(bound.inside, kClient);
  EXPECT_EQ(bound.outside_call_id, b);
  EXPECT_EQ(bound.inside_call_id, 7);
  EXPECT_EQ(bound.server_call_id, a) << "the client's GRE arrives with our Call ID A as its Key";
  EXPECT_TRUE(bound.translated());
  EXPECT_FALSE(fast_call_of(book, b, kRouter).has_value()) << "a call is named by A, not B";
}

TEST_F(FastPathFixture, NoCallBeforeTheServerAnswersAndTheReleaseOfEitherCallIdIsTold) {
  auto r = started(kClient);
  const std::uint16_t b = ask_call(*r, 7);
  for (std::uint16_t id = 1; id < 8; ++id) EXPECT_FALSE(fast_call_of(book, id, kRouter).has_value()) << id;
  std::vector<std::uint16_t> released;
  book.on_release([&](std::uint16_t id) { released.push_back(id); });
  const auto replies = sent<wire::OutgoingCallReply>(r->on_server(msg(call_reply(128, b))), Leg::Client);
  ASSERT_EQ(replies.size(), 1u);
  const std::uint16_t a = replies[0].call_id;
  wire::CallDisconnectNotify cdn;
  cdn.call_id = 128;
  r->on_server(msg(cdn));
  EXPECT_EQ(released, (std::vector<std::uint16_t>{a, b})) << "the fast path hears of both at once";
  EXPECT_FALSE(fast_call_of(book, a, kRouter).has_value());
}

TEST(ProxyFastPathTable, TheTransparentChainsUseTheProxysOutBitAndTheKeyMapRunsAfterTheSourceIsSet) {
  const std::string s = fast_path_script();
  for (const char* want : {"map fast_in_address", "map fast_in_call_id", "set fast_out", "map fast_out_source",
                           "chain fast_in", "chain fast_source", "map proxy_out_key",
                           "typeof ip saddr . ip daddr . @th,48,16 : @th,48,16"}) {
    EXPECT_NE(s.find(want), std::string::npos) << want << "\n" << s;
  }
  EXPECT_NE(s.find("priority mangle - 10"), std::string::npos);
  EXPECT_NE(s.find("priority mangle - 5"), std::string::npos) << "after fast_source";
  EXPECT_NE(s.find("meta mark | 0x00500000 accept"), std::string::npos) << "fast bit and the proxy's out bit";
  EXPECT_EQ(s.find("0x00200000"), std::string::npos) << "the proxy's GRE mark means 'deliver here'";
  EXPECT_EQ(s.find("queue num"), std::string::npos) << "no queue rules in proxy mode";
}

// Beside a transparent daemon (docs/proxy.md): the proxy's own table, and its servers' GRE
// to the router marked before the transparent mode's queue rule (raw - 10) sees it.
TEST(ProxyFastPathTable, LivesInATableOfItsOwnAndKeepsItsServersGreFromTheTransparentQueue) {
  const std::string s = fast_path_script();
  EXPECT_EQ(s.find("table ip pptp_alg {"), std::string::npos) << "the transparent mode's table\n" << s;
  EXPECT_NE(s.find("table ip pptp_alg_proxy {"), std::string::npos) << s;
  const std::size_t chain = s.find("chain proxy_server_gre {");
  ASSERT_NE(chain, std::string::npos) << s;
  const std::string body = s.substr(chain, s.find("  }", chain) - chain);
  EXPECT_NE(body.find("priority raw - 15;"), std::string::npos) << body;
  EXPECT_NE(body.find("ip protocol gre fib daddr type local meta mark set meta mark | 0x00100000"), std::string::npos)
      << body;
  const std::string scoped = fast_path_script({policy::Prefix{kServer, 32}, policy::Prefix{test::addr("192.0.2.0"), 24}});
  EXPECT_NE(scoped.find("fib daddr type local ip saddr { 198.51.100.2, 192.0.2.0/24 } meta mark set"),
            std::string::npos)
      << scoped;
}

TEST(OffloadBook, KernelCountsAreReadBackPerCallAsWhatCameSinceTheLastRead) {
  OffloadBook book;
  const ProxyFastCall c{kClient, kServer, kRouter, 7, 10, 11, 128};
  const ProxyFastCall d{kClient2, kServer, kRouter, 7, 20, 21, 256};
  ASSERT_TRUE(book.add(c));
  ASSERT_TRUE(book.add(d));
  EXPECT_FALSE(book.add(c));
  auto count = [](const ProxyFastCall& x, bool to_client, std::uint64_t packets) {
    nat::BindingCount n;
    n.to_client = to_client;
    n.key = binding_of(x);
    n.packets = packets;
    return n;
  };
  auto first = book.deltas({count(c, true, 50), count(c, false, 40), count(d, false, 0)});
  ASSERT_EQ(first.size(), 1u) << "a call without packets is not busy";
  EXPECT_EQ(first[0].pac_call_id, 10);
  EXPECT_EQ(first[0].to_client, 50u);
  EXPECT_EQ(first[0].to_server, 40u);
  auto second = book.deltas({count(c, true, 55), count(c, false, 40)});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].to_client, 5u);
  EXPECT_EQ(second[0].to_server, 0u);
  EXPECT_EQ(book.to_client(), 55u);
  EXPECT_EQ(book.to_server(), 40u);
  // Taken out by B (the server leg's Call ID released first): its counts are no one's.
  EXPECT_EQ(book.take(11), c);
  EXPECT_FALSE(book.take(10).has_value());
  EXPECT_TRUE(book.deltas({count(c, true, 90)}).empty());
  EXPECT_EQ(book.size(), 1u);
}

struct ReadyTest : ::testing::Test {
  ProxyPolicy policy{std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>())};
};

TEST_F(ReadyTest, ACallGoesToTheKernelAfterItsFirstPacketsAndItsKernelPacketsKeepItBusy) {
  auto j = policy.judge_for({kClient, 40000}, {kServer, 1723});
  ASSERT_FALSE(j->admit_call(ProxyCall{7, 10, 11, 128}).has_value());
  const std::uint8_t frame[] = {0xFF, 0x03, 0x00, 0x21, 0x45};
  for (std::size_t i = 0; i + 1 < track::kAuthScanPackets; ++i) {
    policy.on_gre(10, i % 2 ? Leg::Client : Leg::Server, Bytes(frame, sizeof frame));
  }
  EXPECT_FALSE(policy.ready_for_kernel(10)) << "the PPP name may still come";
  policy.on_gre(10, Leg::Server, Bytes(frame, sizeof frame));
  EXPECT_TRUE(policy.ready_for_kernel(10));
  EXPECT_FALSE(policy.ready_for_kernel(12)) << "no such call";
  const std::uint64_t before = policy.call(10)->gre[0].packets;
  const double active = policy.call(10)->last_activity;
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  policy.on_kernel_gre(10, 1000, 900);
  EXPECT_EQ(policy.call(10)->gre[0].packets, before + 1000);
  EXPECT_GT(policy.call(10)->last_activity, active) << "kernel packets count as activity (idle timeout)";
}

}  // namespace
}  // namespace pptp::proxy
