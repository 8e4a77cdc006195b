// seal:<duration_ms> — the operator seals during traffic and unseals after the duration. The
// operator keeps the seal windows (and closes them when faults stop).
#include "sim/actors/operator.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class SealFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kSeal; }
  double RatePerMin(const FaultMix& mix) const override { return mix.seal_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.a = Ms(DrawMillis(random, mix.seal_min, mix.seal_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    if (!world.ready) return false;
    world.operator_actor->SealFor(event.node, absl::Milliseconds(event.a));
    return true;
  }
};

}  // namespace

std::unique_ptr<Fault> MakeSealFault() { return std::make_unique<SealFault>(); }

}  // namespace bulwark::sim
