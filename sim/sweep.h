// Sweeps: running a range of seeds (optionally each twice, to check determinism), shrinking the
// failures, and the report — as text for people and as JSON for tools.
#ifndef BULWARK_SIM_SWEEP_H_
#define BULWARK_SIM_SWEEP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sim/schedule.h"
#include "sim/shrink.h"
#include "sim/simulation.h"
#include "sim/trace.h"

namespace bulwark::sim {

// Seeds one sweep may cover.
inline constexpr uint64_t kSweepSeedsMax = uint64_t{1} << 24;
// Failures shrunk per sweep by default (each costs up to kShrinkRunsDefaultMax runs).
inline constexpr size_t kShrinkFailuresDefaultMax = 5;

struct SweepOptions {
  std::string scenario = "default";
  uint64_t first_seed = 1;
  uint64_t last_seed = 100;
  std::optional<std::vector<FaultEvent>> schedule;  // Replay (single seed).
  std::string failpoints;
  int nodes = 0;  // --nodes: 0 keeps the scenario's own (WithNodes).
  uint64_t steps_max = kDefaultStepsMax;
  absl::Duration sim_time_max = kDefaultSimTimeMax;
  bool check_determinism = false;
  bool shrink = true;
  size_t shrink_failures_max = kShrinkFailuresDefaultMax;
  size_t shrink_runs_max = kShrinkRunsDefaultMax;
  // Keep the trace of the first seed's run (--trace).
  bool keep_trace = false;
  // For tests of the determinism checker only.
  bool plant_nondeterminism_for_test = false;
  // A plugin author's backend in place of the kv example (RunConfig::plugin), and the command
  // that replays a seed of it ("bazel test //pkg:target --test_arg=..."; empty: bazel run //sim).
  std::shared_ptr<const PluginUnderTest> plugin;
  std::string replay_prefix;
  // Called after each seed: (seeds done, seeds in total, failures so far).
  std::function<void(uint64_t, uint64_t, uint64_t)> progress;
  // Called before each seed runs, with the command that replays it (shrinking a failure happens
  // under the same seed): the CLI arms its crash report with them (crash_report.h).
  std::function<void(uint64_t seed, const std::string& replay)> seed_starting;
};

// Where two runs of one seed first differed.
struct Divergence {
  uint64_t index = 0;  // Event number.
  std::string first;   // The event in the first run ("(none)" past its end).
  std::string second;
  uint64_t first_hash = 0;
  uint64_t second_hash = 0;
};

struct SeedFailure {
  uint64_t seed = 0;
  std::vector<Violation> violations;
  std::vector<FaultEvent> schedule;  // As recorded.
  std::optional<ShrinkResult> shrunk;
  std::optional<Divergence> divergence;  // Set when the failure is nondeterminism.
};

struct SweepReport {
  SweepOptions options;  // Without the progress callback.
  uint64_t runs = 0;
  uint64_t passed = 0;
  std::vector<SeedFailure> failures;
  std::map<std::string, uint64_t> faults;
  std::map<std::string, uint64_t> faults_skipped;
  std::map<std::string, uint64_t> checks;
  std::map<std::string, uint64_t> ops_ok;
  std::map<std::string, uint64_t> ops_failed;
  struct SiteTotals {
    uint64_t hits = 0;
    uint64_t fires = 0;
    uint64_t runs_active = 0;  // Runs in which buggify switched the site on.
  };
  std::map<std::string, SiteTotals> failpoints;
  absl::Duration sim_time = absl::ZeroDuration();
  uint64_t steps = 0;
  uint64_t trace_events = 0;
  double wall_seconds = 0;
  double cpu_seconds = 0;
  std::vector<uint64_t> trace_hashes;   // Per seed, in seed order.
  uint64_t determinism_checked = 0;     // Seeds run twice.
  uint64_t determinism_same = 0;        // Of those, with one trace hash.
  std::vector<TraceEvent> first_trace;  // With SweepOptions::keep_trace.

  uint64_t trace_hash() const;  // The seed's hash for one seed; combined for a sweep.
  double sim_to_wall_ratio() const;
  double seeds_per_cpu_hour() const;
  // Shrunk schedule lengths of the failures that were shrunk, ascending.
  std::vector<size_t> shrunk_lengths() const;
};

// Resolves the scenario for each seed and runs the sweep. NotFound for an unknown scenario;
// InvalidArgument for an empty or too large seed range, or a schedule with more than one seed.
absl::StatusOr<SweepReport> RunSweep(const SweepOptions& options);

// The command that replays `seed` (with `schedule`, when given) under `options`.
std::string ReplayCommand(const SweepOptions& options, uint64_t seed,
                          const std::vector<FaultEvent>* schedule);

std::string FormatReport(const SweepReport& report);
std::string ReportJson(const SweepReport& report);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_SWEEP_H_
