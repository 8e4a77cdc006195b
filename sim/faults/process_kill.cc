// kill:<restart_ms> — the server process dies; the disk keeps everything.
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class ProcessKillFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kKill; }
  double RatePerMin(const FaultMix& mix) const override { return mix.kill_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.a = Ms(DrawMillis(random, mix.restart_min, mix.restart_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    if (!world.cluster->machine(event.node).node->running()) return false;
    world.cluster->ProcessKill(event.node, absl::Milliseconds(event.a));
    return true;
  }
};

}  // namespace

std::unique_ptr<Fault> MakeProcessKillFault() { return std::make_unique<ProcessKillFault>(); }

}  // namespace bulwark::sim
