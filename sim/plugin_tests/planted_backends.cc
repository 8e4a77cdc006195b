// Planted-bug backends (see planted_backends.h). Deliberately wrong; do not copy.
#include "sim/plugin_tests/planted_backends.h"

#include <atomic>
#include <memory>
#include <utility>

namespace bulwark::sim::plugin_tests {
namespace {

class Broken final : public sdk::Backend {
 public:
  sdk::HandleResult HandleRequest(const sdk::Request&) override {
    return sdk::InternalError("planted bug: this instance never works");
  }
};

}  // namespace

sdk::BackendFactory FailsAfterReload(sdk::BackendFactory inner, uint64_t healthy_setups) {
  auto setups = std::make_shared<std::atomic<uint64_t>>(0);
  return [inner = std::move(inner), setups, healthy_setups](
             const sdk::BackendConfig& config) -> absl::StatusOr<std::unique_ptr<sdk::Backend>> {
    if (setups->fetch_add(1) >= healthy_setups) return std::make_unique<Broken>();
    return inner(config);
  };
}

}  // namespace bulwark::sim::plugin_tests
