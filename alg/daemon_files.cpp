// What `status` and `reload` check of the daemon's files before they trust them: a daemon
// killed (SIGKILL, OOM) leaves both behind (operator review s38 F13).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "alg/daemon_flags.hpp"

namespace pptp::cli {

// The daemon writes its status at least once a minute (kStatusAtMostSeconds, 60 s at 60,000
// calls): twice that and more without a write means no daemon writes it.
inline constexpr double kStaleStatusSeconds = 120.0;

std::optional<std::string> stale_status_note(const std::string& file) {
  std::error_code ec;
  const auto written = std::filesystem::last_write_time(file, ec);
  if (ec) return std::nullopt;
  const double age = std::chrono::duration<double>(std::filesystem::file_time_type::clock::now() - written).count();
  if (age < kStaleStatusSeconds) return std::nullopt;
  return "pptp-alg status: " + file + " was last written " + std::to_string(static_cast<long>(age)) +
         " s ago: the daemon that wrote it is not running (or stalled); this is its last table";
}

// The PID's program is pptp-alg (argv[0]'s name starts so: a copy named pptp-alg.old too): a
// PID left in a stale pid file may now be another program's, which SIGHUP would end.
bool runs_pptp_alg(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string argv0;
  if (!std::getline(in, argv0, '\0')) return false;
  return std::filesystem::path(argv0).filename().string().starts_with("pptp-alg");
}

// One daemon of each mode per network namespace: a second transparent daemon with
// --install-rules replaced the first's table ip pptp_alg and pointed its queue rules at its own
// queue, and the first got no packet and said nothing (operator review s38 F9). An abstract
// unix socket (its name is per network namespace, and it goes with its process, a SIGKILL
// too) claims the mode; a second daemon finds it bound and asks it for its PID.
std::optional<std::string> claim_instance(std::string_view mode) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string name = "pptp-alg/" + std::string(mode);  // a.sun_path[0] stays 0: abstract
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;  // no claim possible: start as before
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), length) == 0 && ::listen(fd, 1) == 0) {
    return std::nullopt;  // held until the process ends: fd is left open on purpose
  }
  const int bind_errno = errno;
  ::close(fd);
  if (bind_errno != EADDRINUSE) return std::nullopt;
  std::string who = "another pptp-alg";
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ucred peer{};
  socklen_t peer_length = sizeof peer;
  if (probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&a), length) == 0 &&
      ::getsockopt(probe, SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) == 0 && peer.pid > 0) {
    who += " (PID " + std::to_string(peer.pid) + ")";
  }
  if (probe >= 0) ::close(probe);
  return who + " runs in " + std::string(mode) + " mode in this network namespace: a second would take over its " +
         "table and queue; stop it first, or run this one in another network namespace";
}

}  // namespace pptp::cli
