#include "alg/wire/control_message.hpp"

#include <cstdio>

namespace pptp::wire {

namespace {

constexpr std::uint16_t kMaxNumberLength = kTextFieldLength;

// Reads fields in wire order; notes defects without failing (the length is checked up front).
class FieldReader {
 public:
  explicit FieldReader(Bytes data) : reader_(data) {}

  void u8(std::string_view, std::uint8_t& f) { f = reader_.u8(); }
  void u16(std::string_view, std::uint16_t& f) { f = reader_.u16(); }
  void u32(std::string_view, std::uint32_t& f) { f = reader_.u32(); }
  void reserved8(std::string_view n, std::uint8_t& f) { check_reserved(n, f = reader_.u8()); }
  void reserved16(std::string_view n, std::uint16_t& f) { check_reserved(n, f = reader_.u16()); }
  void length16(std::string_view n, std::uint16_t& f) {
    f = reader_.u16();
    if (f > kMaxNumberLength) note(MessageDefect::NumberLengthTooLong, n);
  }
  template <std::size_t N>
  void text(std::string_view, FixedField<N>& f) {
    Bytes b = reader_.bytes(N);
    if (b.size() == N) std::copy(b.begin(), b.end(), f.raw.begin());
  }

  void check_reserved(std::string_view n, std::uint32_t value) {
    if (value != 0) note(MessageDefect::ReservedNonZero, n);
  }
  void note(MessageDefect d, std::string_view field) {
    if (defects_ == 0) first_field_ = field;
    defects_ |= static_cast<std::uint8_t>(1U << static_cast<unsigned>(d));
  }
  bool failed() const { return reader_.failed(); }
  std::size_t position() const { return reader_.position(); }

  std::uint8_t defects_ = 0;
  std::string_view first_field_;

 private:
  ByteReader reader_;
};

class FieldWriter {
 public:
  explicit FieldWriter(std::vector<std::uint8_t>& out) : writer_(out) {}
  void u8(std::string_view, std::uint8_t f) { writer_.u8(f); }
  void u16(std::string_view, std::uint16_t f) { writer_.u16(f); }
  void u32(std::string_view, std::uint32_t f) { writer_.u32(f); }
  void reserved8(std::string_view, std::uint8_t f) { writer_.u8(f); }
  void reserved16(std::string_view, std::uint16_t f) { writer_.u16(f); }
  void length16(std::string_view, std::uint16_t f) { writer_.u16(f); }
  template <std::size_t N>
  void text(std::string_view, const FixedField<N>& f) {
    writer_.bytes(f.raw);
  }

 private:
  ByteWriter writer_;
};

// Builds the body alternative for a type number (1..15) at runtime.
template <std::size_t I = 0>
ControlMessageBody body_for(std::size_t index) {
  if constexpr (I < std::variant_size_v<ControlMessageBody>) {
    if (index == I) return ControlMessageBody(std::in_place_index<I>);
    return body_for<I + 1>(index);
  } else {
    return ControlMessageBody{};
  }
}

ParseError error(ParseErrorCode code, std::uint32_t actual, std::uint32_t expected) {
  return ParseError{code, actual, expected};
}

}  // namespace

const MessageSpec* find_spec(std::uint16_t type) {
  if (type < 1 || type > kMessageSpecs.size()) return nullptr;
  return &kMessageSpecs[type - 1];
}

const MessageSpec& spec_of(ControlMessageType type) {
  return kMessageSpecs[static_cast<std::size_t>(type) - 1];
}

std::string_view name_of(MessageDefect d) {
  switch (d) {
    case MessageDefect::ReservedNonZero: return "reserved_nonzero";
    case MessageDefect::NumberLengthTooLong: return "number_length_too_long";
  }
  return "unknown";
}

std::string_view name_of(ParseErrorCode c) {
  switch (c) {
    case ParseErrorCode::Truncated: return "truncated";
    case ParseErrorCode::BadLength: return "bad_length";
    case ParseErrorCode::BadPptpMessageType: return "bad_pptp_message_type";
    case ParseErrorCode::BadMagicCookie: return "bad_magic_cookie";
    case ParseErrorCode::UnknownMessageType: return "unknown_message_type";
  }
  return "unknown";
}

std::string describe(const ParseError& e) {
  char buf[160];
  switch (e.code) {
    case ParseErrorCode::Truncated:
      std::snprintf(buf, sizeof buf, "truncated message: %u bytes, need %u", e.actual, e.expected);
      break;
    case ParseErrorCode::BadLength:
      if (e.expected != 0) {
        std::snprintf(buf, sizeof buf, "bad Length field %u, the message type has %u", e.actual,
                      e.expected);
      } else {
        std::snprintf(buf, sizeof buf, "bad Length field %u, outside %zu..%zu", e.actual,
                      kControlHeaderLength, kMaxControlMessageLength);
      }
      break;
    case ParseErrorCode::BadPptpMessageType:
      std::snprintf(buf, sizeof buf, "bad PPTP Message Type %u, expected 1 (control)", e.actual);
      break;
    case ParseErrorCode::BadMagicCookie:
      std::snprintf(buf, sizeof buf, "bad magic cookie 0x%08x, expected 0x%08x", e.actual,
                    e.expected);
      break;
    case ParseErrorCode::UnknownMessageType:
      std::snprintf(buf, sizeof buf, "unknown Control Message Type %u (valid: 1..15)", e.actual);
      break;
  }
  return buf;
}

Frame frame_control_message(Bytes available) {
  Frame f;
  const auto invalid = [&](ParseError e) {
    f.status = Frame::Status::Invalid;
    f.error = e;
    return f;
  };
  if (available.size() < 2) return f;
  const std::uint16_t length = load_u16(available.data());
  if (length < kControlHeaderLength || length > kMaxControlMessageLength) {
    return invalid(error(ParseErrorCode::BadLength, length, 0));
  }
  if (available.size() < 4) return f;
  const std::uint16_t kind = load_u16(available.data() + 2);
  if (kind != kControlMessageKind) {
    return invalid(error(ParseErrorCode::BadPptpMessageType, kind, kControlMessageKind));
  }
  if (available.size() < 8) return f;
  const std::uint32_t cookie = load_u32(available.data() + 4);
  if (cookie != kMagicCookie) return invalid(error(ParseErrorCode::BadMagicCookie, cookie, kMagicCookie));
  if (available.size() < 10) return f;
  const std::uint16_t type = load_u16(available.data() + 8);
  const MessageSpec* spec = find_spec(type);
  if (spec == nullptr) return invalid(error(ParseErrorCode::UnknownMessageType, type, 0));
  if (length != spec->length) return invalid(error(ParseErrorCode::BadLength, length, spec->length));
  if (available.size() < length) return f;
  f.status = Frame::Status::Complete;
  f.length = length;
  return f;
}

Result<ControlMessage, ParseError> parse_control_message(Bytes data) {
  const Frame frame = frame_control_message(data);
  if (frame.status == Frame::Status::Invalid) return unexpected(frame.error);
  if (frame.status == Frame::Status::NeedMore) {
    const std::uint32_t need =
        data.size() >= 2 ? load_u16(data.data()) : static_cast<std::uint32_t>(kControlHeaderLength);
    return unexpected(error(ParseErrorCode::Truncated, static_cast<std::uint32_t>(data.size()),
                            std::max<std::uint32_t>(need, kControlHeaderLength)));
  }
  ControlMessage m;
  ByteReader header(data);
  m.header.length = header.u16();
  m.header.pptp_message_type = header.u16();
  m.header.magic_cookie = header.u32();
  m.header.type = static_cast<ControlMessageType>(header.u16());
  m.header.reserved0 = header.u16();
  m.body = body_for(static_cast<std::size_t>(m.header.type) - 1);

  FieldReader reader(data.subspan(kControlHeaderLength, frame.length - kControlHeaderLength));
  reader.check_reserved("reserved0", m.header.reserved0);
  std::visit([&](auto& body) { std::decay_t<decltype(body)>::fields(reader, body); }, m.body);
  // The table's lengths and the field lists agree (unit-tested), so this cannot fail; keep
  // the check so that a future edit that breaks it is an error, not an out-of-bounds read.
  if (reader.failed()) {
    return unexpected(error(ParseErrorCode::Truncated, static_cast<std::uint32_t>(data.size()),
                            static_cast<std::uint32_t>(frame.length)));
  }
  m.defects = reader.defects_;
  m.first_defect_field = reader.first_field_;
  return m;
}

std::vector<std::uint8_t> serialize(const ControlMessage& message) {
  std::vector<std::uint8_t> out;
  out.reserve(message.spec().length);
  ByteWriter header(out);
  header.u16(message.header.length);
  header.u16(message.header.pptp_message_type);
  header.u32(message.header.magic_cookie);
  header.u16(static_cast<std::uint16_t>(message.header.type));
  header.u16(message.header.reserved0);
  FieldWriter writer(out);
  visit_fields(message, writer);
  return out;
}

ControlMessage make_control_message(ControlMessageBody body) {
  ControlMessage m;
  m.body = std::move(body);
  m.header.type = static_cast<ControlMessageType>(m.body.index() + 1);
  m.header.length = m.spec().length;
  return m;
}

std::optional<std::uint16_t> ControlMessage::call_id() const {
  return std::visit(
      [](const auto& b) -> std::optional<std::uint16_t> {
        if constexpr (requires { b.call_id; }) {
          return b.call_id;
        } else {
          return std::nullopt;
        }
      },
      body);
}

std::optional<std::uint16_t> ControlMessage::peer_call_id() const {
  return std::visit(
      [](const auto& b) -> std::optional<std::uint16_t> {
        if constexpr (requires { b.peer_call_id; }) {
          return b.peer_call_id;
        } else {
          return std::nullopt;
        }
      },
      body);
}

}  // namespace pptp::wire
