// Speed of the simulated event loop: the simulator's throughput is bounded by how fast it can
// schedule and run timers. F1's goal: a million timers in well under a second of wall time.
#include <cstdint>

#include "absl/time/time.h"
#include "base/env/random.h"
#include "base/env/sim/sim_event_loop.h"
#include "benchmark/benchmark.h"

namespace bulwark::sim {
namespace {

// Schedules `n` timers at random deadlines, then runs them all.
void BM_SimTimersScheduleAndRun(benchmark::State& state) {
  const int64_t n = state.range(0);
  uint64_t sink = 0;
  for (auto _ : state) {
    SimClock clock;
    SimEventLoop loop(clock);
    SeededRandom random(1);
    for (int64_t i = 0; i < n; ++i) {
      loop.PostAfter(absl::Microseconds(random.Uniform(1000000)), [&sink, i] { sink += i; });
    }
    loop.RunUntilIdle();
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SimTimersScheduleAndRun)->Arg(1000000)->Unit(benchmark::kMillisecond);

// Half of the timers are cancelled before they run, as retries and timeouts usually are.
void BM_SimTimersWithCancel(benchmark::State& state) {
  const int64_t n = state.range(0);
  for (auto _ : state) {
    SimClock clock;
    SimEventLoop loop(clock);
    SeededRandom random(2);
    TimerId previous = kNoTimer;
    for (int64_t i = 0; i < n; ++i) {
      TimerId id = loop.PostAfter(absl::Microseconds(random.Uniform(1000000)), [] {});
      if (i % 2 == 1) loop.Cancel(previous);
      previous = id;
    }
    loop.RunUntilIdle();
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SimTimersWithCancel)->Arg(1000000)->Unit(benchmark::kMillisecond);

// A task chain: each task posts the next, the pattern of continuations in the core.
void BM_SimPostChain(benchmark::State& state) {
  SimClock clock;
  SimEventLoop loop(clock);
  for (auto _ : state) {
    int remaining = 1000;
    std::function<void()> step = [&] {
      if (--remaining > 0) loop.Post(step);
    };
    loop.Post(step);
    loop.RunUntilIdle();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_SimPostChain);

}  // namespace
}  // namespace bulwark::sim
