#include "alg/service/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <nlohmann/json.hpp>

namespace pptp::service {

namespace {
// "%*": the sd-daemon(3) prefix digit.
class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const char digit = static_cast<char>('0' + syslog_priority(msg.level));
    dest.push_back(digit);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PriorityFlag>(); }
};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since = msg.time.time_since_epoch();
    const std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since).count();
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char time[40];
    const std::size_t n = std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(time + n, sizeof time - n, ".%03dZ", static_cast<int>(millis));
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line = json_log_line(time, std::string_view(level.data(), level.size()),
                                           std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

std::shared_ptr<DeferredSink>& default_sink() {
  static std::shared_ptr<DeferredSink> sink;  // configure_logging's
  return sink;
}

void write_stderr(std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(2, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to report it
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// One value: quoted ("..." with \" and \\ inside) or up to the next space.
std::string take_value(std::string_view& rest) {
  std::string value;
  if (!rest.empty() && rest.front() == '"') {
    std::size_t i = 1;
    for (; i < rest.size() && rest[i] != '"'; ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
      value += rest[i];
    }
    rest.remove_prefix(std::min(rest.size(), i + 1));
    return value;
  }
  const auto end = rest.find(' ');
  value = std::string(rest.substr(0, end));
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return value;
}
}  // namespace

bool parse_log_format(std::string_view text, LogFormat& out) {
  if (text == "text" || text == "json") {
    out = text == "json" ? LogFormat::Json : LogFormat::Text;
    return true;
  }
  return false;
}

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return 2;
    case spdlog::level::err:
      return 3;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::info:
      return 6;
    default:
      return 7;
  }
}

bool is_journal_stream(int fd, const char* journal_stream) {
  if (journal_stream == nullptr) return false;
  std::uintmax_t dev = 0, ino = 0;
  if (std::sscanf(journal_stream, "%ju:%ju", &dev, &ino) != 2) return false;
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

LogEvent parse_log_message(std::string_view message) {
  LogEvent e;
  const auto first = message.find(' ');
  e.event = std::string(message.substr(0, first));
  std::string_view rest = first == std::string_view::npos ? std::string_view() : message.substr(first + 1);
  std::string text;
  while (!rest.empty()) {
    if (rest.front() == ' ') {
      rest.remove_prefix(1);
      continue;
    }
    const auto eq = rest.find('=');
    const auto space = rest.find(' ');
    if (eq == std::string_view::npos || (space != std::string_view::npos && space < eq)) {
      // A word that is no field: kept as text.
      if (!text.empty()) text += ' ';
      text += rest.substr(0, space);
      rest.remove_prefix(space == std::string_view::npos ? rest.size() : space);
      continue;
    }
    std::string key(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    e.fields.emplace_back(std::move(key), take_value(rest));
  }
  if (!text.empty()) e.fields.emplace_back("text", std::move(text));
  return e;
}

std::string json_log_line(std::string_view time, std::string_view level, std::string_view message) {
  const LogEvent e = parse_log_message(message);
  nlohmann::json fields = nlohmann::json::object();
  for (const auto& [key, value] : e.fields) fields[key] = value;
  const nlohmann::json line{{"time", time}, {"level", level}, {"event", e.event}, {"fields", std::move(fields)}};
  // Names from the wire may hold any byte: replaced, never a throw.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void DeferredSink::begin_deferral() {
  std::lock_guard<std::mutex> lock(mutex_);
  deferring_ = true;
}

void DeferredSink::end_deferral() {
  std::lock_guard<std::mutex> lock(mutex_);
  deferring_ = false;
  write_held();
}

void DeferredSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  held_.append(line.data(), line.size());
  // Warnings and errors are written at once (with what is held before them, in order), as
  // flush_on(warn) did: a daemon that dies right after one still leaves it in the log.
  if (!deferring_ || msg.level >= spdlog::level::warn) {
    write_held();
  } else if (held_.size() >= kDeferredLogBytes) {
    ++early_writes_;
    write_held();
  }
}

void DeferredSink::write_held() {
  if (held_.empty()) return;
  writer_(held_);
  held_.clear();  // keeps its capacity: no allocation per line
}

LogDeferral::LogDeferral() : sink_(default_sink()) {
  if (sink_) sink_->begin_deferral();
}

LogDeferral::~LogDeferral() {
  if (sink_) sink_->end_deferral();
}

void configure_logging(LogFormat format, spdlog::level::level_enum level) {
  default_sink() = std::make_shared<DeferredSink>(write_stderr);
  auto logger = std::make_shared<spdlog::logger>("pptp-alg", default_sink());
  if (format == LogFormat::Json) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else if (is_journal_stream(2, std::getenv("JOURNAL_STREAM"))) {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<PriorityFlag>('*').set_pattern("<%*>%l %v");  // the journal keeps its own time
    logger->set_formatter(std::move(f));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  logger->set_level(level);
  // No flush_on: the sink writes every line itself (at once, or at the end of a deferral).
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace pptp::service
