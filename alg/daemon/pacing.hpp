// Housekeeping whose cost grows with the number of calls (the status file, reading the fast
// path's counters) runs at its interval, or less often when one run takes long, so that it
// never takes more than a bounded share of a core from the packet path.
#pragma once

#include <algorithm>

namespace pptp::daemon {

// One run's duration times this is the least time to the next: at most 1/50 (2%) of a core.
inline constexpr double kHousekeepingCostFactor = 50.0;

class Paced {
 public:
  // `at_most`: the longest wait whatever the cost (e.g. idle detection needs the counters
  // within half the idle timeout).
  explicit Paced(double every, double at_most = 1e9)
      : every_(every), at_most_(std::max(every, at_most)) {}
  bool due(double now) const { return now >= next_; }
  // A run that started at `started` (seconds) and ended at `finished`.
  void ran(double started, double finished) {
    last_cost_ = std::max(0.0, finished - started);
    next_ = started + interval();
  }
  double interval() const {
    return std::min(at_most_, std::max(every_, last_cost_ * kHousekeepingCostFactor));
  }
  double last_cost() const { return last_cost_; }

 private:
  double every_;
  double at_most_;
  double next_ = 0;
  double last_cost_ = 0;
};

}  // namespace pptp::daemon
