// nft scripts run in-process (libnftables) against the real kernel, in a network namespace
// of the test's own (unshare), so that nothing outside it is touched: a script is one
// transaction, a checked one changes nothing, errors come back as text, and install_rules()
// replaces a table it did not make, its iptables rules once (xtables backend), and
// remove_rules() leaves nothing. Needs root; skipped without.
#include "nftables/command.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include "nftables/rules.hpp"

namespace pptp::nft {
namespace {

constexpr std::string_view kScratch = "table ip pptp_alg_command_test {\n chain c {\n  type filter hook "
                                      "prerouting priority 0;\n  meta l4proto gre counter\n }\n}\n";

std::string listed(std::string_view table) {
  auto out = run_nft("list table ip " + std::string(table));
  return out ? *out : std::string();
}

class InProcessNft : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace and nftables)";
    static const bool isolated = unshare(CLONE_NEWNET) == 0;
    ASSERT_TRUE(isolated) << "unshare(CLONE_NEWNET) failed";
    (void)run_nft("delete table ip pptp_alg_command_test");
    remove_rules();
  }
  void TearDown() override {
    if (geteuid() != 0) return;
    (void)run_nft("delete table ip pptp_alg_command_test");
    remove_rules();
  }
};

TEST_F(InProcessNft, LoadsAScriptAndListsWhatItLoaded) {
  auto loaded = run_nft(kScratch);
  ASSERT_TRUE(loaded) << loaded.error();
  const std::string table = listed("pptp_alg_command_test");
  EXPECT_NE(table.find("meta l4proto gre counter packets 0 bytes 0"), std::string::npos) << table;
}

TEST_F(InProcessNft, ACheckedScriptChangesNothing) {
  auto checked = run_nft(kScratch, NftMode::Check);
  ASSERT_TRUE(checked) << checked.error();
  EXPECT_EQ(listed("pptp_alg_command_test"), "");
}

TEST_F(InProcessNft, AFailingScriptIsOneTransactionAndSaysWhy) {
  // The second command fails: the first must not have happened either.
  auto failed = run_nft(std::string(kScratch) + "delete chain ip pptp_alg_command_test absent\n");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error(), "Error: Could not process rule: No such file or directory");
  EXPECT_EQ(listed("pptp_alg_command_test"), "");
  auto syntax = run_nft("table ip pptp_alg_command_test { chian c { } }\n");
  ASSERT_FALSE(syntax);
  EXPECT_NE(syntax.error().find("syntax error"), std::string::npos) << syntax.error();
}

// How often `what` occurs in `text`.
std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(InProcessNft, InstallReplacesATableItDidNotMake) {
  // A table of our name without the fast-path maps (another version, or an operator's):
  // replaced whole, nothing of it left, and installing again does not add rules twice.
  ASSERT_TRUE(run_nft("table ip " + std::string(kTableName) + " {\n chain stray {\n }\n}\n"));
  const Backend backend = detect_backend();  // without nft queue in the kernel, xtables
  auto ok = install_rules(backend, RuleOptions{});
  ASSERT_TRUE(ok) << ok.error();
  ASSERT_TRUE(install_rules(backend, RuleOptions{}));
  const std::string table = listed(kTableName);
  EXPECT_EQ(table.find("chain stray"), std::string::npos) << table;
  EXPECT_NE(table.find("chain fast_in"), std::string::npos) << table;
  const std::string local = "fib daddr type local";
  EXPECT_EQ(count(table, local), count(nft_table(backend, RuleOptions{}), local)) << table;
  std::string saved;
  const bool xtables = !tool_path(Tool::IptablesSave).empty();
  if (xtables) run_command({tool_path(Tool::IptablesSave)}, {}, saved);
  if (backend == Backend::Xtables) {  // one jump each, not one per install
    EXPECT_EQ(count(saved, "-j PPTP_ALG_PREROUTING"), 1u) << saved;
    EXPECT_EQ(count(saved, "-A FORWARD -p tcp -j PPTP_ALG_FORWARD"), 1u) << saved;
  }
  remove_rules();
  EXPECT_EQ(listed(kTableName), "");
  saved.clear();
  if (xtables) run_command({tool_path(Tool::IptablesSave)}, {}, saved);
  EXPECT_EQ(saved.find("PPTP_ALG"), std::string::npos) << saved;
}

}  // namespace
}  // namespace pptp::nft
