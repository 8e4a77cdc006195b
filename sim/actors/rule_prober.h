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
//     after the unseal nothing the refused requests asked for is there.
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

#include "base/env/random.h"
#include "sim/actors/actor.h"
#include "sim/node.h"

namespace bulwark::sim {

class World;

class RuleProber final : public Actor {
 public:
  explicit RuleProber(World& world);
  absl::string_view name() const override { return "rule-prober"; }
  void OnReady() override;

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

  World& world_;
  SeededRandom random_;
  bool cycle_running_ = false;
  bool crashing_registered_ = false;
  std::set<std::string> mounted_;                         // Acknowledged mounts ("n/b/").
  std::map<std::string, std::set<std::string>> written_;  // Path -> every value sent there.
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_ACTORS_RULE_PROBER_H_
