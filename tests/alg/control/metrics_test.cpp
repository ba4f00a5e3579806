// The verdict latency histogram as Prometheus reads it: cumulative buckets ending in +Inf,
// the sum and the count.
#include "alg/control/metrics.hpp"

#include <gtest/gtest.h>

namespace pptp::control {
namespace {

TEST(LatencyHistogram, BucketsAreCumulativeAndEndInInf) {
  LatencyHistogram h;
  h.observe(0.000002);  // under the first bound
  h.observe(0.0002);    // 100 us < x <= 500 us
  h.observe(0.0002);
  h.observe(1.0);       // above every bound
  MetricsText m;
  m.histogram("verdict_latency_seconds", "help", h);
  const std::string& t = m.text();
  EXPECT_NE(t.find("# TYPE pptp_alg_verdict_latency_seconds histogram\n"), std::string::npos) << t;
  EXPECT_NE(t.find("pptp_alg_verdict_latency_seconds_bucket{le=\"1e-05\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("pptp_alg_verdict_latency_seconds_bucket{le=\"0.0001\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("pptp_alg_verdict_latency_seconds_bucket{le=\"0.0005\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("pptp_alg_verdict_latency_seconds_bucket{le=\"0.05\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("pptp_alg_verdict_latency_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("pptp_alg_verdict_latency_seconds_count 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("pptp_alg_verdict_latency_seconds_sum 1.0004"), std::string::npos) << t;
}

}  // namespace
}  // namespace pptp::control
