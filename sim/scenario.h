// Scenarios: the shape of a run — topology, workload mix, fault rates, buggify settings, time
// bounds. Named scenarios are fixed mixes; "swarm" draws its own mix for every seed (swarm
// testing: each seed enables a random subset of fault kinds at random rates, so that faults that
// mask each other are also explored apart).
#ifndef BULWARK_SIM_SCENARIO_H_
#define BULWARK_SIM_SCENARIO_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "faultinject/registry.h"

namespace bulwark::sim {

// Topology and workload limits a scenario may ask for.
inline constexpr int kClientsMax = 16;
inline constexpr int kKeysPerClientMax = 64;
inline constexpr int kMountsMax = 8;
inline constexpr int kNodesMax = 7;

struct FaultMix {
  // Timed faults are drawn in [start, workload end - end_margin).
  absl::Duration start = absl::Seconds(5);
  absl::Duration end_margin = absl::Seconds(15);
  // Mean rates per simulated minute (uniform inter-arrival with that mean).
  double crash_per_min = 0;
  double midcrash_per_min = 0;
  double kill_per_min = 0;
  double seal_per_min = 0;
  double jump_per_min = 0;
  double swap_per_min = 0;
  double plugin_crash_per_min = 0;
  double plugin_hang_per_min = 0;
  double plugin_slow_per_min = 0;
  double step_down_per_min = 0;
  double tamper_per_min = 0;
  // HA clusters (nodes > 1): ha:<what>:<duration_ms>:<param> faults (schedule.h).
  double ha_per_min = 0;
  absl::Duration ha_max = absl::Seconds(40);
  // rotate-credentials: a root rotation with a crash, a plugin death, a lost UpdateUser reply or
  // the database unreachable (sim/faults/rotate_credentials.cc).
  double rotate_credentials_per_min = 0;
  // The share of rotate-credentials faults that crash the machine mid-rotation.
  double rotate_crash_share = 0.4;
  absl::Duration db_cut_max = absl::Seconds(40);
  // Share of crashes that tear unsynced data rather than drop it.
  double tear_probability = 0.5;
  // kCrashMidOp strikes at a mutation drawn from [1, midcrash_mutations_max].
  int midcrash_mutations_max = 8;
  absl::Duration restart_min = absl::Milliseconds(200);
  absl::Duration restart_max = absl::Seconds(5);
  absl::Duration seal_min = absl::Seconds(1);
  absl::Duration seal_max = absl::Seconds(10);
  absl::Duration swap_min = absl::Seconds(2);
  absl::Duration swap_max = absl::Seconds(20);
  absl::Duration tamper_min = absl::Seconds(5);
  absl::Duration tamper_max = absl::Seconds(30);
  absl::Duration jump_max = absl::Hours(2);
  absl::Duration slow_delay_max = absl::Seconds(5);
  absl::Duration slow_duration_max = absl::Seconds(30);
  absl::Duration step_down_max = absl::Seconds(10);
  // Buggify: failpoint sites switched on per run (see faultinject/registry.h).
  bool buggify = false;
  double buggify_activation = 0.25;
  double buggify_fire = 0.05;
  std::vector<faultinject::BuggifyOptions::Rule> buggify_rules;
};

struct Scenario {
  std::string name;
  int nodes = 1;
  int clients = 3;
  int keys_per_client = 8;
  // Mount i runs the kv plugin as [multiplexed process, own process, built-in][i % 3].
  int mounts = 3;
  // Percent of data operations that go straight to the barrier (sys/raw) instead of a mount.
  int raw_percent = 25;
  absl::Duration workload = absl::Seconds(180);
  absl::Duration think_mean = absl::Milliseconds(300);
  // Relative weights of a data client's operations.
  int put_weight = 35;
  int get_weight = 35;
  int list_weight = 10;
  int delete_weight = 10;
  // The catalog administrator and the operator, in operations per simulated minute.
  double catalog_ops_per_min = 20;
  double rotate_per_min = 0.5;
  double operator_seal_per_min = 0.2;
  // The share of registrations made with a wrong sha256 (the catalog must refuse them).
  double wrong_sha_probability = 0.05;
  // The catalog runs under plugin_signature_policy "required" (docs/security.md): every client
  // signs its registrations with the simulator's release key, and this share of the
  // administrator's registrations carries another artifact's signature (must be refused).
  bool signatures_required = false;
  double swapped_signature_probability = 0;
  // Network and client behaviour. Clients wait for an answer as long as the connection lives
  // (a node that dies resets it); a request still unanswered after lost_request_timeout on a
  // live node is a liveness failure: every deadline inside the node is far shorter.
  absl::Duration latency_min = absl::Milliseconds(1);
  absl::Duration latency_max = absl::Milliseconds(20);
  absl::Duration lost_request_timeout = absl::Minutes(10);
  absl::Duration operator_tick = absl::Seconds(1);
  // A node stuck in a hang is restarted by its supervisor after this long.
  absl::Duration watchdog = absl::Seconds(10);
  // After faults stop, the node must serve a write and a read within this bound.
  absl::Duration liveness_bound = absl::Seconds(60);
  FaultMix faults;
  // The database engine's workload (sim/database): a simulated database, its plugin, the
  // database operator actor and its invariants.
  bool database = true;
};

// The named scenarios, in the order `--list-scenarios` prints them.
std::vector<std::string> ScenarioNames();
// One line on what each is for.
std::string ScenarioDescription(absl::string_view name);

// The scenario `name` for `seed` (only "swarm" depends on the seed). NotFound naming the known
// ones for an unknown name.
absl::StatusOr<Scenario> ScenarioFor(absl::string_view name, uint64_t seed);

// `s` on `nodes` nodes. More than one makes an HA cluster over the simulated etcd (sim/ha): the
// single-node step-down (a role flip) gives way to the HA faults (ha_per_min, at least 2 per
// minute), and keyring rotations stop (a new active does not reload a keyring rotated by another
// node yet: standby invalidation is issue 14 item 3). InvalidArgument outside 1..kNodesMax.
absl::StatusOr<Scenario> WithNodes(Scenario s, int nodes);

// The buggify rules the named scenarios use: which failpoint sites may fire and how.
std::vector<faultinject::BuggifyOptions::Rule> DefaultBuggifyRules();

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_SCENARIO_H_
