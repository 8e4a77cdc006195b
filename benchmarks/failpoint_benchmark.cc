// Cost of failpoint sites. The goal (issue SIM1/C): a disabled failpoint — no registry installed —
// costs one relaxed atomic load and a predicted branch, under 1 ns, so sites can stay compiled in.
// The other cases show what a site costs once a registry is installed (the simulator, a test).
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "base/env/random.h"
#include "base/status/check.h"
#include "benchmark/benchmark.h"
#include "faultinject/failpoint.h"
#include "faultinject/registry.h"

namespace bulwark::faultinject {
namespace {

// The loop and DoNotOptimize alone, to subtract from the others.
void BM_Baseline(benchmark::State& state) {
  bool fired = false;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fired);
  }
}
BENCHMARK(BM_Baseline);

void BM_FailpointDisabled(benchmark::State& state) {
  InstallRegistry(nullptr);
  for (auto _ : state) {
    bool fired = static_cast<bool>(BW_FAILPOINT("bench.disabled"));
    benchmark::DoNotOptimize(fired);
  }
}
BENCHMARK(BM_FailpointDisabled);

void BM_FailpointStatusDisabled(benchmark::State& state) {
  InstallRegistry(nullptr);
  for (auto _ : state) {
    bool ok = BW_FAILPOINT_STATUS("bench.disabled").ok();
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_FailpointStatusDisabled);

// A registry is installed but this site is not configured: lock, lookup, count.
void BM_FailpointInstalledUnconfigured(benchmark::State& state) {
  SeededRandom random(1);
  Registry registry(random);
  ScopedInstall install(registry);
  for (int i = 0; i < 32; ++i) {
    CHECK_OK(registry.Set("bench.other" + std::to_string(i), "off"));
  }
  for (auto _ : state) {
    bool fired = static_cast<bool>(BW_FAILPOINT("bench.unconfigured"));
    benchmark::DoNotOptimize(fired);
  }
}
BENCHMARK(BM_FailpointInstalledUnconfigured);

// A configured site that fires one hit in four.
void BM_FailpointConfigured25Percent(benchmark::State& state) {
  SeededRandom random(1);
  Registry registry(random);
  ScopedInstall install(registry);
  CHECK_OK(registry.Set("bench.configured", "25%return(unavailable)"));
  for (auto _ : state) {
    bool fired = static_cast<bool>(BW_FAILPOINT("bench.configured"));
    benchmark::DoNotOptimize(fired);
  }
}
BENCHMARK(BM_FailpointConfigured25Percent);

}  // namespace
}  // namespace bulwark::faultinject
