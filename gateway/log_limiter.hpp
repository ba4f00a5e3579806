// Warnings at a bounded rate, one budget per kind: a stream of hostile packets costs a
// counter, not a log line, and a flood of one kind does not silence the others. The text
// of a suppressed line is never built.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include <spdlog/logger.h>

namespace pptp::gateway {

inline constexpr std::size_t kLogBurst = 20;   // log lines per kind per window
inline constexpr double kLogWindow = 10.0;     // seconds
inline constexpr std::size_t kMaxLogKinds = 256;  // kinds are names from fixed tables

class LogLimiter {
 public:
  explicit LogLimiter(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}

  // Logs `kind` with the text `make_text()` returns, unless the kind's budget is spent.
  template <class MakeText>
  void warn(std::string_view kind, double now, MakeText&& make_text) {
    if (admit(kind, now)) log_->warn("anomaly kind={} {}", kind, make_text());
  }

 private:
  struct Bucket {
    double window_start = 0;
    std::size_t lines = 0;
    std::uint64_t suppressed = 0;
  };
  bool admit(std::string_view kind, double now);

  std::shared_ptr<spdlog::logger> log_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace pptp::gateway
