#include "gateway/log_limiter.hpp"

namespace pptp::gateway {

bool LogLimiter::admit(std::string_view kind, double now) {
  auto it = buckets_.find(std::string(kind));
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxLogKinds) return false;  // cannot happen with fixed names
    it = buckets_.emplace(std::string(kind), Bucket{now, 0, 0}).first;
  }
  Bucket& b = it->second;
  if (now - b.window_start > kLogWindow) {
    if (b.suppressed > 0) log_->warn("anomaly_suppressed kind={} lines={}", kind, b.suppressed);
    b = Bucket{now, 0, 0};
  }
  if (b.lines >= kLogBurst) {
    ++b.suppressed;
    return false;
  }
  ++b.lines;
  return true;
}

}  // namespace pptp::gateway
