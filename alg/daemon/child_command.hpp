// A command run beside the daemon's loop (docs/ha.md, "Takeover at a split brain's
// healing": the commit command): spawned with posix_spawnp (split on spaces, no shell) in a
// process group of its own, its end watched on the loop through a pidfd (Linux 5.3 or
// later), the group killed (SIGKILL) at a time limit or when the runner goes. The loop goes
// on meanwhile; the result comes back to it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange
#include <vector>

#include <boost/asio.hpp>

namespace pptp::daemon {

enum class CommandOutcome : std::uint8_t { Succeeded, Failed, TimedOut };

struct CommandResult {
  CommandOutcome outcome = CommandOutcome::Failed;
  std::string error;  // why not Succeeded: "exit status 1", "killed by signal 9", the spawn's error
  double seconds = 0;  // from the start to the end (or to the refusal to start)
};

// "a b  c" -> {"a", "b", "c"}: the command's words (no shell, no quoting).
std::vector<std::string> command_words(const std::string& command);

class ChildCommand {
 public:
  using Done = std::function<void(const CommandResult&)>;
  explicit ChildCommand(boost::asio::io_context& io) : io_(io), exit_(io), limit_(io) {}
  ChildCommand(const ChildCommand&) = delete;
  ChildCommand& operator=(const ChildCommand&) = delete;
  ~ChildCommand();  // a child still running is killed and reaped

  // Starts `words`; `done` runs on the loop once the child ended (killed at `limit`:
  // TimedOut), or, posted, if it cannot start. False (nothing started, `done` dropped)
  // while a child runs.
  bool start(std::vector<std::string> words, std::chrono::milliseconds limit, Done done);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  void wait_exit();
  void on_exit();
  void finish(CommandResult r);
  double elapsed() const;

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor exit_;  // the child's pidfd: readable once it ended
  boost::asio::steady_timer limit_;
  pid_t pid_ = -1;
  bool killed_ = false;     // at the limit
  std::uint64_t runs_ = 0;  // children started: a late limit handler knows its own
  std::chrono::steady_clock::time_point started_;
  Done done_;
};

}  // namespace pptp::daemon
