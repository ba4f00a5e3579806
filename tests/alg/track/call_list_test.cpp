// A connection's calls found by Call ID, below and past the size from which they are indexed.
#include "alg/track/call_list.hpp"

#include <gtest/gtest.h>

#include "alg/track/tracker.hpp"

namespace pptp::track {
namespace {

// `n` calls opened in order, PNS Call IDs 100.., PAC Call IDs 500.. (RFC 2637 2.7, 2.8).
struct Calls {
  CallList list;
  std::uint64_t next_id = 1;

  Call& open(std::optional<std::uint16_t> pns, std::optional<std::uint16_t> pac,
             CallOrigin origin = CallOrigin::Outgoing) {
    auto c = std::make_unique<Call>();
    c->id = next_id++;
    c->origin = origin;
    Call& call = list.add(std::move(c));
    if (pns) list.name_pns_call_id(call, *pns);
    if (pac) list.name_pac_call_id(call, *pac);
    return call;
  }
  explicit Calls(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      open(static_cast<std::uint16_t>(100 + i), static_cast<std::uint16_t>(500 + i));
    }
  }
};

class CallListSizes : public testing::TestWithParam<std::size_t> {};

// Short lists are walked, long ones indexed: the answers must be the same.
INSTANTIATE_TEST_SUITE_P(ShortAndIndexed, CallListSizes, testing::Values(std::size_t{3}, 2 * kCallIndexFrom + 1));

TEST_P(CallListSizes, FindsEveryCallByEitherCallId) {
  Calls calls(GetParam());
  EXPECT_EQ(calls.list.indexed(), GetParam() >= kCallIndexFrom);
  for (std::size_t i = 0; i < GetParam(); ++i) {
    Call* by_pns = calls.list.find_by_pns_call_id(static_cast<std::uint16_t>(100 + i));
    ASSERT_NE(by_pns, nullptr);
    EXPECT_EQ(by_pns->id, i + 1);
    EXPECT_EQ(calls.list.find_by_pac_call_id(static_cast<std::uint16_t>(500 + i)), by_pns);
  }
  // A PAC's Call ID is not a PNS's: the sides are apart.
  EXPECT_EQ(calls.list.find_by_pns_call_id(500), nullptr);
  EXPECT_EQ(calls.list.find_by_pac_call_id(100), nullptr);
}

TEST_P(CallListSizes, ARemovedCallIsNoLongerFoundAndTheOthersStill) {
  Calls calls(GetParam());
  Call& middle = *calls.list[1];
  calls.list.close(middle);
  EXPECT_EQ(calls.list.open_count(), GetParam() - 1);  // closing: listed, not counted
  EXPECT_EQ(calls.list.size(), GetParam());
  calls.list.remove(middle);
  EXPECT_EQ(calls.list.size(), GetParam() - 1);
  EXPECT_EQ(calls.list.open_count(), GetParam() - 1);
  EXPECT_EQ(calls.list.find_by_pns_call_id(101), nullptr);
  EXPECT_EQ(calls.list.find_by_pac_call_id(501), nullptr);
  ASSERT_NE(calls.list.find_by_pns_call_id(102), nullptr);
  EXPECT_EQ(calls.list.find_by_pns_call_id(102)->id, 3u);
}

TEST_P(CallListSizes, ADuplicateCallIdFindsTheOldestCall) {
  Calls calls(GetParam());
  // A PAC answering a second call with a Call ID it already uses (DuplicateCallId): the
  // first call keeps it until it goes.
  Call& reused = calls.open(7, 500);
  EXPECT_EQ(calls.list.find_by_pac_call_id(500)->id, 1u);
  calls.list.remove(*calls.list[0]);
  EXPECT_EQ(calls.list.find_by_pac_call_id(500), &reused);
}

TEST_P(CallListSizes, ACallRenamedIsFoundByItsNewCallIdOnly) {
  Calls calls(GetParam());
  Call& first = *calls.list[0];
  calls.list.name_pns_call_id(first, 9000);
  EXPECT_EQ(calls.list.find_by_pns_call_id(100), nullptr);
  EXPECT_EQ(calls.list.find_by_pns_call_id(9000), &first);
  EXPECT_EQ(*first.pns_call_id, 9000);
}

TEST_P(CallListSizes, FindsByOriginWhenAskedFor) {
  Calls calls(GetParam());
  // An incoming call (RFC 2637 2.10) whose PNS chose a Call ID an outgoing call also has.
  Call& incoming = calls.open(100, 9001, CallOrigin::Incoming);
  EXPECT_EQ(calls.list.find_by_pns_call_id(100, CallOrigin::Incoming), &incoming);
  EXPECT_EQ(calls.list.find_by_pns_call_id(100, CallOrigin::Outgoing)->id, 1u);
  EXPECT_EQ(calls.list.find_by_pns_call_id(100)->id, 1u);
}

TEST_P(CallListSizes, EachSideKeepsItsOwnCallIdsWhenTheValuesInterleave) {
  // Both sides' Call IDs from the same numbers (PNS even, PAC odd), named in mixed order and
  // some calls named on the PAC's side first: every find still answers its own side.
  Calls calls(0);
  const std::size_t n = GetParam();
  std::vector<Call*> opened;
  for (std::size_t i = 0; i < n; ++i) {
    const auto even = static_cast<std::uint16_t>(2 * i), odd = static_cast<std::uint16_t>(2 * i + 1);
    opened.push_back(i % 2 == 0 ? &calls.open(even, odd) : &calls.open(std::nullopt, odd));
  }
  for (std::size_t i = 1; i < n; i += 2) calls.list.name_pns_call_id(*opened[i], static_cast<std::uint16_t>(2 * i));
  calls.list.remove(*opened[0]);
  for (std::size_t i = 1; i < n; ++i) {
    EXPECT_EQ(calls.list.find_by_pns_call_id(static_cast<std::uint16_t>(2 * i)), opened[i]) << i;
    EXPECT_EQ(calls.list.find_by_pac_call_id(static_cast<std::uint16_t>(2 * i + 1)), opened[i]) << i;
    EXPECT_EQ(calls.list.find_by_pns_call_id(static_cast<std::uint16_t>(2 * i + 1)), nullptr) << i;
    EXPECT_EQ(calls.list.find_by_pac_call_id(static_cast<std::uint16_t>(2 * i)), nullptr) << i;
  }
}

// Calls the PAC placed and the PNS has not answered are counted as the list changes (the
// tracker judges an Incoming-Call-Request by the count, not by a walk of the calls).
TEST_P(CallListSizes, CountsTheIncomingCallsNotYetAnswered) {
  Calls calls(GetParam());
  EXPECT_EQ(calls.list.unanswered_incoming(), 0u);
  Call& answered = calls.open(std::nullopt, 900, CallOrigin::Incoming);
  Call& refused = calls.open(std::nullopt, 901, CallOrigin::Incoming);
  Call& waiting = calls.open(std::nullopt, 902, CallOrigin::Incoming);
  calls.open(std::nullopt, 903, CallOrigin::Outgoing);  // an outgoing call waiting: not counted
  EXPECT_EQ(calls.list.unanswered_incoming(), 3u);
  calls.list.name_pns_call_id(answered, 700);  // its Incoming-Call-Reply
  calls.list.name_pns_call_id(answered, 701);  // renamed: counted once
  calls.list.close(refused);
  calls.list.close(refused);
  EXPECT_EQ(calls.list.unanswered_incoming(), 1u);
  calls.list.remove(refused);
  calls.list.close(answered);
  calls.list.remove(answered);
  EXPECT_EQ(calls.list.unanswered_incoming(), 1u);
  calls.list.remove(waiting);  // removed without a close (the connection went)
  EXPECT_EQ(calls.list.unanswered_incoming(), 0u);
}

TEST(CallList, TheIndexGoesWithTheLastCall) {
  Calls calls(kCallIndexFrom);
  ASSERT_TRUE(calls.list.indexed());
  while (!calls.list.empty()) calls.list.remove(*calls.list.back());
  EXPECT_FALSE(calls.list.indexed());
  Calls again(1);
  EXPECT_EQ(again.list.find_by_pns_call_id(100)->id, 1u);
}

}  // namespace
}  // namespace pptp::track
