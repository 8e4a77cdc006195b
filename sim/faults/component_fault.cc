// Fault kinds whose effect belongs to a node component not built yet (partitions, credential
// rotation): applied only when a component of the node handles the kind (NodeComponent), and
// skipped (and counted) otherwise.
#include <vector>

#include "sim/cluster.h"
#include "sim/faults/fault.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class ComponentFault final : public Fault {
 public:
  explicit ComponentFault(FaultKind kind) : kind_(kind) {}
  FaultKind kind() const override { return kind_; }
  bool Apply(World& world, const FaultEvent& event) override {
    Machine& m = world.cluster->machine(event.node);
    const std::vector<NodeComponent*> handlers =
        m.up() ? m.node->ComponentsHandling(event.kind) : std::vector<NodeComponent*>();
    for (NodeComponent* handler : handlers) {
      const absl::Status status = handler->ApplyFault(*m.node, event);
      if (!status.ok()) world.trace.Add(world.Now(), event.node, "fault-error", status.message());
    }
    return !handlers.empty();
  }

 private:
  const FaultKind kind_;
};

}  // namespace

std::unique_ptr<Fault> MakeComponentFault(FaultKind kind) {
  return std::make_unique<ComponentFault>(kind);
}

}  // namespace bulwark::sim
