// The cluster model: the machines of a run (one today), each a simulated node — its process, its
// disk, its clock, its plugin processes — plus what the simulator tracks about it: whether the
// process is up, hung or mid-crash, its connection epoch, and its HA role. The cluster carries
// out what happens to machines (power loss, kill, hang, restart, step-down) and the effects of
// failpoints inside node code (faultinject::Effects).
#ifndef BULWARK_SIM_CLUSTER_H_
#define BULWARK_SIM_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "faultinject/registry.h"
#include "sim/node.h"

namespace bulwark::sim {

class World;

struct Machine {
  // The node's failpoint state, its Env's failpoints: machine 0 uses the world's registry (which
  // the faults configure and the report reads); every further machine owns one, so nodes can be
  // configured apart. Declared before the node, which points at it.
  faultinject::Registry* registry = nullptr;
  std::unique_ptr<SeededRandom> own_failpoint_random;
  std::unique_ptr<faultinject::Registry> own_registry;
  std::unique_ptr<Node> node;
  uint64_t epoch = 0;  // Bumped whenever the process dies or hangs; connections break.
  bool wedged = false;
  absl::Duration wedged_since;
  std::optional<CrashMode> power_lost;  // Set inside node code, acted on after it unwound.
  bool hang_requested = false;
  absl::Duration restart_delay = absl::Seconds(1);
  absl::Duration delay_debt = absl::ZeroDuration();  // Failpoint delays owed to the next reply.
  // The HA role: standby while a step-down lasts.
  int standby_depth = 0;
  uint64_t standby_generation = 0;
  bool stepping_down = false;      // StepDown called, its completion not seen yet.
  bool become_active_due = false;  // The step-down's time is up; activate once it completes.

  // The process runs and makes progress.
  bool up() const { return node->running() && !wedged; }
};

class Cluster final : public faultinject::Effects {
 public:
  explicit Cluster(World& world);
  ~Cluster() override;

  // Builds machine `id` (its disk holds the plugin directory) and starts its process.
  void AddMachine(int id);
  int size() const { return static_cast<int>(machines_.size()); }
  Machine& machine(int id) { return machines_[static_cast<size_t>(id)]; }

  // Node code runs between these: failpoint effects land on that node. AfterNodeCode finishes a
  // crash or hang that struck inside; false if the node died or hung.
  void EnterNode(int id) { active_ = id; }
  void LeaveNode() { active_ = -1; }
  int active() const { return active_; }
  bool AfterNodeCode(int id);

  // The power goes: unsynced data dropped or torn; the machine restarts after `restart`.
  void PowerLoss(int id, CrashMode mode, absl::Duration restart);
  // The process is killed; the disk keeps everything.
  void ProcessKill(int id, absl::Duration restart);
  // The process stops making progress; its supervisor's watchdog kills it later.
  void Wedge(int id);
  void Restart(int id);
  // The node leaves the active role for at least `duration`, and until it has stepped down.
  void StepDown(int id, absl::Duration duration);
  void BecomeActive(int id, uint64_t generation);
  // Stops every process (the end of the run).
  void StopAll();

  // faultinject::Effects: delay, hang and crash at synchronous failpoint sites in node code.
  absl::Status Apply(absl::string_view name, const faultinject::Action& action) override;

 private:
  void WriteWorld(SimFileSystem& disk);
  void OnSpawn(int node, absl::string_view path, absl::string_view sha256);

  World& world_;
  const absl::Duration restart_retry_ = absl::Seconds(1);
  int active_ = -1;  // The machine whose code is on the stack.
  std::vector<Machine> machines_;
};

}  // namespace bulwark::sim

#endif  // BULWARK_SIM_CLUSTER_H_
