// jump:<delta_ms> — the node's wall clock steps, forward or back.
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class ClockJumpFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kClockJump; }
  double RatePerMin(const FaultMix& mix) const override { return mix.jump_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    const int64_t magnitude = Ms(DrawMillis(random, absl::Seconds(1), mix.jump_max));
    event.a = random.Bernoulli(0.5) ? magnitude : -magnitude;
  }
  bool Apply(World& world, const FaultEvent& event) override {
    world.cluster->machine(event.node).node->clock().JumpWall(absl::Milliseconds(event.a));
    return true;
  }
};

}  // namespace

std::unique_ptr<Fault> MakeClockJumpFault() { return std::make_unique<ClockJumpFault>(); }

}  // namespace bulwark::sim
