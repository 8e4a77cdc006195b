// The sharded sweep: Bazel runs `shard_count` copies of this test, and each takes its share of the
// seed range (seed s goes to shard (s - first) % TEST_TOTAL_SHARDS), so the range is covered once.
// Every seed is its own test case: a failing seed is reported and the others still run. A longer
// sweep: bazel test //sim:sweep_test --test_env=BULWARK_SIM_SWEEP_SEEDS=1..2000
#include "sim/sweep.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "sim/scenario.h"
#include "sim/simulation.h"

namespace bulwark::sim {
namespace {

constexpr uint64_t kDefaultFirstSeed = 1;
constexpr uint64_t kDefaultLastSeed = 40;
constexpr const char* kScenarios[] = {"default", "swarm"};

class SeedTest : public ::testing::Test {
 public:
  SeedTest(std::string scenario, uint64_t seed) : scenario_(std::move(scenario)), seed_(seed) {}

  void TestBody() override {
    RunConfig config;
    config.seed = seed_;
    config.scenario = *ScenarioFor(scenario_, seed_);
    const RunResult result = RunSimulation(config);
    SweepOptions options;
    options.scenario = scenario_;
    EXPECT_TRUE(result.passed()) << result.violations[0].invariant << ": "
                                 << result.violations[0].detail
                                 << "\n  replay: " << ReplayCommand(options, seed_, nullptr);
    EXPECT_GT(result.trace_events, 0u);
  }

 private:
  std::string scenario_;
  uint64_t seed_;
};

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  uint64_t n = 0;
  return value != nullptr && absl::SimpleAtoi(value, &n) ? n : fallback;
}

}  // namespace
}  // namespace bulwark::sim

int main(int argc, char** argv) {
  using namespace bulwark::sim;
  // Bazel exports GTEST_SHARD_* too; the seeds are split here, so gtest must not split again.
  ::unsetenv("GTEST_SHARD_INDEX");
  ::unsetenv("GTEST_TOTAL_SHARDS");
  // Tells Bazel this test understands sharding.
  if (const char* status_file = std::getenv("TEST_SHARD_STATUS_FILE")) {
    std::ofstream touch(status_file, std::ios::app);
  }
  const uint64_t total = std::max<uint64_t>(1, EnvNumber("TEST_TOTAL_SHARDS", 1));
  const uint64_t index = EnvNumber("TEST_SHARD_INDEX", 0);
  uint64_t first = kDefaultFirstSeed, last = kDefaultLastSeed;
  if (const char* range = std::getenv("BULWARK_SIM_SWEEP_SEEDS")) {
    std::vector<std::string> parts = absl::StrSplit(range, "..");
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &first) ||
        !absl::SimpleAtoi(parts[1], &last) || last < first) {
      std::fprintf(stderr, "BULWARK_SIM_SWEEP_SEEDS wants A..B, not %s\n", range);
      return 2;
    }
  }
  std::printf("shard %llu of %llu: seeds %llu..%llu, every %llu-th\n",
              static_cast<unsigned long long>(index), static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(first), static_cast<unsigned long long>(last),
              static_cast<unsigned long long>(total));
  for (uint64_t seed = first; seed <= last; ++seed) {
    if ((seed - first) % total != index) continue;
    for (const char* scenario : kScenarios) {
      ::testing::RegisterTest("SweepTest", absl::StrCat(scenario, "_seed_", seed).c_str(), nullptr,
                              nullptr, __FILE__, __LINE__, [scenario, seed]() -> ::testing::Test* {
                                return new SeedTest(scenario, seed);
                              });
    }
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
