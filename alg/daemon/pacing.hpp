// Housekeeping whose cost grows with the number of calls (the status file, reading the fast
// path's counters) runs at its interval, or less often when one run takes long, so that it
// never takes more than a bounded share of a core from the packet path. The cost is the
// CPU time of the thread that did the work, not wall time: on a loaded (or emulated) machine
// a run that waited for a core says nothing of its own cost, and pacing by wall time spaced
// the status file's writes up to its one-minute bound (found in the Debian VM).
#pragma once

#include <algorithm>
#include <ctime>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace pptp::daemon {

// One run's duration times this is the least time to the next: at most 1/50 (2%) of a core.
inline constexpr double kHousekeepingCostFactor = 50.0;

// CPU seconds this thread has used (user and system, so netlink dumps count too).
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `work` on this thread and returns the CPU seconds it took (what Paced::ran takes).
template <class Work>
double cpu_seconds_of(Work&& work) {
  const double began = thread_cpu_seconds();
  work();
  return thread_cpu_seconds() - began;
}

class Paced {
 public:
  // `at_most`: the longest wait whatever the cost (e.g. idle detection needs the counters
  // within half the idle timeout).
  explicit Paced(double every, double at_most = 1e9)
      : every_(every), at_most_(std::max(every, at_most)) {}
  bool due(double now) const { return now >= next_; }
  // A run that started at `started` (seconds on the loop's clock) and took `cpu_seconds`.
  void ran(double started, double cpu_seconds) {
    last_cost_ = std::max(0.0, cpu_seconds);
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

// glibc keeps freed chunks in its arenas: after a flood's calls end, the heap they took stays
// resident. With a status file the trim follows each write (its cost part of the write's);
// without one it runs on its own, every kHeapTrimEverySeconds or less often when it costs
// (s30: 12,288 ended calls left 51.8 MB resident, 12.9 MB after a trim).
inline constexpr double kHeapTrimEverySeconds = 10.0;

inline void trim_freed_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

class HeapTrim {
 public:
  // Whether it ran.
  bool run_if_due(double now) {
    if (!paced_.due(now)) return false;
    paced_.ran(now, cpu_seconds_of(trim_freed_heap));
    return true;
  }

 private:
  Paced paced_{kHeapTrimEverySeconds, 60.0};
};

// The status file's writes (both daemons): paced by their cost, one at a time (a worker
// thread writes), and without a file the heap trim on its own.
class StatusWrites {
 public:
  StatusWrites(double every, double at_most) : paced_(every, at_most) {}
  // Whether a write starts now; ended() when it is done.
  bool start(double now, bool to_file) {
    if (!to_file) {
      trim_.run_if_due(now);  // no write to follow
      return false;
    }
    if (busy_ || !paced_.due(now)) return false;
    busy_ = true;
    return true;
  }
  void ended(double started, double cpu_seconds) {
    busy_ = false;
    paced_.ran(started, cpu_seconds);
  }
  const Paced& paced() const { return paced_; }

 private:
  Paced paced_;
  HeapTrim trim_;
  bool busy_ = false;
};

}  // namespace pptp::daemon
