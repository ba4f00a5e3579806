#include "nftables/command.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace pptp::nft {

namespace {
struct ToolName {
  std::string_view program;
  std::string_view package;  // Debian's name for what provides it
};

constexpr std::array<ToolName, 3> kTools{ToolName{"nft", "nftables"}, ToolName{"iptables", "iptables"},
                                         ToolName{"ip", "iproute2"}};

std::string find_in_directories(std::string_view program) {
  for (const std::string_view dir : kToolDirectories) {
    std::string path(dir);
    path += '/';
    path += program;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0)
      return path;
  }
  return {};
}
}  // namespace

const std::string& tool_path(Tool tool) {
  static const std::array<std::string, kTools.size()> paths{find_in_directories(kTools[0].program),
                                                            find_in_directories(kTools[1].program),
                                                            find_in_directories(kTools[2].program)};
  return paths[static_cast<std::size_t>(tool)];
}

Result<std::string, std::string> require_tool(Tool tool) {
  const std::string& path = tool_path(tool);
  if (!path.empty()) return path;
  const ToolName& t = kTools[static_cast<std::size_t>(tool)];
  std::string dirs;
  for (const std::string_view dir : kToolDirectories) {
    if (!dirs.empty()) dirs += ", ";
    dirs += dir;
  }
  std::string message(t.program);
  message += " not found in ";
  message += dirs;
  message += " (pptp-alg does not search PATH) -- install the ";
  message += t.package;
  message += " package";
  return unexpected(message);
}

int run_command(const Command& argv, std::string_view input, std::string& output) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') return -1;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return -1;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return -1;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    return -1;
  }
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());  // by its absolute path: PATH plays no part
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  std::size_t written = 0;
  while (written < input.size()) {
    const ssize_t n = write(in[1], input.data() + written, input.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  close(in[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n > 0) {
      output.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string shell_line(const Command& c) {
  std::string s;
  for (const auto& a : c) {
    if (!s.empty()) s += ' ';
    const bool plain = a.find_first_of(" !\"'$&;|<>{}()") == std::string::npos;
    s += plain ? a : "'" + a + "'";
  }
  return s;
}

}  // namespace pptp::nft
