// sealed_read: nothing is served while sealed. No data or catalog request succeeds between an
// acknowledged seal and the next unseal (black box, against the operator's seal windows), and no
// request succeeds while the barrier reports itself sealed (white box, as the node answers). A
// request admitted before a seal began may finish while the node is still sealing, as in Vault.
#include "absl/strings/str_cat.h"
#include "sim/cluster.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

bool IsCatalogOp(OpKind kind) {
  return kind == OpKind::kRegister || kind == OpKind::kUnregister || kind == OpKind::kCatalogGet;
}

class SealedReadInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "sealed_read"; }
  absl::string_view rule() const override {
    return "no data or catalog request succeeds while the node is sealed";
  }
  uint32_t hooks() const override { return kReply | kNodeAnswer; }

  void OnReply(World& world, const Reply& reply) override {
    if (reply.source != Source::kClient && reply.source != Source::kAdmin) return;
    if (!reply.answered || !reply.response.status.ok() || reply.expect_refusal) return;
    const OpKind kind = reply.request.kind;
    if (!IsDataOp(kind) && !IsCatalogOp(kind)) return;
    // On an HA cluster a seal closes one node of several (another serves): OnNodeAnswer judges
    // each node as it answers.
    if (world.scenario.nodes > 1) return;
    world.Count(name());
    for (const SealWindow& window : world.seal_windows[static_cast<size_t>(reply.node)]) {
      if (window.start < reply.sent && reply.at < window.end) {
        world.Violate(
            name(),
            absl::StrCat(OpKindName(kind), " sent@", reply.sent, " answered@", reply.at,
                         " succeeded inside the seal acknowledged@", window.start,
                         window.end == UINT64_MAX ? " (still sealed)"
                                                  : absl::StrCat(" unsealed@", window.end)));
        return;
      }
    }
  }

  void OnNodeAnswer(World& world, int node, const Request& request,
                    const Response& response) override {
    if (!response.status.ok()) return;
    if (!IsDataOp(request.kind) && !IsCatalogOp(request.kind)) return;
    Node& n = *world.cluster->machine(node).node;
    if (n.core() == nullptr) return;
    world.Count(name());
    // Vault, too, lets in-flight requests finish before it seals; once the barrier itself is
    // sealed, nothing may succeed.
    if (n.core()->barrier().sealed()) {
      world.Violate(name(),
                    absl::StrCat(OpKindName(request.kind), " of \"", request.key, request.name,
                                 "\" succeeded although the barrier reports itself sealed"));
    }
  }
};

}  // namespace

std::unique_ptr<Invariant> MakeSealedReadInvariant() {
  return std::make_unique<SealedReadInvariant>();
}

}  // namespace bulwark::sim
