// The registries of the simulator's parts: every fault kind of the schedule grammar has exactly
// one registered object, invariant names are unique and cover every name a check reports, the
// report names every registered invariant, and the actors of a run are the scenario's.
#include <map>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/actors/actor.h"
#include "sim/faults/fault.h"
#include "sim/invariants/invariant.h"
#include "sim/scenario.h"
#include "sim/simulation.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::IsSupersetOf;

constexpr FaultKind kTimedKinds[] = {
    FaultKind::kCrash,       FaultKind::kCrashMidOp, FaultKind::kKill,
    FaultKind::kSeal,        FaultKind::kClockJump,  FaultKind::kArtifactSwap,
    FaultKind::kPluginCrash, FaultKind::kPluginHang, FaultKind::kPluginSlow,
    FaultKind::kStepDown,    FaultKind::kPartition,  FaultKind::kRotateCredentials,
};

TEST(FaultRegistryTest, EveryTimedKindHasExactlyOneObject) {
  const std::vector<std::unique_ptr<Fault>> kinds = MakeFaultKinds();
  for (FaultKind kind : kTimedKinds) {
    int objects = 0;
    for (const std::unique_ptr<Fault>& fault : kinds) objects += fault->kind() == kind ? 1 : 0;
    EXPECT_EQ(objects, 1) << FaultKindName(kind);
  }
  for (const std::unique_ptr<Fault>& fault : kinds) {
    EXPECT_NE(fault->kind(), FaultKind::kFailpointFire) << "failpoint fires are never timed";
  }
}

TEST(FaultRegistryTest, ARateOfZeroDrawsNothingAndTheDefaultMixDrawsEveryBuiltKind) {
  const FaultMix none;
  absl::StatusOr<Scenario> scenario = ScenarioFor("default", 1);
  ASSERT_TRUE(scenario.ok());
  for (const std::unique_ptr<Fault>& fault : MakeFaultKinds()) {
    EXPECT_EQ(fault->RatePerMin(none), 0) << FaultKindName(fault->kind());
    const bool hook = fault->kind() == FaultKind::kPartition;
    // Tampering with signatures needs the "required" policy: its own scenario draws it.
    const bool tamper = fault->kind() == FaultKind::kTamper;
    // HA faults need a cluster: the "cluster" scenario draws them.
    const bool ha = fault->kind() == FaultKind::kHa;
    EXPECT_EQ(fault->RatePerMin(scenario->faults) > 0, !hook && !tamper && !ha)
        << FaultKindName(fault->kind());
    if (tamper) {
      EXPECT_GT(fault->RatePerMin(ScenarioFor("tamper", 1)->faults), 0);
    }
    if (ha) {
      EXPECT_GT(fault->RatePerMin(ScenarioFor("cluster", 1)->faults), 0);
    }
  }
}

TEST(InvariantRegistryTest, NamesAreUniqueAndCoverEveryNameAChecksReports) {
  std::set<std::string> names;
  for (const std::unique_ptr<Invariant>& invariant : MakeInvariants()) {
    EXPECT_TRUE(names.insert(std::string(invariant->name())).second) << invariant->name();
    EXPECT_FALSE(invariant->rule().empty()) << invariant->name();
  }
  EXPECT_THAT(names,
              IsSupersetOf({"sealed_read", "durability", "phantom_read", "launch_hash",
                            "secret_leak", "stopped_plugins", "process_sharing", "recovery",
                            "reload", "liveness", "caps", "plugin_confinement", "runner_config",
                            "bad_handshake", "catalog_validation", "signed_launch"}));
}

// The rule prober's catalog and plugin steps reach each of their invariants within a few seeds
// (a zero would be a rule the workload never exercises).
TEST(InvariantRegistryTest, TheRuleProberReachesEveryCatalogAndPluginRule) {
  std::map<std::string, uint64_t> checks;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    RunConfig config;
    config.seed = seed;
    absl::StatusOr<Scenario> scenario = ScenarioFor("default", seed);
    ASSERT_TRUE(scenario.ok());
    config.scenario = *scenario;
    const RunResult result = RunSimulation(config);
    ASSERT_TRUE(result.passed()) << result.violations[0].invariant << ": "
                                 << result.violations[0].detail;
    for (const auto& [name, count] : result.checks) checks[name] += count;
  }
  for (const char* name :
       {"plugin_confinement", "runner_config", "bad_handshake", "catalog_validation"}) {
    EXPECT_GT(checks[name], 0u) << name;
  }
}

TEST(InvariantRegistryTest, TheReportNamesEveryRegisteredInvariant) {
  RunConfig config;
  config.seed = 7;
  absl::StatusOr<Scenario> scenario = ScenarioFor("quiet", config.seed);
  ASSERT_TRUE(scenario.ok());
  config.scenario = *scenario;
  const RunResult result = RunSimulation(config);
  ASSERT_TRUE(result.passed()) << result.violations[0].detail;
  std::set<std::string> reported;
  for (const auto& [name, count] : result.checks) reported.insert(name);
  std::set<std::string> registered;
  for (const std::unique_ptr<Invariant>& invariant : MakeInvariants()) {
    registered.insert(std::string(invariant->name()));
  }
  EXPECT_EQ(reported, registered);
  EXPECT_EQ(result.checks.at("caps"), 0u);  // Checked only when a run hits a cap.
  EXPECT_GT(result.checks.at("durability"), 0u);
}

TEST(ActorRegistryTest, OneClientPerScenarioClientThenTheAdminOperatorProberAndAuditor) {
  RunConfig config;
  absl::StatusOr<Scenario> scenario = ScenarioFor("default", 1);
  ASSERT_TRUE(scenario.ok());
  scenario->clients = 2;
  config.scenario = *scenario;
  World world(config);
  world.actors = MakeActors(world);
  std::vector<std::string> names;
  for (const std::unique_ptr<Actor>& actor : world.actors) names.emplace_back(actor->name());
  EXPECT_THAT(names, ElementsAre("data-client", "data-client", "catalog-admin", "operator",
                                 "rule-prober", "db-operator", "auditor"));
  EXPECT_NE(world.operator_actor, nullptr);
  EXPECT_NE(world.db_operator, nullptr);
  EXPECT_NE(world.auditor, nullptr);
}

}  // namespace
}  // namespace bulwark::sim
