// A test plugin for the lifecycle's real-process tests: the C++ kv engine, plus two paths that
// misbehave on purpose. "alloc" allocates far past any sane memory limit (under RLIMIT_AS the
// allocation fails and the process aborts); "block" never answers, and the plugin waits up to a
// minute for it on Shutdown, so the host must kill it after its grace period.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>

#include "examples/kv/kv_backend.h"
#include "sdk/serve.h"

namespace {

class Misbehaving final : public bulwark::sdk::Backend {
 public:
  explicit Misbehaving(std::unique_ptr<bulwark::sdk::Backend> kv) : kv_(std::move(kv)) {}

  bulwark::sdk::HandleResult HandleRequest(const bulwark::sdk::Request& request) override {
    if (request.path() == "alloc") {
      // Grow in 64 MiB steps, touching every page, and die like a Go runtime does when the
      // allocator fails ("fatal error: out of memory"). The SDK would turn a C++ bad_alloc into
      // an error reply instead, which is not what a limit-busting plugin looks like.
      constexpr size_t kStep = size_t{64} << 20;
      for (size_t total = 0; total < (size_t{64} << 30); total += kStep) {
        void* p = std::malloc(kStep);
        if (p == nullptr) {
          std::fputs("fatal error: out of memory\n", stderr);
          std::abort();
        }
        std::memset(p, 1, kStep);
      }
      return bulwark::sdk::Response::WithData({{"survived", true}});
    }
    if (request.path() == "block") {
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    }
    return kv_->HandleRequest(request);
  }
  void Cleanup() override { kv_->Cleanup(); }

 private:
  std::unique_ptr<bulwark::sdk::Backend> kv_;
};

}  // namespace

int main() {
  bulwark::sdk::ServeOptions options;
  options.plugin_name = "misbehaving";
  options.multiplexing = false;
  options.shutdown_grace = absl::Seconds(60);
  bulwark::sdk::BackendFactory kv = bulwark::examples::kv::KvBackendFactory();
  return bulwark::sdk::ServeBackend(
      [kv](const bulwark::sdk::BackendConfig& config)
          -> absl::StatusOr<std::unique_ptr<bulwark::sdk::Backend>> {
        absl::StatusOr<std::unique_ptr<bulwark::sdk::Backend>> inner = kv(config);
        if (!inner.ok()) return inner.status();
        return std::unique_ptr<bulwark::sdk::Backend>(new Misbehaving(std::move(*inner)));
      },
      std::move(options));
}
