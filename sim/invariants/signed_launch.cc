// signed_launch: under plugin_signature_policy "required", nothing unsigned or mis-signed runs.
// Every plugin process must start from bytes the release key signed, on a node whose
// allowed-signers file holds the release key at that moment (checked at the launcher, through
// the very handle that is executed); and the catalog never accepts a registration whose
// signature is not its artifact's.
#include "absl/strings/str_cat.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class SignedLaunchInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "signed_launch"; }
  absl::string_view rule() const override {
    return "under a required signature policy no plugin starts from unsigned bytes, or while its "
           "signer is not allowed, and no mis-signed registration is accepted";
  }
  uint32_t hooks() const override { return kSpawn | kReply; }

  void OnSpawn(World& world, int node, absl::string_view path, absl::string_view sha256) override {
    if (!world.scenario.signatures_required) return;
    world.Count(name());
    if (world.signature_by_sha.count(std::string(sha256)) == 0) {
      world.Violate(name(), absl::StrCat("a plugin process was started from ", path, " (SHA-256 ",
                                         sha256, "), bytes the release key never signed"));
      return;
    }
    auto removed = world.signer_removed.find(node);
    if (removed != world.signer_removed.end() && removed->second > 0) {
      world.Violate(name(),
                    absl::StrCat("a plugin process was started from ", path, " on node ", node,
                                 " while the release key's line was removed from its "
                                 "allowed-signers file"));
    }
  }

  void OnReply(World& world, const Reply& reply) override {
    if (!world.scenario.signatures_required || reply.request.kind != OpKind::kRegister) return;
    const catalog::RegisterRequest& r = reply.request.registration;
    // Empty: the network signed it with the artifact's own signature on the way out.
    if (r.signature.empty()) return;
    world.Count(name());
    auto genuine = world.signature_by_sha.find(r.sha256);
    const bool matches = genuine != world.signature_by_sha.end() && genuine->second == r.signature;
    if (!matches && reply.answered && reply.response.status.ok()) {
      world.Violate(name(), absl::StrCat("the catalog accepted ", r.name, "@", r.version,
                                         " registered with another artifact's signature"));
    }
  }
};

}  // namespace

std::unique_ptr<Invariant> MakeSignedLaunchInvariant() {
  return std::make_unique<SignedLaunchInvariant>();
}

}  // namespace bulwark::sim
