#include "nftables/command.hpp"

#include <fcntl.h>
#include <nftables/libnftables.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace pptp::nft {

namespace {
struct ToolName {
  std::string_view program;
  std::string_view package;  // Debian's name for what provides it
};

constexpr std::array<ToolName, 5> kTools{ToolName{"nft", "nftables"}, ToolName{"iptables", "iptables"},
                                         ToolName{"ip", "iproute2"}, ToolName{"iptables-save", "iptables"},
                                         ToolName{"iptables-restore", "iptables"}};

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

// nft's "Error: ..." lines, repeats left out, on one line (a log field). The lines that show
// the script and a caret go: for a script from a buffer libnftables 1.0.6 prints the
// script's first line under every error, whichever line it was.
std::string error_lines(std::string_view text) {
  std::string joined, last;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.rfind("Error:", 0) != 0 || line == last) continue;
    if (!joined.empty()) joined += "; ";
    joined += line;
    last = line;
  }
  return joined.empty() ? std::string("nft failed without a message") : joined;
}
}  // namespace

Result<std::string, std::string> run_nft(std::string_view script, NftMode mode) {
  // A context per script: the daemon runs few of them (start, repair, stop), and nothing is
  // shared between threads. Output and errors are kept in the context's buffers.
  const std::unique_ptr<nft_ctx, void (*)(nft_ctx*)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
  if (!ctx) return unexpected(std::string("libnftables: no context (out of memory)"));
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
    return unexpected(std::string("libnftables: cannot buffer its output"));
  }
  nft_ctx_set_dry_run(ctx.get(), mode == NftMode::Check);
  const std::string text(script);  // the library wants a terminated string
  const int rc = nft_run_cmd_from_buffer(ctx.get(), text.c_str());
  if (rc == 0) return std::string(nft_ctx_get_output_buffer(ctx.get()));
  return unexpected(error_lines(nft_ctx_get_error_buffer(ctx.get())));
}

const std::string& tool_path(Tool tool) {
  static const std::array<std::string, kTools.size()> paths = [] {
    std::array<std::string, kTools.size()> found;
    for (std::size_t i = 0; i < kTools.size(); ++i) found[i] = find_in_directories(kTools[i].program);
    return found;
  }();
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
