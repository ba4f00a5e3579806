// A node's published calls kept for its next run (docs/ha.md, "A restarted active
// daemon"): written to the state file on the tick, read back at start to publish again the
// calls the restarted daemon adopted from the kernel's elements.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>

#include "alg/daemon/ha_node.hpp"
#include "sync/table_file.hpp"

namespace pptp::daemon {

namespace {

// `bytes` to a new file `path`, owner-only (it holds user names); a link there is not
// followed. False on any error.
bool write_private_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = ::fchmod(fd, 0600) == 0;  // a file left by an older run may have another mode
  for (std::size_t at = 0; ok && at < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) at += static_cast<std::size_t>(n);
  }
  return ::close(fd) == 0 && ok;
}

// The whole file, if it is no larger than any table decode_table accepts.
enum class ReadTable : std::uint8_t { Read, Missing, TooLarge };
ReadTable read_table_file(const std::string& path, std::vector<std::uint8_t>& bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return ReadTable::Missing;
  const std::streamoff size = in.tellg();
  if (size < 0) return ReadTable::Missing;
  if (static_cast<std::uint64_t>(size) > sync::max_table_bytes()) return ReadTable::TooLarge;
  bytes.resize(static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  bytes.resize(static_cast<std::size_t>(in.gcount()));  // a file cut meanwhile: decode refuses it
  return ReadTable::Read;
}

}  // namespace

void HaNode::save_table() {
  if (!table_changed_ || state_file_.empty()) return;
  std::vector<sync::CallState> calls;
  calls.reserve(channel_.published().size());
  for (const auto& [key, s] : channel_.published().calls()) calls.push_back(s);
  const std::vector<std::uint8_t> bytes = sync::encode_table(calls);
  // Written aside and renamed: a daemon killed meanwhile leaves the previous table whole.
  const std::string aside = state_file_ + ".new";
  const bool saved = write_private_file(aside, bytes) && std::rename(aside.c_str(), state_file_.c_str()) == 0;
  if (!saved && !save_failing_) {
    log_->warn("ha_state_save_failed file={} note=\"a restart cannot publish its adopted calls again\"", state_file_);
  }
  save_failing_ = !saved;
  table_changed_ = !saved;
}

std::size_t HaNode::republish_adopted(const std::vector<nat::CallBinding>& offloaded) {
  table_changed_ = true;  // this run's table replaces the previous one from here on
  if (state_file_.empty() || offloaded.empty()) return 0;
  std::vector<std::uint8_t> bytes;
  const ReadTable read = read_table_file(state_file_, bytes);
  if (read == ReadTable::Missing) return 0;
  if (read == ReadTable::TooLarge) {
    log_->warn("ha_state_unreadable file={} error=too_large limit_bytes={}", state_file_, sync::max_table_bytes());
    return 0;
  }
  auto previous = sync::decode_table(bytes);
  if (!previous) {
    log_->warn("ha_state_unreadable file={} error={}", state_file_, sync::name_of(previous.error()));
    return 0;
  }
  const OffloadedKeys live(offloaded);
  std::vector<sync::CallState> adopted;
  for (sync::CallState& s : *previous) {
    if (live.contains(binding_of(s))) adopted.push_back(std::move(s));
  }
  republished_.publish(channel_, adopted);
  flush();
  // Carried as taken-over calls once this node is active (docs/ha.md, "A restarted active
  // daemon"): their Call-ID fields translated, their ends heard, their connections resumed at
  // their positions. Inert while standby.
  taken_over_.add(adopted);
  log_->info("ha_republished_adopted calls={} previous_run={}", adopted.size(), previous->size());
  return adopted.size();
}

}  // namespace pptp::daemon
