// The commit command beside the loop (child_command.hpp; docs/ha.md): the loop runs on
// while the child does, the child's end and its failures come back, the limit kills it.
#include "alg/daemon/child_command.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <optional>

namespace pptp::daemon {
namespace {

using std::chrono::milliseconds;

// Runs `command` on a loop that also ticks every 10 ms (the packet path's stand-in);
// returns the result and how many ticks ran before it came.
std::pair<CommandResult, int> run_beside_ticks(const std::string& command, milliseconds limit) {
  boost::asio::io_context io;
  ChildCommand child(io);
  std::optional<CommandResult> result;
  int ticks = 0;
  boost::asio::steady_timer tick(io);
  std::function<void()> arm = [&] {
    tick.expires_after(milliseconds(10));
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (ec || result) return;
      ++ticks;
      arm();
    });
  };
  arm();
  EXPECT_TRUE(child.start(command_words(command), limit, [&](const CommandResult& r) {
    result = r;
    tick.cancel();
  }));
  io.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(result.has_value());
  return {result.value_or(CommandResult{}), ticks};
}

TEST(ChildCommand, TheLoopRunsOnWhileTheCommandDoes) {
  const auto [r, ticks] = run_beside_ticks("sleep 1", milliseconds(5000));
  EXPECT_EQ(r.outcome, CommandOutcome::Succeeded) << r.error;
  EXPECT_GE(r.seconds, 0.9);
  EXPECT_GE(ticks, 50);  // about 100: the loop waited for nothing
}

TEST(ChildCommand, FailuresComeBackNamed) {
  const auto [exit1, t1] = run_beside_ticks("false", milliseconds(5000));
  EXPECT_EQ(exit1.outcome, CommandOutcome::Failed);
  EXPECT_EQ(exit1.error, "exit status 1");
  const auto [missing, t2] = run_beside_ticks("/nonexistent/commit-command -c", milliseconds(5000));
  EXPECT_EQ(missing.outcome, CommandOutcome::Failed);
  EXPECT_EQ(missing.error, "No such file or directory");
  const auto [empty, t3] = run_beside_ticks("  ", milliseconds(5000));
  EXPECT_EQ(empty.error, "empty command");
}

TEST(ChildCommand, KilledAtTheLimit) {
  const auto [r, ticks] = run_beside_ticks("sleep 10", milliseconds(200));
  EXPECT_EQ(r.outcome, CommandOutcome::TimedOut);
  EXPECT_GE(r.seconds, 0.19);
  EXPECT_LT(r.seconds, 2.0);
}

TEST(ChildCommand, OneAtATimeAndTheNextFromTheDoneHandler) {
  boost::asio::io_context io;
  ChildCommand child(io);
  std::vector<CommandOutcome> outcomes;
  ASSERT_TRUE(child.start(command_words("true"), milliseconds(5000), [&](const CommandResult& r) {
    outcomes.push_back(r.outcome);
    EXPECT_FALSE(child.running());
    EXPECT_TRUE(
        child.start(command_words("false"), milliseconds(5000),
                    [&](const CommandResult& again) { outcomes.push_back(again.outcome); }));
  }));
  EXPECT_FALSE(child.start(command_words("true"), milliseconds(5000), [](const CommandResult&) {}));
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(outcomes,
            (std::vector<CommandOutcome>{CommandOutcome::Succeeded, CommandOutcome::Failed}));
}

TEST(ChildCommand, ADestroyedRunnerLeavesNoChild) {
  pid_t pid = 0;
  {
    boost::asio::io_context io;
    ChildCommand child(io);
    ASSERT_TRUE(
        child.start(command_words("sleep 10"), milliseconds(20000), [](const CommandResult&) {}));
    pid = child.pid();
    ASSERT_GT(pid, 0);
  }
  EXPECT_EQ(::kill(pid, 0), -1);  // killed and reaped: no such process
}

}  // namespace
}  // namespace pptp::daemon
