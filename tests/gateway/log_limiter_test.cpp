// Warnings at a bounded rate: per kind, and per kind and source, so that one flooding host
// does not silence the lines about the others.
#include "gateway/log_limiter.hpp"

#include <gtest/gtest.h>

#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

TEST(LogLimiter, OneFloodingSourceDoesNotSilenceAnother) {
  harness::CapturedLog c;
  LogLimiter limiter(c.log);
  const auto flooder = test::addr("192.0.2.66"), other = test::addr("192.0.2.20");
  std::size_t built = 0;
  for (int i = 0; i < 1000; ++i) {
    limiter.warn_source("budget_refused", flooder, 1.0, [&] { return std::to_string(++built); });
  }
  limiter.warn_source("budget_refused", other, 1.5, [] { return std::string("x"); });
  EXPECT_EQ(c.lines_with("source=192.0.2.66"), kSourceLogBurst);
  EXPECT_EQ(built, kSourceLogBurst);  // a suppressed line's text is never built
  EXPECT_EQ(c.lines_with("source=192.0.2.20"), 1u);
  // The next window says how many lines the last one suppressed, for that source.
  limiter.warn_source("budget_refused", flooder, 1.0 + kLogWindow + 1, [] { return std::string("y"); });
  EXPECT_EQ(c.lines_with("anomaly_suppressed kind=budget_refused source=192.0.2.66 lines=995"), 1u);
}

TEST(LogLimiter, ManySourcesEachWithinItsBudgetWriteAtMostTheKindsTotal) {
  harness::CapturedLog c;
  LogLimiter limiter(c.log);
  for (std::uint32_t host = 0; host < 200; ++host) {
    const wire::Ipv4Address source{0xC0000200u + host};  // 192.0.2.0 and on
    for (int i = 0; i < 10; ++i) limiter.warn_source("proxy_call_refused", source, 1.0, [] { return std::string(); });
  }
  EXPECT_EQ(c.lines_with("anomaly kind=proxy_call_refused"), kSourceLogKindBurst);
  limiter.warn_source("another_kind", test::addr("192.0.2.20"), 1.5, [] { return std::string(); });
  EXPECT_EQ(c.lines_with("anomaly kind=another_kind"), 1u) << "a total per kind";
  limiter.report_suppressed();
  // Every line not written is counted in a suppressed line: the first 20 sources spent their
  // own budgets (5 lines written, 5 held back each), and the total held back all 10 of each
  // of the other 180.
  EXPECT_EQ(c.lines_with("anomaly_suppressed kind=proxy_call_refused source="), 20u);
  EXPECT_EQ(c.lines_with("anomaly_suppressed kind=proxy_call_refused lines=1800"), 1u);
}

// A call's lines: kCallLogBurst per client, and kCallLogKindBurst per kind over all clients
// (s35 second review N3: 100 clients each within their own budget wrote 3.0 MB in 21 s).
TEST(LogLimiter, CallLinesOfManyClientsWriteAtMostTheKindsTotal) {
  harness::CapturedLog c;
  LogLimiter limiter(c.log);
  std::size_t written = 0;
  constexpr std::uint32_t kClients = 2 * kCallLogKindBurst / kCallLogBurst;
  for (std::uint32_t host = 0; host < kClients; ++host) {
    const wire::Ipv4Address client{0xC0000200u + host};  // 192.0.2.0 and on
    for (std::size_t i = 0; i < kCallLogBurst + 5; ++i) limiter.limit_call("call_closed", client, 1.0, [&] { ++written; });
  }
  EXPECT_EQ(written, kCallLogKindBurst);
  // Another kind of call line has a total of its own; the next window writes again.
  limiter.limit_call("call_established", test::addr("198.51.100.7"), 1.5, [&] { ++written; });
  limiter.limit_call("call_closed", test::addr("198.51.100.7"), 1.0 + kLogWindow + 1, [&] { ++written; });
  EXPECT_EQ(written, kCallLogKindBurst + 2);
  // Every call line held back is counted: the first clients' own 5 each, the rest by the total.
  const std::size_t own = kCallLogKindBurst / kCallLogBurst;
  EXPECT_EQ(c.lines_with("anomaly_suppressed kind=call_closed lines=" +
                         std::to_string((kClients - own) * (kCallLogBurst + 5))),
            1u);
  limiter.report_suppressed();
  EXPECT_EQ(c.lines_with("anomaly_suppressed kind=call_closed source="), own);
}

TEST(LogLimiter, AskingWhetherALineWouldBeWrittenSpendsNothing) {
  harness::CapturedLog c;
  LogLimiter limiter(c.log);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(limiter.would_admit("unknown_call", 1.0));
  for (std::size_t i = 0; i < kLogBurst; ++i) limiter.warn("unknown_call", 1.0, [] { return std::string("x"); });
  EXPECT_EQ(c.lines_with("kind=unknown_call"), kLogBurst);  // the questions spent none of it
  EXPECT_FALSE(limiter.would_admit("unknown_call", 2.0));   // now it is spent
  EXPECT_TRUE(limiter.would_admit("another_kind", 2.0));    // a budget per kind
  EXPECT_TRUE(limiter.would_admit("unknown_call", 1.0 + kLogWindow + 1));  // the next window
}

}  // namespace
}  // namespace pptp::gateway
