// At most `limit` events in each one-second window of a caller's clock (seconds), the rest
// counted: the packet log's lines (alg/daemon/packet_log.cpp) and the HA node's message
// heads (alg/daemon/ha_heads.cpp) hold such a budget without any policy.
#pragma once

#include <cstdint>

namespace pptp {

class WindowBudget {
 public:
  explicit WindowBudget(std::uint64_t limit) : limit_(limit) {}
  // Whether one more event fits in the window of `now`; a refusal is counted.
  bool take(double now) {
    if (now - window_start_ >= 1.0) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= limit_) {
      ++refused_;
      return false;
    }
    ++used_;
    return true;
  }
  std::uint64_t refused() const { return refused_; }
  // The refusals counted so far, and the count starts again.
  std::uint64_t take_refused() {
    const std::uint64_t n = refused_;
    refused_ = 0;
    return n;
  }
  std::uint64_t limit() const { return limit_; }

 private:
  std::uint64_t limit_;
  double window_start_ = -1e18;  // no window yet: the first event opens one
  std::uint64_t used_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace pptp
