// Rules checked by the run itself rather than on one observation; registered so reports and
// shrinking know them:
//   recovery  after any crash, storage and the core reopen (a torn write is never fatal)
//   reload    once faults stop, a request whose plugin process crashes under it still succeeds
//             (lazy reload, one retry): the auditor's final checks
//   liveness  once faults stop, the node serves a write and a read within the scenario's bound,
//             every key reads back, and every request is answered: the auditor and the network
//   caps      the run ended within its step and simulated-time caps: the run loop
#include "absl/strings/str_cat.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class RecoveryInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "recovery"; }
  absl::string_view rule() const override { return "after any crash, storage and the core reopen"; }
  uint32_t hooks() const override { return kRestart; }

  void OnRestart(World& world, int node, const absl::Status& started, bool died) override {
    world.Count(name());
    // An armed crash may strike during recovery itself: another power loss, not a failure.
    if (died || started.ok()) return;
    world.ScanText("restart error", started.message());
    world.Violate(name(),
                  absl::StrCat("node ", node, " failed to restart after a crash: ",
                               world.scanner.Leaks(started.message()) ? "(message withheld)"
                                                                      : started.ToString()));
  }
};

class NamedInvariant final : public Invariant {
 public:
  NamedInvariant(absl::string_view name, absl::string_view rule) : name_(name), rule_(rule) {}
  absl::string_view name() const override { return name_; }
  absl::string_view rule() const override { return rule_; }

 private:
  const absl::string_view name_;
  const absl::string_view rule_;
};

}  // namespace

std::unique_ptr<Invariant> MakeNamedInvariant(absl::string_view name, absl::string_view rule) {
  return std::make_unique<NamedInvariant>(name, rule);
}

std::unique_ptr<Invariant> MakeRecoveryInvariant() { return std::make_unique<RecoveryInvariant>(); }
std::unique_ptr<Invariant> MakeReloadInvariant() {
  return MakeNamedInvariant(
      "reload", "once faults stop, a request whose plugin crashes under it still succeeds");
}
std::unique_ptr<Invariant> MakeLivenessInvariant() {
  return MakeNamedInvariant(
      "liveness", "once faults stop, the node serves within the bound; every request is answered");
}
std::unique_ptr<Invariant> MakeCapsInvariant() {
  return MakeNamedInvariant("caps", "the run ends within its step and simulated-time caps");
}

}  // namespace bulwark::sim
