// What was read is what leaves (docs/packet-path.md): inline, the bytes read in order are
// kept until their receiver acknowledges them, a retransmission is checked against them,
// and a message the sink leaves unread ends the stream before it.
#include <gtest/gtest.h>

#include "alg/stream/reassembler.hpp"
#include "tests/alg/stream/stream_support.hpp"

namespace pptp::stream {
namespace {

using test::Collector;
using test::joined;
using test::Message;
using test::pns_messages;

constexpr std::uint32_t kIsn = 1000;

Reassembler inline_stream() {
  Reassembler r;
  r.refuse_when_full(true);
  r.keep_read(true);
  r.on_syn(kIsn);
  return r;
}

TEST(ReadBytes, AreKeptUntilAcknowledgedAndThenFreed) {
  const auto stream = joined(pns_messages());
  Reassembler r = inline_stream();
  Collector c;
  ASSERT_TRUE(r.feed(kIsn + 1, stream, c));
  EXPECT_EQ(r.unacknowledged_bytes(), stream.size());
  r.acknowledged(kIsn + 1 + 100);
  EXPECT_EQ(r.unacknowledged_bytes(), stream.size() - 100);
  r.acknowledged(kIsn + 1 + 50);  // an older acknowledgment changes nothing
  EXPECT_EQ(r.unacknowledged_bytes(), stream.size() - 100);
  r.acknowledged(kIsn + 1 + static_cast<std::uint32_t>(stream.size()));
  EXPECT_EQ(r.unacknowledged_bytes(), 0u);
  EXPECT_EQ(r.allocated_bytes(), 0u);
}

TEST(ReadBytes, ARetransmissionMustMatchWhatWasRead) {
  const auto stream = joined(pns_messages());
  Reassembler r = inline_stream();
  Collector c;
  ASSERT_TRUE(r.feed(kIsn + 1, stream, c));
  EXPECT_TRUE(r.agrees_with_read(kIsn + 1, stream));
  EXPECT_TRUE(r.agrees_with_read(kIsn + 1 + 30, Bytes(stream).subspan(30, 40)));
  Message changed = stream;
  changed[200] ^= 0xff;
  EXPECT_FALSE(r.agrees_with_read(kIsn + 1, changed));
  // Overlapping the kept bytes' end with new bytes after it: only the overlap is compared.
  Message tail(stream.end() - 10, stream.end());
  tail.insert(tail.end(), 20, 0xee);
  EXPECT_TRUE(r.agrees_with_read(kIsn + 1 + static_cast<std::uint32_t>(stream.size()) - 10, tail));
  // Once acknowledged, the bytes are the receiver's: nothing is compared.
  r.acknowledged(kIsn + 1 + static_cast<std::uint32_t>(stream.size()));
  EXPECT_TRUE(r.agrees_with_read(kIsn + 1, changed));
}

TEST(ReadBytes, PastTheUnacknowledgedBoundAnInOrderSegmentIsRefused) {
  const Message echo = pptp::test::bytes_of(wire::EchoRequest{1});
  Reassembler r = inline_stream();
  Collector c;
  std::uint32_t seq = kIsn + 1;
  std::size_t taken = 0;
  for (int i = 0; i < 2000; ++i, seq += static_cast<std::uint32_t>(echo.size())) {
    if (!r.feed(seq, echo, c)) break;
    ++taken;
  }
  EXPECT_EQ(taken, kMaxUnacknowledgedBytes / echo.size());
  EXPECT_LE(r.unacknowledged_bytes(), kMaxUnacknowledgedBytes);
  r.acknowledged(seq);  // the receiver caught up: the sender's retransmission is taken
  EXPECT_TRUE(r.feed(seq, echo, c));
  EXPECT_EQ(c.messages.size(), taken + 1);
}

// A sink that leaves the message at one sequence number unread.
struct Refusing : Collector {
  std::uint32_t unread_at = 0;
  bool on_message(Bytes m, std::uint32_t seq) override {
    if (seq == unread_at) return false;
    return Collector::on_message(m, seq);
  }
};

TEST(ReadBytes, AMessageLeftUnreadEndsTheStreamBeforeItAndIsReadAgain) {
  const auto messages = pns_messages();
  const auto stream = joined(messages);
  Reassembler r = inline_stream();
  Refusing c;
  c.unread_at = kIsn + 1 + static_cast<std::uint32_t>(messages[0].size());  // the second message
  EXPECT_FALSE(r.feed(kIsn + 1, stream, c));
  ASSERT_EQ(c.messages.size(), 1u);
  EXPECT_EQ(r.next_sequence(), c.unread_at);
  EXPECT_EQ(r.unacknowledged_bytes(), messages[0].size());  // only what was read
  c.unread_at = 0;
  EXPECT_TRUE(r.feed(kIsn + 1, stream, c));  // sent again: the first skipped, the rest read
  EXPECT_EQ(c.messages, messages);
}

TEST(ReadBytes, AMessageLeftUnreadDropsWhatWasBufferedPastIt) {
  const auto messages = pns_messages();
  const auto stream = joined(messages);
  const auto first = static_cast<std::uint32_t>(messages[0].size());
  Reassembler r = inline_stream();
  Refusing c;
  c.unread_at = kIsn + 1 + first;
  ASSERT_TRUE(r.feed(kIsn + 1 + first, Bytes(stream).subspan(first), c));  // ahead of a gap
  EXPECT_GT(r.buffered_bytes(), 0u);
  EXPECT_FALSE(r.feed(kIsn + 1, Bytes(stream).first(first), c));  // fills it; the next is left
  EXPECT_EQ(r.buffered_bytes(), first);  // the first, read and not yet acknowledged
  EXPECT_EQ(r.next_sequence(), kIsn + 1 + first);
}

}  // namespace
}  // namespace pptp::stream
