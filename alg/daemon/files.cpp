#include "alg/daemon/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace pptp::daemon {

namespace {
std::string error_text(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}
}  // namespace

Result<bool, std::string> write_private_file(const std::string& path, std::string_view content) {
  return write_private_file(path, [content](const PutPiece& put) { return put(content); });
}

Result<bool, std::string> write_private_file(const std::string& path, const std::function<bool(const PutPiece&)>& write) {
  static std::atomic<unsigned> serial{0};
  std::string tmp = path;
  tmp.append(".tmp.").append(std::to_string(::getpid())).append(".").append(std::to_string(serial++));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return unexpected(error_text("cannot create", tmp));
  const auto put = [fd](std::string_view piece) {
    std::size_t done = 0;
    while (done < piece.size()) {
      const ssize_t n = ::write(fd, piece.data() + done, piece.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  };
  if (!write(put)) {
    const std::string e = error_text("cannot write", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return unexpected(e);
  }
  if (::close(fd) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string e = error_text("cannot replace", path);
    ::unlink(tmp.c_str());
    return unexpected(e);
  }
  return true;
}

}  // namespace pptp::daemon
