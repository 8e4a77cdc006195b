// Seed sweeps and their reports (see sweep.h). The harness measures its own wall and CPU time to
// report speed; nothing it measures reaches a simulation.
#include "sim/sweep.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sim/scenario.h"

namespace bulwark::sim {
namespace {

std::string ShellQuote(absl::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out += "'";
  return out;
}

std::string SeedRange(const SweepOptions& options) {
  if (options.first_seed == options.last_seed) return absl::StrCat(options.first_seed);
  return absl::StrCat(options.first_seed, "..", options.last_seed);
}

template <typename Map>
void AddAll(Map& into, const Map& from) {
  for (const auto& [key, value] : from) into[key] += value;
}

std::string JoinCounts(const std::map<std::string, uint64_t>& counts) {
  if (counts.empty()) return "none";
  return absl::StrJoin(counts, ", ", [](std::string* out, const auto& entry) {
    absl::StrAppend(out, entry.first, " ", entry.second);
  });
}

std::string HumanDuration(absl::Duration d) {
  const int64_t seconds = absl::ToInt64Seconds(d);
  if (seconds >= 3600) {
    return absl::StrFormat("%dh%02dm%02ds", seconds / 3600, seconds / 60 % 60, seconds % 60);
  }
  if (seconds >= 60) return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  return absl::StrFormat("%.3fs", absl::ToDoubleSeconds(d));
}

Divergence Diverge(const RunResult& a, const RunResult& b) {
  Divergence d;
  d.first_hash = a.trace_hash;
  d.second_hash = b.trace_hash;
  const std::optional<size_t> at = FirstDifference(a.trace, b.trace);
  d.index = at.value_or(std::min(a.trace.size(), b.trace.size()));
  d.first = d.index < a.trace.size() ? a.trace[d.index].ToString() : "(none: the run ended)";
  d.second = d.index < b.trace.size() ? b.trace[d.index].ToString() : "(none: the run ended)";
  return d;
}

}  // namespace

uint64_t SweepReport::trace_hash() const {
  if (trace_hashes.size() == 1) return trace_hashes[0];
  return CombineHashes(trace_hashes);
}

double SweepReport::sim_to_wall_ratio() const {
  return wall_seconds > 0 ? absl::ToDoubleSeconds(sim_time) / wall_seconds : 0;
}

double SweepReport::seeds_per_cpu_hour() const {
  return cpu_seconds > 0 ? static_cast<double>(runs) * 3600.0 / cpu_seconds : 0;
}

std::vector<size_t> SweepReport::shrunk_lengths() const {
  std::vector<size_t> lengths;
  for (const SeedFailure& failure : failures) {
    if (failure.shrunk.has_value() && failure.shrunk->reproduced) {
      lengths.push_back(failure.shrunk->schedule.size());
    }
  }
  std::sort(lengths.begin(), lengths.end());
  return lengths;
}

std::string ReplayCommand(const SweepOptions& options, uint64_t seed,
                          const std::vector<FaultEvent>* schedule) {
  if (!options.replay_prefix.empty()) {
    // A plugin_simulation_test: its own flags, one --test_arg each.
    std::string command = absl::StrCat(options.replay_prefix, " --test_arg=--seed=", seed,
                                       " --test_arg=--scenario=", options.scenario);
    if (schedule != nullptr) {
      absl::StrAppend(
          &command, " ",
          ShellQuote(absl::StrCat("--test_arg=--schedule=", FormatSchedule(*schedule))));
    }
    return command;
  }
  std::string command =
      absl::StrCat("bazel run //sim -- --seed ", seed, " --scenario ", options.scenario);
  if (options.nodes > 0) absl::StrAppend(&command, " --nodes ", options.nodes);
  if (!options.failpoints.empty()) {
    absl::StrAppend(&command, " --failpoints ", ShellQuote(options.failpoints));
  }
  if (options.steps_max != kDefaultStepsMax) {
    absl::StrAppend(&command, " --steps-max ", options.steps_max);
  }
  if (options.sim_time_max != kDefaultSimTimeMax) {
    absl::StrAppend(&command, " --sim-time-max ", absl::FormatDuration(options.sim_time_max));
  }
  if (schedule != nullptr) {
    absl::StrAppend(&command, " --schedule ", ShellQuote(FormatSchedule(*schedule)));
  }
  return command;
}

absl::StatusOr<SweepReport> RunSweep(const SweepOptions& options) {
  if (options.last_seed < options.first_seed) {
    return absl::InvalidArgumentError(
        absl::StrCat("seed range ", options.first_seed, "..", options.last_seed, " is empty"));
  }
  const uint64_t total = options.last_seed - options.first_seed + 1;
  if (total > kSweepSeedsMax || total == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("seed range covers more than ", kSweepSeedsMax, " seeds"));
  }
  if (options.schedule.has_value() && total != 1) {
    return absl::InvalidArgumentError("--schedule replays one seed: give --seed N");
  }
  // Resolve the scenario once up front, so an unknown name fails before any run.
  if (absl::StatusOr<Scenario> probe = ScenarioFor(options.scenario, options.first_seed);
      !probe.ok()) {
    return probe.status();
  } else if (options.nodes > 0) {
    if (absl::StatusOr<Scenario> sized = WithNodes(*probe, options.nodes); !sized.ok()) {
      return sized.status();
    }
  }

  SweepReport report;
  report.options = options;
  report.options.progress = nullptr;
  report.options.seed_starting = nullptr;
  const auto wall_start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  size_t shrunk = 0;
  for (uint64_t seed = options.first_seed;; ++seed) {
    absl::StatusOr<Scenario> scenario = ScenarioFor(options.scenario, seed);
    if (options.nodes > 0) scenario = WithNodes(*std::move(scenario), options.nodes);
    RunConfig config;
    config.seed = seed;
    config.scenario = *std::move(scenario);
    config.schedule = options.schedule;
    config.failpoints = options.failpoints;
    config.steps_max = options.steps_max;
    config.sim_time_max = options.sim_time_max;
    config.record_trace = options.check_determinism || (options.keep_trace && report.runs == 0);
    config.plant_nondeterminism_for_test = options.plant_nondeterminism_for_test;
    config.plugin = options.plugin;
    if (options.seed_starting) {
      options.seed_starting(
          seed, ReplayCommand(options, seed,
                              options.schedule.has_value() ? &*options.schedule : nullptr));
    }
    RunResult result = RunSimulation(config);
    std::optional<Divergence> divergence;
    if (options.check_determinism) {
      const RunResult again = RunSimulation(config);
      ++report.determinism_checked;
      if (again.trace_hash == result.trace_hash && again.trace_events == result.trace_events) {
        ++report.determinism_same;
      } else {
        divergence = Diverge(result, again);
      }
    }

    if (options.keep_trace && report.runs == 0) report.first_trace = result.trace;
    ++report.runs;
    AddAll(report.faults, result.faults);
    AddAll(report.faults_skipped, result.faults_skipped);
    AddAll(report.checks, result.checks);
    AddAll(report.ops_ok, result.ops_ok);
    AddAll(report.ops_failed, result.ops_failed);
    for (const faultinject::SiteStats& site : result.failpoints) {
      SweepReport::SiteTotals& totals = report.failpoints[site.name];
      totals.hits += site.hits;
      totals.fires += site.fires;
      totals.runs_active += site.buggify_active.value_or(false) ? 1 : 0;
    }
    report.sim_time += result.sim_time;
    report.steps += result.steps;
    report.trace_events += result.trace_events;
    report.trace_hashes.push_back(result.trace_hash);

    if (result.passed() && !divergence.has_value()) {
      ++report.passed;
    } else {
      SeedFailure failure;
      failure.seed = seed;
      failure.violations = result.violations;
      failure.schedule = result.schedule;
      failure.divergence = divergence;
      if (!result.passed() && options.shrink && shrunk < options.shrink_failures_max) {
        ++shrunk;
        config.record_trace = false;
        failure.shrunk = Shrink(config, result, options.shrink_runs_max);
      }
      report.failures.push_back(std::move(failure));
    }
    if (options.progress) options.progress(report.runs, total, report.failures.size());
    if (seed == options.last_seed) break;
  }
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  report.cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  return report;
}

std::string FormatReport(const SweepReport& report) {
  const SweepOptions& options = report.options;
  std::string out;
  absl::StrAppend(
      &out, "bulwark sim: scenario ", options.scenario, ", seed", report.runs == 1 ? " " : "s ",
      SeedRange(options), " (", report.runs, " run", report.runs == 1 ? "" : "s",
      options.schedule.has_value() ? ", replaying a schedule" : "",
      options.failpoints.empty() ? "" : absl::StrCat(", failpoints ", options.failpoints), ")\n");
  absl::StrAppend(&out, "  result:          ", report.passed, " passed, ", report.failures.size(),
                  " failed\n");
  absl::StrAppend(&out, "  simulated time:  ", HumanDuration(report.sim_time), " in ",
                  absl::StrFormat("%.2f", report.wall_seconds),
                  " s of wall time: ", absl::StrFormat("%.0f", report.sim_to_wall_ratio()), "x\n");
  absl::StrAppend(&out, "  throughput:      ", absl::StrFormat("%.0f", report.seeds_per_cpu_hour()),
                  " seeds per CPU-hour (", absl::StrFormat("%.2f", report.cpu_seconds), " s CPU), ",
                  report.steps, " loop steps, ", report.trace_events, " trace events\n");
  if (report.determinism_checked > 0) {
    absl::StrAppend(&out, "  determinism:     ", report.determinism_same, " of ",
                    report.determinism_checked, " seeds gave the same trace hash twice\n");
  }
  absl::StrAppend(&out, "  trace hash:      ", HashHex(report.trace_hash()),
                  report.runs == 1 ? "" : absl::StrCat(" (combined over ", report.runs, " seeds)"),
                  "\n");
  absl::StrAppend(&out, "  faults injected: ", JoinCounts(report.faults), "\n");
  if (!report.faults_skipped.empty()) {
    absl::StrAppend(&out, "  faults skipped:  ", JoinCounts(report.faults_skipped),
                    " (not applicable when due: node down, no plugin running, no component)\n");
  }
  absl::StrAppend(&out, "  invariant checks: ", JoinCounts(report.checks), "\n");
  std::map<std::string, std::string> ops;
  for (const auto& [kind, n] : report.ops_ok) ops[kind] = absl::StrCat(n, " ok");
  for (const auto& [kind, n] : report.ops_failed) {
    std::string& entry = ops[kind];
    absl::StrAppend(&entry, entry.empty() ? "" : "/", n, " failed");
  }
  absl::StrAppend(&out, "  operations:      ",
                  ops.empty() ? "none"
                              : absl::StrJoin(ops, ", ",
                                              [](std::string* o, const auto& e) {
                                                absl::StrAppend(o, e.first, " ", e.second);
                                              }),
                  "\n");
  if (!report.failpoints.empty()) {
    absl::StrAppend(&out, "  failpoint sites:\n");
    for (const auto& [name, totals] : report.failpoints) {
      absl::StrAppend(&out, "    ", absl::StrFormat("%-36s", name), " hits ", totals.hits,
                      ", fired ", totals.fires, ", buggified in ", totals.runs_active, " runs\n");
    }
  }
  const std::vector<size_t> lengths = report.shrunk_lengths();
  if (!lengths.empty()) {
    absl::StrAppend(&out, "  shrunk schedules: median ", lengths[lengths.size() / 2], " events (",
                    absl::StrJoin(lengths, ", "), ")\n");
  }
  if (!report.failures.empty()) absl::StrAppend(&out, "failures:\n");
  for (const SeedFailure& failure : report.failures) {
    absl::StrAppend(&out, "  seed ", failure.seed, ":");
    if (!failure.violations.empty()) {
      const Violation& v = failure.violations[0];
      absl::StrAppend(&out, " ", v.invariant, " at ", HumanDuration(absl::Milliseconds(v.at_ms)),
                      ": ", v.detail, "\n");
    } else {
      absl::StrAppend(&out, " passed, but not deterministically\n");
    }
    if (failure.divergence.has_value()) {
      const Divergence& d = *failure.divergence;
      absl::StrAppend(&out, "    NONDETERMINISM: trace hashes ", HashHex(d.first_hash), " and ",
                      HashHex(d.second_hash), "; first difference at event ", d.index, ":\n",
                      "      run 1: ", d.first, "\n      run 2: ", d.second, "\n");
    }
    absl::StrAppend(&out, "    replay:  ", ReplayCommand(options, failure.seed, nullptr), "\n");
    if (failure.shrunk.has_value()) {
      const ShrinkResult& s = *failure.shrunk;
      if (!s.reproduced) {
        absl::StrAppend(&out, "    shrink:  the recorded schedule (", s.original_events,
                        " events) did not reproduce the failure when replayed; replay the seed\n");
      } else {
        absl::StrAppend(&out, "    shrunk:  ", s.schedule.size(), " of ", s.original_events,
                        " events in ", s.runs, " runs", s.verified ? ", verified twice" : "", " (",
                        s.violation.invariant, ")\n");
        absl::StrAppend(&out, "             ", ReplayCommand(options, failure.seed, &s.schedule),
                        "\n");
      }
    } else if (!failure.violations.empty()) {
      absl::StrAppend(&out, "    schedule (", failure.schedule.size(),
                      " events): ", ReplayCommand(options, failure.seed, &failure.schedule), "\n");
    }
  }
  return out;
}

std::string ReportJson(const SweepReport& report) {
  using nlohmann::json;
  const SweepOptions& options = report.options;
  json j;
  j["scenario"] = options.scenario;
  j["nodes"] = options.nodes;  // --nodes as given: 0 keeps the scenario's own.
  j["first_seed"] = options.first_seed;
  j["last_seed"] = options.last_seed;
  j["failpoints"] = options.failpoints;
  j["replaying_schedule"] = options.schedule.has_value();
  j["runs"] = report.runs;
  j["passed"] = report.passed;
  j["failed"] = report.failures.size();
  j["sim_time_seconds"] = absl::ToDoubleSeconds(report.sim_time);
  j["wall_seconds"] = report.wall_seconds;
  j["cpu_seconds"] = report.cpu_seconds;
  j["sim_to_wall_ratio"] = report.sim_to_wall_ratio();
  j["seeds_per_cpu_hour"] = report.seeds_per_cpu_hour();
  j["steps"] = report.steps;
  j["trace_events"] = report.trace_events;
  j["trace_hash"] = HashHex(report.trace_hash());
  j["determinism_checked"] = report.determinism_checked;
  j["determinism_same"] = report.determinism_same;
  j["faults"] = report.faults;
  j["faults_skipped"] = report.faults_skipped;
  j["checks"] = report.checks;
  j["ops_ok"] = report.ops_ok;
  j["ops_failed"] = report.ops_failed;
  json sites = json::object();
  for (const auto& [name, totals] : report.failpoints) {
    sites[name] = {
        {"hits", totals.hits}, {"fires", totals.fires}, {"runs_buggified", totals.runs_active}};
  }
  j["failpoint_sites"] = sites;
  j["shrunk_lengths"] = report.shrunk_lengths();
  json failures = json::array();
  for (const SeedFailure& failure : report.failures) {
    json f;
    f["seed"] = failure.seed;
    json violations = json::array();
    for (const Violation& v : failure.violations) {
      violations.push_back({{"invariant", v.invariant}, {"detail", v.detail}, {"at_ms", v.at_ms}});
    }
    f["violations"] = violations;
    f["schedule"] = FormatSchedule(failure.schedule);
    f["replay"] = ReplayCommand(options, failure.seed, nullptr);
    if (failure.shrunk.has_value()) {
      const ShrinkResult& s = *failure.shrunk;
      f["shrink"] = {{"reproduced", s.reproduced},
                     {"verified", s.verified},
                     {"invariant", s.invariant},
                     {"original_events", s.original_events},
                     {"events", s.schedule.size()},
                     {"runs", s.runs},
                     {"schedule", FormatSchedule(s.schedule)},
                     {"replay", ReplayCommand(options, failure.seed, &s.schedule)}};
    }
    if (failure.divergence.has_value()) {
      const Divergence& d = *failure.divergence;
      f["nondeterminism"] = {{"event", d.index},
                             {"run1", d.first},
                             {"run2", d.second},
                             {"hash1", HashHex(d.first_hash)},
                             {"hash2", HashHex(d.second_hash)}};
    }
    failures.push_back(f);
  }
  j["failures"] = failures;
  return j.dump(2) + "\n";
}

}  // namespace bulwark::sim
