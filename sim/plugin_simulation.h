// The main of a plugin_simulation_test (sim/defs.bzl): the deterministic simulator with a plugin
// author's backend in place of the kv example, driven through the backend probe of the plugin's
// conformance manifest, under the default scenario's faults. See docs/simulation.md, "Simulating
// your own plugin".
//
//   <test> --manifest=conformance.json [--seeds=1..6] [--seed=N] [--scenario=default,plugins]
//          [--schedule='<faults>'] [--check_determinism=true]
//          [--expect_violation=reload,liveness] [--replay_prefix='bazel test //:t']
//
// Exit 0 when every seed passed (each also run twice with one trace, unless
// --check_determinism=false); 1 when a seed failed, with the report and each failure's replay
// command; 2 for bad usage or a manifest that is not a backend's. With --expect_violation (for
// tests of planted bugs) the verdict turns: exit 0 only when some seed fails by one of the named
// invariants.
#ifndef BULWARK_SIM_PLUGIN_SIMULATION_H_
#define BULWARK_SIM_PLUGIN_SIMULATION_H_

#include <ostream>
#include <string>
#include <vector>

#include "sdk/backend.h"
#include "sim/plugin_under_test.h"

namespace bulwark::sim {

// Seeds a plugin_simulation_test runs by default, in each of its scenarios: enough that every
// fault kind strikes, few enough for CI (each seed is 180 simulated seconds and runs twice).
inline constexpr char kPluginSimulationSeedsDefault[] = "1..6";
// Its scenarios by default: "default" (node crashes and kills, torn writes, seals, clock jumps,
// artifact swaps, plugin crashes and hangs, buggify) and "plugins" (plugin crashes, hangs and
// slowness at high rates, step-downs, lazy reloads).
inline constexpr char kPluginSimulationScenariosDefault[] = "default,plugins";

// Runs the test: `args` without the program name. `check` may be empty.
int RunPluginSimulation(const std::vector<std::string>& args, sdk::BackendFactory factory,
                        ProbeCheck check, std::ostream& out, std::ostream& err);

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_PLUGIN_SIMULATION_H_
