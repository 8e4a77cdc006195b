// rotate-credentials:<how>:<step>:<ms> — a root rotation of the database workload that goes
// wrong: the fault arms what goes wrong and asks the database operator for a rotate-root now.
//   how 0  the machine crashes when the rotation reaches step <step> (power loss; restart after
//          <ms>): the engine's failpoint at that step fires "crash"
//   how 1  the database plugin's processes die when the rotation reaches step <step>
//   how 2  the UpdateUser reply is lost: the database applies the new password, the plugin
//          reports an error (the simulated database's lost-reply trap)
//   how 3  the database is unreachable for <ms> from now (the link from the plugins is cut)
// Steps are those of docs/database.md, "rotate-root and its WAL": 0 the WAL write, 1 before
// UpdateUser, 2 its reply, 3 the config write, 4 the WAL delete. When faults stop, the armed
// failpoints are cleared, the link restored and the trap disarmed.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sim/cluster.h"
#include "sim/database/db_operator.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

constexpr const char* kSteps[] = {
    "database.rotate_root.wal_put",           "database.rotate_root.before_update_user",
    "database.rotate_root.update_user_reply", "database.rotate_root.store_config",
    "database.rotate_root.delete_wal",
};
constexpr int kStepCount = 5;
enum How { kCrashAt = 0, kPluginDeathAt = 1, kLostReply = 2, kUnreachable = 3 };

class RotateCredentialsFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kRotateCredentials; }
  double RatePerMin(const FaultMix& mix) const override { return mix.rotate_credentials_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    // Crashes mid-rotation are what the rollback exists for: they get the largest share.
    // The rest is shared by a plugin death, a lost reply and an unreachable database.
    const double pick = random.UnitDouble();
    const double rest = (1 - mix.rotate_crash_share) / 3;
    event.a = pick < mix.rotate_crash_share              ? kCrashAt
              : pick < mix.rotate_crash_share + rest     ? kPluginDeathAt
              : pick < mix.rotate_crash_share + 2 * rest ? kLostReply
                                                         : kUnreachable;
    event.b = static_cast<int64_t>(random.Uniform(kStepCount));
    event.c = Ms(event.a == kUnreachable ? DrawMillis(random, absl::Seconds(2), mix.db_cut_max)
                                         : DrawMillis(random, mix.restart_min, mix.restart_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    Machine& m = world.cluster->machine(event.node);
    if (world.db_operator == nullptr || !world.db_operator->ready() || !m.up()) return false;
    const std::string site = kSteps[event.b % kStepCount];
    switch (event.a) {
      case kCrashAt:
      case kPluginDeathAt: {
        // One fire, at the next rotation to reach the step. A crash at a synchronous site is
        // carried out by the cluster's Effects; at the others OnFire below does it.
        const std::string action = event.a == kCrashAt ? "1*crash" : "1*delay(1)";
        if (!world.registry.Set(site, action).ok()) return false;
        armed_[site] = Armed{event.a, event.node, absl::Milliseconds(event.c)};
        break;
      }
      case kLostReply:
        world.database.ArmLostReply();
        break;
      default:
        world.database.CutFor(absl::Milliseconds(event.c));
        break;
    }
    return world.db_operator->RotateNow();
  }
  void OnFire(World& world, const faultinject::FireEvent& event) override {
    auto it = armed_.find(std::string(event.name));
    if (it == armed_.end()) return;
    const Armed armed = it->second;
    armed_.erase(it);
    const int node = world.cluster->active();
    if (node < 0) return;
    Machine& m = world.cluster->machine(node);
    if (armed.how == kCrashAt) {
      // The power goes once the engine's code has unwound (as Cluster::Apply does for a
      // synchronous site; the same crash twice is one crash).
      (void)world.cluster->Apply(event.name, faultinject::Action::Crash());
      m.restart_delay = armed.restart;
      ++world.result.faults["rotate-crash"];
      return;
    }
    for (int64_t pid : m.node->launcher().LivePids()) {
      const LaunchRecord* launched = m.node->launched(pid);
      if (launched == nullptr || !absl::EndsWith(launched->path, kDatabasePlugin)) continue;
      if (m.node->launcher().Crash(pid).ok()) ++world.result.faults["rotate-plugin-death"];
    }
  }
  void OnQuiet(World& world) override {
    for (const char* site : kSteps) world.registry.Clear(site);
    armed_.clear();
    world.database.Restore();
    world.database.DisarmLostReply();
  }

 private:
  struct Armed {
    int64_t how = 0;
    int node = 0;
    absl::Duration restart;
  };
  std::map<std::string, Armed> armed_;
};

}  // namespace

std::unique_ptr<Fault> MakeRotateCredentialsFault() {
  return std::make_unique<RotateCredentialsFault>();
}

}  // namespace bulwark::sim
