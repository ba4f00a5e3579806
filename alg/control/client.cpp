#include "alg/control/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace pptp::control {

namespace {
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string errno_text(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

Result<bool, std::string> send_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return unexpected(errno_text("cannot send to", path));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Result<std::string, std::string> read_line(int fd, double timeout_seconds, const std::string& path) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  std::string answer;
  char buffer[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return unexpected("no answer from " + path + " (timed out)");
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return unexpected(errno_text("cannot wait for", path));
    if (ready == 0) continue;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unexpected(errno_text("cannot read from", path));
    if (n == 0) return unexpected("the daemon closed " + path + " without an answer");
    answer.append(buffer, static_cast<std::size_t>(n));
    if (const auto end = answer.find('\n'); end != std::string::npos) return answer.substr(0, end);
    if (answer.size() > kMaxAnswerBytes) return unexpected("answer from " + path + " too long");
  }
}
}  // namespace

Result<std::string, std::string> ask(const std::string& socket_path, const Request& request, double timeout_seconds) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof address.sun_path) return unexpected("socket path too long: " + socket_path);
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd s{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return unexpected(errno_text("cannot create a socket for", socket_path));
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return unexpected(errno_text("cannot connect to", socket_path) +
                      " (is the daemon running, with this control-socket, and may this user use it?)");
  }
  if (auto sent = send_all(s.fd, request_line(request) + "\n", socket_path); !sent) return unexpected(sent.error());
  return read_line(s.fd, timeout_seconds, socket_path);
}

}  // namespace pptp::control
