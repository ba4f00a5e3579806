#include "sync/message.hpp"

#include <gtest/gtest.h>

#include "tests/sync/sync_support.hpp"

namespace pptp::sync {
namespace {

using test::kKey;
using test::sample_call;
using test::sample_head;

std::vector<std::uint8_t> encoded(const Message& m, Key key = kKey) {
  std::vector<std::uint8_t> out;
  auto n = encode(m, key, out);
  EXPECT_TRUE(n) << name_of(n.error());
  return out;
}

Message with_header(Body b) {
  return Message{Header{1, 7, 0x0102030405060708, 42, 41}, std::move(b)};
}

void expect_round_trip(const Message& m) {
  const auto bytes = encoded(m);
  EXPECT_LE(bytes.size(), kMaxDatagram);
  auto back = decode(bytes, kKey);
  ASSERT_TRUE(back) << name_of(back.error());
  EXPECT_EQ(*back, m);
}

TEST(SyncMessage, EveryKindOfMessageRoundTrips) {
  expect_round_trip(with_header(Hello{true}));
  expect_round_trip(with_header(Hello{false}));
  expect_round_trip(with_header(Hello{false, true}));
  expect_round_trip(with_header(Hello{true, true}));
  expect_round_trip(with_header(Ack{}));
  expect_round_trip(with_header(AddCall{sample_call(7)}));
  expect_round_trip(with_header(UpdateCall{sample_call(8, "")}));
  expect_round_trip(with_header(DeleteCall{sample_call(9).key}));
  expect_round_trip(with_header(SnapshotPart{99, true, false, {sample_call(1), sample_call(2, "bob")}}));
  expect_round_trip(with_header(SnapshotPart{99, true, true, {}}));
  expect_round_trip(with_header(sample_head(0xfffffff0)));
  MessageHead longest = sample_head(1, 0);
  longest.bytes.resize(kMaxHeadBytes, 0x33);
  expect_round_trip(with_header(longest));
}

TEST(SyncMessage, AHeadOfNoByteOrBeyondItsBoundOrOfNoDirectionIsRefused) {
  MessageHead h = sample_head(1);
  std::vector<std::uint8_t> out;
  h.bytes.resize(kMaxHeadBytes + 1, 0);
  EXPECT_EQ(encode(with_header(h), kKey, out).error(), SyncError::BadRecord);
  h.bytes.clear();
  EXPECT_EQ(encode(with_header(h), kKey, out).error(), SyncError::BadRecord);
  EXPECT_TRUE(out.empty());
  // Decoded: a length or direction out of range is a typed error, a length past the body
  // truncated.
  std::vector<std::uint8_t> body;
  encode_body(sample_head(1), body);
  const std::size_t direction = 12, length = 17;
  for (const auto& [at, value, error] : {std::tuple{direction, 2, SyncError::BadRecord},
                                         std::tuple{length, 0, SyncError::BadRecord},
                                         std::tuple{length, int{kMaxHeadBytes} + 1, SyncError::Truncated},
                                         std::tuple{length, 7, SyncError::Truncated}}) {
    auto bad = body;
    bad[at] = static_cast<std::uint8_t>(value);
    auto b = decode_body(MessageType::Head, bad);
    ASSERT_FALSE(b) << at << "=" << value;
    EXPECT_EQ(b.error(), error) << at << "=" << value;
  }
}

// valid_head is the one test for both ways: each head it refuses, encode refuses and the
// same head's bytes (encode_body writes them unchecked) do not decode; its bounds pass both.
TEST(SyncMessage, EncodeAndDecodeRefuseTheHeadsValidHeadRefuses) {
  MessageHead too_long = sample_head(1), empty = sample_head(1), no_direction = sample_head(1, 2),
              last_direction = sample_head(1, 0xff);
  too_long.bytes.resize(kMaxHeadBytes + 1, 0x33);
  empty.bytes.clear();
  for (const MessageHead& h : {too_long, empty, no_direction, last_direction}) {
    EXPECT_FALSE(valid_head(h));
    std::vector<std::uint8_t> out;
    EXPECT_EQ(encode(with_header(h), kKey, out).error(), SyncError::BadRecord);
    std::vector<std::uint8_t> body;
    encode_body(h, body);
    auto b = decode_body(MessageType::Head, body);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error(), SyncError::BadRecord);
  }
  MessageHead shortest = sample_head(1, 0), longest = sample_head(1, 1);
  shortest.bytes.resize(1);
  longest.bytes.resize(kMaxHeadBytes, 0x33);
  for (const MessageHead& h : {shortest, longest}) {
    EXPECT_TRUE(valid_head(h));
    expect_round_trip(with_header(h));
  }
}

TEST(SyncMessage, AUserNameRoundTripsAtItsBoundAndIsRefusedBeyond) {
  CallState c = sample_call(3, std::string(kMaxUserLength, 'u'));
  c.verdict = PolicyVerdict::Pending;
  c.positions_known = false;
  expect_round_trip(with_header(AddCall{c}));
  c.user.push_back('x');
  std::vector<std::uint8_t> out;
  auto n = encode(with_header(AddCall{c}), kKey, out);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), SyncError::BadRecord);
}

TEST(SyncMessage, EveryTamperedByteIsRefused) {
  const auto good = encoded(with_header(AddCall{sample_call(7)}));
  for (std::size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] ^= 0x01;
    auto m = decode(bad, kKey);
    EXPECT_FALSE(m) << "byte " << i << " flipped was accepted";
  }
}

TEST(SyncMessage, AnotherKeyIsRefusedAsBadAuth) {
  const auto bytes = encoded(with_header(DeleteCall{sample_call(7).key}));
  std::vector<std::uint8_t> other(32, 0x5b);
  auto m = decode(bytes, other);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error(), SyncError::BadAuth);
}

TEST(SyncMessage, AShortKeyIsRefusedBothWays) {
  const std::vector<std::uint8_t> short_key(kMinKeyBytes - 1, 1);
  std::vector<std::uint8_t> out;
  auto n = encode(with_header(Ack{}), short_key, out);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), SyncError::BadKey);
  auto m = decode(encoded(with_header(Ack{})), short_key);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error(), SyncError::BadKey);
}

TEST(SyncMessage, EveryTruncationIsRefusedAndExtraBytesToo) {
  const auto good = encoded(with_header(SnapshotPart{5, true, true, {sample_call(1)}}));
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto m = decode(Bytes(good).first(n), kKey);
    ASSERT_FALSE(m) << n;
    EXPECT_EQ(m.error(), SyncError::Truncated) << n;
  }
  auto longer = good;
  longer.push_back(0);
  auto m = decode(longer, kKey);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error(), SyncError::TrailingBytes);
}

TEST(SyncMessage, BodiesOutOfRangeAreTypedErrors) {
  std::vector<std::uint8_t> body;
  encode_body(AddCall{sample_call(1)}, body);
  body[14 + 8] = kMaxPolicyVerdict + 1;  // the verdict octet after the key and three fields
  auto b = decode_body(MessageType::Add, body);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), SyncError::BadRecord);

  auto unknown = decode_body(static_cast<MessageType>(9), {});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), SyncError::UnknownType);

  // A snapshot claiming more records than its bytes could hold.
  const std::vector<std::uint8_t> liar = {0, 0, 0, 1, 3, 0xff, 0xff};
  auto s = decode_body(MessageType::Snapshot, liar);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), SyncError::Truncated);
}

TEST(SyncMessage, ANodeOutsideThePairIsRefused) {
  Message m = with_header(Ack{});
  m.header.node = kMaxNode + 1;
  std::vector<std::uint8_t> out;
  auto n = encode(m, kKey, out);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), SyncError::UnknownNode);
}

TEST(SyncMessage, AHelloCarriesTheSendersRoleInBitTwoAndAnOlderBuildsReadsAsStandby) {
  // An older build's Hello has only bit 1 (want_snapshot): its role reads as standby.
  const std::vector<std::uint8_t> old_hello{1};
  auto b = decode_body(MessageType::Hello, Bytes(old_hello));
  ASSERT_TRUE(b);
  EXPECT_EQ(std::get<Hello>(*b), (Hello{true, false}));
  const std::vector<std::uint8_t> active{2};
  b = decode_body(MessageType::Hello, Bytes(active));
  ASSERT_TRUE(b);
  EXPECT_EQ(std::get<Hello>(*b), (Hello{false, true}));
  const std::vector<std::uint8_t> unknown{4};
  b = decode_body(MessageType::Hello, Bytes(unknown));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), SyncError::BadRecord);
}

}  // namespace
}  // namespace pptp::sync
