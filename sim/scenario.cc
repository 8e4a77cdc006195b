// The named scenarios and the swarm draw (see scenario.h).
#include "sim/scenario.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/env/random.h"

namespace bulwark::sim {
namespace {

using faultinject::Action;
using Rule = faultinject::BuggifyOptions::Rule;

struct Named {
  absl::string_view name;
  absl::string_view description;
};

constexpr Named kNamed[] = {
    {"default", "every fault kind at moderate rates, buggify on: the everyday sweep"},
    {"swarm", "each seed draws its own topology, workload mix, fault kinds, rates and buggify"},
    {"quiet", "no faults at all: the workload and the checks alone (a baseline)"},
    {"crash", "power losses (dropped and torn writes), crashes mid-write and process kills"},
    {"seal", "seal storms during traffic, key rotations, a few crashes"},
    {"storage", "storage failpoints (buggify) heavy, with crashes mid-write"},
    {"catalog", "catalog-heavy workload, artifacts swapped on disk, plugin crashes and hangs"},
    {"plugins", "plugin processes crash, hang and slow down; step-downs; lazy reloads"},
    {"swap", "artifacts swapped on disk under honest registrations: launch verification alone"},
    {"tamper", "signatures required: artifacts overwritten, signers removed, signatures swapped"},
    {"cluster",
     "3 HA nodes on a simulated etcd: partitions, store outages, skew, pauses, kills, "
     "step-downs"},
    {"rotation", "root rotations crashing the machine at every step, a light workload beside"},
};

double Between(Random& random, double lo, double hi) {
  return lo + (hi - lo) * random.UnitDouble();
}

absl::Duration MillisBetween(Random& random, int64_t lo, int64_t hi) {
  return absl::Milliseconds(static_cast<int64_t>(
      random.UniformInRange(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi))));
}

Scenario Default() {
  Scenario s;
  s.name = "default";
  FaultMix& f = s.faults;
  f.crash_per_min = 0.5;
  f.midcrash_per_min = 0.5;
  f.kill_per_min = 0.3;
  f.seal_per_min = 0.5;
  f.jump_per_min = 0.3;
  f.swap_per_min = 0.4;
  f.plugin_crash_per_min = 0.3;
  f.plugin_hang_per_min = 0.2;
  f.plugin_slow_per_min = 0.3;
  f.step_down_per_min = 0.2;
  f.rotate_credentials_per_min = 1;
  f.buggify = true;
  f.buggify_activation = 0.25;
  f.buggify_fire = 0.03;
  f.buggify_rules = DefaultBuggifyRules();
  return s;
}

Scenario Swarm(uint64_t seed) {
  SeededRandom random = SeededRandom(seed).Derive("swarm");
  Scenario s;
  s.name = "swarm";
  s.clients = static_cast<int>(random.UniformInRange(1, 6));
  s.keys_per_client = static_cast<int>(random.UniformInRange(2, 16));
  s.mounts = static_cast<int>(random.UniformInRange(1, 4));
  s.raw_percent = static_cast<int>(random.UniformInRange(0, 60));
  s.workload = absl::Seconds(static_cast<int64_t>(random.UniformInRange(60, 300)));
  s.think_mean = MillisBetween(random, 50, 800);
  s.put_weight = static_cast<int>(random.UniformInRange(1, 50));
  s.get_weight = static_cast<int>(random.UniformInRange(1, 50));
  s.list_weight = static_cast<int>(random.UniformInRange(0, 20));
  s.delete_weight = static_cast<int>(random.UniformInRange(0, 20));
  s.catalog_ops_per_min = Between(random, 0, 60);
  s.rotate_per_min = Between(random, 0, 2);
  s.operator_seal_per_min = Between(random, 0, 1);
  s.wrong_sha_probability = Between(random, 0, 0.2);
  s.latency_max = MillisBetween(random, 2, 100);
  FaultMix& f = s.faults;
  // Each kind is on for about half the seeds, at its own rate.
  auto rate = [&](double hi) { return random.Bernoulli(0.5) ? Between(random, 0.1, hi) : 0.0; };
  f.crash_per_min = rate(3);
  f.midcrash_per_min = rate(3);
  f.kill_per_min = rate(2);
  f.seal_per_min = rate(3);
  f.jump_per_min = rate(2);
  f.swap_per_min = rate(2);
  f.plugin_crash_per_min = rate(2);
  f.plugin_hang_per_min = rate(1);
  f.plugin_slow_per_min = rate(2);
  f.step_down_per_min = rate(1);
  f.tear_probability = random.UnitDouble();
  f.midcrash_mutations_max = static_cast<int>(random.UniformInRange(1, 20));
  f.restart_max = MillisBetween(random, 300, 20000);
  f.seal_max = MillisBetween(random, 1500, 30000);
  f.buggify = random.Bernoulli(0.8);  // FoundationDB runs with buggify in 80% of runs.
  f.buggify_activation = Between(random, 0.1, 0.6);
  f.buggify_fire = Between(random, 0.005, 0.1);
  for (Rule rule : DefaultBuggifyRules()) {
    const uint64_t pick = random.Uniform(100);
    if (pick < 50) {
      rule.action = Action::Return(absl::StatusCode::kUnavailable);
    } else if (pick < 65) {
      rule.action = Action::Return(absl::StatusCode::kInternal);
    } else if (pick < 85) {
      rule.action = Action::Delay(MillisBetween(random, 10, 3000));
    } else if (pick < 95) {
      rule.action = Action::Crash();
    } else {
      rule.action = Action::Hang();
    }
    f.buggify_rules.push_back(rule);
  }
  f.rotate_credentials_per_min = rate(2);  // Drawn last: the draws above keep their values.
  return s;
}

}  // namespace

std::vector<faultinject::BuggifyOptions::Rule> DefaultBuggifyRules() {
  return {
      {"storage.file.put.before_sync", Action::Return(absl::StatusCode::kUnavailable)},
      // A slow disk: the write lands, its acknowledgement comes late.
      {"storage.file.put.after_sync", Action::Delay(absl::Milliseconds(1500))},
      {"storage.file.delete.before_sync", Action::Return(absl::StatusCode::kUnavailable)},
      {"barrier.unseal", Action::Return(absl::StatusCode::kUnavailable)},
      {"catalog.launch", Action::Return(absl::StatusCode::kUnavailable)},
  };
}

absl::StatusOr<Scenario> WithNodes(Scenario s, int nodes) {
  if (nodes < 1 || nodes > kNodesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("--nodes must be between 1 and ", kNodesMax, "; got ", nodes));
  }
  s.nodes = nodes;
  if (nodes > 1) {
    s.faults.step_down_per_min = 0;
    s.faults.ha_per_min = std::max(s.faults.ha_per_min, 2.0);
  }
  return s;
}

std::vector<std::string> ScenarioNames() {
  std::vector<std::string> names;
  for (const Named& named : kNamed) names.emplace_back(named.name);
  return names;
}

std::string ScenarioDescription(absl::string_view name) {
  for (const Named& named : kNamed) {
    if (named.name == name) return std::string(named.description);
  }
  return "";
}

absl::StatusOr<Scenario> ScenarioFor(absl::string_view name, uint64_t seed) {
  if (name == "default") return Default();
  if (name == "swarm") return Swarm(seed);
  Scenario s = Default();
  s.name = std::string(name);
  FaultMix& f = s.faults;
  if (name == "quiet") {
    f = FaultMix();
    s.operator_seal_per_min = 0;
    return s;
  }
  if (name == "crash") {
    f = FaultMix();
    f.crash_per_min = 2;
    f.midcrash_per_min = 3;
    f.kill_per_min = 1;
    f.tear_probability = 0.7;
    return s;
  }
  if (name == "seal") {
    f = FaultMix();
    f.seal_per_min = 3;
    f.crash_per_min = 0.3;
    s.operator_seal_per_min = 1;
    s.rotate_per_min = 3;
    return s;
  }
  if (name == "storage") {
    f.crash_per_min = 0.3;
    f.midcrash_per_min = 1.5;
    f.seal_per_min = 0.2;
    f.swap_per_min = 0;
    f.buggify_activation = 0.6;
    f.buggify_fire = 0.08;
    return s;
  }
  if (name == "catalog") {
    s.catalog_ops_per_min = 120;
    s.wrong_sha_probability = 0.15;
    f.swap_per_min = 2;
    f.plugin_crash_per_min = 1;
    f.plugin_hang_per_min = 0.5;
    f.crash_per_min = 0.3;
    f.midcrash_per_min = 0.3;
    return s;
  }
  if (name == "plugins") {
    f = FaultMix();
    f.plugin_crash_per_min = 3;
    f.plugin_hang_per_min = 1;
    f.plugin_slow_per_min = 2;
    f.step_down_per_min = 0.5;
    f.kill_per_min = 0.3;
    s.raw_percent = 0;
    return s;
  }
  if (name == "tamper") {
    f = FaultMix();
    s.signatures_required = true;
    s.catalog_ops_per_min = 120;
    s.wrong_sha_probability = 0;
    s.swapped_signature_probability = 0.15;
    f.tamper_per_min = 3;
    return s;
  }
  if (name == "cluster") {
    f = FaultMix();
    f.ha_per_min = 4;
    f.kill_per_min = 0.5;
    // The database workload talks to node 0 and runs rollback there: single-node only for now.
    s.database = false;
    return WithNodes(s, 3);
  }
  if (name == "rotation") {
    // The rollback sweep (docs/performance.md): every rotate-credentials fault is a crash at a
    // drawn step of a rotation; a short, light workload so that many seeds run.
    f = FaultMix();
    f.rotate_credentials_per_min = 6;
    f.rotate_crash_share = 1;
    s.workload = absl::Seconds(60);
    s.clients = 1;
    s.catalog_ops_per_min = 0;
    s.operator_seal_per_min = 0;
    s.rotate_per_min = 0;
    return s;
  }
  if (name == "swap") {
    f = FaultMix();
    s.catalog_ops_per_min = 120;
    s.wrong_sha_probability = 0;
    f.swap_per_min = 3;
    f.swap_min = absl::Seconds(5);
    f.swap_max = absl::Seconds(30);
    return s;
  }
  return absl::NotFoundError(absl::StrCat("unknown scenario \"", name.substr(0, 64),
                                          "\"; known: ", absl::StrJoin(ScenarioNames(), ", ")));
}

}  // namespace bulwark::sim
