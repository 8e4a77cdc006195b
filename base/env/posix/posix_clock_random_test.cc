// Tests for PosixClock and PosixRandom: monotonic time moves forward, randomness is not stuck.
#include <set>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/env/posix/posix_clock.h"
#include "base/env/posix/posix_random.h"
#include "gtest/gtest.h"

namespace bulwark {
namespace {

TEST(PosixClockTest, MonotonicNeverDecreases) {
  PosixClock clock;
  absl::Duration previous = clock.MonotonicNow();
  for (int i = 0; i < 1000; ++i) {
    const absl::Duration now = clock.MonotonicNow();
    ASSERT_GE(now, previous);
    previous = now;
  }
}

TEST(PosixClockTest, WallNowIsCloseToAbslNow) {
  PosixClock clock;
  EXPECT_LT(absl::AbsDuration(clock.WallNow() - absl::Now()), absl::Seconds(5));
  EXPECT_GT(clock.WallNow(), absl::FromUnixSeconds(1600000000));  // After 2020.
}

TEST(PosixRandomTest, Next64Varies) {
  PosixRandom random;
  std::set<uint64_t> seen;
  for (int i = 0; i < 100; ++i) seen.insert(random.Next64());
  EXPECT_EQ(seen.size(), 100u);
}

TEST(PosixRandomTest, FillCoversEveryByte) {
  PosixRandom random;
  // The chance that a given byte stays zero across 8 fills is 2^-64.
  std::vector<uint8_t> ored(1000, 0);
  for (int round = 0; round < 8; ++round) {
    std::vector<uint8_t> buffer(1000, 0);
    random.Fill(absl::MakeSpan(buffer));
    for (size_t i = 0; i < buffer.size(); ++i) ored[i] |= buffer[i];
  }
  for (size_t i = 0; i < ored.size(); ++i) EXPECT_NE(ored[i], 0) << "byte " << i;
  EXPECT_EQ(random.Bytes(33).size(), 33u);
}

}  // namespace
}  // namespace bulwark
