#include "alg/stream/reassembler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/alg/stream/stream_support.hpp"

namespace pptp::stream {
namespace {

using test::Collector;
using test::joined;
using test::Message;
using test::pns_messages;

constexpr std::uint32_t kIsn = 1000;

TEST(Reassembler, CoalescedMessagesInOneSegment) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  Reassembler r;
  Collector c;
  r.on_syn(kIsn);
  r.feed(kIsn + 1, stream, c);
  EXPECT_EQ(c.messages, expected);
  EXPECT_TRUE(c.anomalies.empty());
  EXPECT_EQ(r.buffered_bytes(), 0u);
  EXPECT_EQ(r.delivered_bytes(), stream.size());
}

TEST(Reassembler, EverySplitPointGivesTheSameMessages) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  for (std::size_t i = 1; i < stream.size(); ++i) {
    Reassembler r;
    Collector c;
    r.on_syn(kIsn);
    r.feed(kIsn + 1, Bytes(stream).first(i), c);
    r.feed(kIsn + 1 + static_cast<std::uint32_t>(i), Bytes(stream).subspan(i), c);
    ASSERT_EQ(c.messages, expected) << "split at " << i;
  }
}

// Issue 17 (memory per call): a direction at a message boundary with no gap holds no
// buffer at all; one is taken while a message is cut or a segment waits past a gap, and
// given back as soon as it is whole.
TEST(Reassembler, HoldsNoBufferAtAMessageBoundary) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  const Bytes s(stream);
  Reassembler r;
  Collector c;
  r.on_syn(kIsn);
  EXPECT_EQ(r.allocated_bytes(), 0u);
  const std::size_t first = expected[0].size();
  r.feed(kIsn + 1, s.first(first), c);  // one whole message
  EXPECT_EQ(r.allocated_bytes(), 0u);
  r.feed(kIsn + 1 + static_cast<std::uint32_t>(first), s.subspan(first, 10), c);  // a message cut
  EXPECT_GT(r.allocated_bytes(), 0u);
  EXPECT_EQ(r.buffered_bytes(), 10u);
  const std::size_t rest_at = first + expected[1].size();
  r.feed(kIsn + 1 + static_cast<std::uint32_t>(rest_at), s.subspan(rest_at), c);  // past a gap
  EXPECT_TRUE(r.has_gap());
  r.feed(kIsn + 1 + static_cast<std::uint32_t>(first + 10), s.subspan(first + 10, rest_at - first - 10), c);
  EXPECT_EQ(c.messages, expected);
  EXPECT_EQ(r.buffered_bytes(), 0u);
  EXPECT_FALSE(r.has_gap());
  EXPECT_EQ(r.allocated_bytes(), 0u);
}

// Each message is reported with the TCP sequence number of its first byte, however the
// stream was cut: NAT rewrites Call IDs at those positions.
std::vector<std::uint32_t> expected_sequences(const std::vector<Message>& ms, std::uint32_t first) {
  std::vector<std::uint32_t> out;
  for (const auto& m : ms) {
    out.push_back(first);
    first += static_cast<std::uint32_t>(m.size());
  }
  return out;
}

TEST(Reassembler, MessagesCarryTheSequenceOfTheirFirstByte) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  for (std::size_t i = 1; i < stream.size(); i += 7) {
    Reassembler r;
    Collector c;
    r.on_syn(0xfffffff0u);  // across the wrap
    r.feed(0xfffffff1u, Bytes(stream).first(i), c);
    r.feed(0xfffffff1u + static_cast<std::uint32_t>(i), Bytes(stream).subspan(i), c);
    ASSERT_EQ(c.sequences, expected_sequences(expected, 0xfffffff1u)) << "split at " << i;
  }
}

TEST(Reassembler, EveryPairOfSplitPointsGivesTheSameMessages) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  const Bytes s(stream);
  for (std::size_t i = 1; i < s.size(); i += 3) {
    for (std::size_t j = i + 1; j < s.size(); ++j) {
      Reassembler r;
      Collector c;
      r.on_syn(kIsn);
      r.feed(kIsn + 1, s.first(i), c);
      r.feed(kIsn + 1 + static_cast<std::uint32_t>(i), s.subspan(i, j - i), c);
      r.feed(kIsn + 1 + static_cast<std::uint32_t>(j), s.subspan(j), c);
      ASSERT_EQ(c.messages, expected) << i << "," << j;
    }
  }
}

TEST(Reassembler, ByteByByte) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  Reassembler r;
  Collector c;
  r.on_syn(kIsn);
  for (std::size_t i = 0; i < stream.size(); ++i) {
    r.feed(kIsn + 1 + static_cast<std::uint32_t>(i), Bytes(stream).subspan(i, 1), c);
    EXPECT_LT(r.buffered_bytes(), wire::kMaxControlMessageLength);
  }
  EXPECT_EQ(c.messages, expected);
}

struct Segment {
  std::uint32_t seq;
  Message data;
};

std::vector<Segment> cut(const Message& stream, std::uint32_t first_seq, std::vector<std::size_t> cuts) {
  std::vector<Segment> segs;
  std::size_t prev = 0;
  cuts.push_back(stream.size());
  for (std::size_t c : cuts) {
    segs.push_back({first_seq + static_cast<std::uint32_t>(prev),
                    Message(stream.begin() + static_cast<std::ptrdiff_t>(prev),
                            stream.begin() + static_cast<std::ptrdiff_t>(c))});
    prev = c;
  }
  return segs;
}

TEST(Reassembler, EveryOrderOfFiveSegments) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  auto segs = cut(stream, kIsn + 1, {50, 160, 161, 300});
  std::vector<int> order{0, 1, 2, 3, 4};
  int permutations = 0;
  do {
    Reassembler r;
    Collector c;
    r.on_syn(kIsn);
    for (int i : order) r.feed(segs[i].seq, segs[i].data, c);
    ASSERT_EQ(c.messages, expected);
    EXPECT_FALSE(r.has_gap());
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(permutations, 120);
}

TEST(Reassembler, RetransmissionsAndOverlapsAreDeliveredOnce) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  Reassembler r;
  Collector c;
  r.on_syn(kIsn);
  const Bytes s(stream);
  r.feed(kIsn + 1, s.first(100), c);
  r.feed(kIsn + 1, s.first(100), c);                    // exact retransmission
  r.feed(kIsn + 1 + 50, s.subspan(50, 150), c);         // overlaps the front
  r.feed(kIsn + 1 + 300, s.subspan(300), c);            // ahead of a gap
  r.feed(kIsn + 1 + 300, s.subspan(300, 10), c);        // shorter copy of a kept segment
  r.feed(kIsn + 1 + 180, s.subspan(180, 130), c);       // fills the gap, overlaps both sides
  EXPECT_EQ(c.messages, expected);
  EXPECT_EQ(c.count(StreamAnomaly::Retransmission), 2u);
  EXPECT_EQ(c.count(StreamAnomaly::Overlap), 2u);
  EXPECT_EQ(c.count(StreamAnomaly::OutOfOrder), 1u);
}

TEST(Reassembler, RandomSegmentationReorderingAndDuplicates) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  std::mt19937 rng(2637);
  for (int round = 0; round < 300; ++round) {
    std::vector<Segment> segs;
    for (std::size_t pos = 0; pos < stream.size();) {
      const std::size_t len = std::min<std::size_t>(1 + rng() % 90, stream.size() - pos);
      segs.push_back({kIsn + 1 + static_cast<std::uint32_t>(pos),
                      Message(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                              stream.begin() + static_cast<std::ptrdiff_t>(pos + len))});
      if (rng() % 4 == 0) segs.push_back(segs.back());  // duplicate
      pos += len;
    }
    // Reorder within a small window, as a network does.
    for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
      if (rng() % 3 == 0) std::swap(segs[i], segs[i + 1 + rng() % std::min<std::size_t>(3, segs.size() - i - 1)]);
    }
    Reassembler r;
    Collector c;
    r.on_syn(kIsn);
    for (const auto& sg : segs) r.feed(sg.seq, sg.data, c);
    ASSERT_EQ(c.messages, expected) << "round " << round;
    ASSERT_EQ(r.state(), StreamState::Synced);
  }
}

TEST(Reassembler, SequenceNumbersWrapAround) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  const std::uint32_t isn = 0xffffff00;
  auto segs = cut(stream, isn + 1, {200, 250, 300});
  Reassembler r;
  Collector c;
  r.on_syn(isn);
  r.feed(segs[2].seq, segs[2].data, c);
  r.feed(segs[0].seq, segs[0].data, c);
  r.feed(segs[3].seq, segs[3].data, c);
  r.feed(segs[1].seq, segs[1].data, c);
  EXPECT_EQ(c.messages, expected);
}

TEST(Reassembler, GarbageLosesSyncAndNothingMoreIsDelivered) {
  auto stream = joined(pns_messages());
  stream[156 + 5] ^= 0xff;  // the second message's cookie
  Reassembler r;
  Collector c;
  r.on_syn(kIsn);
  r.feed(kIsn + 1, stream, c);
  EXPECT_EQ(c.messages.size(), 1u);
  EXPECT_EQ(r.state(), StreamState::LostSync);
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error->code, wire::ParseErrorCode::BadMagicCookie);
  const auto more = test::bytes_of(wire::EchoRequest{1});
  r.feed(kIsn + 1 + static_cast<std::uint32_t>(stream.size()), more, c);
  EXPECT_EQ(c.messages.size(), 1u);
  EXPECT_EQ(r.buffered_bytes(), 0u);
}

TEST(Reassembler, MessageCutMidStreamByALyingLengthIsCaughtEarly) {
  auto m = test::bytes_of(wire::EchoRequest{1});
  store_u16(m.data(), 220);  // claims to be longer than an Echo-Request
  Reassembler r;
  Collector c;
  r.on_syn(kIsn);
  r.feed(kIsn + 1, Bytes(m).first(10), c);
  EXPECT_EQ(r.state(), StreamState::LostSync);
  EXPECT_EQ(c.error->code, wire::ParseErrorCode::BadLength);
}

TEST(Reassembler, AGapBeyondTheWindowLosesSync) {
  const auto m = test::bytes_of(wire::EchoRequest{1});
  Reassembler r;
  Collector c;
  r.on_syn(kIsn);
  r.feed(kIsn + 1 + kReorderWindow + 1, m, c);
  EXPECT_EQ(r.state(), StreamState::LostSync);
  EXPECT_EQ(c.count(StreamAnomaly::WindowExceeded), 1u);
}

TEST(Reassembler, InlineItRefusesWhatDoesNotFitAndKeepsTheStream) {
  // A long run of Echo-Requests (16 bytes each) in segments of 1,600 bytes; the first
  // segment is lost, the rest arrive. What fits waits; the rest is refused; once the lost
  // one comes, the refused ones (sent again by TCP) are taken in order.
  Message stream;
  std::vector<Message> expected;
  for (std::uint32_t i = 0; i < 4000; ++i) {
    expected.push_back(test::bytes_of(wire::EchoRequest{i}));
    stream.insert(stream.end(), expected.back().begin(), expected.back().end());
  }
  constexpr std::size_t kSegment = 1600;
  Reassembler r;
  r.refuse_when_full(true);
  Collector c;
  r.on_syn(kIsn);
  const auto segment = [&](std::size_t i) {
    return Bytes(stream).subspan(i * kSegment, std::min(kSegment, stream.size() - i * kSegment));
  };
  const std::size_t segments = (stream.size() + kSegment - 1) / kSegment;
  std::vector<std::size_t> refused;
  for (std::size_t i = 1; i < segments; ++i) {
    if (!r.feed(kIsn + 1 + static_cast<std::uint32_t>(i * kSegment), segment(i), c)) refused.push_back(i);
    EXPECT_LE(r.buffered_bytes(), kMaxPendingBytes);
  }
  EXPECT_EQ(r.state(), StreamState::Synced);
  EXPECT_FALSE(refused.empty());
  EXPECT_TRUE(c.messages.empty());
  EXPECT_TRUE(r.feed(kIsn + 1, segment(0), c));  // the lost one
  for (std::size_t i : refused) EXPECT_TRUE(r.feed(kIsn + 1 + static_cast<std::uint32_t>(i * kSegment), segment(i), c));
  EXPECT_EQ(c.messages, expected);
  EXPECT_EQ(c.count(StreamAnomaly::WindowExceeded), 0u);
}

TEST(Reassembler, PendingMemoryIsBounded) {
  Reassembler r;
  Collector c;
  r.on_syn(kIsn);
  const Message chunk(1000, 0);
  // Segments beyond a hole that never fills: kept up to the bound, then sync is lost.
  for (std::uint32_t i = 0; i < 100 && r.state() == StreamState::Synced; ++i) {
    r.feed(kIsn + 2 + i * 1000, chunk, c);
    EXPECT_LE(r.buffered_bytes(), kMaxPendingBytes);
  }
  EXPECT_EQ(r.state(), StreamState::LostSync);
  EXPECT_EQ(r.buffered_bytes(), 0u);
}

TEST(Reassembler, MidStreamPickupOnlyAtAMessageStart) {
  const auto expected = pns_messages();
  const auto stream = joined(expected);
  {
    Reassembler r;
    Collector c;
    r.feed(5000, Bytes(stream).subspan(156), c);  // starts at the second message
    EXPECT_EQ(c.messages.size(), expected.size() - 1);
    EXPECT_EQ(c.count(StreamAnomaly::MidStreamStart), 1u);
  }
  {
    Reassembler r;
    Collector c;
    r.feed(5000, Bytes(stream).subspan(100), c);  // mid-message: not guessed at
    EXPECT_TRUE(c.messages.empty());
    EXPECT_EQ(r.state(), StreamState::LostSync);
  }
}


// The segment-count bound, on its own: one-byte segments ahead of a lost first byte hold
// far fewer bytes than kMaxPendingBytes, so only the count can stop them.
class SegmentCountLimit : public ::testing::TestWithParam<bool> {
 protected:
  // Feeds bytes 1..kMaxPendingSegments of the stream one by one (byte 0 is lost).
  void fill() {
    r.refuse_when_full(GetParam());
    r.on_syn(kIsn);
    for (std::uint32_t i = 1; i <= kMaxPendingSegments; ++i) {
      ASSERT_TRUE(r.feed(kIsn + 1 + i, Bytes(stream).subspan(i, 1), c)) << "segment " << i << " fits";
    }
    ASSERT_EQ(r.state(), StreamState::Synced);
    ASSERT_EQ(c.count(StreamAnomaly::OutOfOrder), kMaxPendingSegments);
    ASSERT_EQ(r.buffered_bytes(), kMaxPendingSegments);
  }
  // The next one, one segment too many.
  bool feed_one_more() { return r.feed(kIsn + 2 + kMaxPendingSegments, Bytes(stream).subspan(kMaxPendingSegments + 1, 1), c); }

  const std::vector<Message> expected = pns_messages();
  const Message stream = joined(expected);
  Reassembler r;
  Collector c;
};

TEST_P(SegmentCountLimit, OneSegmentTooMany) {
  fill();
  const bool taken = feed_one_more();
  if (GetParam()) {
    // Inline: refused, nothing taken, the stream stays in sync.
    EXPECT_FALSE(taken);
    EXPECT_EQ(r.state(), StreamState::Synced);
    EXPECT_EQ(r.buffered_bytes(), kMaxPendingSegments);
    EXPECT_EQ(c.count(StreamAnomaly::WindowExceeded), 0u);
    // A segment already held may come again at the bound.
    EXPECT_TRUE(r.feed(kIsn + 2, Bytes(stream).subspan(1, 1), c));
    // The lost byte, then everything from the refused one on: the whole stream, in order.
    EXPECT_TRUE(r.feed(kIsn + 1, Bytes(stream).first(1), c));
    EXPECT_TRUE(r.feed(kIsn + 2 + kMaxPendingSegments, Bytes(stream).subspan(kMaxPendingSegments + 1), c));
    EXPECT_EQ(c.messages, expected);
  } else {
    // Offline: the direction loses sync, once, and delivers nothing more.
    EXPECT_TRUE(taken);
    EXPECT_EQ(r.state(), StreamState::LostSync);
    EXPECT_EQ(c.count(StreamAnomaly::WindowExceeded), 1u);
    EXPECT_EQ(r.buffered_bytes(), 0u);
    r.feed(kIsn + 1, Bytes(stream).first(1), c);
    EXPECT_TRUE(c.messages.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Reassembler, SegmentCountLimit, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Inline" : "Offline"; });

}  // namespace
}  // namespace pptp::stream
