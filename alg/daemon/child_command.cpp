// A command run beside the loop (child_command.hpp).
#include "alg/daemon/child_command.hpp"

#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>

extern char** environ;

namespace pptp::daemon {

namespace {

// The child and what it started (a wrapper's own children): it leads a process group.
void kill_group(pid_t pid) {
  ::kill(-pid, SIGKILL);
}

void reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

// posix_spawnp, the child leading a new process group; 0 or the error.
int spawn_in_own_group(pid_t& pid, char* const* argv) {
  posix_spawnattr_t attr;
  if (const int e = ::posix_spawnattr_init(&attr); e != 0) return e;
  int e = ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  if (e == 0) e = ::posix_spawnattr_setpgroup(&attr, 0);
  if (e == 0) e = ::posix_spawnp(&pid, argv[0], nullptr, &attr, argv, environ);
  ::posix_spawnattr_destroy(&attr);
  return e;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return "exit status " + std::to_string(WEXITSTATUS(status));
  return {};
}

}  // namespace

std::vector<std::string> command_words(const std::string& command) {
  std::istringstream in(command);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

ChildCommand::~ChildCommand() {
  if (pid_ <= 0) return;
  kill_group(pid_);
  reap(pid_);
}

bool ChildCommand::start(std::vector<std::string> words, std::chrono::milliseconds limit,
                         Done done) {
  if (running()) return false;
  started_ = std::chrono::steady_clock::now();
  killed_ = false;
  const auto refuse = [&](std::string why) {
    CommandResult r{CommandOutcome::Failed, std::move(why), elapsed()};
    boost::asio::post(io_, [done = std::move(done), r = std::move(r)] { done(r); });
    return true;
  };
  if (words.empty()) return refuse("empty command");
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int e = spawn_in_own_group(pid, argv.data()); e != 0) return refuse(std::strerror(e));
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  boost::system::error_code ec;
  if (fd >= 0) exit_.assign(fd, ec);
  if (fd < 0 || ec) {
    const std::string why =
        fd < 0 ? "pidfd_open: " + std::string(std::strerror(errno)) : "pidfd: " + ec.message();
    if (fd >= 0 && !exit_.is_open()) ::close(fd);
    kill_group(pid);  // it cannot be watched: not left running
    reap(pid);
    return refuse(why);
  }
  pid_ = pid;
  done_ = std::move(done);
  wait_exit();
  limit_.expires_after(limit);
  limit_.async_wait([this, run = ++runs_](const boost::system::error_code& ec) {
    if (ec || run != runs_ || pid_ <= 0) return;  // cancelled, or a later child's
    killed_ = true;
    kill_group(pid_);  // not reaped yet: the pid is still this child's; on_exit reports it
  });
  return true;
}

void ChildCommand::wait_exit() {
  exit_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                   [this](const boost::system::error_code& ec) {
                     if (ec) return;  // closed (destroyed)
                     on_exit();
                   });
}

void ChildCommand::on_exit() {
  int status = 0;
  pid_t got = 0;
  while ((got = ::waitpid(pid_, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (got == 0) {  // not ended after all
    wait_exit();
    return;
  }
  CommandResult r{CommandOutcome::Failed, {}, elapsed()};
  if (got < 0) {
    r.error = "waitpid: " + std::string(std::strerror(errno));
  } else if (killed_) {
    r.outcome = CommandOutcome::TimedOut;
    r.error = "killed at the time limit";
  } else if (r.error = describe_status(status); r.error.empty()) {
    r.outcome = CommandOutcome::Succeeded;
  }
  finish(std::move(r));
}

void ChildCommand::finish(CommandResult r) {
  pid_ = -1;
  limit_.cancel();
  boost::system::error_code ignored;
  exit_.close(ignored);  // the pidfd
  Done done = std::move(done_);
  done_ = nullptr;
  done(r);  // may start the next child
}

double ChildCommand::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

}  // namespace pptp::daemon
