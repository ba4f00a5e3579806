#include "alg/wire/control_message.hpp"

#include <gtest/gtest.h>

#include "tests/support/packets.hpp"

namespace pptp::wire {
namespace {

// Gives every field a distinct non-zero value (reserved fields stay zero) so that a swapped
// or mis-sized field shows in the round trip.
struct Filler {
  std::uint32_t next = 0x11;
  void u8(std::string_view, std::uint8_t& f) { f = static_cast<std::uint8_t>(next++); }
  void u16(std::string_view, std::uint16_t& f) { f = static_cast<std::uint16_t>(0x0100 * next++ + 7); }
  void u32(std::string_view, std::uint32_t& f) { f = 0x01000000u * (next++ & 0x7f) + 0x10203; }
  void reserved8(std::string_view, std::uint8_t& f) { f = 0; }
  void reserved16(std::string_view, std::uint16_t& f) { f = 0; }
  void length16(std::string_view, std::uint16_t& f) { f = 12; }
  template <std::size_t N>
  void text(std::string_view n, FixedField<N>& f) {
    f = FixedField<N>::from_text(std::string(n) + "-" + std::to_string(next++));
  }
};

// Records each field's offset from the start of the message.
struct OffsetFinder {
  std::size_t pos = kControlHeaderLength;
  std::map<std::string, std::size_t> offsets;
  void at(std::string_view n, std::size_t w) {
    offsets[std::string(n)] = pos;
    pos += w;
  }
  void u8(std::string_view n, std::uint8_t) { at(n, 1); }
  void u16(std::string_view n, std::uint16_t) { at(n, 2); }
  void u32(std::string_view n, std::uint32_t) { at(n, 4); }
  void reserved8(std::string_view n, std::uint8_t) { at(n, 1); }
  void reserved16(std::string_view n, std::uint16_t) { at(n, 2); }
  void length16(std::string_view n, std::uint16_t) { at(n, 2); }
  template <std::size_t N>
  void text(std::string_view n, const FixedField<N>&) {
    at(n, N);
  }
};

ControlMessage filled(std::size_t index) {
  ControlMessageBody body;
  // Default-construct alternative `index`.
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((index == I ? (void)body.emplace<I>() : void()), ...);
  }(std::make_index_sequence<std::variant_size_v<ControlMessageBody>>{});
  Filler filler;
  std::visit([&](auto& b) { std::decay_t<decltype(b)>::fields(filler, b); }, body);
  return make_control_message(body);
}

TEST(ControlMessageTable, HasAllFifteenTypesInOrder) {
  ASSERT_EQ(kMessageSpecs.size(), 15u);
  for (std::size_t i = 0; i < kMessageSpecs.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(kMessageSpecs[i].type), i + 1);
    EXPECT_EQ(find_spec(static_cast<std::uint16_t>(i + 1)), &kMessageSpecs[i]);
  }
  EXPECT_EQ(find_spec(0), nullptr);
  EXPECT_EQ(find_spec(16), nullptr);
}

TEST(ControlMessageTable, FieldListsMatchRfcLengthsAndCallIdOffsets) {
  for (std::size_t i = 0; i < kMessageSpecs.size(); ++i) {
    const ControlMessage m = filled(i);
    const MessageSpec& spec = m.spec();
    SCOPED_TRACE(std::string(spec.name));
    OffsetFinder finder;
    visit_fields(m, finder);
    EXPECT_EQ(finder.pos, spec.length);
    EXPECT_EQ(serialize(m).size(), spec.length);
    const auto call_id = finder.offsets.find("call_id");
    EXPECT_EQ(spec.call_id_offset, call_id == finder.offsets.end() ? 0 : call_id->second);
    const auto peer = finder.offsets.find("peer_call_id");
    EXPECT_EQ(spec.peer_call_id_offset, peer == finder.offsets.end() ? 0 : peer->second);
    EXPECT_EQ(spec.call_scoped, spec.call_id_offset != 0 || spec.peer_call_id_offset != 0);
  }
}

TEST(ControlMessage, EveryTypeRoundTripsToTheSameBytes) {
  for (std::size_t i = 0; i < kMessageSpecs.size(); ++i) {
    const ControlMessage m = filled(i);
    SCOPED_TRACE(std::string(m.spec().name));
    const auto bytes = serialize(m);
    auto parsed = parse_control_message(bytes);
    ASSERT_TRUE(parsed) << describe(parsed.error());
    EXPECT_EQ(*parsed, m);
    EXPECT_EQ(parsed->defects, 0);
    EXPECT_EQ(serialize(*parsed), bytes);
  }
}

TEST(ControlMessage, KnownBytesOfAnOutgoingCallReply) {
  OutgoingCallReply r;
  r.call_id = 128;
  r.peer_call_id = 7;
  r.result_code = 1;
  r.connect_speed = 100000000;
  r.packet_recv_window_size = 64;
  const std::vector<std::uint8_t> expected{
      0x00, 0x20, 0x00, 0x01, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x08, 0x00, 0x00,  // header
      0x00, 0x80, 0x00, 0x07, 0x01, 0x00, 0x00, 0x00, 0x05, 0xf5, 0xe1, 0x00,
      0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(test::bytes_of(r), expected);
  auto m = parse_control_message(expected);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->call_id(), 128);
  EXPECT_EQ(m->peer_call_id(), 7);
  EXPECT_EQ(m->as<OutgoingCallReply>()->connect_speed, 100000000u);
}

TEST(ControlMessage, TextFieldsReadUpToTheFirstNul) {
  StartControlConnectionRequest r;
  r.host_name = Text64::from_text("local");
  r.vendor_string = Text64::from_text("linux");
  auto m = parse_control_message(test::bytes_of(r));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->as<StartControlConnectionRequest>()->host_name.text(), "local");
  // 64 bytes with no NUL is legal: the whole field is the string.
  r.host_name = Text64::from_text(std::string(80, 'h'));
  m = parse_control_message(test::bytes_of(r));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->as<StartControlConnectionRequest>()->host_name.text().size(), 64u);
}

TEST(ControlMessage, WrongMagicCookieIsRejectedWithTheValue) {
  auto bytes = test::bytes_of(EchoRequest{42});
  bytes[7] = 0x4e;
  auto m = parse_control_message(bytes);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ParseErrorCode::BadMagicCookie);
  EXPECT_EQ(describe(m.error()), "bad magic cookie 0x1a2b3c4e, expected 0x1a2b3c4d");
}

TEST(ControlMessage, LyingLengthIsRejected) {
  auto bytes = test::bytes_of(EchoRequest{42});
  store_u16(bytes.data(), 20);  // Echo-Request is 16 bytes
  bytes.resize(20);
  auto m = parse_control_message(bytes);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ParseErrorCode::BadLength);
  EXPECT_EQ(m.error().actual, 20u);
  EXPECT_EQ(m.error().expected, 16u);
  store_u16(bytes.data(), 60000);
  EXPECT_EQ(parse_control_message(bytes).error().code, ParseErrorCode::BadLength);
  store_u16(bytes.data(), 4);
  EXPECT_EQ(parse_control_message(bytes).error().code, ParseErrorCode::BadLength);
}

TEST(ControlMessage, TruncatedMessageIsRejectedAtEveryCut) {
  const auto bytes = test::bytes_of(OutgoingCallRequest{});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto m = parse_control_message(Bytes(bytes).first(n));
    ASSERT_FALSE(m) << n;
    EXPECT_EQ(m.error().code, ParseErrorCode::Truncated) << n;
  }
}

TEST(ControlMessage, UnknownTypesAndManagementMessagesAreRejected) {
  auto bytes = test::bytes_of(EchoRequest{1});
  store_u16(bytes.data() + 8, 16);
  EXPECT_EQ(parse_control_message(bytes).error().code, ParseErrorCode::UnknownMessageType);
  store_u16(bytes.data() + 8, 0);
  EXPECT_EQ(parse_control_message(bytes).error().code, ParseErrorCode::UnknownMessageType);
  bytes = test::bytes_of(EchoRequest{1});
  store_u16(bytes.data() + 2, 2);  // PPTP Message Type 2: management, none defined
  auto m = parse_control_message(bytes);
  EXPECT_EQ(m.error().code, ParseErrorCode::BadPptpMessageType);
  EXPECT_NE(describe(m.error()).find("expected 1"), std::string::npos);
}

TEST(ControlMessage, NonZeroReservedFieldIsADefectNotAnError) {
  SetLinkInfo sli;
  sli.reserved1 = 0x1234;
  auto bytes = test::bytes_of(sli);
  auto m = parse_control_message(bytes);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->has_defect(MessageDefect::ReservedNonZero));
  EXPECT_EQ(m->first_defect_field, "reserved1");
  EXPECT_EQ(serialize(*m), bytes);  // kept as it was for the round trip
  auto header = test::bytes_of(EchoRequest{1});
  header[11] = 1;  // Reserved0
  m = parse_control_message(header);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first_defect_field, "reserved0");
}

TEST(ControlMessage, NumberLengthAboveSixtyFourIsADefect) {
  OutgoingCallRequest r;
  r.phone_number_length = 65;
  auto m = parse_control_message(test::bytes_of(r));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->has_defect(MessageDefect::NumberLengthTooLong));
}

TEST(Framing, NeedsMoreUntilCompleteAndJudgesHeadersEarly) {
  const auto bytes = test::bytes_of(IncomingCallRequest{});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(frame_control_message(Bytes(bytes).first(n)).status, Frame::Status::NeedMore) << n;
  }
  const Frame f = frame_control_message(bytes);
  EXPECT_EQ(f.status, Frame::Status::Complete);
  EXPECT_EQ(f.length, 220u);
  // A bad cookie is known after 8 bytes, a lying length after 10, long before it "arrives".
  auto bad = bytes;
  bad[4] = 0;
  EXPECT_EQ(frame_control_message(Bytes(bad).first(8)).status, Frame::Status::Invalid);
  bad = bytes;
  store_u16(bad.data(), 200);
  EXPECT_EQ(frame_control_message(Bytes(bad).first(10)).status, Frame::Status::Invalid);
}

}  // namespace
}  // namespace pptp::wire
