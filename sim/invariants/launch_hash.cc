// launch_hash: no plugin process starts from a file whose SHA-256 is not a registered artifact's
// (checked at the launcher, through the very handle that is executed), and the catalog never
// accepts a registration with the wrong SHA-256.
#include "absl/strings/str_cat.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class LaunchHashInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "launch_hash"; }
  absl::string_view rule() const override {
    return "no plugin starts from an artifact whose SHA-256 was never registered";
  }
  uint32_t hooks() const override { return kSpawn | kReply; }

  void OnSpawn(World& world, int /*node*/, absl::string_view path,
               absl::string_view sha256) override {
    world.Count(name());
    if (world.genuine_sha.count(std::string(sha256)) == 0) {
      world.Violate(name(),
                    absl::StrCat("a plugin process was started from ", path, ", whose SHA-256 is ",
                                 sha256, ": no catalog entry was ever registered with that hash"));
    }
  }

  void OnReply(World& world, const Reply& reply) override {
    if (!reply.expect_refusal || reply.request.kind != OpKind::kRegister) return;
    world.Count(name());
    if (reply.answered && reply.response.status.ok()) {
      world.Violate(name(), absl::StrCat("the catalog accepted ", reply.request.name, "@",
                                         reply.request.version,
                                         " registered with a sha256 that is not its artifact's"));
    }
  }
};

}  // namespace

std::unique_ptr<Invariant> MakeLaunchHashInvariant() {
  return std::make_unique<LaunchHashInvariant>();
}

}  // namespace bulwark::sim
