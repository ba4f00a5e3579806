#include "alg/core/flat_index.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace pptp {
namespace {

// Handles are keys here; few distinct hashes force long probe runs that wrap around the table.
std::size_t crowded_hash(std::uint32_t key) { return key % 7; }

TEST(FlatIndex, FindsWhatWasAssignedAndNotWhatWasErased) {
  FlatIndex<std::uint32_t> index;
  const auto same = [](std::uint32_t k) { return [k](std::uint32_t x) { return x == k; }; };
  for (std::uint32_t k = 1; k <= 100; ++k) index.assign(crowded_hash(k), k, same(k), crowded_hash);
  EXPECT_EQ(index.size(), 100u);
  for (std::uint32_t k = 1; k <= 100; k += 2) EXPECT_TRUE(index.erase(crowded_hash(k), same(k), crowded_hash));
  EXPECT_FALSE(index.erase(crowded_hash(1), same(1), crowded_hash));
  for (std::uint32_t k = 1; k <= 100; ++k) {
    EXPECT_EQ(index.find(crowded_hash(k), same(k)), k % 2 == 0 ? k : 0u) << k;
  }
  EXPECT_EQ(index.size(), 50u);
}

TEST(FlatIndex, AssignReplacesTheEntryItsMatchAccepts) {
  FlatIndex<std::uint32_t> index;
  const auto low_digit = [](std::uint32_t x) { return static_cast<std::size_t>(x % 10); };
  // One entry per last digit: 13 replaces 3.
  index.assign(3, 3, [](std::uint32_t x) { return x % 10 == 3; }, low_digit);
  index.assign(3, 13, [](std::uint32_t x) { return x % 10 == 3; }, low_digit);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.find(3, [](std::uint32_t x) { return x % 10 == 3; }), 13u);
}

TEST(FlatIndex, APeakIsGivenBackAsEntriesGoAndWhatStaysIsStillFound) {
  FlatIndex<std::uint32_t> index;
  const auto hash = [](std::uint32_t k) { return mix_hash(k); };
  const auto same = [](std::uint32_t k) { return [k](std::uint32_t x) { return x == k; }; };
  for (std::uint32_t k = 1; k <= 60000; ++k) index.assign(hash(k), k, same(k), hash);
  const std::size_t peak = index.allocated_bytes();
  EXPECT_GE(peak, 60000 * 4 * sizeof(std::uint32_t) / 3);
  for (std::uint32_t k = 1; k <= 60000; ++k) {
    if (k % 1000 != 0) {
      ASSERT_TRUE(index.erase(hash(k), same(k), hash)) << k;
    }
  }
  EXPECT_EQ(index.size(), 60u);
  EXPECT_LE(index.allocated_bytes(), 60 * 8 * sizeof(std::uint32_t)) << "at most 1/8 full again: " << peak;
  for (std::uint32_t k = 1000; k <= 60000; k += 1000) EXPECT_EQ(index.find(hash(k), same(k)), k);
  EXPECT_EQ(index.find(hash(999), same(999)), 0u);
}

TEST(FlatIndex, AgreesWithASetUnderRandomChurn) {
  FlatIndex<std::uint32_t> index;
  std::set<std::uint32_t> model;
  std::mt19937 random(17);
  const auto hash = [](std::uint32_t k) { return mix_hash(k) & 0xff; };  // many collisions
  for (int step = 0; step < 20000; ++step) {
    const std::uint32_t k = 1 + random() % 500;
    const auto same = [k](std::uint32_t x) { return x == k; };
    if (random() % 3 == 0) {
      EXPECT_EQ(index.erase(hash(k), same, hash), model.erase(k) == 1);
    } else {
      index.assign(hash(k), k, same, hash);
      model.insert(k);
    }
  }
  ASSERT_EQ(index.size(), model.size());
  for (std::uint32_t k = 1; k <= 500; ++k) {
    EXPECT_EQ(index.find(hash(k), [k](std::uint32_t x) { return x == k; }), model.contains(k) ? k : 0u) << k;
  }
  std::vector<std::uint32_t> listed;
  index.for_each([&](std::uint32_t x) { listed.push_back(x); });
  EXPECT_EQ(std::set<std::uint32_t>(listed.begin(), listed.end()), model);
}

}  // namespace
}  // namespace pptp
