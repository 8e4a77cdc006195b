// One deterministic simulation run: a cluster of simulated nodes (one today) running the real
// core on a shared simulated clock and event loop, a seeded workload of clients, an operator and a
// catalog administrator talking to it over a simulated network, faults on a seeded (or given)
// schedule, and invariant checkers watching every answer. Same seed and configuration, same run:
// the trace hash proves it.
//
// Invariants (the names reports and shrinking use):
//   sealed_read   nothing is served while sealed: no data or catalog request succeeds between
//                 an acknowledged seal and the next unseal, and no barrier that reports itself
//                 sealed serves a request
//   durability    an acknowledged write (or delete) is never lost: no read or listing returns a
//                 state that a later acknowledged write had replaced
//   phantom_read  no read or listing returns a value (or key) that was never written
//   launch_hash   no plugin is started from a file whose SHA-256 differs from the catalog entry's,
//                 and the catalog never accepts a registration with the wrong SHA-256
//   secret_leak   no error message, log line, trace payload or catalog view contains a
//                 fragment of a secret the workload handed over (values, unseal shares, plugin
//                 env values)
//   stopped_plugins  no plugin process survives a seal or a step-down
//   recovery      after any crash, storage and the core reopen (a torn write is never fatal)
//   caps          the run hit its step or simulated-time cap before finishing
//   reload        once faults stop, a request whose plugin process crashes under it still
//                 succeeds (lazy reload, one retry)
//   liveness      once faults stop, the node serves a write and a read within the scenario's
//                 bound, every key reads back, and every request is answered
#ifndef BULWARK_SIM_SIMULATION_H_
#define BULWARK_SIM_SIMULATION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "faultinject/registry.h"
#include "sim/plugin_under_test.h"
#include "sim/scenario.h"
#include "sim/schedule.h"
#include "sim/trace.h"

namespace bulwark::sim {

inline constexpr uint64_t kDefaultStepsMax = 20'000'000;
inline constexpr absl::Duration kDefaultSimTimeMax = absl::Hours(6);
// Violations kept per run (the first one is the run's failure; later ones are context).
inline constexpr size_t kViolationsMax = 16;

struct RunConfig {
  uint64_t seed = 1;
  Scenario scenario;
  // Replay: faults come only from this schedule (no drawing, no buggify).
  std::optional<std::vector<FaultEvent>> schedule;
  // Failpoint configuration in force for the whole run (the grammar of faultinject/spec.h), such
  // as "bug.storage.file.ack_before_sync=return" for the planted-bug drill. Not part of the
  // schedule: it stays on through the quiet phase and is not shrunk.
  std::string failpoints;
  uint64_t steps_max = kDefaultStepsMax;
  absl::Duration sim_time_max = kDefaultSimTimeMax;
  // Keep every trace event (for --check-determinism), not only the hash.
  bool record_trace = false;
  // End the run at its first violation (sweeps and shrinking); false checks to the end.
  bool stop_at_first_violation = true;
  // Shrinking: stop a candidate run once simulated time passes this (zero: never). A candidate
  // that has not failed by then counts as passing.
  absl::Duration stop_after = absl::ZeroDuration();
  // A plugin author's backend in place of the kv example, driven through its manifest's probe
  // (plugin_under_test.h, plugin_simulation_test). Null: the kv example and its workload.
  std::shared_ptr<const PluginUnderTest> plugin;
  // Tests of the determinism checker: mix a process-wide counter into the trace, so two runs of
  // one seed in one process differ.
  bool plant_nondeterminism_for_test = false;
};

struct Violation {
  std::string invariant;
  std::string detail;  // Never holds a secret.
  int64_t at_ms = 0;
};

struct RunResult {
  uint64_t seed = 0;
  std::string scenario;
  std::vector<Violation> violations;
  // The faults of the run, in canonical order: the timed faults drawn (or given) and every
  // failpoint fire chosen by buggify. Replaying it reproduces the run.
  std::vector<FaultEvent> schedule;
  uint64_t trace_hash = 0;
  uint64_t trace_events = 0;
  std::vector<TraceEvent> trace;  // Only with RunConfig::record_trace.
  absl::Duration sim_time = absl::ZeroDuration();
  uint64_t steps = 0;
  bool capped = false;
  bool stopped_early = false;                      // By stop_after.
  std::map<std::string, uint64_t> faults;          // Applied, by kind name.
  std::map<std::string, uint64_t> faults_skipped;  // Not applicable when due (node down, ...).
  std::map<std::string, uint64_t> checks;          // Invariant checks made, by invariant.
  std::map<std::string, uint64_t> ops_ok;          // By operation kind.
  std::map<std::string, uint64_t> ops_failed;
  std::vector<faultinject::SiteStats> failpoints;

  bool passed() const { return violations.empty(); }
  // The first violation's invariant ("" when passed): the failure's signature for shrinking.
  std::string signature() const { return violations.empty() ? "" : violations[0].invariant; }
};

// Runs one simulation. Installs its own failpoint registry for the duration (so runs must not
// overlap in one process; they may follow each other freely).
RunResult RunSimulation(const RunConfig& config);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_SIMULATION_H_
