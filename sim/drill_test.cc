// The planted-bug drill: with each planted bug switched on, the simulator catches it within a
// bounded number of seeds, by one of the invariants the bug breaks, and shrinks the failing
// schedule to a few events that replay to the same failure.
#include "sim/drill.h"

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::sim {
namespace {

constexpr uint64_t kFirstSeed = 1;
constexpr uint64_t kSeedsMax = 20;
constexpr size_t kShrunkEventsMax = 10;

class DrillTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DrillTest, CatchesAndShrinks) {
  absl::StatusOr<std::vector<PlantedBug>> bugs = PlantedBugsNamed(GetParam());
  ASSERT_TRUE(bugs.ok()) << bugs.status();
  const PlantedBug& bug = (*bugs)[0];
  std::printf("bug %s, seeds %llu..%llu\n", bug.name.c_str(),
              static_cast<unsigned long long>(kFirstSeed),
              static_cast<unsigned long long>(kFirstSeed + kSeedsMax - 1));
  const DrillResult result = RunDrill(bug, kFirstSeed, kSeedsMax, 300);
  std::printf("%s", FormatDrill({result}).c_str());
  // Every bug in the list is planted in the code this test links: a failpoint that was never
  // reached means the bug's site was removed, renamed or not built in, and the drill proves
  // nothing about it.
  ASSERT_TRUE(result.planted) << "failpoint " << BugSite(bug) << " was never reached in scenario \""
                              << bug.scenario << "\": the bug is not planted";
  ASSERT_TRUE(result.caught) << "not caught in " << kSeedsMax << " seeds";
  EXPECT_THAT(bug.invariants, ::testing::Contains(result.violation.invariant));
  ASSERT_TRUE(result.shrunk.has_value());
  EXPECT_TRUE(result.shrunk->reproduced);
  EXPECT_TRUE(result.shrunk->verified);
  EXPECT_LE(result.shrunk->schedule.size(), kShrunkEventsMax);
  EXPECT_THAT(bug.invariants, ::testing::Contains(result.shrunk->invariant));
}

TEST(DrillTest, TheSameSeedsPassWithoutTheBug) {
  for (const PlantedBug& bug : PlantedBugs()) {
    if (bug.name.rfind("lifecycle.", 0) == 0) continue;  // Same scenarios as the others.
    const DrillResult result =
        RunDrill(PlantedBug{bug.name, bug.rule, /*failpoints=*/"", bug.scenario, bug.invariants},
                 kFirstSeed, 3, 1);
    EXPECT_FALSE(result.caught) << bug.name << ": " << result.violation.invariant << " "
                                << result.violation.detail;
  }
}

std::vector<std::string> BugNames() {
  std::vector<std::string> names;
  for (const PlantedBug& bug : PlantedBugs()) names.push_back(bug.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(PlantedBugs, DrillTest, ::testing::ValuesIn(BugNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

}  // namespace
}  // namespace bulwark::sim
