// Tests for virtual time, the simulated event loop's ordering and its determinism.
#include "base/env/sim/sim_event_loop.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/env/random.h"
#include "base/env/sim/sim_env.h"
#include "gtest/gtest.h"

namespace bulwark::sim {
namespace {

TEST(SimEventLoopTest, VirtualTimeJumpsToEachDeadline) {
  SimClock clock;
  SimEventLoop loop(clock);
  std::vector<absl::Duration> seen;
  loop.PostAfter(absl::Hours(5), [&] { seen.push_back(clock.MonotonicNow()); });
  loop.PostAfter(absl::Seconds(1), [&] { seen.push_back(clock.MonotonicNow()); });
  EXPECT_EQ(loop.RunUntilIdle(), 2u);
  EXPECT_EQ(seen, (std::vector<absl::Duration>{absl::Seconds(1), absl::Hours(5)}));
  EXPECT_EQ(clock.MonotonicNow(), absl::Hours(5));
}

TEST(SimEventLoopTest, WallClockFollowsMonotonicAndCanJump) {
  SimClock clock(absl::FromUnixSeconds(1000));
  clock.AdvanceTo(absl::Seconds(10));
  EXPECT_EQ(clock.WallNow(), absl::FromUnixSeconds(1010));
  clock.JumpWall(-absl::Seconds(500));
  EXPECT_EQ(clock.WallNow(), absl::FromUnixSeconds(510));
  EXPECT_EQ(clock.MonotonicNow(), absl::Seconds(10));
}

TEST(SimEventLoopTest, RunUntilStopsAtTheLimit) {
  SimClock clock;
  SimEventLoop loop(clock);
  bool late = false;
  loop.PostAfter(absl::Seconds(30), [&] { late = true; });
  EXPECT_FALSE(loop.RunUntil([&] { return late; }, absl::Seconds(10)));
  EXPECT_EQ(clock.MonotonicNow(), absl::Seconds(10));
  EXPECT_TRUE(loop.RunUntil([&] { return late; }, absl::Seconds(60)));
  EXPECT_EQ(clock.MonotonicNow(), absl::Seconds(30));
}

// A million timers at random deadlines run in (deadline, sequence) order. Its speed is measured
// by //benchmarks:executor_benchmark, not here.
TEST(SimEventLoopTest, MillionTimersRunInOrder) {
  SimClock clock;
  SimEventLoop loop(clock);
  SeededRandom random(11);
  constexpr int kTimers = 1000000;
  int64_t last_deadline = -1;
  uint64_t last_index = 0;
  int ran = 0;
  bool ordered = true;
  for (int i = 0; i < kTimers; ++i) {
    const int64_t deadline = static_cast<int64_t>(random.Uniform(1000));
    loop.PostAfter(absl::Microseconds(deadline), [&, deadline, i] {
      const uint64_t index = static_cast<uint64_t>(i);
      ordered &= deadline > last_deadline || (deadline == last_deadline && index > last_index);
      last_deadline = deadline;
      last_index = index;
      ++ran;
    });
  }
  EXPECT_EQ(loop.RunUntilIdle(), static_cast<uint64_t>(kTimers));
  EXPECT_EQ(ran, kTimers);
  EXPECT_TRUE(ordered);
}

// Runs a small randomised workload: timers that draw random numbers, schedule and cancel more
// timers; returns a trace of (time, event) pairs.
std::string Workload(uint64_t seed) {
  SimEnv sim(seed);
  std::string trace;
  std::vector<TimerId> timers;
  std::function<void(int)> spawn = [&](int depth) {
    absl::StrAppend(&trace, absl::ToInt64Nanoseconds(sim.clock().MonotonicNow()), ":", depth, ":",
                    sim.random().Uniform(1000), ";");
    if (depth >= 6) return;
    for (int i = 0; i < 3; ++i) {
      TimerId id = sim.loop().PostAfter(absl::Milliseconds(sim.random().Uniform(50)),
                                        [&spawn, depth] { spawn(depth + 1); });
      timers.push_back(id);
    }
    if (sim.random().OneIn(3)) sim.loop().Cancel(timers[sim.random().Uniform(timers.size())]);
  };
  sim.loop().Post([&] { spawn(0); });
  sim.loop().RunUntilIdle();
  return trace;
}

TEST(SimDeterminismTest, SameSeedGivesTheSameDrawsAndTimerFirings) {
  const std::string first = Workload(42);
  EXPECT_GT(first.size(), 1000u);
  EXPECT_EQ(first, Workload(42));
  EXPECT_NE(first, Workload(43));
}

}  // namespace
}  // namespace bulwark::sim
