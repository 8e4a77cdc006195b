// step-down:<duration_ms> — the node leaves the active role (every plugin stops) and takes it
// back after the duration (see Cluster::StepDown).
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class StepDownFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kStepDown; }
  double RatePerMin(const FaultMix& mix) const override { return mix.step_down_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.a = Ms(DrawMillis(random, absl::Milliseconds(500), mix.step_down_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    Machine& m = world.cluster->machine(event.node);
    if (!m.up() || !world.ready || m.standby_depth != 0) return false;
    world.cluster->StepDown(event.node, absl::Milliseconds(event.a));
    return true;
  }
  void OnQuietNode(World& world, int node) override {
    Machine& m = world.cluster->machine(node);
    if (m.standby_depth > 0) world.cluster->BecomeActive(node, m.standby_generation);
  }
};

}  // namespace

std::unique_ptr<Fault> MakeStepDownFault() { return std::make_unique<StepDownFault>(); }

}  // namespace bulwark::sim
