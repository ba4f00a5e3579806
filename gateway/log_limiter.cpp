#include "gateway/log_limiter.hpp"

#include <iterator>

namespace pptp::gateway {

bool LogLimiter::spend(Bucket& b, std::size_t burst, std::string_view kind, const wire::Ipv4Address* source,
                       double now) {
  if (now - b.window_start > kLogWindow) {
    report(b, kind, source);
    b = Bucket{now, 0, 0};
  }
  if (b.lines >= burst) {
    ++b.suppressed;
    return false;
  }
  ++b.lines;
  return true;
}

void LogLimiter::report(Bucket& b, std::string_view kind, const wire::Ipv4Address* source) {
  if (b.suppressed > 0 && source != nullptr) {
    log_->warn("anomaly_suppressed kind={} source={} lines={}", kind, wire::to_string(*source), b.suppressed);
  } else if (b.suppressed > 0) {
    log_->warn("anomaly_suppressed kind={} lines={}", kind, b.suppressed);
  }
  b.suppressed = 0;
}

void LogLimiter::report_suppressed() {
  for (auto& [kind, b] : buckets_) report(b, kind, nullptr);
  for (auto& [kind, b] : source_totals_) report(b, kind, nullptr);
  for (auto& [key, b] : source_buckets_) {
    const wire::Ipv4Address source{key.second};
    report(b, key.first, &source);
  }
}

bool LogLimiter::would_admit(std::string_view kind, double now) const {
  if (!log_->should_log(spdlog::level::warn)) return false;
  const auto it = buckets_.find(std::string(kind));
  if (it == buckets_.end()) return buckets_.size() < kMaxLogKinds;
  return now - it->second.window_start > kLogWindow || it->second.lines < kLogBurst;
}

bool LogLimiter::admit(std::string_view kind, double now) {
  auto it = buckets_.find(std::string(kind));
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxLogKinds) return false;  // cannot happen with fixed names
    it = buckets_.emplace(std::string(kind), Bucket{now, 0, 0}).first;
  }
  return spend(it->second, kLogBurst, kind, nullptr, now);
}

bool LogLimiter::admit_source(std::string_view kind, wire::Ipv4Address source, double now, std::size_t burst,
                              std::size_t kind_burst) {
  auto key = std::make_pair(std::string(kind), source.value);
  auto it = source_buckets_.find(key);
  if (it == source_buckets_.end()) {
    if (source_buckets_.size() >= kMaxLogSources) {
      // Forget the budgets whose window has passed with nothing suppressed: as if new.
      for (auto b = source_buckets_.begin(); b != source_buckets_.end();) {
        const bool idle = now - b->second.window_start > kLogWindow && b->second.suppressed == 0;
        b = idle ? source_buckets_.erase(b) : std::next(b);
      }
    }
    if (source_buckets_.size() >= kMaxLogSources) return admit(kind, now);
    it = source_buckets_.emplace(std::move(key), Bucket{now, 0, 0}).first;
  }
  Bucket& own = it->second;
  if (!spend(own, burst, kind, &source, now)) return false;
  auto all = source_totals_.find(kind);
  if (all == source_totals_.end()) all = source_totals_.emplace(std::string(kind), Bucket{now, 0, 0}).first;
  if (spend(all->second, kind_burst, kind, nullptr, now)) return true;
  --own.lines;  // not written: the total held it back, and counted it
  return false;
}

}  // namespace pptp::gateway
