// The attribute walk shared by the route questions and the route news (nftables/netlink_walk.hpp).
#include "nftables/netlink_walk.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

namespace pptp::nft {
namespace {

void put_attribute(std::vector<std::uint8_t>& area, std::uint16_t length, std::uint16_t type,
                   std::vector<std::uint8_t> value = {}) {
  const std::size_t at = area.size();
  area.resize(at + align4(std::max<std::size_t>(length, kAttributeHeaderLength)));
  std::memcpy(area.data() + at, &length, 2);
  std::memcpy(area.data() + at + 2, &type, 2);
  if (value.empty()) return;  // memcpy from an empty vector's null data() is undefined (UBSan)
  std::memcpy(area.data() + at + kAttributeHeaderLength, value.data(), std::min(value.size(), area.size() - at - 4));
}

using Seen = std::vector<std::pair<std::uint16_t, std::size_t>>;

Seen walk(const std::vector<std::uint8_t>& area, bool& whole) {
  Seen seen;
  whole = for_each_attribute(area, [&](std::uint16_t type, Bytes v) { seen.emplace_back(type, v.size()); });
  return seen;
}

TEST(NetlinkWalk, EachAttributeOnceWithItsPayloadAndTheFlagsMaskedFromItsType) {
  std::vector<std::uint8_t> area;
  put_attribute(area, 8, 1, {1, 2, 3, 4});
  put_attribute(area, 5, 2, {9});                   // padded to 8: the next starts aligned
  put_attribute(area, 4, NLA_F_NESTED | 3);         // nested, empty
  area.resize(area.size() + 3);                     // fewer bytes than a header: padding
  bool whole = false;
  EXPECT_EQ(walk(area, whole), (Seen{{1, 4}, {2, 1}, {3, 0}}));
  EXPECT_TRUE(whole);
}

TEST(NetlinkWalk, AnAttributeRunningPastTheAreaOrShorterThanItsHeaderStopsTheWalk) {
  std::vector<std::uint8_t> past;
  put_attribute(past, 8, 1, {1, 2, 3, 4});
  put_attribute(past, 8, 2, {1, 2, 3, 4});
  past.resize(past.size() - 2);  // the second's length says 8; 6 are there
  bool whole = true;
  EXPECT_EQ(walk(past, whole), (Seen{{1, 4}}));
  EXPECT_FALSE(whole);
  std::vector<std::uint8_t> short_header;
  put_attribute(short_header, 2, 1);  // a length below the header's own 4 would loop forever
  EXPECT_TRUE(walk(short_header, whole).empty());
  EXPECT_FALSE(whole);
  EXPECT_TRUE(walk({}, whole).empty());
  EXPECT_TRUE(whole);
}

}  // namespace
}  // namespace pptp::nft
