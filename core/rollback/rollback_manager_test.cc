// The rollback ticker on simulated time: one pass a minute, never two at once, none after Stop.
#include "core/rollback/rollback_manager.h"

#include <cstdio>
#include <vector>

#include "base/env/sim/sim_env.h"
#include "gtest/gtest.h"

namespace bulwark::rollback {
namespace {

TEST(RollbackManagerTest, OnePassPerMinuteNeverOverlappingStopsOnStop) {
  constexpr uint64_t kSeed = 3;
  std::printf("seed: %llu\n", static_cast<unsigned long long>(kSeed));
  sim::SimEnv sim(kSeed);
  std::vector<absl::Duration> starts;
  absl::AnyInvocable<void()> pending;
  bool hold = false;
  RollbackManager m(sim.env(), [&](absl::AnyInvocable<void()> done) {
    starts.push_back(sim.clock().MonotonicNow());
    if (hold) {
      pending = std::move(done);
    } else {
      done();
    }
  });
  auto run_for = [&](absl::Duration d) { sim.loop().RunUntil([] { return false; }, d); };
  m.Start();
  m.Start();  // Idempotent: still one tick a minute.
  run_for(absl::Seconds(59));
  EXPECT_TRUE(starts.empty());
  run_for(absl::Minutes(2) + absl::Seconds(1));
  EXPECT_EQ(starts,
            (std::vector<absl::Duration>{absl::Minutes(1), absl::Minutes(2), absl::Minutes(3)}));
  // A pass that does not finish: later ticks skip.
  hold = true;
  run_for(absl::Minutes(3));
  EXPECT_EQ(starts.size(), 4u);
  hold = false;
  pending();
  run_for(absl::Minutes(1));
  EXPECT_EQ(starts.size(), 5u);
  m.Stop();
  run_for(absl::Minutes(5));
  EXPECT_EQ(starts.size(), 5u);
  EXPECT_FALSE(m.running());
}

}  // namespace
}  // namespace bulwark::rollback
