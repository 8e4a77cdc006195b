// ha:<what>:<duration_ms>:<param> — faults of an HA cluster (sim/ha): the store link of one node
// cut (0), the store down (1) or slow (2), a node's clock skewed (3), the active node paused (4),
// stepped down by request so another node takes the role (5), or killed (6); the node<->node link
// between the node and another one cut (7; param picks the other), or the node isolated from
// every other node and from the store (8); the node's watch stream broken (9), or broken with
// the store compacting past it meanwhile (10). Lasting effects end after the duration, and all
// of them when faults stop. Skipped on a single node.
#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/ha/ha_cluster.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

enum What : int64_t {
  kIsolate = 0,
  kStoreDown = 1,
  kStoreSlow = 2,
  kClockSkew = 3,
  kPauseActive = 4,
  kStepDownActive = 5,
  kKillActive = 6,
  kCutNodeLink = 7,
  kIsolateNode = 8,
  kBreakWatch = 9,
  kCompactAndBreakWatch = 10,
};
constexpr int64_t kWhatCount = 11;

class HaFault final : public Fault {
 public:
  FaultKind kind() const override { return FaultKind::kHa; }
  double RatePerMin(const FaultMix& mix) const override { return mix.ha_per_min; }
  void Draw(const FaultMix& mix, Random& random, FaultEvent& event) const override {
    event.a = static_cast<int64_t>(random.Uniform(kWhatCount));
    event.b = Ms(DrawMillis(random, absl::Seconds(1), mix.ha_max));
    if (event.a == kStoreSlow)
      event.c = Ms(DrawMillis(random, absl::Milliseconds(50), absl::Seconds(6)));
    // Clocks from half to one and a half times real speed.
    if (event.a == kClockSkew) event.c = static_cast<int64_t>(random.UniformInRange(500, 1500));
    if (event.a == kCutNodeLink) event.c = static_cast<int64_t>(random.Uniform(kNodesMax));
  }

  bool Apply(World& world, const FaultEvent& event) override {
    if (!world.ha || !world.ready) return false;
    HaCluster& ha = *world.ha;
    const absl::Duration d = absl::Milliseconds(event.b);
    const int node = event.node;
    if (node >= world.cluster->size()) return false;
    const int active = ha.Active();
    switch (event.a) {
      case kIsolate: {
        if (!ha.link(node).up()) return false;
        ha.link(node).SetUp(false);
        world.trace.Add(world.Now(), node, "ha-isolated", "");
        Later(world, d, [&world, node] { Mend(world, node); });
        return true;
      }
      case kStoreDown:
        if (!ha.store().available()) return false;
        ha.store().SetAvailable(false);
        world.trace.Add(world.Now(), -1, "ha-store-down", "");
        Later(world, d, [&world] { StoreUp(world); });
        return true;
      case kStoreSlow:
        ha.SetStoreSlow(absl::Milliseconds(event.c));
        world.trace.Add(world.Now(), -1, "ha-store-slow", absl::StrCat(event.c, "ms"));
        Later(world, d, [&world] { world.ha->SetStoreSlow(absl::ZeroDuration()); });
        return true;
      case kClockSkew:
        ha.SetClockRate(node, static_cast<double>(event.c) / 1000.0);
        world.trace.Add(world.Now(), node, "ha-clock-skew", absl::StrCat(event.c, "/1000"));
        Later(world, d, [&world, node] { world.ha->SetClockRate(node, 1.0); });
        return true;
      case kPauseActive:
        if (active < 0) return false;
        ha.Pause(active, d);
        world.trace.Add(world.Now(), active, "ha-paused", absl::StrCat(event.b, "ms"));
        return true;
      case kStepDownActive:
        if (active < 0) return false;
        world.trace.Add(world.Now(), active, "ha-step-down", "");
        world.cluster->EnterNode(active);
        ha.StepDown(active);
        world.cluster->LeaveNode();
        world.cluster->AfterNodeCode(active);
        return true;
      case kKillActive:
        if (active < 0 || !world.cluster->machine(active).up()) return false;
        world.cluster->ProcessKill(active, std::min(d, absl::Seconds(10)));
        return true;
      case kCutNodeLink: {
        const int n = world.cluster->size();
        const int other = (node + 1 + static_cast<int>(event.c % (n - 1))) % n;
        if (!ha.NodeLinkUp(node, other) || ha.isolated(node) || ha.isolated(other)) return false;
        ha.SetNodeLink(node, other, false);
        world.trace.Add(world.Now(), node, "ha-node-link-cut", absl::StrCat(other));
        Later(world, d, [&world, node, other] {
          world.ha->SetNodeLink(node, other, true);
          world.trace.Add(world.Now(), node, "ha-node-link-mended", absl::StrCat(other));
        });
        return true;
      }
      case kIsolateNode:
        if (ha.isolated(node) || !ha.link(node).up()) return false;
        ha.SetIsolated(node, true);
        world.trace.Add(world.Now(), node, "ha-node-isolated", "");
        Later(world, d, [&world, node] { Unisolate(world, node); });
        return true;
      case kBreakWatch:
        if (!ha.BreakWatch(node, d)) return false;
        world.trace.Add(world.Now(), node, "ha-watch-break", absl::StrCat(event.b, "ms"));
        return true;
      case kCompactAndBreakWatch:
        // The store compacts at the end of the break, so the resume finds the node's next
        // revision compacted whenever something changed meanwhile: a full reload.
        if (!ha.BreakWatch(node, d)) return false;
        world.trace.Add(world.Now(), node, "ha-watch-break", absl::StrCat(event.b, "ms compact"));
        Later(world, d, [&world] {
          world.ha->store().Compact(world.ha->store().revision());
          world.trace.Add(world.Now(), -1, "ha-store-compacted",
                          absl::StrCat(world.ha->store().revision()));
        });
        return true;
      default:
        return false;
    }
  }

  void OnQuiet(World& world) override {
    if (!world.ha) return;
    for (int node = 0; node < world.cluster->size(); ++node) {
      Unisolate(world, node);
      Mend(world, node);
      for (int other = node + 1; other < world.cluster->size(); ++other) {
        world.ha->SetNodeLink(node, other, true);
      }
      world.ha->SetClockRate(node, 1.0);
    }
    StoreUp(world);
    world.ha->SetStoreSlow(absl::ZeroDuration());
    world.ha->EndWatchBreaks();
  }

 private:
  static void Later(World& world, absl::Duration d, std::function<void()> undo) {
    world.loop.PostAfter(d, [&world, undo = std::move(undo)] {
      if (!world.quiet) undo();  // Once quiet, OnQuiet undid everything.
    });
  }
  static void Mend(World& world, int node) {
    if (world.ha->link(node).up() || world.ha->isolated(node)) return;
    world.ha->link(node).SetUp(true);
    world.trace.Add(world.Now(), node, "ha-mended", "");
  }
  static void Unisolate(World& world, int node) {
    if (!world.ha->isolated(node)) return;
    world.ha->SetIsolated(node, false);
    world.trace.Add(world.Now(), node, "ha-node-rejoined", "");
  }
  static void StoreUp(World& world) {
    if (world.ha->store().available()) return;
    world.ha->store().SetAvailable(true);
    world.trace.Add(world.Now(), -1, "ha-store-up", "");
  }
};

}  // namespace

std::unique_ptr<Fault> MakeHaFault() { return std::make_unique<HaFault>(); }

}  // namespace bulwark::sim
