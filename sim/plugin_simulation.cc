// A plugin_simulation_test's run (see plugin_simulation.h).
#include "sim/plugin_simulation.h"

#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "conformance/suite/manifest.h"
#include "sim/schedule.h"
#include "sim/sweep.h"

namespace bulwark::sim {
namespace {

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// Longest manifest file read (the manifest parser's own limit applies after).
constexpr size_t kManifestFileBytesMax = 2 * conformance::kManifestBytesMax;

bool ParseRange(absl::string_view text, uint64_t* first, uint64_t* last) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, "..");
  if (parts.size() == 1) {
    if (!absl::SimpleAtoi(parts[0], first)) return false;
    *last = *first;
    return true;
  }
  return parts.size() == 2 && absl::SimpleAtoi(parts[0], first) &&
         absl::SimpleAtoi(parts[1], last) && *first <= *last;
}

}  // namespace

int RunPluginSimulation(const std::vector<std::string>& args, sdk::BackendFactory factory,
                        ProbeCheck check, std::ostream& out, std::ostream& err) {
  std::string manifest_path;
  std::string seeds = kPluginSimulationSeedsDefault;
  std::string scenarios = kPluginSimulationScenariosDefault;
  std::set<std::string> expect_violation;
  SweepOptions options;
  options.check_determinism = true;
  for (const std::string& arg : args) {
    absl::string_view value = arg;
    if (absl::ConsumePrefix(&value, "--manifest=")) {
      manifest_path = std::string(value);
    } else if (absl::ConsumePrefix(&value, "--seeds=") || absl::ConsumePrefix(&value, "--seed=")) {
      seeds = std::string(value);
    } else if (absl::ConsumePrefix(&value, "--scenario=")) {
      scenarios = std::string(value);
    } else if (absl::ConsumePrefix(&value, "--schedule=")) {
      absl::StatusOr<std::vector<FaultEvent>> schedule = ParseSchedule(value);
      if (!schedule.ok()) {
        err << "plugin simulation: --schedule: " << schedule.status().message() << "\n";
        return kExitUsage;
      }
      options.schedule = *std::move(schedule);
    } else if (absl::ConsumePrefix(&value, "--check_determinism=")) {
      options.check_determinism = value != "false";
    } else if (absl::ConsumePrefix(&value, "--expect_violation=")) {
      for (absl::string_view name : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        expect_violation.insert(std::string(name));
      }
    } else if (absl::ConsumePrefix(&value, "--replay_prefix=")) {
      options.replay_prefix = std::string(value);
    } else {
      err << "plugin simulation: unknown argument \"" << arg.substr(0, 64)
          << "\" (known: --manifest, --seeds, --seed, --scenario, --schedule, "
             "--check_determinism, --expect_violation, --replay_prefix)\n";
      return kExitUsage;
    }
  }
  if (!ParseRange(seeds, &options.first_seed, &options.last_seed)) {
    err << "plugin simulation: --seeds must be N or A..B with A <= B, not \"" << seeds << "\"\n";
    return kExitUsage;
  }
  if (manifest_path.empty()) {
    err << "plugin simulation: --manifest=<the plugin's conformance manifest> is required\n";
    return kExitUsage;
  }
  std::ifstream file(manifest_path);
  std::stringstream text;
  text << file.rdbuf();
  if (!file.good() && !file.eof()) {
    err << "plugin simulation: cannot read the manifest " << manifest_path << "\n";
    return kExitUsage;
  }
  if (text.str().size() > kManifestFileBytesMax) {
    err << "plugin simulation: the manifest " << manifest_path << " is too large\n";
    return kExitUsage;
  }
  absl::StatusOr<conformance::Manifest> manifest = conformance::ParseManifest(text.str());
  if (!manifest.ok()) {
    err << "plugin simulation: " << manifest_path << ": " << manifest.status().message() << "\n";
    return kExitUsage;
  }
  if (!manifest->is_backend()) {
    err << "plugin simulation: " << manifest_path
        << " describes a database plugin; the simulator drives backend (secret, auth) plugins\n";
    return kExitUsage;
  }
  auto plugin = std::make_shared<PluginUnderTest>();
  plugin->name = manifest->name;
  plugin->factory = std::move(factory);
  plugin->probe = manifest->backend_probe;
  plugin->check = std::move(check);
  options.plugin = plugin;
  // A planted-bug test wants the first failure of each seed, not its shrunk form.
  options.shrink = expect_violation.empty();

  std::vector<SeedFailure> failures;
  for (absl::string_view scenario : absl::StrSplit(scenarios, ',', absl::SkipEmpty())) {
    options.scenario = std::string(scenario);
    out << "plugin simulation: " << plugin->name << ", probe \"" << plugin->probe.write_path
        << "\", seeds " << options.first_seed << ".." << options.last_seed << ", scenario "
        << options.scenario << (options.check_determinism ? ", each seed run twice" : "") << "\n";
    absl::StatusOr<SweepReport> report = RunSweep(options);
    if (!report.ok()) {
      err << "plugin simulation: " << report.status().message() << "\n";
      return kExitUsage;
    }
    out << FormatReport(*report);
    failures.insert(failures.end(), report->failures.begin(), report->failures.end());
  }
  if (expect_violation.empty()) return failures.empty() ? kExitPassed : kExitFailed;
  for (const SeedFailure& failure : failures) {
    if (!failure.violations.empty() && expect_violation.count(failure.violations[0].invariant)) {
      out << "plugin simulation: seed " << failure.seed << " failed by "
          << failure.violations[0].invariant << ", as expected for this planted bug\n";
      return kExitPassed;
    }
  }
  out << "plugin simulation: expected a seed to fail by one of";
  for (const std::string& name : expect_violation) out << " " << name;
  out << "; none did\n";
  return kExitFailed;
}

}  // namespace bulwark::sim
