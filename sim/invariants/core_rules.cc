// Invariants over core rules that only the rule prober's workload steps reach
// (actors/rule_prober.h). The prober judges its own answers and reports under these names;
// restart_backoff is also checked here, at the launcher:
//   sealed_admin      no mount, unmount, reload or registration succeeds inside a seal, and none
//                     refused there takes effect afterwards
//   unseal_threshold  an unseal with fewer distinct shares than the threshold leaves the node
//                     sealed, each distinct share counted once
//   mount_isolation   a path routes to the mount with the longest matching prefix; a mount nested
//                     with another is refused; a mount persists; two mounts never see each
//                     other's keys
//   restart_backoff   a plugin that crashes at every start is never mounted, and after two
//                     failures in a row it is not started again before the initial backoff
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/lifecycle/lifecycle.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class NamedInvariant final : public Invariant {
 public:
  NamedInvariant(absl::string_view name, absl::string_view rule) : name_(name), rule_(rule) {}
  absl::string_view name() const override { return name_; }
  absl::string_view rule() const override { return rule_; }

 private:
  const absl::string_view name_;
  const absl::string_view rule_;
};

class RestartBackoffInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "restart_backoff"; }
  absl::string_view rule() const override {
    return "a plugin that crashes at every start is never mounted; after two failures in a row "
           "it is not started again before the initial backoff";
  }
  uint32_t hooks() const override { return kSpawn | kNodeAnswer | kSteppedDown | kRestart; }

  void OnSpawn(World& world, int /*node*/, absl::string_view /*path*/,
               absl::string_view sha256) override {
    if (sha256 != world.crashing_sha) return;
    const absl::Duration now = world.Now();
    if (failures_ >= 2) {
      world.Count(name());
      if (now - last_ < lifecycle::LifecycleOptions().backoff_initial) {
        world.Violate(name(), absl::StrCat("a plugin that failed ", failures_,
                                           " starts in a row was started again after ",
                                           absl::FormatDuration(now - last_)));
      }
    }
    ++failures_;  // It crashes at every start.
    last_ = now;
  }
  // The lifecycle manager's failure streaks go with the process and its seal state.
  void OnNodeAnswer(World&, int, const Request& request, const Response&) override {
    if (request.kind == OpKind::kSeal || request.kind == OpKind::kUnseal) failures_ = 0;
  }
  void OnSteppedDown(World&, int) override { failures_ = 0; }
  void OnRestart(World&, int, const absl::Status&, bool) override { failures_ = 0; }

 private:
  int failures_ = 0;
  absl::Duration last_;
};

}  // namespace

std::unique_ptr<Invariant> MakeSealedAdminInvariant() {
  return std::make_unique<NamedInvariant>(
      "sealed_admin",
      "no mount, unmount, reload or registration succeeds inside a seal, and none refused there "
      "takes effect afterwards");
}
std::unique_ptr<Invariant> MakeUnsealThresholdInvariant() {
  return std::make_unique<NamedInvariant>(
      "unseal_threshold",
      "an unseal below the threshold leaves the node sealed, each distinct share counted once");
}
std::unique_ptr<Invariant> MakeMountIsolationInvariant() {
  return std::make_unique<NamedInvariant>(
      "mount_isolation",
      "paths route to the longest matching mount; nesting is refused; mounts persist; two mounts "
      "never see each other's keys");
}
std::unique_ptr<Invariant> MakeRestartBackoffInvariant() {
  return std::make_unique<RestartBackoffInvariant>();
}

}  // namespace bulwark::sim
