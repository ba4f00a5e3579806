// A node's own call records in a file (sync/table_file.hpp): what a restarted daemon reads
// back to publish the calls it adopts.
#include "sync/table_file.hpp"

#include <gtest/gtest.h>

#include "tests/sync/sync_support.hpp"

namespace pptp::sync {
namespace {

TEST(TableFile, RecordsComeBackAsTheyWere) {
  const std::vector<CallState> calls{test::sample_call(7), test::sample_call(9, ""), test::sample_call(11, "bob")};
  const auto bytes = encode_table(calls);
  auto back = decode_table(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, calls);
  auto none = decode_table(encode_table({}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(TableFile, EveryTruncationAndAForeignFileAreRefused) {
  auto bytes = encode_table({test::sample_call(7), test::sample_call(9)});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_table(Bytes(bytes.data(), n))) << n << " bytes";
  }
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_EQ(decode_table(longer).error(), SyncError::TrailingBytes);
  auto other = bytes;
  other[0] ^= 0xff;
  EXPECT_EQ(decode_table(other).error(), SyncError::BadMagic);
  other = bytes;
  other[4] = kTableVersion + 1;
  EXPECT_EQ(decode_table(other).error(), SyncError::BadVersion);
  other = bytes;
  other[5] = 0xff;  // a count far beyond the file
  EXPECT_EQ(decode_table(other).error(), SyncError::Truncated);
}

}  // namespace
}  // namespace pptp::sync
