// A control connection taken over from another node (docs/ha.md, "Resuming a control
// connection"): started at the replicated boundary, or on a header found by a scan, within
// bounds; never at a byte a client chose when the replica's position fits.
#include <gtest/gtest.h>

#include <cstring>

#include "alg/stream/reassembler.hpp"
#include "tests/alg/stream/stream_support.hpp"

namespace pptp::stream {
namespace {

using namespace test;  // NOLINT: the reassembler tests' shared vocabulary

constexpr std::uint32_t kBase = 70000;  // sequence number of the stream's first byte
constexpr std::size_t kSccrqEnd = 156;  // the first message's length: the second starts there
constexpr std::size_t kOcrqEnd = kSccrqEnd + 168;

std::vector<Message> from(const std::vector<Message>& ms, std::size_t first) {
  return {ms.begin() + static_cast<std::ptrdiff_t>(first), ms.end()};
}

// A PNS's stream (pns_messages) at kBase, one direction of it resumed at `boundary`.
struct Resumed {
  std::vector<Message> expected;
  Message stream;
  Reassembler r;
  Collector c;
  explicit Resumed(std::optional<std::uint32_t> boundary, std::vector<Message> messages = pns_messages())
      : expected(std::move(messages)), stream(joined(expected)) {
    r.resume(boundary);
  }
  // The stream's bytes [begin, end) as one segment; end 0: to the stream's end.
  void feed(std::size_t begin, std::size_t end = 0) {
    if (end == 0) end = stream.size();
    r.feed(kBase + static_cast<std::uint32_t>(begin), Bytes(stream).subspan(begin, end - begin), c);
  }
};

TEST(ReassemblerResume, FirstSegmentMidMessageStartsAtTheReplicatedBoundary) {
  Resumed t(kBase + kSccrqEnd);
  t.feed(100);
  EXPECT_EQ(t.c.messages, from(t.expected, 1));
  ASSERT_FALSE(t.c.sequences.empty());
  EXPECT_EQ(t.c.sequences.front(), kBase + kSccrqEnd);
  EXPECT_EQ(t.c.count(StreamAnomaly::ResumedAtPosition), 1u);
  EXPECT_EQ(t.c.count(StreamAnomaly::ResyncSkipped), 0u);
  EXPECT_EQ(t.r.state(), StreamState::Synced);
}

TEST(ReassemblerResume, SegmentsBeforeTheBoundaryWereDeliveredAlready) {
  Resumed t(kBase + kSccrqEnd);
  t.feed(0, 100);  // retransmitted: the other node passed it
  EXPECT_TRUE(t.c.messages.empty());
  EXPECT_EQ(t.c.count(StreamAnomaly::Retransmission), 1u);
  t.feed(100);
  EXPECT_EQ(t.c.messages, from(t.expected, 1));
}

TEST(ReassemblerResume, StaleBoundaryResyncsOnTheNextHeaderInTheSegment) {
  Resumed t(kBase + 50);  // the replica's position is older than the first segment seen
  t.feed(100);
  EXPECT_EQ(t.c.messages, from(t.expected, 1));
  ASSERT_FALSE(t.c.sequences.empty());
  EXPECT_EQ(t.c.sequences.front(), kBase + kSccrqEnd);
  EXPECT_EQ(t.c.count(StreamAnomaly::ResyncSkipped), 1u);
  EXPECT_EQ(t.c.count(StreamAnomaly::FramingError), 0u);
}

TEST(ReassemblerResume, NoHeaderInTheFirstSegmentWaitsForALaterOne) {
  for (const std::size_t cut : {kSccrqEnd, kSccrqEnd - 6}) {  // a later segment at a header, or before one
    Resumed t(std::nullopt);
    t.feed(100, cut);
    EXPECT_TRUE(t.c.messages.empty());
    EXPECT_EQ(t.r.state(), StreamState::AwaitingStart) << "cut " << cut;
    t.feed(cut);
    EXPECT_EQ(t.c.messages, from(t.expected, 1)) << "cut " << cut;
    EXPECT_EQ(t.r.state(), StreamState::Synced);
  }
}

TEST(ReassemblerResume, GivesUpAfterTheSegmentLimit) {
  const Message junk(40, 0xEE);
  Resumed t(std::nullopt);
  for (std::uint32_t i = 0; i < kMaxResyncSegments; ++i) {
    t.r.feed(kBase + i * 40, junk, t.c);
    ASSERT_EQ(t.r.state(), StreamState::AwaitingStart) << "segment " << i;
  }
  t.r.feed(kBase + kMaxResyncSegments * 40, junk, t.c);
  EXPECT_EQ(t.r.state(), StreamState::LostSync);
  EXPECT_EQ(t.c.count(StreamAnomaly::FramingError), 1u);
  EXPECT_EQ(t.c.count(StreamAnomaly::ResyncSkipped), kMaxResyncSegments);
}

TEST(ReassemblerResume, GivesUpAfterTheByteLimit) {
  Resumed t(std::nullopt);
  Message segment = t.stream;  // the messages after more bytes with no header than the limit
  segment.insert(segment.begin(), kMaxResyncBytes + 1, 0xEE);
  t.r.feed(kBase, segment, t.c);
  EXPECT_TRUE(t.c.messages.empty());
  EXPECT_EQ(t.r.state(), StreamState::LostSync);
}

// A hostile client hides a header (an Echo-Request) in its Outgoing-Call-Request's Phone
// Number field: a scan that starts inside that message frames it, the replicated boundary
// after the message does not.
TEST(ReassemblerResume, FakeHeaderInAPhoneNumberLosesToTheReplicatedBoundary) {
  auto messages = pns_messages();
  const Message fake = pptp::test::bytes_of(wire::EchoRequest{0x4141});
  constexpr std::size_t kPhoneNumber = 40;  // RFC 2637 2.7: the field's offset in the message
  std::memcpy(messages[1].data() + kPhoneNumber, fake.data(), fake.size());
  Resumed scanned(std::nullopt, messages);
  scanned.feed(kSccrqEnd + 4);
  ASSERT_FALSE(scanned.c.messages.empty());
  EXPECT_EQ(scanned.c.messages.front(), fake);  // the scan was fooled: only this stream is framed wrongly
  Resumed at_boundary(kBase + kOcrqEnd, messages);
  at_boundary.feed(kSccrqEnd + 4);
  EXPECT_EQ(at_boundary.c.messages, from(messages, 2));
  EXPECT_EQ(at_boundary.c.count(StreamAnomaly::ResyncSkipped), 0u);
  EXPECT_EQ(at_boundary.r.state(), StreamState::Synced);
}

// A message cut before its Call ID field across a failover (docs/ha.md, "A message split
// before its Call ID field"): the old node replicated the head it passed.
ResumeHead head_of(const Message& stream, std::size_t begin, std::size_t length) {
  return ResumeHead{kBase + static_cast<std::uint32_t>(begin),
                    std::vector<std::uint8_t>(stream.begin() + static_cast<std::ptrdiff_t>(begin),
                                              stream.begin() + static_cast<std::ptrdiff_t>(begin + length))};
}

TEST(ReassemblerResume, AHeadContinuedByTheFirstSegmentReadsItsMessageWhole) {
  for (const std::size_t cut : {std::size_t{1}, std::size_t{6}, std::size_t{12}, kMaxResumeHeadBytes}) {
    Resumed t(kBase + kSccrqEnd);
    t.r.resume(kBase + kSccrqEnd, head_of(t.stream, kSccrqEnd, cut));
    t.feed(kSccrqEnd + cut);
    EXPECT_EQ(t.c.messages, from(t.expected, 1)) << "cut " << cut;
    ASSERT_FALSE(t.c.sequences.empty());
    EXPECT_EQ(t.c.sequences.front(), kBase + kSccrqEnd) << "the message starts at the head's first byte";
    EXPECT_EQ(t.c.count(StreamAnomaly::ResumedAtHead), 1u);
    EXPECT_EQ(t.c.count(StreamAnomaly::ResyncSkipped), 0u);
    EXPECT_EQ(t.r.state(), StreamState::Synced);
  }
}

TEST(ReassemblerResume, WithoutTheHeadTheCutMessageIsSkipped) {
  Resumed t(kBase + kSccrqEnd);
  t.feed(kSccrqEnd + 6);
  EXPECT_EQ(t.c.messages, from(t.expected, 2));  // what the head saves
  EXPECT_EQ(t.c.count(StreamAnomaly::ResumedAtHead), 0u);
}

TEST(ReassemblerResume, AHeadNotMetByTheFirstSegmentIsNotUsed) {
  {  // the head's own segment again (the old node's ACK was lost): the boundary starts it
    Resumed t(kBase + kSccrqEnd);
    t.r.resume(kBase + kSccrqEnd, head_of(t.stream, kSccrqEnd, 6));
    t.feed(kSccrqEnd);
    EXPECT_EQ(t.c.messages, from(t.expected, 1));
    EXPECT_EQ(t.c.count(StreamAnomaly::ResumedAtHead), 0u);
    EXPECT_EQ(t.c.count(StreamAnomaly::ResumedAtPosition), 1u);
  }
  {  // a later segment: the head's message was finished by the old node
    Resumed t(kBase + kSccrqEnd);
    t.r.resume(kBase + kSccrqEnd, head_of(t.stream, kSccrqEnd, 6));
    t.feed(kOcrqEnd);
    EXPECT_EQ(t.c.messages, from(t.expected, 2));
    EXPECT_EQ(t.c.count(StreamAnomaly::ResumedAtHead), 0u);
  }
}

TEST(ReassemblerResume, AHeadBeforeTheBoundaryIsOlderAndNotUsed) {
  Resumed t(std::nullopt);
  // The boundary is past the Outgoing-Call-Request: a head of the Start-Control-Connection-
  // Request is stale, though the segment after it would continue it.
  t.r.resume(kBase + kOcrqEnd, head_of(t.stream, 0, 6));
  t.feed(6);
  EXPECT_EQ(t.c.count(StreamAnomaly::ResumedAtHead), 0u);
  EXPECT_EQ(t.c.messages, from(t.expected, 2));
}

TEST(ReassemblerResume, AHeadThatDoesNotFrameWithTheSegmentIsNotUsed) {
  Resumed t(kBase + kSccrqEnd);
  ResumeHead wrong = head_of(t.stream, kSccrqEnd, 6);
  wrong.bytes[4] ^= 0xFF;  // not the magic cookie (RFC 2637 1.4)
  t.r.resume(kBase + kSccrqEnd, wrong);
  t.feed(kSccrqEnd + 6);
  EXPECT_EQ(t.c.count(StreamAnomaly::ResumedAtHead), 0u);
  EXPECT_EQ(t.c.count(StreamAnomaly::FramingError), 0u);
  EXPECT_EQ(t.c.messages, from(t.expected, 2));  // the present rules: a scan to the next header
}

TEST(ReassemblerResume, NotTakenOverStillStartsOnlyAtAMessageStart) {
  const auto stream = joined(pns_messages());
  Reassembler r;
  Collector c;
  r.feed(kBase + 100, Bytes(stream).subspan(100), c);
  EXPECT_TRUE(c.messages.empty());
  EXPECT_EQ(r.state(), StreamState::LostSync);
}

}  // namespace
}  // namespace pptp::stream
