#include "alg/daemon/pacing.hpp"
#include "alg/daemon/status_worker.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

namespace pptp::daemon {
namespace {

TEST(Paced, CheapWorkRunsAtItsInterval) {
  Paced p(5.0);
  EXPECT_TRUE(p.due(0));
  p.ran(0, 0.01);  // 10 ms: 0.5 s at 50x, under the interval
  EXPECT_FALSE(p.due(4.9));
  EXPECT_TRUE(p.due(5.0));
  EXPECT_DOUBLE_EQ(p.interval(), 5.0);
}

TEST(Paced, CostlyWorkBacksOffToABoundedShareOfACore) {
  Paced p(1.0);
  p.ran(10, 0.5);  // 0.5 s of work: next run 25 s after this one started
  EXPECT_FALSE(p.due(34.9));
  EXPECT_TRUE(p.due(35.0));
  EXPECT_LE(p.last_cost() / p.interval(), 1.0 / kHousekeepingCostFactor + 1e-9);
  p.ran(35, 0.001);  // cheap again: back to its interval
  EXPECT_TRUE(p.due(36.0));
}

TEST(Paced, NeverWaitsLongerThanItsBound) {
  Paced p(5.0, 150.0);  // e.g. counters within half a 300 s idle timeout
  p.ran(0, 10);         // 10 s of work would mean 500 s
  EXPECT_DOUBLE_EQ(p.interval(), 150.0);
  EXPECT_TRUE(p.due(150.0));
}

// The cost is the thread's CPU time: a run that waited (for a core, for the disk) is not
// paced as if it had worked all that time.
TEST(Paced, CostIsCpuTimeNotTimeWaited) {
  const double before = thread_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(thread_cpu_seconds() - before, 0.15);  // 300 ms of wall time passed
}

// Without a status file the heap is trimmed on its own: at once, then every
// kHeapTrimEverySeconds (a trim costs far less than 1/50 of that), not on every tick.
TEST(HeapTrim, RunsAtItsIntervalNotEveryTick) {
  HeapTrim trim;
  EXPECT_TRUE(trim.run_if_due(100.0));
  EXPECT_FALSE(trim.run_if_due(101.0));
  EXPECT_FALSE(trim.run_if_due(100.0 + kHeapTrimEverySeconds - 0.5));
  EXPECT_TRUE(trim.run_if_due(100.0 + kHeapTrimEverySeconds + 0.5));
}

// One write at a time: none starts while the worker's is running, the next once it ended
// and its interval passed. Without a file no write starts at all.
TEST(StatusWrites, OneAtATimeAndNoneWithoutAFile) {
  StatusWrites writes(1.0, 60.0);
  EXPECT_FALSE(writes.start(0.0, false));
  ASSERT_TRUE(writes.start(0.0, true));
  EXPECT_FALSE(writes.start(5.0, true));  // still being written
  writes.ended(0.0, 0.001);
  EXPECT_TRUE(writes.start(5.0, true));
  writes.ended(5.0, 0.1);  // 0.1 s of CPU: the next 5 s later (1/50 of a core)
  EXPECT_FALSE(writes.start(9.9, true));
  EXPECT_TRUE(writes.start(10.0, true));
}

// Both daemons' status write (status_worker.hpp): the copy is made on the loop, written on the
// worker and freed there, the result heard on the loop, and the next write waits for it.
TEST(StatusWrites, ACopyIsWrittenOffTheLoopAndTheNextWaitsForItsResult) {
  boost::asio::io_context loop;
  boost::asio::thread_pool worker(1);
  StatusWrites writes(1.0, 60.0);
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id wrote_on;
  std::weak_ptr<int> copy_alive;
  std::optional<std::string> heard;
  auto write_once = [&](double now) {
    return write_status_off_loop(
        writes, now, true, worker, loop,
        [&] {
          auto copy = std::make_shared<int>(7);
          copy_alive = copy;
          return copy;
        },
        [&](std::shared_ptr<int>& copy) -> std::optional<std::string> {
          wrote_on = std::this_thread::get_id();
          return *copy == 7 ? std::optional<std::string>("disk full") : std::nullopt;
        },
        [&](const std::optional<std::string>& error) { heard = error; });
  };
  ASSERT_TRUE(write_once(0.0).has_value());
  EXPECT_FALSE(write_once(0.5).has_value()) << "one at a time";
  worker.wait();  // the worker's part has run; the result waits on the loop
  EXPECT_NE(wrote_on, loop_thread);
  EXPECT_TRUE(copy_alive.expired()) << "the copy is freed on the worker, before the trim";
  EXPECT_FALSE(heard.has_value()) << "heard on the loop only";
  EXPECT_FALSE(writes.start(5.0, true)) << "still busy until the loop hears the result";
  loop.run();
  EXPECT_EQ(heard, std::optional<std::string>("disk full"));
  EXPECT_TRUE(write_once(5.0).has_value()) << "free again once heard";
}

}  // namespace
}  // namespace pptp::daemon
