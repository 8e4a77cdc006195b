// swap:<artifact>:<duration_ms> — a plugin executable is replaced on disk by another working
// plugin (not the one the catalog pinned), then restored. Every node of a cluster has its own
// disk: overlapping swaps of one artifact on one node restore it when the last of them ends.
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/env/sim/sim_process_launcher.h"
#include "base/status/check.h"
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class ArtifactSwapFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kArtifactSwap; }
  double RatePerMin(const FaultMix& mix) const override { return mix.swap_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.a = static_cast<int64_t>(random.Uniform(kArtifactCount));
    event.b = Ms(DrawMillis(random, mix.swap_min, mix.swap_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    const int node = event.node;
    const int artifact = static_cast<int>(event.a % kArtifactCount);
    if (depth_[{node, artifact}]++ == 0) {
      CHECK_OK(world.cluster->machine(node).node->disk().WriteFileDurably(
          absl::StrCat("/bulwark/plugins/", kArtifacts[artifact]),
          SimProcessLauncher::ExecutableContents(kSwappedPlugin), 0755));
    }
    const uint64_t generation = generation_;
    world.loop.PostAfter(absl::Milliseconds(event.b), [this, &world, node, artifact, generation] {
      auto it = depth_.find({node, artifact});
      if (generation != generation_ || it == depth_.end()) return;
      if (--it->second == 0) {
        depth_.erase(it);
        Restore(world, node, artifact);
      }
    });
    return true;
  }
  void OnQuiet(World& world) override {
    ++generation_;
    for (const auto& [key, depth] : depth_) Restore(world, key.first, key.second);
    depth_.clear();
  }

 private:
  static void Restore(World& world, int node, int artifact) {
    CHECK_OK(world.cluster->machine(node).node->disk().WriteFileDurably(
        absl::StrCat("/bulwark/plugins/", kArtifacts[artifact]),
        SimProcessLauncher::ExecutableContents(kArtifacts[artifact]), 0755));
    world.trace.Add(world.Now(), node, "artifact-restored", kArtifacts[artifact]);
  }

  // Swaps in force per (node, artifact); an entry is erased when its last swap ends.
  std::map<std::pair<int, int>, int> depth_;
  uint64_t generation_ = 0;
};

}  // namespace

std::unique_ptr<Fault> MakeArtifactSwapFault() { return std::make_unique<ArtifactSwapFault>(); }

}  // namespace bulwark::sim
