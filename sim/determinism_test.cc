// Determinism: a seed replays to the same trace hash, different seeds differ, a recorded schedule
// replays to the same run, and the determinism checker pinpoints planted nondeterminism.
#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/scenario.h"
#include "sim/simulation.h"
#include "sim/sweep.h"

namespace bulwark::sim {
namespace {

RunConfig Config(absl::string_view scenario, uint64_t seed) {
  std::printf("scenario %s seed %llu\n", std::string(scenario).c_str(),
              static_cast<unsigned long long>(seed));
  RunConfig config;
  config.seed = seed;
  config.scenario = *ScenarioFor(scenario, seed);
  return config;
}

TEST(DeterminismTest, SameSeedSameTraceInEveryScenario) {
  for (const std::string& scenario : ScenarioNames()) {
    for (uint64_t seed : {1, 2}) {
      RunConfig config = Config(scenario, seed);
      config.record_trace = true;
      const RunResult a = RunSimulation(config);
      const RunResult b = RunSimulation(config);
      EXPECT_TRUE(a.passed()) << scenario << " " << seed << ": "
                              << (a.violations.empty() ? "" : a.violations[0].detail);
      EXPECT_EQ(a.trace_hash, b.trace_hash) << scenario << " " << seed;
      EXPECT_EQ(a.trace_events, b.trace_events);
      EXPECT_EQ(FirstDifference(a.trace, b.trace), std::nullopt);
      EXPECT_GT(a.trace_events, 1000u);
      EXPECT_GT(a.sim_time, absl::Minutes(1));
    }
  }
}

TEST(DeterminismTest, DifferentSeedsDiffer) {
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    hashes.insert(RunSimulation(Config("default", seed)).trace_hash);
  }
  EXPECT_EQ(hashes.size(), 8u);
}

TEST(DeterminismTest, ReplayingTheRecordedScheduleReproducesTheRun) {
  for (absl::string_view scenario : {"default", "swarm", "storage"}) {
    RunConfig config = Config(scenario, 3);
    const RunResult drawn = RunSimulation(config);
    ASSERT_FALSE(drawn.schedule.empty());
    config.schedule = drawn.schedule;
    const RunResult replayed = RunSimulation(config);
    EXPECT_EQ(replayed.trace_hash, drawn.trace_hash) << scenario;
    EXPECT_EQ(FormatSchedule(replayed.schedule), FormatSchedule(drawn.schedule));
  }
}

TEST(DeterminismTest, RemovingOneFaultLeavesTheWorkloadAlone) {
  // Per-subsystem streams: the clients do the same things whatever the faults, so the same
  // operations are attempted (outcomes may differ).
  RunConfig config = Config("crash", 5);
  const RunResult drawn = RunSimulation(config);
  ASSERT_GE(drawn.schedule.size(), 2u);
  config.schedule = drawn.schedule;
  config.schedule->erase(config.schedule->begin());
  const RunResult fewer = RunSimulation(config);
  EXPECT_NE(fewer.trace_hash, drawn.trace_hash);
  uint64_t drawn_puts = drawn.ops_ok.count("put") ? drawn.ops_ok.at("put") : 0;
  uint64_t fewer_puts = fewer.ops_ok.count("put") ? fewer.ops_ok.at("put") : 0;
  drawn_puts += drawn.ops_failed.count("put") ? drawn.ops_failed.at("put") : 0;
  fewer_puts += fewer.ops_failed.count("put") ? fewer.ops_failed.at("put") : 0;
  EXPECT_NEAR(static_cast<double>(fewer_puts), static_cast<double>(drawn_puts),
              0.05 * static_cast<double>(drawn_puts));
}

TEST(DeterminismTest, TheCheckerReportsPlantedNondeterminism) {
  SweepOptions options;
  options.first_seed = options.last_seed = 4;
  options.check_determinism = true;
  options.plant_nondeterminism_for_test = true;
  options.shrink = false;
  absl::StatusOr<SweepReport> report = RunSweep(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->determinism_checked, 1u);
  EXPECT_EQ(report->determinism_same, 0u);
  ASSERT_EQ(report->failures.size(), 1u);
  const SeedFailure& failure = report->failures[0];
  ASSERT_TRUE(failure.divergence.has_value());
  EXPECT_NE(failure.divergence->first_hash, failure.divergence->second_hash);
  // The first difference is the planted event itself, not something downstream of it.
  EXPECT_THAT(failure.divergence->first, ::testing::HasSubstr("kind=planted"));
  EXPECT_THAT(failure.divergence->second, ::testing::HasSubstr("kind=planted"));
  const std::string text = FormatReport(*report);
  EXPECT_THAT(text, ::testing::HasSubstr("NONDETERMINISM"));
  EXPECT_THAT(text, ::testing::HasSubstr("0 of 1 seeds gave the same trace hash twice"));

  options.plant_nondeterminism_for_test = false;
  report = RunSweep(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->determinism_same, 1u);
  EXPECT_TRUE(report->failures.empty());
}

}  // namespace
}  // namespace bulwark::sim
