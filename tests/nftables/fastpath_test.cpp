// The fast path's netlink side against the real kernel, in a network namespace of the test's
// own (unshare), so that nothing outside it is touched: the rules load, elements are added,
// their timeouts re-armed, their counters read and they are removed. Needs root; skipped
// without.
#include "nftables/fastpath.hpp"
#include "nftables/queue_target.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "nftables/rules.hpp"
#include "tests/support/packets.hpp"

namespace pptp::nft {
namespace {

using test::addr;

std::string list_set(std::string_view name) {
  std::string out;
  run_command({tool_path(Tool::Nft), "list", "set", "ip", std::string(kTableName), std::string(name)}, {}, out);
  if (out.find("Error") != std::string::npos || out.empty()) {
    out.clear();
    run_command({tool_path(Tool::Nft), "list", "map", "ip", std::string(kTableName), std::string(name)}, {}, out);
  }
  return out;
}

// The whole seconds before the first element in a listing expires, -1 if none.
int expires_seconds(const std::string& listing) {
  const auto at = listing.find("expires ");
  return at == std::string::npos ? -1 : std::atoi(listing.c_str() + at + 8);
}

class KernelFastPath : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and nftables)";
    // A namespace of our own for the rest of this process: the kernel objects die with it.
    static const bool isolated = unshare(CLONE_NEWNET) == 0;
    ASSERT_TRUE(isolated) << "unshare(CLONE_NEWNET) failed";
    RuleOptions o;
    auto ok = install_rules(Backend::Xtables, o);
    ASSERT_TRUE(ok) << ok.error();
  }
  void TearDown() override {
    if (geteuid() == 0) remove_rules();
  }
  const FastPathCall call_{addr("198.51.100.2"), addr("198.51.100.1"), addr("192.0.2.11"), 0x1234, 7, 256};
};

TEST_F(KernelFastPath, ElementsAreAddedCountedReArmedAndRemoved) {
  auto fp = FastPath::open(60);
  ASSERT_TRUE(fp) << fp.error();
  ASSERT_TRUE((*fp)->add({call_}));
  const std::string in = list_set(kFastInAddress);
  EXPECT_NE(in.find("198.51.100.2 . 198.51.100.1 . 0x1234"), std::string::npos) << in;
  EXPECT_NE(in.find(": 192.0.2.11"), std::string::npos) << in;
  const std::string id = list_set(kFastInCallId);
  EXPECT_NE(id.find("198.51.100.2 . 192.0.2.11 . 0x1234"), std::string::npos) << id;
  EXPECT_NE(id.find(": 0x7"), std::string::npos) << id;
  const std::string out = list_set(kFastOut);
  EXPECT_NE(out.find("192.0.2.11 . 198.51.100.2 . 0x100"), std::string::npos) << out;
  // The client's GRE leaves with the public address as its source.
  const std::string source = list_set(kFastOutSource);
  EXPECT_NE(source.find("192.0.2.11 . 198.51.100.2 . 0x100 timeout 1m expires"), std::string::npos)
      << source;
  EXPECT_NE(source.find(": 198.51.100.1"), std::string::npos) << source;

  EXPECT_EQ(list_set(kFastInPlain).find("elements"), std::string::npos);  // it was translated

  auto counts = (*fp)->read_counters();
  ASSERT_TRUE(counts) << counts.error();
  ASSERT_EQ(counts->size(), 2u);
  for (const FastPathCount& c : *counts) {
    if (c.to_client) {
      EXPECT_EQ(c.key.server, call_.server);
      EXPECT_EQ(c.key.outside, call_.outside);
      EXPECT_EQ(c.key.outside_call_id, call_.outside_call_id);
    } else {
      EXPECT_EQ(c.key.inside, call_.inside);
      EXPECT_EQ(c.key.server_call_id, call_.server_call_id);
    }
    EXPECT_EQ(c.packets, 0u);
    ASSERT_TRUE(c.binding) << "the element carries its call";
    EXPECT_EQ(*c.binding, call_);
  }

  // Re-arming puts the expiry back to the full timeout (whole seconds left, compared rather
  // than expected exactly: a loaded machine may take a while between the steps).
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  const std::string before = list_set(kFastInAddress);
  EXPECT_LE(expires_seconds(before), 57) << before;
  ASSERT_TRUE((*fp)->refresh({call_}));
  const std::string after = list_set(kFastInAddress);
  EXPECT_GT(expires_seconds(after), expires_seconds(before)) << before << after;

  ASSERT_TRUE((*fp)->remove({call_}));
  EXPECT_EQ(list_set(kFastInAddress).find("elements"), std::string::npos);
  EXPECT_EQ(list_set(kFastOut).find("elements"), std::string::npos);
  EXPECT_EQ(list_set(kFastOutSource).find("elements"), std::string::npos);
  // Removing what is gone (an expired element) is not an error, nor does it keep the rest.
  EXPECT_TRUE((*fp)->remove({call_}));
  ASSERT_TRUE((*fp)->add({call_}));
  FastPathCall other = call_;
  other.outside_call_id = 0x2000;
  other.server_call_id = 300;
  ASSERT_TRUE((*fp)->add({other}));
  ASSERT_TRUE((*fp)->remove({call_}));
  EXPECT_TRUE((*fp)->remove({call_, other}));  // call_ is gone already; other still goes
  for (auto set : {kFastInPlain, kFastInAddress, kFastInCallId, kFastOut, kFastOutSource}) {
    EXPECT_EQ(list_set(set).find("elements"), std::string::npos) << set;
  }
  EXPECT_EQ((*fp)->stats().errors, 0u);
}

TEST_F(KernelFastPath, ACallThatKeptItsCallIdNeedsOneInboundElement) {
  auto fp = FastPath::open(60);
  ASSERT_TRUE(fp) << fp.error();
  FastPathCall kept = call_;
  kept.outside_call_id = kept.inside_call_id;
  kept.server_call_id = 257;
  ASSERT_TRUE((*fp)->add({kept, call_}));
  const std::string plain = list_set(kFastInPlain);
  EXPECT_NE(plain.find("198.51.100.2 . 198.51.100.1 . 0x7"), std::string::npos) << plain;
  EXPECT_EQ(list_set(kFastInAddress).find("0x7 "), std::string::npos);
  auto counts = (*fp)->read_counters();
  ASSERT_TRUE(counts) << counts.error();
  EXPECT_EQ(counts->size(), 4u);  // two inbound, two outbound
  ASSERT_TRUE((*fp)->remove({kept, call_}));
  for (auto set : {kFastInPlain, kFastInAddress, kFastInCallId, kFastOut, kFastOutSource}) {
    EXPECT_EQ(list_set(set).find("elements"), std::string::npos) << set;
  }
}

TEST_F(KernelFastPath, CountersReadByKeyMatchTheDumpAndLeaveOutWhatIsGone) {
  auto fp = FastPath::open(60);
  ASSERT_TRUE(fp) << fp.error();
  // More calls than one round of reads, half of them translated.
  std::vector<FastPathCall> calls;
  for (std::uint16_t i = 0; i < 700; ++i) {
    FastPathCall c = call_;
    c.inside_call_id = static_cast<std::uint16_t>(1000 + i);
    c.outside_call_id = i % 2 == 0 ? c.inside_call_id : static_cast<std::uint16_t>(5000 + i);
    c.server_call_id = static_cast<std::uint16_t>(20000 + i);
    calls.push_back(c);
  }
  ASSERT_TRUE((*fp)->add(calls));
  FastPathCall never_added = call_;
  never_added.outside_call_id = 0x7777;
  never_added.server_call_id = 0x7777;
  std::vector<FastPathCall> asked = calls;
  asked.push_back(never_added);
  auto by_key = (*fp)->read_counters(asked);
  ASSERT_TRUE(by_key) << by_key.error();
  auto dumped = (*fp)->read_counters();
  ASSERT_TRUE(dumped) << dumped.error();
  EXPECT_EQ(by_key->size(), 2 * calls.size());
  EXPECT_EQ(dumped->size(), 2 * calls.size());
  std::size_t inbound = 0;
  for (const FastPathCount& c : *by_key) {
    ASSERT_TRUE(c.binding);
    EXPECT_NE(c.binding->outside_call_id, 0x7777);
    inbound += c.to_client ? 1 : 0;
    if (c.to_client) {
      EXPECT_EQ(c.key.outside_call_id, c.binding->outside_call_id);
    } else {
      EXPECT_EQ(c.key.server_call_id, c.binding->server_call_id);
    }
  }
  EXPECT_EQ(inbound, calls.size());
  ASSERT_TRUE((*fp)->remove(calls));
  auto none = (*fp)->read_counters(calls);
  ASSERT_TRUE(none) << none.error();
  EXPECT_TRUE(none->empty());
}

TEST_F(KernelFastPath, ARestartKeepsTheElementsAndTheirCalls) {
  auto fp = FastPath::open(60);
  ASSERT_TRUE(fp) << fp.error();
  ASSERT_TRUE((*fp)->add({call_}));
  // The daemon stops keeping the fast path: the queue rules go, the elements stay.
  remove_rules(true);
  EXPECT_NE(list_set(kFastInAddress).find("198.51.100.2 . 198.51.100.1 . 0x1234"), std::string::npos);
  std::string chains;
  run_command({tool_path(Tool::Nft), "list", "table", "ip", std::string(kTableName)}, {}, chains);
  // fast_in keeps the lookups; the server's GRE rule goes with the other queue rules.
  EXPECT_EQ(chains.find("fib daddr type local"), std::string::npos) << chains;
  EXPECT_NE(chains.find("chain fast_in"), std::string::npos) << chains;
  EXPECT_NE(chains.find("jump fast_ppp"), std::string::npos) << chains;
  // The next start installs its rules around them.
  bool kept = false;
  ASSERT_TRUE(install_rules(Backend::Xtables, RuleOptions{}, &kept));
  EXPECT_TRUE(kept);
  auto again = FastPath::open(60);
  ASSERT_TRUE(again) << again.error();
  auto counts = (*again)->read_counters();
  ASSERT_TRUE(counts) << counts.error();
  ASSERT_EQ(counts->size(), 2u);
  EXPECT_EQ(*(*counts)[0].binding, call_);
  chains.clear();
  run_command({tool_path(Tool::Nft), "list", "table", "ip", std::string(kTableName)}, {}, chains);
  EXPECT_NE(chains.find("fib daddr type local"), std::string::npos) << chains;
  // Rules are replaced, not added twice.
  EXPECT_EQ(chains.find("map @fast_in_plain"), chains.rfind("map @fast_in_plain")) << chains;
}

// An earlier version's layout (fast_in at raw - 20 beside chain prerouting at raw - 10): the
// next start moves fast_in and keeps the elements, so the calls keep flowing.
TEST_F(KernelFastPath, AnUpgradeFromTwoPreroutingChainsKeepsTheElements) {
  auto fp = FastPath::open(60);
  ASSERT_TRUE(fp) << fp.error();
  ASSERT_TRUE((*fp)->add({call_}));
  const std::string table = "ip " + std::string(kTableName);
  ASSERT_TRUE(run_nft("flush chain " + table + " fast_in\ndelete chain " + table + " fast_in\ntable " + table +
                      " {\n chain fast_in {\n  type filter hook prerouting priority raw - 20; policy accept;\n"
                      "  ip protocol != gre return\n }\n chain prerouting {\n"
                      "  type filter hook prerouting priority raw - 10; policy accept;\n"
                      "  meta l4proto gre fib daddr type local notrack\n }\n}\n"));
  bool kept = false;
  ASSERT_TRUE(install_rules(Backend::Xtables, RuleOptions{}, &kept));
  EXPECT_TRUE(kept);
  std::string chains;
  run_command({tool_path(Tool::Nft), "list", "table", "ip", std::string(kTableName)}, {}, chains);
  EXPECT_EQ(chains.find("chain prerouting"), std::string::npos) << chains;
  EXPECT_NE(chains.find("hook prerouting priority raw - 10"), std::string::npos) << chains;
  EXPECT_NE(list_set(kFastInAddress).find("198.51.100.2 . 198.51.100.1 . 0x1234"), std::string::npos);
}

std::string listed_table() {
  std::string chains;
  run_command({tool_path(Tool::Nft), "list", "table", "ip", std::string(kTableName)}, {}, chains);
  return chains;
}

std::size_t occurrences(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A restart that moves from the xtables backend to compat (the queue rules into our table,
// the NFQUEUE target at to_queue's head): the elements stay, iptables loses every rule of
// ours, fast_source folds into forward, and installing again arms one target, not two.
// Stopping with the fast path kept leaves forward's source rule (the client's GRE still
// leaves with the public address) and takes to_queue away.
TEST_F(KernelFastPath, ACompatRestartArmsOneTargetKeepsTheElementsAndNoIptablesRule) {
  if (!queue_target_works()) GTEST_SKIP() << "the kernel takes no NFQUEUE target through nft_compat";
  auto fp = FastPath::open(60);
  ASSERT_TRUE(fp) << fp.error();
  ASSERT_TRUE((*fp)->add({call_}));
  RuleOptions o;
  o.queue = 7;
  for (int start = 0; start < 2; ++start) {
    bool kept = false;
    auto ok = install_rules(Backend::Compat, o, &kept);
    ASSERT_TRUE(ok) << ok.error();
    EXPECT_TRUE(kept);
  }
  const std::string t = listed_table();
  EXPECT_EQ(occurrences(t, "queue num 7"), 1u) << t;
  const auto to_queue = t.find("chain to_queue {");
  ASSERT_NE(to_queue, std::string::npos) << t;
  EXPECT_LT(t.find("queue num 7", to_queue), t.find("drop", to_queue)) << "the target first";
  EXPECT_EQ(t.find("fast_source"), std::string::npos) << t;
  EXPECT_NE(t.find("ip saddr set ip saddr . ip daddr . @th,48,16 map @fast_out_source accept"), std::string::npos) << t;
  EXPECT_NE(list_set(kFastInAddress).find("198.51.100.2 . 198.51.100.1 . 0x1234"), std::string::npos);
  std::string saved;
  if (!tool_path(Tool::IptablesSave).empty()) run_command({tool_path(Tool::IptablesSave)}, {}, saved);
  EXPECT_EQ(saved.find("PPTP_ALG"), std::string::npos) << saved;
  remove_rules(true);
  const std::string stopped = listed_table();
  EXPECT_EQ(stopped.find("to_queue"), std::string::npos) << stopped;
  EXPECT_EQ(stopped.find("queue num"), std::string::npos) << stopped;
  EXPECT_NE(stopped.find("map @fast_out_source accept"), std::string::npos) << stopped;
  EXPECT_NE(list_set(kFastInAddress).find("198.51.100.2 . 198.51.100.1 . 0x1234"), std::string::npos);
}

TEST_F(KernelFastPath, WithoutTheSetsItSaysWhatToDo) {
  remove_rules();
  auto fp = FastPath::open();
  ASSERT_FALSE(fp);
  EXPECT_NE(fp.error().find("--install-rules"), std::string::npos) << fp.error();
}

}  // namespace
}  // namespace pptp::nft
