// What `status` and `reload` check of the daemon's files before they trust them: a daemon
// killed (SIGKILL, OOM) leaves both behind (operator review s38 F13).
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

}  // namespace pptp::cli
