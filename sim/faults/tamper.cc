// tamper:<what>:<artifact>:<duration_ms> — under signatures_required, an attacker on the host:
// what 0 overwrites a plugin artifact in place with other (working) plugin bytes; what 1 removes
// the release key's line from the node's allowed-signers file. Both are undone after the
// duration (overlapping events undo when the last one ends) and when faults stop. The third
// tamper, a registration carrying another artifact's signature, is the catalog administrator's
// (Scenario::swapped_signature_probability): it needs a request, not a file.
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

constexpr absl::string_view kAllowedSigners = "/bulwark/allowed_signers";

class TamperFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kTamper; }
  double RatePerMin(const FaultMix& mix) const override { return mix.tamper_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.a = static_cast<int64_t>(random.Uniform(2));
    event.b = static_cast<int64_t>(random.Uniform(kArtifactCount));
    event.c = Ms(DrawMillis(random, mix.tamper_min, mix.tamper_max));
  }
  bool Apply(World& world, const FaultEvent& event) override {
    if (!world.scenario.signatures_required) return false;
    const int node = event.node;
    const bool signer = event.a == 1;
    const int artifact = static_cast<int>(event.b % kArtifactCount);
    const std::pair<int, int> key{node, signer ? -1 : artifact};
    if (depth_[key]++ == 0) {
      if (signer) {
        ++world.signer_removed[node];
        CHECK_OK(
            Disk(world, node)
                .WriteFileDurably(kAllowedSigners, "# the release key's line was removed\n", 0644));
        world.trace.Add(world.Now(), node, "signer-removed", "release@bulwark.sim");
      } else {
        CHECK_OK(Disk(world, node)
                     .WriteFileDurably(absl::StrCat("/bulwark/plugins/", kArtifacts[artifact]),
                                       SimProcessLauncher::ExecutableContents(kSwappedPlugin),
                                       0755));
        world.trace.Add(world.Now(), node, "artifact-tampered", kArtifacts[artifact]);
      }
    }
    const uint64_t generation = generation_;
    world.loop.PostAfter(absl::Milliseconds(event.c), [this, &world, key, generation] {
      if (generation != generation_ || depth_[key] == 0) return;
      if (--depth_[key] == 0) Undo(world, key);
    });
    return true;
  }
  void OnQuiet(World& world) override {
    ++generation_;
    for (auto& [key, depth] : depth_) {
      if (depth > 0) {
        depth = 0;
        Undo(world, key);
      }
    }
  }

 private:
  static SimFileSystem& Disk(World& world, int node) {
    return world.cluster->machine(node).node->disk();
  }
  static void Undo(World& world, std::pair<int, int> key) {
    const int node = key.first;
    if (key.second < 0) {
      CHECK_OK(
          Disk(world, node).WriteFileDurably(kAllowedSigners, world.allowed_signers_text, 0644));
      --world.signer_removed[node];
      world.trace.Add(world.Now(), node, "signer-restored", "release@bulwark.sim");
      return;
    }
    CHECK_OK(Disk(world, node)
                 .WriteFileDurably(absl::StrCat("/bulwark/plugins/", kArtifacts[key.second]),
                                   SimProcessLauncher::ExecutableContents(kArtifacts[key.second]),
                                   0755));
    world.trace.Add(world.Now(), node, "artifact-restored", kArtifacts[key.second]);
  }

  // (node, artifact index or -1 for the signer) -> overlapping events in force.
  std::map<std::pair<int, int>, int> depth_;
  uint64_t generation_ = 0;
};

}  // namespace

std::unique_ptr<Fault> MakeTamperFault() { return std::make_unique<TamperFault>(); }

}  // namespace bulwark::sim
