// The Executor contract, run against the real event loop and the simulated one.
#include <string>
#include <vector>

#include "base/env/testing/contract_test_util.h"

namespace bulwark::testing {
namespace {

using ExecutorContractTest = EnvContractTest;

TEST_P(ExecutorContractTest, TimersFireInDeadlineThenSequenceOrder) {
  std::vector<std::string> order;
  Executor& ex = env().executor;
  ex.PostAfter(absl::Milliseconds(30), [&] { order.push_back("30ms"); });
  ex.PostAfter(absl::Milliseconds(10), [&] { order.push_back("10ms-a"); });
  ex.PostAfter(absl::Milliseconds(10), [&] { order.push_back("10ms-b"); });
  ex.Post([&] { order.push_back("post-1"); });
  ex.PostAfter(absl::Milliseconds(-5), [&] { order.push_back("negative"); });
  ex.Post([&] { order.push_back("post-2"); });
  ASSERT_TRUE(harness_->RunUntil([&] { return order.size() == 6; }, absl::Seconds(10)));
  EXPECT_EQ(order,
            (std::vector<std::string>{"post-1", "negative", "post-2", "10ms-a", "10ms-b", "30ms"}));
}

TEST_P(ExecutorContractTest, CancelRemovesOnlyPendingTimers) {
  Executor& ex = env().executor;
  int fired = 0;
  bool done = false;
  TimerId cancelled = ex.PostAfter(absl::Milliseconds(5), [&] { fired += 100; });
  TimerId kept = ex.PostAfter(absl::Milliseconds(1), [&] { fired += 1; });
  EXPECT_NE(cancelled, kNoTimer);
  EXPECT_NE(cancelled, kept);
  EXPECT_TRUE(ex.Cancel(cancelled));
  EXPECT_FALSE(ex.Cancel(cancelled));
  ex.PostAfter(absl::Milliseconds(20), [&] { done = true; });
  ASSERT_TRUE(harness_->RunUntil([&] { return done; }, absl::Seconds(10)));
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(ex.Cancel(kept)) << "a timer that already ran cannot be cancelled";
}

TEST_P(ExecutorContractTest, TasksMayPostAndCancelFromCallbacks) {
  Executor& ex = env().executor;
  std::vector<int> order;
  TimerId victim = kNoTimer;
  ex.Post([&] {
    order.push_back(1);
    ex.Post([&] { order.push_back(3); });
    EXPECT_TRUE(ex.Cancel(victim));
  });
  victim = ex.PostAfter(absl::Milliseconds(1), [&] { order.push_back(99); });
  ex.Post([&] { order.push_back(2); });
  // A chain: each task schedules the next, 100 deep.
  int chain = 0;
  std::function<void()> step = [&] {
    if (++chain < 100) ex.Post(step);
  };
  ex.Post(step);
  ASSERT_TRUE(
      harness_->RunUntil([&] { return order.size() == 3 && chain == 100; }, absl::Seconds(10)));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_P(ExecutorContractTest, DelayIsMeasuredOnTheMonotonicClock) {
  Clock& clock = env().clock;
  const absl::Duration start = clock.MonotonicNow();
  absl::Duration fired_at;
  bool fired = false;
  env().executor.PostAfter(absl::Milliseconds(20), [&] {
    fired_at = clock.MonotonicNow();
    fired = true;
  });
  ASSERT_TRUE(harness_->RunUntil([&] { return fired; }, absl::Seconds(10)));
  EXPECT_GE(fired_at - start, absl::Milliseconds(20));
  EXPECT_GE(clock.MonotonicNow(), fired_at);
}

INSTANTIATE_TEST_SUITE_P(Env, ExecutorContractTest, AllHarnesses(), HarnessName);

}  // namespace
}  // namespace bulwark::testing
