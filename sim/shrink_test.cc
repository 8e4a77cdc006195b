// Shrinking: ddmin finds a 1-minimal failing subset, and a real failing run shrinks to a short
// schedule that still fails the same way when replayed.
#include "sim/shrink.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/scenario.h"

namespace bulwark::sim {
namespace {

std::vector<FaultEvent> Events(int n) {
  std::vector<FaultEvent> events;
  for (int i = 0; i < n; ++i) {
    FaultEvent event;
    event.kind = FaultKind::kKill;
    event.at_ms = 1000 * (i + 1);
    event.a = i;
    events.push_back(event);
  }
  return events;
}

bool Has(const std::vector<FaultEvent>& events, int64_t a) {
  return std::any_of(events.begin(), events.end(), [a](const FaultEvent& e) { return e.a == a; });
}

TEST(DeltaDebugTest, FindsTheEventsThatMatter) {
  const std::vector<FaultEvent> all = Events(40);
  size_t tests = 0;
  const std::vector<FaultEvent> minimal = DeltaDebug(
      all, [](const std::vector<FaultEvent>& c) { return Has(c, 7) && Has(c, 31); }, 1000, &tests);
  ASSERT_EQ(minimal.size(), 2u);
  EXPECT_EQ(minimal[0].a, 7);
  EXPECT_EQ(minimal[1].a, 31);
  EXPECT_LT(tests, 120u);
}

TEST(DeltaDebugTest, AFailureThatNeedsNoFaultShrinksToNothing) {
  size_t tests = 0;
  EXPECT_TRUE(DeltaDebug(
                  Events(10), [](const std::vector<FaultEvent>&) { return true; }, 100, &tests)
                  .empty());
  EXPECT_EQ(tests, 1u);
}

TEST(DeltaDebugTest, StopsAtTheTestBudget) {
  size_t tests = 0;
  const std::vector<FaultEvent> result = DeltaDebug(
      Events(64), [](const std::vector<FaultEvent>& c) { return c.size() >= 20; }, 5, &tests);
  EXPECT_EQ(tests, 5u);
  EXPECT_GE(result.size(), 20u);
}

TEST(ShrinkTest, AFailingRunShrinksToAShortVerifiedSchedule) {
  // Acknowledging before the directory sync loses writes on power loss: a real failure.
  constexpr uint64_t kSeed = 2;
  std::printf("seed %llu\n", static_cast<unsigned long long>(kSeed));
  RunConfig config;
  config.seed = kSeed;
  config.scenario = *ScenarioFor("crash", kSeed);
  config.failpoints = "bug.storage.file.ack_before_sync=return";
  const RunResult failure = RunSimulation(config);
  ASSERT_FALSE(failure.passed());
  ASSERT_GT(failure.schedule.size(), 3u);

  const ShrinkResult shrunk = Shrink(config, failure, 200);
  EXPECT_TRUE(shrunk.reproduced);
  EXPECT_TRUE(shrunk.verified);
  EXPECT_EQ(shrunk.invariant, failure.signature());
  // The goal for a planted bug: shrunk to at most 10 events.
  EXPECT_LE(shrunk.schedule.size(), 10u);
  EXPECT_LT(shrunk.schedule.size(), failure.schedule.size());
  // Every surviving event is one of the original ones.
  for (const FaultEvent& event : shrunk.schedule) {
    EXPECT_NE(std::find(failure.schedule.begin(), failure.schedule.end(), event),
              failure.schedule.end())
        << event.ToString();
  }
  // And the shrunk schedule, replayed, fails the same way.
  config.schedule = shrunk.schedule;
  EXPECT_EQ(RunSimulation(config).signature(), failure.signature());
}

}  // namespace
}  // namespace bulwark::sim
