// The out-of-order lists a TcpWindow keeps per sender exist only while something is held
// past a gap (issue 17, memory per connection): a connection whose segments come in order
// never has them, and they go once what they held is reached, acknowledged or passed.
#include <gtest/gtest.h>

#include "alg/stream/tcp_window.hpp"
#include "tests/alg/stream/tcp_window_helpers.hpp"

namespace pptp::stream {
namespace {

TEST(TcpWindowAhead, AConnectionInOrderHoldsNothing) {
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 100)).take);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 100, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  EXPECT_FALSE(c.w.holds_out_of_order(kPns));
  EXPECT_FALSE(c.w.holds_out_of_order(kPac));
}

TEST(TcpWindowAhead, DataPastAGapIsHeldUntilTheGapFills) {
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 50, f::kAck, 50001, 1000, 50)).take);
  EXPECT_TRUE(c.w.holds_out_of_order(kPns));
  EXPECT_FALSE(c.w.holds_out_of_order(kPac));
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 50)).take);
  EXPECT_FALSE(c.w.holds_out_of_order(kPns));
  // The held range was taken: a FIN right after both acts.
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 100, f::kFin | f::kAck, 50001, 1000)).fin_acts);
}

TEST(TcpWindowAhead, TheReceiversAcknowledgmentPastTheHeldDataLetsItGo) {
  // The gap's data passed another way (or we missed it): the PAC acknowledges all of it.
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 50, f::kAck, 50001, 1000, 50)).take);
  EXPECT_TRUE(c.w.holds_out_of_order(kPns));
  EXPECT_TRUE(c.w.judge(kPac, segment(50001, f::kAck, c.pns_next() + 100, 1000)).take);
  EXPECT_FALSE(c.w.holds_out_of_order(kPns));
}

TEST(TcpWindowAhead, AFinAheadIsHeldUntilTheDataBeforeItComes) {
  Connection c(1000, 50000);
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 30, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  EXPECT_TRUE(c.w.holds_out_of_order(kPns));
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 30)).fin_acts);
  EXPECT_FALSE(c.w.holds_out_of_order(kPns));
}

TEST(TcpWindowAhead, AForgedFinAheadThatTheRealDataPassesGoes) {
  Connection c(1000, 50000);
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 10, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  EXPECT_TRUE(c.w.holds_out_of_order(kPns));
  // Real data over the forged FIN's number: not the sender's FIN, forgotten.
  const TcpVerdict data = c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 40));
  EXPECT_TRUE(data.take);
  EXPECT_FALSE(data.fin_acts);
  EXPECT_FALSE(c.w.holds_out_of_order(kPns));
}

TEST(TcpWindowAhead, AFlockForgedAheadStaysBoundedAndTheRealFinStillActs) {
  // Ranges that never fill keep the lists; they hold at most their named limits, and the
  // real data and FIN, in order, act as before.
  Connection c(1000, 50000);
  for (std::uint32_t i = 0; i < 3 * kMaxHeldRanges; ++i) {
    EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 400 + 40 * i, f::kAck, 50001, 1000, 10)).take);
  }
  for (std::uint32_t i = 0; i < 3 * kMaxFinsAhead; ++i) {
    c.w.judge(kPns, segment(c.pns_next() + 300 + i, f::kFin | f::kAck, 50001, 1000));
  }
  EXPECT_TRUE(c.w.holds_out_of_order(kPns));
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 20)).take);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 20, f::kFin | f::kAck, 50001, 1000)).fin_acts);
}

}  // namespace
}  // namespace pptp::stream
