// A budget of events per one-second window (alg/core/window_budget.hpp): the packet log's
// lines and the HA node's message heads.
#include "alg/core/window_budget.hpp"

#include <gtest/gtest.h>

namespace pptp {
namespace {

TEST(WindowBudget, AtMostTheLimitInAWindowTheRestCountedAndANewWindowStartsAgain) {
  WindowBudget b(2);
  EXPECT_TRUE(b.take(10.0));
  EXPECT_TRUE(b.take(10.5));
  EXPECT_FALSE(b.take(10.99));
  EXPECT_EQ(b.refused(), 1u);
  EXPECT_TRUE(b.take(11.0));  // a second after the window opened
  EXPECT_TRUE(b.take(11.2));
  EXPECT_FALSE(b.take(11.3));
  EXPECT_EQ(b.take_refused(), 2u);
  EXPECT_EQ(b.take_refused(), 0u);
}

TEST(WindowBudget, TheFirstEventOpensAWindowWhateverTheClockSays) {
  WindowBudget b(1);
  EXPECT_TRUE(b.take(0.0));
  EXPECT_FALSE(b.take(0.5));
  WindowBudget none(0);
  EXPECT_FALSE(none.take(0.0));
  EXPECT_EQ(none.refused(), 1u);
}

}  // namespace
}  // namespace pptp
