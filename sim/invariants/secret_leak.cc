// secret_leak: no error message, log line, trace payload or catalog view contains a fragment of
// a secret the workload handed over (values, unseal shares in raw, hex and base64, plugin env
// values). Actors remember their secrets in world.scanner.
#include "absl/strings/str_cat.h"
#include "sim/invariants/invariant.h"
#include "sim/world.h"

namespace bulwark::sim {
namespace {

class SecretLeakInvariant final : public Invariant {
 public:
  absl::string_view name() const override { return "secret_leak"; }
  absl::string_view rule() const override {
    return "no text leaving the core holds a fragment of a secret";
  }
  uint32_t hooks() const override { return kText; }

  void OnText(World& world, absl::string_view where, absl::string_view text) override {
    world.Count(name());
    if (world.scanner.Leaks(text)) {
      world.Violate(name(), absl::StrCat(where, ": a text of ", text.size(),
                                         " bytes contains a fragment of a secret the workload "
                                         "handed to the core (text withheld)"));
    }
  }
};

}  // namespace

std::unique_ptr<Invariant> MakeSecretLeakInvariant() {
  return std::make_unique<SecretLeakInvariant>();
}

}  // namespace bulwark::sim
