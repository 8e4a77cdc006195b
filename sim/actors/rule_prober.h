// The rule prober: a workload step per core rule that the other actors never reach (issue R0
// item 8). Every 20 to 40 simulated seconds it runs one cycle, one request at a time:
//
//   - mounts two data mounts two segments deep, "n/b/" and "n/c/", on one plugin, and tries to
//     mount "n/" and "n/b/x/" (each would nest with them, and must be refused);
//   - writes the same relative key "p" through both and reads it back: a read never returns what
//     was written through the other mount, and a path under an acknowledged mount always routes
//     to a mount (mount_isolation: longest-prefix routing, no nesting, mount persistence,
//     per-mount host storage);
//   - mounts a plugin that crashes at every start three times in a row: each is refused, and the
//     lifecycle manager backs off (restart_backoff, checked at the launcher);
//   - seals the node (through the operator) and, once the seal is acknowledged, sends an unseal
//     with fewer distinct shares than the threshold (one of them twice), then enable, reload,
//     disable and register: the unseal must leave the node sealed with the distinct shares
//     counted once (unseal_threshold), every admin request must be refused (sealed_admin), and
//     after the unseal nothing the refused requests asked for is there;
//   - registers entries whose name or version is invalid (not semver, "+builtin" metadata, a
//     built-in's name without a version), each otherwise valid: every one must be refused for
//     that, and nothing stored (catalog_validation);
//   - registers a command that is a symlink leading outside the plugin directory, and, with the
//     plugin directory itself made a symlink for the length of one request (to the real one,
//     renamed), a command inside it: each must be refused, the second for the directory
//     (plugin_confinement);
//   - then one of four probes that ask for a mount (each mount is written to the mount table,
//     and a refused one taken out again, so they take turns, one per cycle, from a drawn start):
//       * re-points the symlink of a registered entry outside the directory for the length of
//         one mount of it ("l/"), and
//       * mounts "d/" while the plugin directory is a symlink: both must be refused, and no
//         plugin starts from outside the directory (plugin_confinement);
//       * registers one plugin name twice, the second entry differing from the first only in
//         env or only in args, and mounts it after each registration ("e/a/", "e/b/"): each
//         mount must run in a process launched with its own entry's args and env
//         (runner_config);
//       * mounts a plugin that prints a malformed handshake line (kv-badhs, two of the
//         kHandshakeMangles ways, in turn across the run): each must be refused and its process
//         stopped, and a read through "n/b/" must not fail with its error (bad_handshake);
//     and unmounts what those mounted.
// What it changes on the disk is put back as soon as the request it was for is answered, and at
// quiet. The catalog steps' answers go to the invariants tagged with what they probe
// (Source::kRules, Probe); the invariants in invariants/plugin_rules.cc judge them.
//
// It draws only from its own stream, "rules", so it leaves every other actor's requests where
// they were.
#ifndef BULWARK_SIM_ACTORS_RULE_PROBER_H_
#define BULWARK_SIM_ACTORS_RULE_PROBER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/env/random.h"
#include "sim/actors/actor.h"
#include "sim/invariants/invariant.h"
#include "sim/node.h"

namespace bulwark::sim {

class World;

class RuleProber final : public Actor {
 public:
  explicit RuleProber(World& world);
  absl::string_view name() const override { return "rule-prober"; }
  void OnReady() override;
  void OnQuiet() override;

 private:
  using Then =
      std::function<void(const Response& response, bool answered, uint64_t sent, uint64_t at)>;

  void Loop();
  void Step(int step);
  void Send(const Request& request, Then then);
  void EnableNested(absl::string_view path, int next);
  void CheckRead(const std::string& path, const std::string& other, const Response& response,
                 bool answered);
  void CrashingMount(int left, int next);
  void WaitForSeal(int polls_left, int next);
  bool InSeal(uint64_t sent, uint64_t at) const;
  void SealedAdmin(const Request& request, int next);
  // Sends `request` and hands its answer to the invariants, tagged with `probe`.
  void SendProbe(const Request& request, Probe probe, Then then);
  void InvalidRegistrations(int left, int next);
  void BadHandshakes(int left, int next);
  Request Registration(absl::string_view name, absl::string_view command,
                       const std::string& sha256) const;
  Request Mount(absl::string_view path, absl::string_view name) const;
  // Disk changes, undone at once after the request they are for (and at quiet).
  void RepointHop(bool outside);
  void SymlinkPluginDirectory(bool symlinked);
  void Unmount(std::vector<std::string> paths, int next);
  World& world_;
  SeededRandom random_;
  bool cycle_running_ = false;
  bool crashing_registered_ = false;
  std::set<std::string> mounted_;                         // Acknowledged mounts ("n/b/").
  std::map<std::string, std::set<std::string>> written_;  // Path -> every value sent there.
  uint64_t cycles_ = 0;
  int launch_probe_ = 0;  // Which probe that asks for a mount runs this cycle.
  int next_mangle_ = -1;  // Of the next kv-badhs registration (drawn at the first).
  uint64_t bad_handshakes_ = 0;
  bool hop_registered_ = false;
  bool hop_outside_ = false;             // kHopLink leads outside the plugin directory now.
  bool dir_symlinked_ = false;           // The plugin directory is a symlink now.
  uint64_t disk_generation_ = 0;         // Bumped whenever a disk change is undone.
  std::vector<std::string> to_unmount_;  // Mounts of this cycle to take down at its end.
  // This cycle's {args, env} of the three registrations of kEnvName.
  std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> configs_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_ACTORS_RULE_PROBER_H_
