// The command line: flags, exit codes, the JSON report, and that a printed replay command
// reproduces the failure it was printed for.
#include "sim/cli.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bulwark::sim {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome Cli(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int code = RunCli(args, out, err, /*progress_bar=*/false);
  return {code, out.str(), err.str()};
}

// Splits a printed command after "--" into arguments, undoing the single quotes it uses.
std::vector<std::string> ArgsOf(const std::string& command) {
  std::vector<std::string> args;
  const size_t start = command.find(" -- ");
  std::string current;
  bool quoted = false, any = false;
  for (size_t i = start + 4; i < command.size(); ++i) {
    const char c = command[i];
    if (c == '\'') {
      quoted = !quoted;
      any = true;
    } else if (c == ' ' && !quoted) {
      if (any) args.push_back(current);
      current.clear();
      any = false;
    } else {
      current.push_back(c);
      any = true;
    }
  }
  if (any) args.push_back(current);
  return args;
}

TEST(CliTest, HelpAndScenarios) {
  Outcome help = Cli({"--help"});
  EXPECT_EQ(help.code, kExitPassed);
  EXPECT_THAT(help.out, HasSubstr("--seeds A..B"));
  Outcome list = Cli({"--list-scenarios"});
  EXPECT_EQ(list.code, kExitPassed);
  EXPECT_THAT(list.out, AllOf(HasSubstr("swarm"), HasSubstr("default"), HasSubstr("quiet")));
}

TEST(CliTest, UsageErrorsExitWithTwoAndSayWhy) {
  EXPECT_THAT(Cli({"--bogus"}).err, HasSubstr("unknown flag \"--bogus\""));
  EXPECT_EQ(Cli({"--bogus"}).code, kExitUsage);
  EXPECT_THAT(Cli({"--seeds", "9..3"}).err, HasSubstr("A..B with A <= B"));
  EXPECT_THAT(Cli({"--seed"}).err, HasSubstr("--seed needs a value"));
  EXPECT_THAT(Cli({"--schedule", "1000:kill:5"}).err, HasSubstr("give --seed N too"));
  EXPECT_THAT(Cli({"--seed", "1", "--schedule", "1000:melt"}).err,
              HasSubstr("unknown fault kind \"melt\""));
  EXPECT_THAT(Cli({"--failpoints", "a=retrun"}).err, HasSubstr("unknown action \"retrun\""));
  EXPECT_THAT(Cli({"--scenario", "nope", "--seed", "1"}).err,
              HasSubstr("unknown scenario \"nope\""));
  EXPECT_THAT(Cli({"--nodes", "9"}).err, HasSubstr("--nodes must be between 1 and 7"));
  EXPECT_THAT(Cli({"--nodes", "0"}).err, HasSubstr("--nodes must be between 1 and 7"));
  EXPECT_THAT(Cli({"--sim-time-max", "soon"}).err, HasSubstr("positive duration"));
  EXPECT_THAT(Cli({"--drill", "nothing"}).err, HasSubstr("unknown planted bug"));
  EXPECT_EQ(Cli({"--seed", "1", "--seeds", "1..2"}).code, kExitUsage);
}

TEST(CliTest, JsonReportOfAPassingSweep) {
  Outcome run = Cli({"--seeds=1..2", "--json", "--scenario=quiet"});
  ASSERT_EQ(run.code, kExitPassed) << run.out << run.err;
  const nlohmann::json report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report["runs"], 2);
  EXPECT_EQ(report["passed"], 2);
  EXPECT_EQ(report["failed"], 0);
  EXPECT_EQ(report["nodes"], 0);  // No --nodes: the scenario's own.
  EXPECT_EQ(report["trace_hash"].get<std::string>().size(), 16u);
  EXPECT_GT(report["sim_to_wall_ratio"].get<double>(), 0);
  EXPECT_GT(report["checks"]["durability"].get<uint64_t>(), 0u);
  // The text report of the same sweep carries the same hash.
  Outcome text = Cli({"--seeds", "1..2", "--scenario", "quiet"});
  EXPECT_THAT(text.out, HasSubstr(report["trace_hash"].get<std::string>()));
}

TEST(CliTest, APrintedReplayCommandReproducesTheFailure) {
  Outcome run = Cli({"--seed", "1", "--scenario", "crash", "--failpoints",
                     "bug.storage.file.ack_before_sync=return", "--json"});
  ASSERT_EQ(run.code, kExitFailed) << run.out << run.err;
  const nlohmann::json report = nlohmann::json::parse(run.out);
  ASSERT_EQ(report["failures"].size(), 1u);
  const nlohmann::json& failure = report["failures"][0];
  const std::string invariant = failure["violations"][0]["invariant"].get<std::string>();
  const std::string replay = failure["shrink"]["replay"].get<std::string>();
  EXPECT_THAT(replay, HasSubstr("--schedule"));

  Outcome again = Cli(ArgsOf(replay));
  EXPECT_EQ(again.code, kExitFailed) << replay << "\n" << again.err;
  EXPECT_THAT(again.out, HasSubstr(absl::StrCat("seed 1: ", invariant)));
}

TEST(CliTest, FailpointsFromTheEnvironment) {
  ASSERT_EQ(::setenv("BULWARK_FAILPOINTS", "bug.barrier.serve_while_sealed=return", 1), 0);
  Outcome run = Cli({"--seed", "1", "--scenario", "seal", "--no-shrink"});
  ::unsetenv("BULWARK_FAILPOINTS");
  EXPECT_EQ(run.code, kExitFailed);
  EXPECT_THAT(run.out, HasSubstr("sealed_read"));
  EXPECT_THAT(run.out,
              HasSubstr("--failpoints 'bug.barrier.serve_while_sealed=return(unavailable)'"));
  ASSERT_EQ(::setenv("BULWARK_FAILPOINTS", "x=nonsense", 1), 0);
  Outcome bad = Cli({"--seed", "1"});
  ::unsetenv("BULWARK_FAILPOINTS");
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_THAT(bad.err, HasSubstr("BULWARK_FAILPOINTS"));
}

TEST(CliTest, DrillReportsEachBug) {
  Outcome run = Cli({"--drill", "barrier.serve_while_sealed", "--drill-seeds", "5"});
  EXPECT_EQ(run.code, kExitPassed) << run.out;
  EXPECT_THAT(run.out, AllOf(HasSubstr("caught at seed"), HasSubstr("sealed_read"),
                             HasSubstr("replay: bazel run //sim")));
}

}  // namespace
// Schedules the sweeps once failed on, replayed as regressions (each failed before its fix).
TEST(CliTest, FoundSchedulesPass) {
  // Artifact swaps on two nodes overlapping: the node whose swap ended first stayed swapped
  // (the swap count was per artifact, not per node's disk), so the active could never launch.
  Outcome swaps = Cli({"--seed", "94", "--scenario", "default", "--nodes", "3", "--schedule",
                       "24155:swap:0:6641,25770@1:swap:0:6719,94575:ha:1:39142:0"});
  EXPECT_EQ(swaps.code, kExitPassed) << swaps.out << swaps.err;
  // A perf standby lost the lock while stopping its plugins to become active; the stop's
  // completion then made it active without the lock (Node::BecomeActive was not overtaken).
  Outcome overtaken =
      Cli({"--seed", "46", "--scenario", "cluster", "--schedule", "22272@2:ha:2:7993:3359"});
  EXPECT_EQ(overtaken.code, kExitPassed) << overtaken.out << overtaken.err;
  // Two rotate-roots on one connection delivered in the same instant both found it free and
  // ran UpdateUser at once, each WAL recording an old password from before the other's change:
  // root_recoverable failed with no fault event at all (docs/database.md).
  Outcome rotations = Cli({"--seed", "6492", "--scenario", "rotation"});
  EXPECT_EQ(rotations.code, kExitPassed) << rotations.out << rotations.err;
}

}  // namespace bulwark::sim
