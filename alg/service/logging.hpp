// Where the daemon's log goes and in what form (issue 15, "journald logging"). Lines are
// "event key=value key=\"quoted value\" ...", written to stderr:
//  - text (default): "TIME LEVEL event ..."; when stderr is the journal ($JOURNAL_STREAM names
//    its device and inode, systemd.exec(5)), each line starts with the "<N>" priority prefix
//    of sd-daemon(3) instead of time and level, so `journalctl -p warning` finds warnings;
//  - json (--log-format json): one object per line {"time","level","event","fields"} for a
//    SIEM's event stream.
// The "<N>" prefix rather than libsystemd's sd_journal_send(): the journal already reads our
// stderr (StandardError=journal), the prefix needs no second connection per thread, and the
// same binary logs the same lines to a terminal or a file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/common.h>
#include <spdlog/sinks/base_sink.h>

namespace pptp::service {

enum class LogFormat : std::uint8_t { Text, Json };
bool parse_log_format(std::string_view text, LogFormat& out);

// syslog(3) priority of a level: error 3, warn 4, info 6, debug and trace 7.
int syslog_priority(spdlog::level::level_enum level);

// True when `journal_stream` ("DEV:INODE", $JOURNAL_STREAM) names the file open on `fd`.
bool is_journal_stream(int fd, const char* journal_stream);

// A log message split into its event (the first word) and its key=value fields (quoted
// values unquoted); words that are no field are kept under "text".
struct LogEvent {
  std::string event;
  std::vector<std::pair<std::string, std::string>> fields;
};
LogEvent parse_log_message(std::string_view message);

// One JSON line (without newline) for a message.
std::string json_log_line(std::string_view time, std::string_view level, std::string_view message);

// Log bytes held while the packet loop sends its verdicts (a wake of at most
// nft::kMaxPacketsPerWake packets); past it the held lines are written at once.
inline constexpr std::size_t kDeferredLogBytes = 64 * 1024;

// The logger's sink: each formatted line is written at once, or, between begin_deferral()
// and end_deferral(), held in order and written by end_deferral() (so that a queued
// packet's verdict does not wait for the write() of the line its handling produced); a
// warning or an error is written at once, with the lines held before it. Lines of other
// threads in that time are held too: the order stays that of the calls to the logger.
class DeferredSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  using Writer = std::function<void(std::string_view)>;
  explicit DeferredSink(Writer writer) : writer_(std::move(writer)) {}
  void begin_deferral();
  void end_deferral();
  // Deferrals that reached kDeferredLogBytes and wrote before their end.
  std::uint64_t early_writes() const { return early_writes_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}  // every line is written by sink_it_ or end_deferral

 private:
  void write_held();
  Writer writer_;
  std::string held_;
  bool deferring_ = false;
  std::uint64_t early_writes_ = 0;
};

// Holds the default logger's lines for its lifetime (a no-op before configure_logging).
class LogDeferral {
 public:
  LogDeferral();
  ~LogDeferral();
  LogDeferral(const LogDeferral&) = delete;
  LogDeferral& operator=(const LogDeferral&) = delete;

 private:
  std::shared_ptr<DeferredSink> sink_;
};

// Replaces the default logger: stderr, in `format`, at `level`.
void configure_logging(LogFormat format, spdlog::level::level_enum level);

}  // namespace pptp::service
