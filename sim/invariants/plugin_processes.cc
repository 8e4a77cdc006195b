// Invariants over the plugin processes a node runs:
//   stopped_plugins  no plugin process survives a completed seal or step-down
//   process_sharing  processes follow the runner-config rule: never two running multiplexed
//                    processes for one runner config, never a non-multiplexed process serving two
//                    mounts (checked after every successful read of a data client)
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sim/cluster.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class StoppedPluginsInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "stopped_plugins"; }
  absl::string_view rule() const override {
    return "no plugin process survives a completed seal or step-down";
  }
  uint32_t hooks() const override { return kNodeAnswer | kSteppedDown; }

  void OnNodeAnswer(World& world, int node, const Request& request,
                    const Response& response) override {
    if (request.kind == OpKind::kSeal && response.status.ok()) Check(world, node, "a seal");
  }
  void OnSteppedDown(World& world, int node) override { Check(world, node, "a step-down"); }

 private:
  void Check(World& world, int node, absl::string_view after) {
    world.Count(name());
    const std::vector<int64_t> pids = world.cluster->machine(node).node->launcher().LivePids();
    if (!pids.empty()) {
      world.Violate(name(),
                    absl::StrCat(pids.size(), " plugin process", pids.size() == 1 ? "" : "es",
                                 " still running after ", after, " completed (pid ", pids[0], ")"));
    }
  }
};

class ProcessSharingInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "process_sharing"; }
  absl::string_view rule() const override {
    return "one running multiplexed process per runner config; a non-multiplexed process serves "
           "one mount";
  }
  uint32_t hooks() const override { return kReply; }

  void OnReply(World& world, const Reply& reply) override {
    if (reply.source != Source::kClient || !reply.answered || !reply.response.status.ok()) return;
    const OpKind kind = reply.request.kind;
    if (kind != OpKind::kGet && kind != OpKind::kRawGet && kind != OpKind::kList &&
        kind != OpKind::kRawList) {
      return;
    }
    Node& node = *world.cluster->machine(reply.node).node;
    if (!node.running() || node.core() == nullptr || node.core()->lifecycle() == nullptr) return;
    world.Count(name());
    std::set<std::string> multiplexed_keys;
    for (const lifecycle::ProcessInfo& p : node.core()->lifecycle()->Processes()) {
      if (!p.running) continue;
      if (p.multiplexed && !multiplexed_keys.insert(p.runner_key).second) {
        world.Violate(name(), absl::StrCat("two running multiplexed processes of plugin \"",
                                           p.plugin_name, "\" share runner config ", p.runner_key));
      } else if (!p.multiplexed && p.mounts.size() > 1) {
        world.Violate(
            name(), absl::StrCat("non-multiplexed process ", p.pid, " of plugin \"", p.plugin_name,
                                 "\" serves ", p.mounts.size(), " mounts"));
      }
    }
  }
};

}  // namespace

std::unique_ptr<Invariant> MakeStoppedPluginsInvariant() {
  return std::make_unique<StoppedPluginsInvariant>();
}
std::unique_ptr<Invariant> MakeProcessSharingInvariant() {
  return std::make_unique<ProcessSharingInvariant>();
}

}  // namespace bulwark::sim
