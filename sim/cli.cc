// The simulator's command line (see cli.h).
#include "sim/cli.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/env/random.h"
#include "faultinject/registry.h"
#include "faultinject/spec.h"
#include "sim/crash_report.h"
#include "sim/drill.h"
#include "sim/scenario.h"
#include "sim/schedule.h"
#include "sim/sweep.h"

namespace bulwark::sim {
namespace {

constexpr uint64_t kDefaultFirstSeed = 1;
constexpr uint64_t kDefaultLastSeed = 100;
constexpr uint64_t kDrillSeedsDefault = 50;
constexpr int kBarWidth = 40;

struct Flags {
  SweepOptions sweep;
  bool json = false;
  bool list_scenarios = false;
  bool help = false;
  std::optional<std::string> drill;
  uint64_t drill_seeds = kDrillSeedsDefault;
  std::string schedule_text;
  bool seeds_given = false;
  bool seed_given = false;
};

absl::StatusOr<uint64_t> ParseCount(absl::string_view flag, absl::string_view value) {
  uint64_t n = 0;
  if (!absl::SimpleAtoi(value, &n)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " wants a non-negative integer, not \"", value.substr(0, 40), "\""));
  }
  return n;
}

absl::Status ParseSeeds(absl::string_view value, SweepOptions& sweep) {
  std::vector<absl::string_view> parts = absl::StrSplit(value, "..");
  uint64_t a = 0, b = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &a) || !absl::SimpleAtoi(parts[1], &b) ||
      b < a) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--seeds wants a range A..B with A <= B, e.g. 1..200, not \"", value.substr(0, 40), "\""));
  }
  sweep.first_seed = a;
  sweep.last_seed = b;
  return absl::OkStatus();
}

// The failpoint configuration in BULWARK_FAILPOINTS, read through faultinject's own explicit
// startup call and written back in the grammar.
absl::StatusOr<std::string> FailpointsFromEnvironment() {
  SeededRandom unused(0);
  faultinject::Registry scratch(unused);
  absl::Status status = faultinject::ConfigureFromEnvironment(scratch);
  if (!status.ok()) return status;
  std::vector<std::string> entries;
  for (const faultinject::SiteStats& site : scratch.Stats()) {
    if (site.configured) entries.push_back(absl::StrCat(site.name, "=", *scratch.Get(site.name)));
  }
  return absl::StrJoin(entries, ";");
}

absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags flags;
  flags.sweep.first_seed = kDefaultFirstSeed;
  flags.sweep.last_seed = kDefaultLastSeed;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (const size_t eq = flag.find('='); absl::StartsWith(flag, "--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    auto value = [&]() -> absl::StatusOr<std::string> {
      if (inline_value.has_value()) return *inline_value;
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value"));
      }
      return args[++i];
    };
    auto no_value = [&]() -> absl::Status {
      if (inline_value.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " takes no value"));
      }
      return absl::OkStatus();
    };
    absl::Status status;
    if (flag == "--help" || flag == "-h") {
      flags.help = true;
    } else if (flag == "--seeds") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      status = ParseSeeds(*v, flags.sweep);
      flags.seeds_given = true;
    } else if (flag == "--seed") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      absl::StatusOr<uint64_t> seed = ParseCount(flag, *v);
      if (!seed.ok()) return seed.status();
      flags.sweep.first_seed = flags.sweep.last_seed = *seed;
      flags.seed_given = true;
    } else if (flag == "--scenario") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      flags.sweep.scenario = *v;
    } else if (flag == "--check-determinism") {
      status = no_value();
      flags.sweep.check_determinism = true;
    } else if (flag == "--json") {
      status = no_value();
      flags.json = true;
    } else if (flag == "--schedule") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      flags.schedule_text = *v;
      absl::StatusOr<std::vector<FaultEvent>> schedule = ParseSchedule(*v);
      if (!schedule.ok()) return schedule.status();
      flags.sweep.schedule = *std::move(schedule);
    } else if (flag == "--steps-max") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      absl::StatusOr<uint64_t> n = ParseCount(flag, *v);
      if (!n.ok()) return n.status();
      if (*n == 0) return absl::InvalidArgumentError("--steps-max must be at least 1");
      flags.sweep.steps_max = *n;
    } else if (flag == "--sim-time-max") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      absl::Duration d;
      if (!absl::ParseDuration(*v, &d) || d <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--sim-time-max wants a positive duration such as 90m or 2h, not \"",
                         v->substr(0, 40), "\""));
      }
      flags.sweep.sim_time_max = d;
    } else if (flag == "--failpoints") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      absl::StatusOr<std::vector<faultinject::FailpointConfig>> parsed =
          faultinject::ParseConfig(*v);
      if (!parsed.ok()) return parsed.status();
      flags.sweep.failpoints = *v;
    } else if (flag == "--drill") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      flags.drill = *v;
    } else if (flag == "--drill-seeds") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      absl::StatusOr<uint64_t> n = ParseCount(flag, *v);
      if (!n.ok()) return n.status();
      if (*n == 0) return absl::InvalidArgumentError("--drill-seeds must be at least 1");
      flags.drill_seeds = *n;
    } else if (flag == "--trace") {
      status = no_value();
      flags.sweep.keep_trace = true;
    } else if (flag == "--no-shrink") {
      status = no_value();
      flags.sweep.shrink = false;
    } else if (flag == "--shrink-max") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      absl::StatusOr<uint64_t> n = ParseCount(flag, *v);
      if (!n.ok()) return n.status();
      flags.sweep.shrink_failures_max = *n;
    } else if (flag == "--nodes") {
      absl::StatusOr<std::string> v = value();
      if (!v.ok()) return v.status();
      absl::StatusOr<uint64_t> n = ParseCount(flag, *v);
      if (!n.ok()) return n.status();
      if (*n < 1 || *n > static_cast<uint64_t>(kNodesMax)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--nodes must be between 1 and ", kNodesMax, "; got ", *v));
      }
      flags.sweep.nodes = static_cast<int>(*n);
    } else if (flag == "--list-scenarios") {
      status = no_value();
      flags.list_scenarios = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag \"", flag.substr(0, 40), "\"; see --help"));
    }
    if (!status.ok()) return status;
  }
  if (flags.seeds_given && flags.seed_given) {
    return absl::InvalidArgumentError("give --seed or --seeds, not both");
  }
  if (flags.sweep.schedule.has_value() && !flags.seed_given) {
    return absl::InvalidArgumentError("--schedule replays one seed: give --seed N too");
  }
  absl::StatusOr<std::string> from_env = FailpointsFromEnvironment();
  if (!from_env.ok()) return from_env.status();
  if (!from_env->empty()) {
    flags.sweep.failpoints = flags.sweep.failpoints.empty()
                                 ? *from_env
                                 : absl::StrCat(*from_env, ";", flags.sweep.failpoints);
    absl::StatusOr<std::vector<faultinject::FailpointConfig>> merged =
        faultinject::ParseConfig(flags.sweep.failpoints);
    if (!merged.ok()) {
      return absl::Status(merged.status().code(),
                          absl::StrCat("BULWARK_FAILPOINTS and --failpoints together: ",
                                       merged.status().message()));
    }
  }
  return flags;
}

void DrawBar(std::ostream& err, uint64_t done, uint64_t total, uint64_t failed) {
  const int filled = static_cast<int>(kBarWidth * done / std::max<uint64_t>(total, 1));
  err << "\r[" << std::string(static_cast<size_t>(filled), '#')
      << std::string(static_cast<size_t>(kBarWidth - filled), '.') << "] " << done << "/" << total
      << " seeds, " << failed << " failed" << std::flush;
  if (done == total) err << "\r" << std::string(kBarWidth + 40, ' ') << "\r" << std::flush;
}

}  // namespace

std::string CliUsage() {
  return absl::StrCat(
      "usage: bazel run //sim -- [flags]\n"
      "  --seeds A..B           sweep seeds A to B (default ",
      kDefaultFirstSeed, "..", kDefaultLastSeed,
      ")\n"
      "  --seed N               run one seed\n"
      "  --scenario NAME        ",
      absl::StrJoin(ScenarioNames(), ", "),
      " (default: default)\n"
      "  --nodes N              N nodes (1..7); more than 1: an HA cluster on a simulated etcd\n"
      "                         (default: the scenario's, 3 for cluster, 1 for the others)\n"
      "  --schedule TEXT        replay --seed N with exactly these faults (as a report prints)\n"
      "  --check-determinism    run every seed twice; report the first differing trace event\n"
      "  --failpoints SPEC      failpoints in force for the whole run, e.g.\n"
      "                         'bug.storage.file.ack_before_sync=return' (also read from\n"
      "                         BULWARK_FAILPOINTS)\n"
      "  --drill NAME|all       planted-bug drill: ",
      absl::StrJoin(PlantedBugs(), ", ",
                    [](std::string* out, const PlantedBug& bug) { out->append(bug.name); }),
      "\n"
      "  --drill-seeds N        seeds the drill tries per bug (default ",
      kDrillSeedsDefault,
      ")\n"
      "  --steps-max N          stop a run after N event-loop steps (default ",
      kDefaultStepsMax,
      ")\n"
      "  --sim-time-max D       stop a run after D of simulated time (default ",
      absl::FormatDuration(kDefaultSimTimeMax),
      ")\n"
      "  --no-shrink            do not shrink failing schedules\n"
      "  --shrink-max N         shrink at most N failures per sweep (default ",
      kShrinkFailuresDefaultMax,
      ")\n"
      "  --json                 print the report as JSON\n"
      "  --trace                print every trace event of the first seed after the report\n"
      "  --list-scenarios       describe the scenarios\n"
      "exit status: 0 every seed passed, 1 a seed failed (or a planted bug went uncaught), "
      "2 bad usage\n");
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           bool progress_bar) {
  return RunCli(args, out, err, progress_bar, CliHooks());
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           bool progress_bar, const CliHooks& hooks) {
  absl::StatusOr<Flags> parsed = ParseFlags(args);
  if (!parsed.ok()) {
    err << "sim: " << parsed.status().message() << "\n\n" << CliUsage();
    return kExitUsage;
  }
  Flags& flags = *parsed;
  if (flags.help) {
    out << CliUsage();
    return kExitPassed;
  }
  if (flags.list_scenarios) {
    for (const std::string& name : ScenarioNames()) {
      out << name << std::string(name.size() < 10 ? 10 - name.size() : 1, ' ')
          << ScenarioDescription(name) << "\n";
    }
    return kExitPassed;
  }
  if (flags.drill.has_value()) {
    absl::StatusOr<std::vector<PlantedBug>> bugs = PlantedBugsNamed(*flags.drill);
    if (!bugs.ok()) {
      err << "sim: " << bugs.status().message() << "\n";
      return kExitUsage;
    }
    std::vector<DrillResult> results;
    bool all_caught = true;
    for (const PlantedBug& bug : *bugs) {
      if (progress_bar) err << "drill " << bug.name << "..." << std::flush;
      // A drill seed that dies on a signal is named like a sweep's.
      const auto seed_starting = [&bug, &hooks](uint64_t seed, const std::string& replay) {
        ArmCrashReport(absl::StrCat("seed ", seed, " (drill ", bug.name, ", scenario ",
                                    bug.scenario, ")\n  replay:  ", replay, "\n"));
        if (hooks.seed_starting) hooks.seed_starting(seed);
      };
      results.push_back(RunDrill(bug, flags.sweep.first_seed, flags.drill_seeds,
                                 flags.sweep.shrink ? flags.sweep.shrink_runs_max : 1,
                                 seed_starting));
      DisarmCrashReport();
      all_caught &= results.back().caught || !results.back().planted;
      if (progress_bar) err << "\r" << std::string(60, ' ') << "\r" << std::flush;
    }
    out << FormatDrill(results);
    return all_caught ? kExitPassed : kExitFailed;
  }
  if (progress_bar) {
    flags.sweep.progress = [&err](uint64_t done, uint64_t total, uint64_t failed) {
      DrawBar(err, done, total, failed);
    };
  }
  // A sweep that dies on a signal still names its seed (crash_report.h; the binary installs the
  // handler).
  flags.sweep.seed_starting = [&hooks, scenario = flags.sweep.scenario](uint64_t seed,
                                                                        const std::string& replay) {
    ArmCrashReport(
        absl::StrCat("seed ", seed, " (scenario ", scenario, ")\n  replay:  ", replay, "\n"));
    if (hooks.seed_starting) hooks.seed_starting(seed);
  };
  absl::StatusOr<SweepReport> report = RunSweep(flags.sweep);
  DisarmCrashReport();
  if (!report.ok()) {
    err << "sim: " << report.status().message() << "\n";
    return kExitUsage;
  }
  out << (flags.json ? ReportJson(*report) : FormatReport(*report));
  if (flags.sweep.keep_trace && !flags.json) {
    out << "trace of seed " << flags.sweep.first_seed << " (" << report->first_trace.size()
        << " events):\n";
    for (const TraceEvent& event : report->first_trace) out << "  " << event.ToString() << "\n";
  }
  return report->failures.empty() ? kExitPassed : kExitFailed;
}

}  // namespace bulwark::sim
