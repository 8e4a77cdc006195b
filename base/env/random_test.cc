// Tests for the portable distributions and the seeded generator.
#include "base/env/random.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "gtest/gtest.h"

namespace bulwark {
namespace {

TEST(SeededRandomTest, SameSeedSameStream) {
  SeededRandom a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = a.Next64();
    EXPECT_EQ(x, b.Next64());
    differs |= x != c.Next64();
  }
  EXPECT_TRUE(differs);
}

// Pins the stream (values checked against an independent Python model of xoshiro256** with
// splitmix64 seeding): a seed must give the same draws on every platform and in every release, or
// recorded simulator seeds stop replaying. Change these only with a note in docs/decisions.
TEST(SeededRandomTest, StreamIsPinned) {
  SeededRandom r(0);
  EXPECT_EQ(r.Next64(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(r.Next64(), 0xbf6e1f784956452aULL);
  SeededRandom s(12345);
  EXPECT_EQ(s.Uniform(1000), 743u);
}

TEST(SeededRandomTest, UniformStaysInRangeAndCoversIt) {
  SeededRandom r(1);
  std::vector<int> counts(10);
  const int kDraws = 100000;
  for (int i = 0; i < kDraws; ++i) {
    uint64_t v = r.Uniform(10);
    ASSERT_LT(v, 10u);
    ++counts[v];
  }
  for (int c : counts) {
    EXPECT_GT(c, kDraws / 10 * 95 / 100);
    EXPECT_LT(c, kDraws / 10 * 105 / 100);
  }
  for (int i = 0; i < 1000; ++i) {
    uint64_t v = r.UniformInRange(5, 7);
    EXPECT_GE(v, 5u);
    EXPECT_LE(v, 7u);
  }
  EXPECT_EQ(r.Uniform(1), 0u);
}

TEST(SeededRandomTest, BernoulliAndOneIn) {
  SeededRandom r(2);
  int hits = 0, ones = 0;
  for (int i = 0; i < 100000; ++i) {
    hits += r.Bernoulli(0.25);
    ones += r.OneIn(4);
  }
  EXPECT_NEAR(hits, 25000, 1000);
  EXPECT_NEAR(ones, 25000, 1000);
  EXPECT_FALSE(r.Bernoulli(0));
  EXPECT_TRUE(r.Bernoulli(1));
  for (int i = 0; i < 1000; ++i) {
    double d = r.UnitDouble();
    EXPECT_GE(d, 0.0);
    EXPECT_LT(d, 1.0);
  }
}

TEST(SeededRandomTest, ShuffleIsAPermutation) {
  SeededRandom r(3);
  std::vector<int> v(100);
  std::iota(v.begin(), v.end(), 0);
  std::vector<int> shuffled = v;
  r.Shuffle(shuffled);
  EXPECT_NE(shuffled, v);
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(shuffled, v);
}

TEST(SeededRandomTest, BytesHaveRequestedLength) {
  SeededRandom r(4);
  EXPECT_EQ(r.Bytes(0).size(), 0u);
  std::string b = r.Bytes(13);
  EXPECT_EQ(b.size(), 13u);
  EXPECT_NE(b, std::string(13, '\0'));
}

TEST(SeededRandomTest, DeriveDependsOnSeedAndNameOnly) {
  SeededRandom a(9), b(9);
  for (int i = 0; i < 10; ++i) a.Next64();  // Position must not matter.
  EXPECT_EQ(a.Derive("fs").Next64(), b.Derive("fs").Next64());
  EXPECT_NE(a.Derive("fs").Next64(), a.Derive("net").Next64());
  EXPECT_NE(SeededRandom(9).Derive("fs").Next64(), SeededRandom(10).Derive("fs").Next64());
}

TEST(StableHashTest, IsStableAndSeeded) {
  EXPECT_EQ(StableHash64("abc"), StableHash64("abc"));
  EXPECT_NE(StableHash64("abc"), StableHash64("abd"));
  EXPECT_NE(StableHash64("abc", 1), StableHash64("abc", 2));
}

}  // namespace
}  // namespace bulwark
