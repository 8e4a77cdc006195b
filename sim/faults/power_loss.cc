// Power loss, now or at the k-th disk mutation from now (inside whatever write is running):
// unsynced file data and directory changes are dropped or torn; the machine restarts later.
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

CrashMode DrawMode(const FaultMix& mix, Random& random) {
  return random.Bernoulli(mix.tear_probability) ? CrashMode::kTearUnsynced
                                                : CrashMode::kDropUnsynced;
}

// crash:<drop|tear>:<restart_ms>
class PowerLossFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kCrash; }
  double RatePerMin(const FaultMix& mix) const override { return mix.crash_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.mode = DrawMode(mix, random);
    event.a = Ms(DrawMillis(random, mix.restart_min, mix.restart_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    if (!world.cluster->machine(event.node).node->running()) return false;
    world.cluster->PowerLoss(event.node, event.mode, absl::Milliseconds(event.a));
    return true;
  }
};

// midcrash:<drop|tear>:<k>:<restart_ms>
class MidOpPowerLossFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kCrashMidOp; }
  double RatePerMin(const FaultMix& mix) const override { return mix.midcrash_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.mode = DrawMode(mix, random);
    event.a =
        static_cast<int64_t>(random.UniformInRange(1, std::max(1, mix.midcrash_mutations_max)));
    event.b = Ms(DrawMillis(random, mix.restart_min, mix.restart_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    Machine& m = world.cluster->machine(event.node);
    if (!m.up()) return false;
    m.node->fs().ArmCrash(static_cast<uint64_t>(event.a), event.mode);
    m.restart_delay = absl::Milliseconds(event.b);
    return true;
  }
  void OnQuietNode(World& world, int node) override {
    world.cluster->machine(node).node->fs().Disarm();
  }
};

}  // namespace

std::unique_ptr<Fault> MakePowerLossFault() { return std::make_unique<PowerLossFault>(); }
std::unique_ptr<Fault> MakeMidOpPowerLossFault() { return std::make_unique<MidOpPowerLossFault>(); }

}  // namespace bulwark::sim
