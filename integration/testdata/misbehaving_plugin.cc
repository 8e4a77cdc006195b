// A test plugin for the lifecycle's real-process tests: the C++ kv engine, plus two paths that
// misbehave on purpose. "alloc" maps more than its RLIMIT_AS allows (the mapping fails and the
// process aborts); "block" never answers, and the plugin waits up to a minute for it on Shutdown,
// so the host must kill it after its grace period.
#include <sys/mman.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
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
      // Reserve as much address space as RLIMIT_AS allows in all: with anything else already
      // mapped that cannot fit, so under a limit the mapping fails at once, and the plugin dies
      // like a Go runtime does when the allocator fails ("fatal error: out of memory"). Nothing
      // is touched, so how fast the machine fills pages does not matter. MAP_NORESERVE keeps
      // the overcommit heuristic out of it: only the limit can refuse the mapping. (The SDK
      // would turn a C++ bad_alloc into an error reply, which is not what a limit-busting
      // plugin looks like.) Without a limit there is nothing to bust: the plugin says so.
      struct rlimit limit;
      if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
        return bulwark::sdk::Response::WithData({{"survived", true}, {"limited", false}});
      }
      void* p = mmap(nullptr, static_cast<size_t>(limit.rlim_cur), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) {
        std::fputs("fatal error: out of memory\n", stderr);
        std::abort();
      }
      munmap(p, static_cast<size_t>(limit.rlim_cur));
      return bulwark::sdk::Response::WithData({{"survived", true}, {"limited", true}});
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
