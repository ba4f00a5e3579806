// Warnings at a bounded rate, one budget per kind: a stream of hostile packets costs a
// counter, not a log line, and a flood of one kind does not silence the others. Warnings
// about what one source did (a budget it hit) have a budget per kind and source, so one
// flooding host does not silence the lines about the others. The text of a suppressed line
// is never built.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <spdlog/logger.h>

#include "alg/wire/ip.hpp"

namespace pptp::gateway {

inline constexpr std::size_t kLogBurst = 20;   // log lines per kind per window
inline constexpr double kLogWindow = 10.0;     // seconds
inline constexpr std::size_t kMaxLogKinds = 256;  // kinds are names from fixed tables
inline constexpr std::size_t kSourceLogBurst = 5;    // lines per kind and source per window
inline constexpr std::size_t kMaxLogSources = 4096;  // (kind, source) budgets kept at once
// Lines per kind per window over all sources: many hosts each within their own budget (a
// LAN's 200 addresses asking for calls past the limit wrote 19 KB/s, s30 review) still
// write no more than this.
inline constexpr std::size_t kSourceLogKindBurst = 100;
// A call's own lines (call_established, call_user, call_closed, ...) per kind and client per
// window: more than a host's connections get, so that a busy gateway keeps a line per call;
// a server that opens and ends calls on one client's connection as fast as it likes wrote
// 754 MB in 20 s before (s35 review F2).
inline constexpr std::size_t kCallLogBurst = 50;
// The same lines per kind per window over all clients: 100 calls set up a second, each
// logged; 100 clients each within their own budget wrote 3.0 MB in 21 s without it (s35
// second review N3).
inline constexpr std::size_t kCallLogKindBurst = 1000;

class LogLimiter {
 public:
  explicit LogLimiter(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}

  // Logs `kind` with the text `make_text()` returns, unless the kind's budget is spent.
  template <class MakeText>
  void warn(std::string_view kind, double now, MakeText&& make_text) {
    if (admit(kind, now)) log_->warn("anomaly kind={} {}", kind, make_text());
  }
  // The same with a budget per kind and source, and one per kind over all sources
  // (kSourceLogKindBurst). Past kMaxLogSources budgets at once, the sources not yet seen
  // share the kind's own.
  template <class MakeText>
  void warn_source(std::string_view kind, wire::Ipv4Address source, double now, MakeText&& make_text) {
    if (admit_source(kind, source, now, kSourceLogBurst, kSourceLogKindBurst)) log_->warn("anomaly kind={} source={} {}", kind, wire::to_string(source), make_text());
  }
  // A line of its own text and level (one per connection: connection_closed, ...) under the
  // same budget per kind and source: `emit()` writes it, only if admitted.
  template <class Emit>
  void limit_source(std::string_view kind, wire::Ipv4Address source, double now, Emit&& emit) {
    if (admit_source(kind, source, now, kSourceLogBurst, kSourceLogKindBurst)) emit();
  }
  // A call's line: kCallLogBurst per kind and client, kCallLogKindBurst over all (above).
  template <class Emit>
  void limit_call(std::string_view kind, wire::Ipv4Address source, double now, Emit&& emit) {
    if (admit_source(kind, source, now, kCallLogBurst, kCallLogKindBurst)) emit();
  }
  // Whether warn(kind, now, ...) would write its line now (the level on, the kind's budget
  // not spent), without spending it: the caller skips making a text that would be dropped.
  bool would_admit(std::string_view kind, double now) const;
  // At the end (the daemon stops): the lines each budget's current window held back, so
  // that every event is a line or counted in one.
  void report_suppressed();

 private:
  struct Bucket {
    double window_start = 0;
    std::size_t lines = 0;
    std::uint64_t suppressed = 0;
  };
  bool admit(std::string_view kind, double now);
  bool admit_source(std::string_view kind, wire::Ipv4Address source, double now, std::size_t burst,
                    std::size_t kind_burst);
  // Spends one line of `b`'s budget; a new window first reports what the last suppressed.
  bool spend(Bucket& b, std::size_t burst, std::string_view kind, const wire::Ipv4Address* source, double now);
  void report(Bucket& b, std::string_view kind, const wire::Ipv4Address* source);

  std::shared_ptr<spdlog::logger> log_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::map<std::pair<std::string, std::uint32_t>, Bucket, std::less<>> source_buckets_;
  std::map<std::string, Bucket, std::less<>> source_totals_;  // by kind: its lines over all sources
};

}  // namespace pptp::gateway
