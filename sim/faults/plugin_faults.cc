// Faults of plugin processes:
//   plugin-crash:<i>, plugin-hang:<i>    a running plugin process (the i-th, modulo how many run)
//                                        crashes, or stops making progress
//   plugin-slow:<plugin>:<delay_ms>:<duration_ms>
//                                        every message to and from that plugin's processes is
//                                        delayed for a while
#include <map>
#include <string>
#include <vector>

#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class PluginProcessFault final : public Fault {
 public:
  explicit PluginProcessFault(FaultKind kind) : kind_(kind) {}
  FaultKind kind() const override { return kind_; }
  double RatePerMin(const FaultMix& mix) const override {
    return kind_ == FaultKind::kPluginCrash ? mix.plugin_crash_per_min : mix.plugin_hang_per_min;
  }
  void Draw(const FaultMix& /*mix*/, Random& random, FaultEvent& event) const override {
    event.a = static_cast<int64_t>(random.Uniform(16));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    Machine& m = world.cluster->machine(event.node);
    const std::vector<int64_t> pids =
        m.up() ? m.node->launcher().LivePids() : std::vector<int64_t>();
    if (pids.empty()) return false;
    const int64_t pid = pids[static_cast<size_t>(event.a) % pids.size()];
    const absl::Status done = kind_ == FaultKind::kPluginCrash ? m.node->launcher().Crash(pid)
                                                               : m.node->launcher().Hang(pid);
    return done.ok();
  }

 private:
  const FaultKind kind_;
};

class PluginSlowFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kPluginSlow; }
  double RatePerMin(const FaultMix& mix) const override { return mix.plugin_slow_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.a = static_cast<int64_t>(random.Uniform(kArtifactCount));
    event.b = Ms(DrawMillis(random, absl::Milliseconds(10), mix.slow_delay_max));
    event.c = Ms(DrawMillis(random, absl::Seconds(1), mix.slow_duration_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    const int node = event.node;
    const int plugin = static_cast<int>(event.a % kArtifactCount);
    const std::string name(kArtifacts[plugin]);
    world.cluster->machine(node).node->plugin_network().SetSlowdown(name,
                                                                    absl::Milliseconds(event.b));
    const uint64_t generation = ++generation_[plugin];
    world.loop.PostAfter(absl::Milliseconds(event.c), [this, &world, node, plugin, name,
                                                       generation] {
      if (generation_[plugin] != generation) return;
      world.cluster->machine(node).node->plugin_network().SetSlowdown(name, absl::ZeroDuration());
    });
    return true;
  }
  void OnQuiet(World& world) override {
    for (int n = 0; n < world.cluster->size(); ++n) {
      for (absl::string_view artifact : kArtifacts) {
        world.cluster->machine(n).node->plugin_network().SetSlowdown(std::string(artifact),
                                                                     absl::ZeroDuration());
      }
    }
    for (auto& [plugin, generation] : generation_) ++generation;
  }

 private:
  std::map<int, uint64_t> generation_;
};

}  // namespace

std::unique_ptr<Fault> MakePluginCrashFault() {
  return std::make_unique<PluginProcessFault>(FaultKind::kPluginCrash);
}
std::unique_ptr<Fault> MakePluginHangFault() {
  return std::make_unique<PluginProcessFault>(FaultKind::kPluginHang);
}
std::unique_ptr<Fault> MakePluginSlowFault() { return std::make_unique<PluginSlowFault>(); }

}  // namespace bulwark::sim
