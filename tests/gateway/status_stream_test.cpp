// The status written in pieces without a tree (gateway/status_stream.cpp): its strings as
// nlohmann writes them, its pieces whole and in order, a refused piece reported. The
// streamed file against the tree on a populated gateway: status_view_test.cpp.
#include "gateway/status_stream.hpp"

#include <gtest/gtest.h>

namespace pptp::gateway {
namespace {

std::string streamed_string(std::string_view s) {
  std::string text;
  StatusOut out([&](std::string_view piece) {
    text.append(piece);
    return true;
  });
  out.append_string(s);
  EXPECT_TRUE(out.finish());
  return text;
}

TEST(StatusOut, WritesEveryAsciiCharacterAsNlohmannDoes) {
  for (int c = 1; c < 0x80; ++c) {
    std::string s = "a";
    s.push_back(static_cast<char>(c));
    s.append("z");
    EXPECT_EQ(streamed_string(s), nlohmann::json(s).dump()) << "character " << c;
  }
}

TEST(StatusOut, WritesNamesWithQuotesBackslashesAndUtf8AsNlohmannDoes) {
  for (const std::string s : {"", "alice", "say \"hi\"", "dom\\user", "\\x01\\xff", "J\xc3\xb6rg", "\t\r\n"}) {
    EXPECT_EQ(streamed_string(s), nlohmann::json(s).dump()) << s;
  }
}

// A policy's names come from its file as they are: a Latin-1 rules.yaml made the control
// socket's status answer invalid JSON (s34 review). Replaced as ok_answer replaces them.
TEST(StatusOut, WritesInvalidUtf8AsNlohmannReplacesIt) {
  for (const std::string s : {"M\xfcller", "\xc3", "a\xe2\x82", "\xff\xfe\\\"", "ok\xc3\xb6\x80z", "\xed\xa0\x80"}) {
    const std::string text = streamed_string(s);
    EXPECT_EQ(text, nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) << s;
    EXPECT_TRUE(nlohmann::json::accept(text)) << s;
  }
}

TEST(StatusOut, HandsOnLargeTextInPiecesWholeAndInOrder) {
  std::string expected;
  std::string got;
  int pieces = 0;
  StatusOut out([&](std::string_view piece) {
    ++pieces;
    EXPECT_LE(piece.size(), kStatusPieceBytes + 16);  // about a piece, not the whole text
    got.append(piece);
    return true;
  });
  for (std::uint64_t i = 0; i < 40000; ++i) {
    out.append_uint(i);
    out.append(", ");
    expected.append(std::to_string(i)).append(", ");
  }
  EXPECT_TRUE(out.finish());
  EXPECT_EQ(got, expected);
  EXPECT_GT(pieces, 2);
}

TEST(StatusOut, AnswersFalseWhenAPieceIsRefusedAndPutsNothingAfter) {
  int puts = 0;
  StatusOut out([&](std::string_view) {
    ++puts;
    return false;
  });
  for (int i = 0; i < 3 * static_cast<int>(kStatusPieceBytes) / 8; ++i) out.append("12345678");
  EXPECT_FALSE(out.finish());
  EXPECT_EQ(puts, 1);
}

TEST(StreamStatus, AnEmptyStatusIsWhatTheTreeDumps) {
  nlohmann::json summary{{"calls", 0}, {"anomalies", nlohmann::json::object()}, {"packets", {{"a", 1}}}};
  std::string text;
  StatusOut out([&](std::string_view piece) {
    text.append(piece);
    return true;
  });
  stream_status(summary, {}, out);
  ASSERT_TRUE(out.finish());
  summary["connections"] = nlohmann::json::array();
  EXPECT_EQ(text, summary.dump(1) + "\n");
}

}  // namespace
}  // namespace pptp::gateway
