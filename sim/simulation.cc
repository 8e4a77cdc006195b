// One simulation run (see simulation.h): the composition root that builds the world and its parts
// — invariants, network, fault kinds, actors, the cluster — and runs the event loop to the end.
#include "sim/simulation.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/check.h"
#include "sim/actors/actor.h"
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/ha/ha_cluster.h"
#include "sim/invariants/invariant.h"
#include "sim/network.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

// Runs the loop until the run is done, capped, stopped early, or (when asked) failed.
void Drive(World& world) {
  const RunConfig& config = world.config;
  while (!world.done) {
    if (world.loop.steps_run() >= config.steps_max) {
      world.result.capped = true;
      world.Violate("caps", absl::StrCat("the run reached its step cap of ", config.steps_max,
                                         " at ", absl::FormatDuration(world.Now())));
      break;
    }
    absl::Duration next;
    if (!world.loop.NextDeadline(&next)) {
      world.Violate("liveness", "the simulation ran out of work before the end checks");
      break;
    }
    if (next > config.sim_time_max) {
      world.result.capped = true;
      world.Violate("caps", absl::StrCat("the run reached its simulated-time cap of ",
                                         absl::FormatDuration(config.sim_time_max)));
      break;
    }
    if (config.stop_after > absl::ZeroDuration() && next > config.stop_after) {
      world.result.stopped_early = true;
      break;
    }
    world.loop.Step();
    if (config.stop_at_first_violation && !world.result.violations.empty()) break;
  }
}

}  // namespace

RunResult RunSimulation(const RunConfig& config) {
  World world(config);
  world.invariants = std::make_unique<Invariants>(world, MakeInvariants());
  world.network = std::make_unique<Network>(world);
  world.faults = std::make_unique<Faults>(world, MakeFaultKinds());
  world.actors = MakeActors(world);
  if (world.scenario.nodes > 1) world.ha = std::make_unique<HaCluster>(world);
  world.cluster = std::make_unique<Cluster>(world);

  faultinject::ScopedInstall install(world.registry);
  world.registry.SetEffects(world.cluster.get());
  world.registry.SetObserver(
      [&world](const faultinject::FireEvent& event) { world.faults->OnFire(event); });
  if (!config.failpoints.empty()) CHECK_OK(world.registry.Configure(config.failpoints));

  for (int n = 0; n < world.scenario.nodes; ++n) world.cluster->AddMachine(n);
  world.faults->Plan();
  world.faults->Schedule();
  for (const std::unique_ptr<Actor>& actor : world.actors) actor->Start();
  world.loop.PostAfter(world.scenario.workload, [&world] { world.BeginQuiet(); });

  Drive(world);

  RunResult& result = world.result;
  result.seed = config.seed;
  result.scenario = world.scenario.name;
  result.schedule = world.faults->Recorded();
  SortSchedule(result.schedule);
  result.trace_hash = world.trace.hash();
  result.trace_events = world.trace.count();
  result.sim_time = world.Now();
  result.steps = world.loop.steps_run();
  result.failpoints = world.registry.Stats();
  if (config.record_trace) result.trace = world.trace.events();
  // The report names every registered invariant, even one this run never checked.
  for (const std::unique_ptr<Invariant>& invariant : world.invariants->all()) {
    result.checks.emplace(std::string(invariant->name()), 0);
  }
  // Stop the nodes while the registry is still installed and the world whole.
  world.cluster->StopAll();
  return std::move(world.result);
}

}  // namespace bulwark::sim
