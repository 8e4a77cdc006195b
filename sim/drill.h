// The planted-bug drill: each planted bug is a "bug.*" failpoint in core that breaks one rule when
// configured. The drill turns one on, sweeps seeds until the simulator catches it, and shrinks
// the failing schedule — evidence that the checks would catch the real thing.
#ifndef BULWARK_SIM_DRILL_H_
#define BULWARK_SIM_DRILL_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/shrink.h"
#include "sim/sweep.h"

namespace bulwark::sim {

struct PlantedBug {
  std::string name;                     // As given to --drill.
  std::string rule;                     // The core rule it breaks.
  std::string failpoints;               // The configuration that plants it.
  std::string scenario;                 // The scenario the drill runs it under.
  std::vector<std::string> invariants;  // Invariants expected to catch it.
};

// The failpoint a bug's configuration names ("bug.x=return" -> "bug.x").
std::string BugSite(const PlantedBug& bug);

// The bugs the drill knows, in a fixed order.
const std::vector<PlantedBug>& PlantedBugs();

// The bugs named by `name` ("all" for every one). NotFound naming the known ones otherwise.
absl::StatusOr<std::vector<PlantedBug>> PlantedBugsNamed(absl::string_view name);

struct DrillResult {
  PlantedBug bug;
  // False when the bug's failpoint was never evaluated: the site is not in the code (yet), so
  // the drill proves nothing either way.
  bool planted = true;
  bool caught = false;
  uint64_t seed = 0;         // The first seed that failed.
  uint64_t seeds_tried = 0;  // Seeds run, that one included.
  Violation violation;
  std::vector<FaultEvent> schedule;
  std::optional<ShrinkResult> shrunk;
  SweepOptions options;  // What replays it.
};

// Runs `bug`'s scenario with the bug planted from `first_seed` on, for at most `seeds_max` seeds,
// stopping at the first failure, which it shrinks (with at most `shrink_runs_max` runs).
// `seed_starting`, when set, is called before each seed with the command that replays it (as
// SweepOptions::seed_starting).
DrillResult RunDrill(
    const PlantedBug& bug, uint64_t first_seed, uint64_t seeds_max, size_t shrink_runs_max,
    const std::function<void(uint64_t seed, const std::string& replay)>& seed_starting = nullptr);

std::string FormatDrill(const std::vector<DrillResult>& results);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_DRILL_H_
